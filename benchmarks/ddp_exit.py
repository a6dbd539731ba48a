"""Does a 2-process torchrun job exit promptly after its summary? (issue 22: one exit in three hung)

Runs N consecutive ``torchrun --nproc_per_node 2 -m scns ...`` jobs, cycling through ``train``,
``distill`` (CRD from a tiny teacher trained once beforehand) and ``resume`` (the previous train run
continued for one more epoch), each 1 epoch of 2 steps on the embedded ``digits`` set, under a hard
timeout. Per run it records the exit code, whether rank 0 printed its summary, the seconds from the
summary printed to the job's exit and from ``summary.json`` written (end of training, before the
DDP shutdown) to the exit, and whether the job hung (killed at the timeout; with py-spy installed
the stacks of the hung ranks go into the JSON). The JSON is rewritten after every run, so a partial
result survives an interrupted measurement. ``--kinds baseline`` runs ``scns models`` under
torchrun instead: the floor of the exit delay (interpreter exit and torchrun's own shutdown).

    nice -n 19 python benchmarks/ddp_exit.py --runs 200 --out benchmarks/results/ddp_exit.json
    python benchmarks/ddp_exit.py --kinds baseline --runs 20 --out /tmp/ddp_exit_baseline.json
    # the same check under nccl: needs 2 GPUs (rank r trains on cuda:r; NCCL refuses 2 ranks on 1 GPU)
    python benchmarks/ddp_exit.py --backend nccl --runs 60 --out /tmp/ddp_exit_nccl.json

The script measures hangs, not speed: a loaded machine makes every run slower but a hang is still a
job killed at the timeout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scns.dist import free_local_port

KINDS = ("train", "distill", "resume")
#: ``--kinds baseline``: torchrun running ``scns models`` (no process group), for the floor of the exit
#: delay (interpreter exit plus torchrun's own shutdown) on the same machine.
BASELINE = "baseline"
#: A run costs seconds: 1 epoch of 2 steps, a small evaluation batch.
CHEAP = ("train.max_steps_per_epoch=2", "data.eval_batch_size=512")


@dataclass
class Launch:
    """One torchrun job: exit code (None when killed), hang, wall seconds, seconds from the summary
    printed to the exit (None when none was printed), the wall-clock end, last output lines, stacks."""

    returncode: int | None
    hang: bool
    wall_s: float
    exit_after_summary_s: float | None
    exit_after_last_output_s: float | None
    ended_at: float
    tail: list[str]
    stacks: str | None


@dataclass
class RunResult:
    index: int
    kind: str
    returncode: int | None
    hang: bool
    wall_s: float
    summary_printed: bool
    exit_after_summary_s: float | None
    exit_after_summary_file_s: float | None
    exit_after_last_output_s: float | None
    run_dir: str
    stacks: str | None = None
    tail: list[str] = field(default_factory=list)


def scns_command(kind: str, run_dir: Path, teacher: Path | None, device: str) -> list[str]:
    """The ``scns`` arguments of one run of ``kind`` writing ``run_dir`` (resume: continuing it)."""
    overrides = [item for pair in (("--set", o) for o in CHEAP) for item in pair]
    if kind == "resume":
        return ["train", "--resume", str(run_dir), "--epochs", "2", "--no-progress"]
    if kind == BASELINE:
        return ["models"]
    common = [
        "--dataset", "digits", "--epochs", "1", "--device", device, "--no-progress",
        "--out-dir", str(run_dir.parent), "--name", run_dir.name, *overrides,
    ]  # fmt: skip
    if kind == "train":
        return ["train", "--model", "resnet8", *common]
    if kind == "distill":
        if teacher is None:
            raise ValueError("a distill run needs a teacher run directory")
        return ["distill", "--teacher", str(teacher), "--student", "resnet8", "--method", "crd",
                "--negatives", "64", *common]  # fmt: skip
    raise ValueError(f"unknown kind '{kind}'; use one of {', '.join(KINDS)}")


def _stacks(pid: int) -> str | None:
    """py-spy dumps of ``pid``'s children (the ranks), when py-spy is installed."""
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = children.read_text().split() if children.exists() else []
    dumps = []
    for child in pids:
        out = subprocess.run([spy, "dump", "--native", "--pid", child], capture_output=True, text=True)
        dumps.append(out.stdout + out.stderr)
    return "\n".join(dumps)


