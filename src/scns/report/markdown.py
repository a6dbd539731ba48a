"""The Markdown report: accuracy tables with paired confidence intervals, and the plots."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from scns.config import nest_dotted
from scns.report import plots
from scns.report.collect import method_step_time
from scns.report.decision import (
    BEST_CLASS_LEVEL,
    EQUIVALENCE_MARGIN,
    FEWER_NEGATIVES_ARM,
    KD,
    OTHER_SCNS_ARMS,
    UNIFORM,
    chosen_class_arm,
    product_default,
    top1_by_method,
)
from scns.report.stats import inside_margin, paired_difference, summarize
from scns.rundir import file_slug
from scns.runinfo import MIN_CPU_SHARE

#: ``ship(method, negatives label) -> dotted settings``: what the presets ship for a decision
#: (``scns.train.protocols.shipped_settings``, passed in by the ``scns report`` command, since reports
#: do not import the grid runner).
ShippedSettings = Callable[[str, str], dict[str, Any]]


# Baselines each setting's methods are compared with, in column order.
BASELINES = {
    "supervised": ("uniform", "cross-entropy"),
    "budget": ("uniform",),
    "distill": ("crd uniform", "student", "kd"),
    "bank_dtype": ("uniform",),
    "teacher": (),
    "pilot": ("crd+kd uniform", "kd"),
    "decisive": ("crd+kd uniform", "kd", "student"),
}

#: Settings whose runs draw negatives: the report plots their hardness and diagnostics and splits
#: their errors by superclass.
NEGATIVES_SETTINGS = ("supervised", "distill", "pilot", "decisive")

#: The decisive grid's pre-registered comparisons (BENCHMARKS.md s. 8), in order: (role, method,
#: baseline). The chosen class-level arm's label starts with ``best class-level``.
DECISIVE_COMPARISONS = (
    ("primary", BEST_CLASS_LEVEL, UNIFORM),
    ("secondary", UNIFORM, KD),
    ("secondary", KD, "student"),
    *(("secondary", arm, UNIFORM) for arm in OTHER_SCNS_ARMS if arm != FEWER_NEGATIVES_ARM),
    ("secondary", FEWER_NEGATIVES_ARM, "crd+kd uniform k1024"),
    ("equivalence", FEWER_NEGATIVES_ARM, UNIFORM),
)
PAPER_NOTE = (
    "Reference deltas from the paper (O'Neill & Bollegala, 2021), full schedules on GPUs: supervised "
    "CIFAR-10 +1.52 points averaged over architectures; distillation CIFAR-100 +3.29 over the student "
    "alone and +1.72 over KD; Tiny-ImageNet-200 +4.56 and +1.23."
)


def group_records(records: list[dict[str, Any]]) -> dict[tuple[str, str, str, int], list[dict[str, Any]]]:
    """(setting, dataset, model, epochs) -> runs; a run in several settings appears in each."""
    groups: dict[tuple[str, str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        for setting in r["settings"] or ["runs"]:
            groups[(setting, r["dataset"], r["model"], r["epochs"])].append(r)
    return dict(groups)


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _diff_cell(method_runs: list[dict[str, Any]], base_runs: list[dict[str, Any]]) -> str:
    if not base_runs or method_runs is base_runs:
        return ""
    d = paired_difference(
        {r["seed"]: r["final_top1"] for r in method_runs}, {r["seed"]: r["final_top1"] for r in base_runs}
    )
    if d is None:
        return "no shared seeds"
    if d.n < 2:
        return f"{d.mean:+.2f} (n=1, no CI)"
    verdict = "within noise" if d.within_noise else ("better" if d.mean > 0 else "worse")
    return f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}] {verdict}"


def accuracy_table(setting: str, runs: list[dict[str, Any]]) -> str:
    """Markdown table: one row per method (and K in the budget setting)."""
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        key = f"{r['method']} K={r['negatives']}" if setting == "budget" else r["method"]
        by_method[key].append(r)
    baselines = [b for b in BASELINES.get(setting, ()) if any(r["method"] == b for r in runs)]
    header = ["method", "n", "seeds", "top-1 mean +- std"]
    header += [f"diff vs {b} (95% CI, paired by seed)" for b in baselines]
    header += ["anchor-neg cos, first -> last epoch", "top-k share", "step ms", "sampling share", "train min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    steps = {key: method_step_time(method_runs) for key, method_runs in by_method.items()}
    usual_machine = Counter(m for _, _, m in steps.values() if m is not None).most_common(1)
    for key, method_runs in sorted(by_method.items(), key=lambda kv: _order_key(setting, kv[0], kv[1])):
        s = summarize([r["final_top1"] for r in method_runs])
        cells = [
            key,
            str(s.n),
            ",".join(str(r["seed"]) for r in sorted(method_runs, key=lambda r: r["seed"])),
        ]
        cells.append(f"{s.mean:.2f} +- {s.std:.2f}")
        for b in baselines:
            base = [
                r
                for r in runs
                if r["method"] == b and (setting != "budget" or r["negatives"] == method_runs[0]["negatives"])
            ]
            cells.append("" if method_runs[0]["method"] == b else _diff_cell(method_runs, base))
        step, step_mark, step_machine = steps[key]
        if step_machine is not None and usual_machine and step_machine != usual_machine[0][0]:
            # timed on another kind of machine than the table's other rows: not comparable with them
            step_mark += f" ({step_machine})"
        train = _field_mean(method_runs, "train_time_s")
        first, last = _field_mean(method_runs, "neg_sim_first"), _field_mean(method_runs, "neg_sim")
        cells += [
            "-" if first is None or last is None else f"{first:.3f} -> {last:.3f}",
            _fmt(_field_mean(method_runs, "topk_share"), ".3f"),
            _fmt(None if step is None else 1000 * step, ".0f") + step_mark,
            _fmt(_field_mean(method_runs, "sampling_share"), ".1%"),
            _fmt(None if train is None else train / 60, ".1f") + _contention_mark(method_runs),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DIAGNOSTICS_NOTE = (
    "Diagnostics are measured on every `train.log_every`-th step (not every step, so they cost "
    "nothing in between); each epoch's value is the mean over those steps, and metrics.jsonl "
    "holds its standard error (`train_<name>_se`) and the number of steps (`train_diag_steps`)."
)


def superclass_table(runs: list[dict[str, Any]]) -> str | None:
    """Last-epoch top-1 errors split into within- and across-superclass confusions, per method
    (mean over seeds); None when no run has the split (datasets without superclasses)."""
    rows = []
    for method, method_runs in plots.by_method(runs).items():
        within = [r["err_within_super"] for r in method_runs if r.get("err_within_super") is not None]
        across = [r["err_across_super"] for r in method_runs if r.get("err_across_super") is not None]
        if within and across:
            rows.append(
                f"| {method} | {len(within)} | {sum(within) / len(within):.2f} | {sum(across) / len(across):.2f} |"
            )
    if not rows:
        return None
    head = [
        "Where the errors land (last epoch, % of evaluated images, mean over seeds): a wrong class in "
        "the true class's superclass (within) or in another superclass (across).",
        "",
        "| method | runs | error within superclass | error across superclasses |",
        "|---|---|---|---|",
    ]
    return "\n".join(head + rows)


def _contention_mark(runs: list[dict[str, Any]]) -> str:
    """A mark on the time columns' last cell: * when a run shared the CPU, ? when that is unknown."""
    flags = [r.get("contended") for r in runs]
    if any(flags):
        return " *"
    return " ?" if any(f is None and r.get("device") == "cpu" for f, r in zip(flags, runs)) else ""


