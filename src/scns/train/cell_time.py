"""How long a grid cell will train, from the runs already in its grid directory.

A worker with a deadline (``scns grid --deadline``) starts a cell only when this estimate fits in the
time left, so a sitting or a lease never ends in the middle of a cell whose checkpoint would be lost
with the machine. The estimate is the cell's epochs still to train times a median epoch time (of the quiet epochs,
where there are any):

- the cell's own, when it has trained some epochs (it resumes);
- else that of finished runs in the same directory whose step costs the same (:data:`COST_KEYS`
  equal), or failing those, the same apart from the sampler (sampling is 0.3-16 % of a step,
  BENCHMARKS.md s. 2, which :data:`MARGIN` covers);
- else none: such a cell is never started against a deadline.

Only epochs timed on the same kind of machine count (:class:`Machine`: device type, CPU vector ISA,
cores, torch threads): one sitting's CPU ran a CRD+KD epoch in 187 s, another's (AVX2 only) in
411 s (BENCHMARKS.md s. 8), and an estimate from the faster would start cells the slower cannot
finish. Epochs logged before these fields existed match no machine.

Epoch times are logged without evaluation and start-up (data, teacher, bank prefill), hence the
margin and the fixed :data:`STARTUP_S`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scns.config import Config
from scns.rundir import RunDir, RunDirError
from scns.runinfo import Machine, epoch_contended, find_runs, finished_config, read_metrics

#: Options that set what one training step costs (dotted config keys). Two runs equal on all of
#: them train an epoch in about the same time on the same machine.
COST_KEYS = (
    "data.dataset",
    "data.batch_size",
    "data.val_size",
    "model.name",
    "train.objective",
    "train.max_steps_per_epoch",
    "distill.method",
    "distill.teacher_model",
    "contrast.negatives",
    "contrast.latent_mixup",
    "contrast.sampler",
)

#: The same, less the sampler: the fallback match.
COST_KEYS_ANY_SAMPLER = tuple(key for key in COST_KEYS if key != "contrast.sampler")

#: Safety factor on the summed epoch times: evaluation (about 10 s of a 420 s CRD+KD epoch on CPU),
#: a slower sampler, a noisier machine.
MARGIN = 1.10
#: Seconds allowed for a run's start-up: loading data and teacher, prefilling the banks.
STARTUP_S = 120.0


@dataclass(frozen=True)
class CellEstimate:
    """Seconds a cell still needs (``None`` when nothing to estimate from) and what the figure rests on."""

    seconds: float | None
    basis: str


def cost_signature(config: Config, keys: tuple[str, ...] = COST_KEYS) -> tuple[Any, ...]:
    """The values of ``keys`` in ``config`` (lists made hashable)."""
    values = []
    for key in keys:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        values.append(tuple(value) if isinstance(value, list) else value)
    return tuple(values)


def current_machine(device_type: str) -> Machine:
    """This process on ``device_type``: the kind of machine a cell started now trains on."""
    import torch

    from scns.train.engine import usable_cores

    return Machine(
        device_type, torch.backends.cpu.get_cpu_capability(), usable_cores(), torch.get_num_threads()
    )


def _epochs_on(run_dir: Path, machine: Machine) -> list[dict[str, Any]]:
    """The run's logged epochs that were trained on ``machine``'s kind."""
    try:
        return [m for m in read_metrics(run_dir) if "epoch_time_s" in m and machine.ran(m)]
    except (RunDirError, OSError, ValueError, KeyError):
        return []


def typical_epoch_s(epochs: list[dict[str, Any]]) -> float:
    """The median epoch time of the quiet epochs (cores not shared, :func:`scns.runinfo.epoch_contended`)
    when there are any, else of all: a worker that starts a cell expects the machine to itself."""
    quiet = [float(m["epoch_time_s"]) for m in epochs if epoch_contended(m) is False]
    return statistics.median(quiet or [float(m["epoch_time_s"]) for m in epochs])


def finished_runs(runs_dir: Path) -> list[tuple[Path, Config]]:
    """The finished runs under ``runs_dir`` with their configs: what :func:`estimate_cell_seconds`
    searches. A caller estimating many cells at once (a grid's listing) reads them once and passes them in."""
    runs = find_runs([runs_dir]) if runs_dir.is_dir() else []
    return [(path, config) for path in runs if (config := finished_config(path)) is not None]


def estimate_cell_seconds(
    config: Config,
    run_dir: Path,
    runs_dir: Path,
    machine: Machine | None = None,
    finished: list[tuple[Path, Config]] | None = None,
) -> CellEstimate:
    """Seconds the run ``config`` (to live in ``run_dir``) needs to finish, from the runs in ``runs_dir``.

    Args:
        config: the cell's config (its ``train.epochs`` is the target).
        run_dir: the cell's own directory (it may hold epochs already trained).
        runs_dir: the grid's ``runs`` directory, searched for finished runs of the same cost.
        machine: the kind of machine it will train on (default: this process on the config's device).
        finished: :func:`finished_runs` of ``runs_dir``, when the caller has read them already.
    """
    if machine is None:
        from scns.train.engine import resolve_device

        machine = current_machine(resolve_device(config.train.device).type)
    # epochs trained count only with the checkpoint they resume from (without it the run starts over)
    resumes = RunDir(run_dir).last_checkpoint.is_file()
    done = len(read_metrics(run_dir)) if resumes else 0
    left = config.train.epochs - done
    if left <= 0:
        return CellEstimate(STARTUP_S, "all epochs trained; the summary is left to write")
    own = _epochs_on(run_dir, machine) if resumes else []
    if own:
        return CellEstimate(STARTUP_S + MARGIN * left * typical_epoch_s(own), f"its own {len(own)} epochs")
    if finished is None:
        finished = finished_runs(runs_dir)
    finished = [(path, other) for path, other in finished if path != run_dir]
    for keys, what in ((COST_KEYS, "same step cost"), (COST_KEYS_ANY_SAMPLER, "same cost but the sampler")):
        wanted = cost_signature(config, keys)
        matches = sorted(path.name for path, other in finished if cost_signature(other, keys) == wanted)
        epochs = [m for name in matches for m in _epochs_on(runs_dir / name, machine)]
        if epochs:
            shown = ", ".join(matches[:3]) + (", ..." if len(matches) > 3 else "")
            return CellEstimate(
                STARTUP_S + MARGIN * left * typical_epoch_s(epochs),
                f"{len(matches)} finished run(s) of the {what}: {shown}",
            )
    return CellEstimate(None, "no epochs of the same step cost timed on this kind of machine in this grid")
