"""The table printed at the end of `r3bench run`: metrics per variant, mean and spread over seeds."""
import math
import re
from collections import defaultdict

from roadmap import files

SHOWN_METRICS = ("modes", "modes_pacgan", "hq_fraction", "kl", "support_distance", "coverage", "fd_mnist_classifier", "fid")


def _mean_spread(values) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3g}"
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.3g}±{spread:.2g}"


def variant_name(run_name: str) -> str:
    """A run's variant: its folder name without the seed (runs differing only in seed share it)."""
    return re.sub(r"_?seed\d+$", "", run_name) or "(all)"


UNFINISHED = ("running", "interrupted", "pending")


def _unfinished_state(run_dir) -> str:
    """A run without summary.json: running (a live writer holds its lock), interrupted (resumable) or pending.

    A run whose job is known dead has a `failed` summary written by `r3bench run` (runners/dead_jobs.py).
    """
    from runners import lock

    if not (run_dir / "config.yaml").exists():
        return "pending"
    return "running" if lock.holder(run_dir) else "interrupted"


def summarize(specs) -> list:
    """One row per variant: diverged/total, failed/total (unfinished/total when any) and each metric's mean±std over completed seeds."""
    groups = defaultdict(list)
    for spec in specs:
        groups[(spec.experiment, variant_name(spec.name))].append(spec)
    rows = []
    for (experiment, variant), members in groups.items():
        summaries = []
        for spec in members:
            path = spec.run_dir / "summary.json"
            try:
                summaries.append(files.read_json(path) if path.exists() else dict(status=_unfinished_state(spec.run_dir)))
            except (OSError, ValueError):
                summaries.append(dict(status="failed"))
        row = dict(experiment=experiment, variant=variant)
        row["diverged"] = f"{sum(s['status'] == 'diverged' for s in summaries)}/{len(summaries)}"
        row["failed"] = f"{sum(s['status'] == 'failed' for s in summaries)}/{len(summaries)}"
        unfinished = sum(s["status"] in UNFINISHED for s in summaries)
        if unfinished:  # interrupted runs resume with the same command: not failures
            row["unfinished"] = f"{unfinished}/{len(summaries)}"
        completed = [s.get("metrics") or {} for s in summaries if s["status"] == "completed"]
        for metric in SHOWN_METRICS:
            if any(metric in m for m in completed):
                row[metric] = _mean_spread([m.get(metric) for m in completed])
        rows.append(row)
    return rows


def print_summary(specs) -> None:
    rows = summarize(specs)
    if not rows:
        return
    columns = ["experiment", "variant", "diverged", "failed"] + ["unfinished"] * any("unfinished" in r for r in rows) + [m for m in SHOWN_METRICS if any(m in r for r in rows)]
    widths = {c: max(len(c), *(len(str(r.get(c, "-"))) for r in rows)) for c in columns}
    print("\nsummary (mean±std over completed seeds; diverged and failed out of all seeds):")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "-")).ljust(widths[c]) for c in columns))