TIMING_NOTE = (
    "Step ms is the median training-step time over the epochs of a run that had its cores to "
    "itself (the epoch ended with a 1-minute load average at most max(cores, the run's threads) + 0.5: "
    "no more runnable threads than cores; the run's threads + 0.5 for runs that logged no core count; "
    f"and, for a 1-thread run, its process got at least {MIN_CPU_SHARE:.0%} of the epoch's wall time on "
    "the CPU), "
    "averaged over the runs that had such epochs; train min is each run's total training wall time, averaged. A * marks "
    "figures that include time when other work shared the CPU (for step ms: no run had a quiet "
    "epoch): they overstate the cost. ? marks CPU runs that logged no load average. A step time is read "
    "from epochs timed on one kind of machine (CPU kernels, cores, threads: the kind most of them ran "
    "on); a row timed on another kind than the table's others names it, e.g. (AVX2, 2 cores, 2 "
    "threads), and does not compare with them. Anchor-neg cos "
    "is the mean cosine between anchors and the negatives drawn for them, in the first and the last "
    "epoch: early on the embeddings of all runs are alike, so the first epoch compares the samplers; "
    "later each run has learned to push its own negatives away. Sampling share is the part of "
    "training time spent drawing negatives and building sampler tables (kNN refreshes)."
)
GPU_TIMING_NOTE = (
    "On a GPU, step ms is the median over all epochs of a run: no load is logged there, so it includes "
    "whatever else the GPU ran at the time (other grid workers sharing it, say)."
)


def timing_note(devices: list[str]) -> str:
    """How to read the timing columns; the GPU caveat only where a run used one."""
    on_accelerator = any(d not in ("cpu", "None") for d in devices)  # "None": an old run logged no device
    return TIMING_NOTE + (" " + GPU_TIMING_NOTE if on_accelerator else "")