def launch(
    scns_args: list[str], timeout_s: float, nproc: int = 2, env: dict[str, str] | None = None
) -> Launch:
    """Run ``torchrun --nproc_per_node nproc -m scns <scns_args>`` under a hard timeout (the job's
    whole process group is killed when it runs past ``timeout_s``)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--master_addr", "127.0.0.1", "--master_port", str(free_local_port()), "-m", "scns", *scns_args,
    ]  # fmt: skip
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    started = time.monotonic()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    printed: list[float] = []
    last_output: list[float] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            last_output[:] = [time.monotonic()]
            if line.rstrip("\n") == "}":  # the last line of the summary JSON rank 0 prints
                printed.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stacks = None
    try:
        returncode: int | None = proc.wait(timeout=timeout_s)
        hang = False
    except subprocess.TimeoutExpired:
        hang, returncode = True, None
        stacks = _stacks(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    ended, ended_at = time.monotonic(), time.time()
    reader.join(5)
    after = ended - printed[-1] if (printed and not hang) else None
    after_output = ended - last_output[-1] if (last_output and not hang) else None
    return Launch(returncode, hang, ended - started, after, after_output, ended_at, lines[-40:], stacks)


def train_teacher(work: Path, device: str) -> Path:
    """A tiny resnet8 teacher (1 epoch, 2 steps; one process) for the distill runs."""
    teacher = work / "teacher"
    if not (teacher / "summary.json").exists():
        args = scns_command("train", teacher, None, device)
        subprocess.run([sys.executable, "-m", "scns", *args], check=True, capture_output=True)
    return teacher


def run_one(
    index: int, kind: str, work: Path, teacher: Path | None, fresh: list[Path], device: str, timeout_s: float
) -> RunResult:
    """One job of ``kind``; ``fresh`` lists finished 1-epoch train runs not yet resumed."""
    if kind == "resume":
        if not fresh:  # nothing to continue yet: make a 1-epoch run first (not counted)
            setup = work / f"setup-{index:04d}"
            launch(scns_command("train", setup, None, device), timeout_s)
            fresh.append(setup)
        run_dir = fresh.pop()
    else:
        run_dir = work / f"{kind}-{index:04d}"
    job = launch(scns_command(kind, run_dir, teacher, device), timeout_s)
    summary_file = run_dir / "summary.json"
    after_file = None
    if not job.hang and summary_file.exists():
        after_file = job.ended_at - summary_file.stat().st_mtime
    if kind == "train" and job.returncode == 0:
        fresh.append(run_dir)
    return RunResult(
        index=index,
        kind=kind,
        returncode=job.returncode,
        hang=job.hang,
        wall_s=job.wall_s,
        summary_printed=job.exit_after_summary_s is not None,
        exit_after_summary_s=job.exit_after_summary_s,
        exit_after_summary_file_s=after_file,
        exit_after_last_output_s=job.exit_after_last_output_s,
        run_dir=str(run_dir),
        stacks=job.stacks,
        tail=job.tail if (job.hang or job.returncode != 0) else [],
    )


def summarise(results: list[RunResult]) -> dict:
    delays = [r.exit_after_summary_s for r in results if r.exit_after_summary_s is not None]
    file_delays = [r.exit_after_summary_file_s for r in results if r.exit_after_summary_file_s is not None]
    return {
        "runs": len(results),
        "by_kind": {k: sum(r.kind == k for r in results) for k in (*KINDS, BASELINE)},
        "hangs": sum(r.hang for r in results),
        "nonzero_exits": sum((r.returncode or 0) != 0 for r in results if not r.hang),
        "summary_missing": sum(not r.summary_printed for r in results if r.kind != BASELINE),
        "exit_after_summary_s": _stats(delays),
        "exit_after_summary_file_s": _stats(file_delays),
        "exit_after_last_output_s": _stats(
            [r.exit_after_last_output_s for r in results if r.exit_after_last_output_s is not None]
        ),
    }


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"median": statistics.median(values), "max": max(values), "min": min(values)}


def git_commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30, help="number of jobs (default 30)")
    parser.add_argument(
        "--kinds", nargs="+", default=list(KINDS), choices=(*KINDS, BASELINE), help="cycled in this order"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds before a job counts as hung")
    parser.add_argument("--backend", choices=("gloo", "nccl"), default="gloo", help="nccl runs on cuda")
    parser.add_argument("--work", type=Path, help="run directories (default: a fresh temp folder)")
    parser.add_argument("--out", type=Path, required=True, help="JSON written after every run")
    parser.add_argument("--commit", help="code version to record (default: git rev-parse HEAD)")
    args = parser.parse_args(argv)
    device = "cuda" if args.backend == "nccl" else "cpu"
    if args.backend == "nccl":
        import torch

        if torch.cuda.device_count() < 2:
            # init_distributed puts rank r on cuda:r, and NCCL refuses two ranks on one GPU
            raise SystemExit(
                f"--backend nccl needs 2 CUDA devices (found {torch.cuda.device_count()}); "
                "use a machine with 2 GPUs or --backend gloo"
            )
    work = args.work or Path(f"/tmp/scns-ddp-exit-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    teacher = train_teacher(work, device) if "distill" in args.kinds else None
    meta = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "commit": args.commit or git_commit(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "backend": args.backend,
        "timeout_s": args.timeout,
        "per_run": "torchrun --nproc_per_node 2 -m scns <kind> ..., digits, 1 epoch of 2 steps",
    }
    fresh: list[Path] = []
    results: list[RunResult] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for index in range(args.runs):
        kind = args.kinds[index % len(args.kinds)]
        result = run_one(index, kind, work, teacher, fresh, device, args.timeout)
        results.append(result)
        status = "HANG" if result.hang else f"rc={result.returncode}"
        delay = result.exit_after_summary_s
        print(f"{index + 1:>4}/{args.runs} {kind:<8} {status:<6} wall {result.wall_s:6.1f} s  "
              f"exit after summary {'-' if delay is None else f'{delay:.2f} s'}", flush=True)  # fmt: skip
        meta["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        meta["load_avg_1m"] = os.getloadavg()[0]
        payload = {"meta": meta, "summary": summarise(results), "runs": [asdict(r) for r in results]}
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, args.out)
    summary = summarise(results)
    print(json.dumps(summary, indent=2))
    return 0 if summary["hangs"] == 0 and summary["nonzero_exits"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