def _order_key(setting: str, key: str, runs: list[dict[str, Any]]) -> tuple:
    order = {b: i for i, b in enumerate(reversed(BASELINES.get(setting, ())))}
    return (-order.get(runs[0]["method"], -1), runs[0]["method"], runs[0]["negatives"] or 0)


def _field_mean(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def build_report(
    records: list[dict[str, Any]],
    out_dir: str | Path,
    sources: list[str],
    ship: ShippedSettings | None = None,
) -> Path:
    """Write ``out_dir/README.md`` and its PNG plots from run records; returns the Markdown path.
    ``ship`` maps a decided product default to the presets' settings, printed beside the decision."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    devices = sorted({str(r.get("device")) for r in records})
    isas = sorted({isa for r in records for isa in r.get("cpu_capabilities") or []})
    parts = [
        "# scns results report",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {len(records)} finished runs in "
        f"{', '.join(sources)} (devices: {', '.join(devices)}"
        + (f"; CPU kernels: {', '.join(isas)}" if isas else "")
        + f"). {code_line(records)} Their training took "
        f"{sum(r['train_time_s'] for r in records) / 3600:.1f} h in all (sum of epoch wall times, "
        "sampler table builds included, evaluation not).",
        "Accuracy is the final epoch's top-1 on the split each section names (test, or a validation split "
        "held out of the training data). Differences are means of per-seed differences with a 95% "
        "Student-t interval; 'within noise' means the interval contains 0. With 2-3 seeds the intervals are "
        "wide: a difference must be large and consistent to show.",
        timing_note(devices),
        "",
        PAPER_NOTE,
    ]
    for (setting, dataset, model, epochs), runs in sorted(group_records(records).items()):
        slug = file_slug(f"{setting}-{dataset}-{model}-{epochs}ep")
        title = f"{setting}: {dataset}, {model}, {epochs} epochs"
        parts += ["", f"## {title}", "", _split_line(runs), "", accuracy_table(setting, runs), ""]
        parts.append(_noise_statement(setting, runs))
        if setting == "decisive":
            parts += ["", preregistered_table(runs), "", default_paragraph(runs, ship)]
        scored_on = "validation" if _scored_splits(runs) == ["val"] else "test"
        curve = plots.learning_curves(
            runs, out / f"{slug}-curves.png", f"{title}: {scored_on} top-1 per epoch"
        )
        parts += ["", f"![learning curves]({curve.name})"]
        if setting in NEGATIVES_SETTINGS:
            hist = plots.hardness_histograms(
                runs, out / f"{slug}-hardness.png", f"{title}: hardness of drawn negatives"
            )
            if hist:
                parts += ["", f"![negative hardness]({hist.name})"]
            hardness = plots.hardness_curves(
                runs, out / f"{slug}-hardness-curves.png", f"{title}: anchor-negative cosine per epoch"
            )
            if hardness:
                parts += ["", f"![negative hardness per epoch]({hardness.name})"]
            diagnostics = plots.diagnostic_curves(
                runs, out / f"{slug}-diagnostics.png", f"{title}: what the negatives do, per epoch"
            )
            if diagnostics:
                parts += ["", DIAGNOSTICS_NOTE, "", f"![negative diagnostics]({diagnostics.name})"]
            split = superclass_table(runs)
            if split:
                parts += ["", split]
        if setting == "budget":
            budget = plots.budget_plot(runs, out / f"{slug}-budget.png", f"{title}: accuracy vs negatives")
            if budget:
                parts += ["", f"![accuracy vs K]({budget.name})"]
    path = out / "README.md"
    path.write_text("\n".join(parts) + "\n")
    return path


def _scored_splits(runs: list[dict[str, Any]]) -> list[str]:
    """The splits the runs' top-1 was measured on, sorted (runs recorded before the split was logged: test)."""
    return sorted({r.get("eval_split") or "test" for r in runs})


def _split_line(runs: list[dict[str, Any]]) -> str:
    """Which split the section's top-1 was measured on."""
    names = {"test": "the test split", "val": "the validation split held out of the training data"}
    return "Top-1 on " + " and ".join(names.get(s, s) for s in _scored_splits(runs)) + "."


def code_line(records: list[dict[str, Any]]) -> str:
    """Which commits the runs' code came from (as each run's summary recorded it); a run made outside a
    git checkout is named by its source digest instead."""
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        commit, source = r.get("git_commit"), r.get("source_sha256")
        counts[commit[:7] if commit else f"source sha256 {source[:12]}" if source else "not recorded"] += 1
    listed = ", ".join(f"{c} ({n} run{'s' if n > 1 else ''})" for c, n in sorted(counts.items()))
    return f"Code commits: {listed}."


def default_paragraph(runs: list[dict[str, Any]], ship: ShippedSettings | None = None) -> str:
    """The shipped default the pre-registered rule (:func:`scns.report.decision.product_default`) draws
    from the decisive grid, with every comparison it read, and (given ``ship``) the
    ``distill_defaults.yaml`` that ships it."""
    decision = product_default(runs)
    if not decision.complete:
        head = "**Product default by the pre-registered rule: not decided yet.**"
        return "\n".join([head, "", *(f"- {reason}" for reason in decision.reasons)])
    assert decision.method is not None and decision.negatives is not None
    head = f"**Product default by the pre-registered rule: {decision.method}, negatives of `{decision.negatives}`.**"
    lines = [head, "", *(f"- {reason}" for reason in decision.reasons)]
    if ship is not None:
        settings = nest_dotted(ship(decision.method, decision.negatives))
        text = yaml.safe_dump(settings, sort_keys=False, default_flow_style=None).rstrip()
        lines += [
            "",
            "What `src/scns/presets/distill_defaults.yaml` ships for it:",
            "",
            "```yaml",
            text,
            "```",
        ]
    return "\n".join(lines)


def preregistered_table(runs: list[dict[str, Any]]) -> str:
    """The decisive grid's pre-registered comparisons with their pre-registered readings: a difference
    is claimed only when its 95 % interval excludes 0; equivalence only when the interval lies inside
    +-EQUIVALENCE_MARGIN."""
    by_method = top1_by_method(runs)
    chosen = chosen_class_arm(runs)
    lines = [
        "Pre-registered comparisons (BENCHMARKS.md s. 8): per-seed differences of test top-1, mean, 95% t "
        f"interval, two-sided paired t-test; equivalence margin +-{EQUIVALENCE_MARGIN}.",
        "",
        "| role | comparison | seeds | mean diff | 95% CI | p | reading |",
        "|---|---|---|---|---|---|---|",
    ]
    for role, method, baseline in DECISIVE_COMPARISONS:
        name = chosen if method == BEST_CLASS_LEVEL else method
        d = paired_difference(by_method.get(method, {}), by_method.get(baseline, {}))
        if d is None:
            lines.append(f"| {role} | {name} - {baseline} | 0 | - | - | - | not run yet |")
            continue
        if d.n < 2:
            reading = "one seed: no claim"
        elif role == "equivalence":
            reading = (
                f"equivalent within +-{EQUIVALENCE_MARGIN}"
                if inside_margin(d, EQUIVALENCE_MARGIN)
                else f"not shown equivalent within +-{EQUIVALENCE_MARGIN}"
            )
        elif d.within_noise:
            reading = f"no difference detectable with {d.n} seeds"
        else:
            reading = "better" if d.mean > 0 else "worse"
        ci = f"[{d.low:+.2f}, {d.high:+.2f}]" if d.n >= 2 else "-"
        p = f"{d.p_value:.3f}" if d.n >= 2 else "-"
        lines.append(f"| {role} | {name} - {baseline} | {d.n} | {d.mean:+.2f} | {ci} | {p} | {reading} |")
    return "\n".join(lines)


def _noise_statement(setting: str, runs: list[dict[str, Any]]) -> str:
    """One plain sentence per setting on whether any method differs from its first baseline beyond noise."""
    baselines = [b for b in BASELINES.get(setting, ()) if any(r["method"] == b for r in runs)]
    if not baselines:
        return ""
    base = baselines[0]
    clear: list[str] = []
    noise: list[str] = []
    single: list[str] = []
    methods = sorted({r["method"] for r in runs} - {base})
    for m in methods:
        ks = (
            sorted({r["negatives"] for r in runs if r["method"] == m}, key=lambda k: k or 0)
            if setting == "budget"
            else [None]
        )
        for k in ks:
            mine = [r for r in runs if r["method"] == m and (k is None or r["negatives"] == k)]
            theirs = [r for r in runs if r["method"] == base and (k is None or r["negatives"] == k)]
            d = paired_difference(
                {r["seed"]: r["final_top1"] for r in mine}, {r["seed"]: r["final_top1"] for r in theirs}
            )
            label = m if k is None else f"{m} at K={k}"
            if d is None:
                continue
            if d.n < 2:
                single.append(f"{label} ({d.mean:+.2f})")
            else:
                (noise if d.within_noise else clear).append(f"{label} ({d.mean:+.2f})")
    text = []
    if clear:
        text.append(f"Differences to {base} beyond noise: {', '.join(clear)}.")
    if noise:
        text.append(f"Within noise of {base} (the 95% interval contains 0): {', '.join(noise)}.")
    if single:
        text.append(f"One shared seed only, so no interval and no claim: {', '.join(single)}.")
    return " ".join(text)
