"""Stability map (paper Table 1 "Fail", Figure 1, Appendix E lazy regularization): divergence rates over many seeds, per cell.

A cell is one setting of (data set, network, loss, penalties, lazy interval, lr, gamma); its seeds
are the runs that differ only in the seed. Per cell: divergence rate with a Wilson interval, the
median peak G loss with a bootstrap interval, and the recovery rate (runs whose largest spike of
D's fake-gradient norm came back, roadmap/stability.py) with a Wilson interval. Claims are judged
on paired seeds (same seed, same cell but the compared setting) by an exact McNemar test. The report
section (`stability_tables`): the verdicts, the wall time of the experiment, the per-cell table and its maps. A run
that finished need not have learnt: the "Learnt" column and map count the runs that met their data set's
learning criterion (reports/claims.yaml), described beside the verdicts, not judged.
"""
import dataclasses
import functools
import math

import numpy as np
import pandas as pd

from reports.collect import experiment_wall_times
from reports.registry import register_table
from reports.scoreboard import learning_criterion, run_failures
from reports.sections import Bullets, Figure, Section
from reports.verdicts import CONTRADICTED, INCONCLUSIVE, REPRODUCED, holm, minimum_discordant
from reports.staleness import commits_notes, commits_of
from reports.stats import bootstrap_interval, paired_binary_test, wilson_interval
from reports.tables import Cell, Table

FEEDS = "stability"
CELL = ("dataset", "model", "loss", "penalties", "lazy_interval", "lr", "gamma")
ALPHA = 0.05  # a paired difference counts when the exact McNemar p-value is below this
# The maps of rates: value -> (colour map, colour-bar label); dark is what the map is about (broke, learnt).
RATE_MAPS = {"rate": ("rocket_r", "divergence rate over seeds"), "learnt_rate": ("mako_r", "learnt rate over seeds")}


def stability_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs whose experiment declared `feeds: stability`, finished (completed or diverged)."""
    if not len(runs) or "feeds" not in runs:
        return runs.iloc[0:0]
    part = runs[(runs["feeds"] == FEEDS) & runs["status"].isin(["completed", "diverged"])]
    return part.assign(**{c: part[c].astype(str) if c in part else "None" for c in CELL})


def _interval(low, high, digits=2) -> str:
    return "-" if low is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def cell_statistics(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: n, diverged, rate and Wilson interval, learnt (runs meeting their data set's learning criterion,
    reports/claims.yaml; None without one) with its rate and Wilson interval, median peak G loss (bootstrap), recovery
    rate (Wilson)."""
    rows = []
    selected = stability_runs(runs)
    for key, part in (selected.groupby(list(CELL), sort=True) if len(selected) else []):
        n, k = len(part), int((part["status"] == "diverged").sum())
        peak_column = part["stability.peak_loss_G"] if "stability.peak_loss_G" in part else pd.Series(dtype=float)
        peaks = pd.to_numeric(peak_column, errors="coerce").dropna().to_numpy()
        spiked = part[part.get("stability.spike", pd.Series(False, index=part.index)).astype(bool)] if "stability.spike" in part else part.iloc[0:0]
        recovered = int((spiked.get("stability.recovered") == True).sum()) if len(spiked) else 0  # noqa: E712
        # A run that finished is not one that learnt: at lr 1e-2 the toys' runs all finish and none learns.
        criterion = learning_criterion(part["dataset"].iloc[0])
        learnt = sum(run["status"] == "completed" and not run_failures(run, criterion) for _, run in part.iterrows()) if criterion else None
        rows.append(dict(zip(CELL, key), n=n, diverged=k, rate=k / n, rate_ci=wilson_interval(k, n),
                         learnt=learnt, learnt_rate=math.nan if learnt is None else learnt / n,
                         learnt_ci=(None, None) if learnt is None else wilson_interval(learnt, n),
                         median_peak_loss_G=float(np.median(peaks)) if len(peaks) else math.nan,
                         median_peak_ci=bootstrap_interval(peaks) if len(peaks) else (None, None),
                         spiked=len(spiked), recovered=recovered,
                         recovery_ci=wilson_interval(recovered, len(spiked)) if len(spiked) else (None, None)))
    return pd.DataFrame(rows)


def stability_table(runs: pd.DataFrame):
    """The per-cell table, or None without stability runs."""
    cells = cell_statistics(runs)
    if not len(cells):
        return None
    header = ["Data, network", "Loss", "Lazy", "lr", "gamma", "Diverged", "Rate [95% Wilson]", "Learnt [95% Wilson]",
              "Median peak G loss [95% bootstrap]", "Recovered / spiked [95% Wilson]"]
    rows = []
    for _, c in cells.iterrows():
        peak = "-" if math.isnan(c["median_peak_loss_G"]) else f"{c['median_peak_loss_G']:.3g} {_interval(*c['median_peak_ci'], 3)}"
        recovery = "-" if not c["spiked"] else f"{c['recovered']}/{c['spiked']} {_interval(*c['recovery_ci'])}"
        learnt = "-" if c["learnt"] is None or pd.isna(c["learnt"]) else f"{int(c['learnt'])}/{c['n']} {_interval(*c['learnt_ci'])}"
        rows.append([Cell(text=f"{c['dataset']}, {c['model']}"), Cell(text=f"{c['loss']} + {c['penalties']}"),
                     Cell(text=str(c["lazy_interval"])), Cell(text=str(c["lr"])), Cell(text=str(c["gamma"])),
                     Cell(text=f"{c['diverged']}/{c['n']}"), Cell(text=f"{c['rate']:.2f} {_interval(*c['rate_ci'])}"),
                     Cell(text=learnt), Cell(text=peak), Cell(text=recovery)])
    return Table("stability", "Stability map: divergence rate per cell over seeds", header, pd.DataFrame(rows, columns=header),
                 notes=("Wilson score interval for rates; percentile bootstrap (2,000 resamples, seed 0) for the median. "
                        f"Learnt: finished and met its data set's learning criterion ({_criteria_text(cells)}; reports/claims.yaml).",
                        *commits_notes(stability_runs(runs))))


def _criteria_text(cells: pd.DataFrame) -> str:
    """The learning criteria of the data sets in `cells`, in words ("circle, line: coverage >= 0.95 and ...")."""
    by_text = {}
    for dataset in sorted(cells["dataset"].unique()):
        criterion = learning_criterion(dataset)
        text = " and ".join(f"{column.split('.')[-1]} {op} {bound:g}" for column, (op, bound) in criterion.items()) or "none set"
        by_text.setdefault(text, []).append(dataset)
    return "; ".join(f"{', '.join(datasets)}: {text}" for text, datasets in by_text.items())


def paired_comparison(runs: pd.DataFrame, column: str, a: str, b: str, within: dict = None) -> list:
    """[(cell without `column`, McNemar dict)] comparing diverged outcomes of setting a vs b on the same seeds."""
    part = stability_runs(runs)
    if not len(part):
        return []
    for key, value in (within or {}).items():
        part = part[part[key] == value]
    others = [c for c in CELL if c != column]
    results = []
    for key, group in part.groupby(others, sort=True):
        left = group[group[column] == a].set_index("seed")["status"] == "diverged"
        right = group[group[column] == b].set_index("seed")["status"] == "diverged"
        seeds = sorted(set(left.index) & set(right.index))
        if seeds:
            results.append((dict(zip(others, key)), paired_binary_test([bool(left[s]) for s in seeds], [bool(right[s]) for s in seeds])))
    return results


def verdict(claim: str, comparisons: list, worse: str) -> str:
    """One line: where `worse` diverged significantly more often (holds), the opposite, or no difference, with counts."""
    if not comparisons:
        return f"**{claim}: not run** (no paired stability runs)."
    # Per-cell exact McNemar p-values, Holm-corrected over the cells (reports/verdicts.py).
    adjusted = holm([t["p_value"] for _, t in comparisons])
    holds = [(cell, t) for (cell, t), p in zip(comparisons, adjusted) if p < ALPHA and t["only_a"] > t["only_b"]]
    against = [(cell, t) for (cell, t), p in zip(comparisons, adjusted) if p < ALPHA and t["only_a"] < t["only_b"]]
    describe = lambda items: "; ".join(  # noqa: E731
        f"{c['dataset']} {c['loss']} lr {c['lr']} gamma {c['gamma']}: {t['only_a']} vs {t['only_b']} discordant seeds, p = {t['p_value']:.3g}"
        for c, t in items)
    if holds and not against:
        outcome = REPRODUCED
    elif against and not holds:
        outcome = CONTRADICTED
    else:  # neither, or both in different cells
        outcome = INCONCLUSIVE
    only_a, only_b = sum(t["only_a"] for _, t in comparisons), sum(t["only_b"] for _, t in comparisons)
    pooled = paired_binary_test([True] * only_a + [False] * only_b, [False] * only_a + [True] * only_b)
    line = f"**{claim}: {outcome}** ({len(holds)} of {len(comparisons)} paired cells show {worse} diverging significantly more often"
    line += f"; exact McNemar test per cell, Holm-corrected over {len(comparisons)} cells, p < {ALPHA}; a cell needs >= "
    line += f"{minimum_discordant()} discordant seeds all one way. Pooled over all cells: {only_a} seeds broke only with {worse}, "
    line += f"{only_b} only with the other setting, p = {pooled['p_value']:.3g})."
    line += " " + _rates_sentence(comparisons, worse)
    if holds:
        line += f" Holds at: {describe(holds)}."
    if against:
        line += f" Opposite at: {describe(against)}."
    return line


def _rates_sentence(comparisons: list, worse: str) -> str:
    """Divergence rates of both arms over the paired seeds, with 95% Wilson intervals, and the learning
    rates at which either arm broke at all: the range of settings the verdict speaks for."""
    n = sum(t["n"] for _, t in comparisons)
    k_a = sum(t["both"] + t["only_a"] for _, t in comparisons)
    k_b = sum(t["both"] + t["only_b"] for _, t in comparisons)
    (a_low, a_high), (b_low, b_high) = wilson_interval(k_a, n), wilson_interval(k_b, n)
    broke = sorted({float(c["lr"]) for c, t in comparisons if t["both"] + t["only_a"] + t["only_b"] > 0})
    calm = sorted({float(c["lr"]) for c, _ in comparisons} - set(broke))
    where = (f"Runs broke at lr {', '.join(f'{lr:g}' for lr in broke)}" if broke else "No run broke") + \
        (f"; none at lr {', '.join(f'{lr:g}' for lr in calm)}." if calm else ".")
    return (f"Divergence rate over the {n} paired runs: {worse} {k_a}/{n} = {k_a / n:.2f} [95% Wilson {a_low:.2f}, {a_high:.2f}], "
            f"the other setting {k_b}/{n} = {k_b / n:.2f} [{b_low:.2f}, {b_high:.2f}]. {where}") if n else ""


def paired_peaks(runs: pd.DataFrame, column: str, a: str, b: str, within: dict = None) -> list:
    """[(cell without `column`, Wilcoxon dict)]: log10 peak G loss of setting a minus b on the same seeds, per cell.

    The divergence rule (non-finite, or D's fake input-gradient norm > 1e4) can miss blow-ups that
    the G loss shows by orders of magnitude; this is the graded companion of paired_comparison."""
    from scipy.stats import wilcoxon

    part = stability_runs(runs)
    if not len(part) or "stability.peak_loss_G" not in part:
        return []
    for key, value in (within or {}).items():
        part = part[part[key] == value]
    part = part.assign(log_peak=np.log10(pd.to_numeric(part["stability.peak_loss_G"], errors="coerce").clip(lower=1e-6)))
    others = [c for c in CELL if c != column]
    results = []
    for key, group in part.groupby(others, sort=True):
        left = group[group[column] == a].set_index("seed")["log_peak"]
        right = group[group[column] == b].set_index("seed")["log_peak"]
        seeds = sorted(set(left.dropna().index) & set(right.dropna().index))
        if len(seeds) < 5:  # the signed-rank test cannot reach p < 0.05 with fewer pairs
            continue
        difference = np.array([left[s] - right[s] for s in seeds])
        p_value = 1.0 if not np.any(difference) else float(wilcoxon(difference).pvalue)
        results.append((dict(zip(others, key)), dict(n=len(seeds), median_log_ratio=float(np.median(difference)), p_value=p_value)))
    return results


def peak_sentence(comparisons: list, worse: str) -> str:
    """Where `worse` had a significantly higher (or lower) peak G loss than the other setting, by lr and gamma."""
    if not comparisons:
        return ""
    higher = [(c, t) for c, t in comparisons if t["p_value"] < ALPHA and t["median_log_ratio"] > 0]
    lower = [(c, t) for c, t in comparisons if t["p_value"] < ALPHA and t["median_log_ratio"] < 0]
    describe = lambda items: "; ".join(  # noqa: E731
        f"{c['dataset']} {c['loss']} lr {c['lr']} gamma {c['gamma']}: x{10 ** t['median_log_ratio']:.3g} (p = {t['p_value']:.2g}, n = {t['n']})"
        for c, t in items)
    line = (f"Peak G loss, paired by seed (Wilcoxon signed-rank on log10 peaks, p < {ALPHA} per cell, uncorrected for the "
            f"number of cells): {worse} higher in {len(higher)} "
            f"of {len(comparisons)} cells")
    line += f" ({describe(higher)})" if higher else ""
    line += f", lower in {len(lower)}" + (f" ({describe(lower)})" if lower else "") + "."
    return line


def verdicts(runs: pd.DataFrame) -> list:
    lines = []
    for claim, column, a, b, within, worse in (
            ("R1+R2 is more stable than R1 alone", "penalties", "r1", "r1+r2", dict(lazy_interval="1"), "R1 alone"),
            ("Lazy regularization (every 8th step) fails", "lazy_interval", "8", "1", None, "lazy 8")):
        part = stability_runs(runs)
        if len(part) and not {a, b} <= set(part[column].astype(str)):
            continue  # the map does not vary this setting (the toy map leaves lazy regularization to its own experiments)
        line = verdict(claim, paired_comparison(runs, column, a, b, within), worse)
        peaks = peak_sentence(paired_peaks(runs, column, a, b, within), worse)
        lines.append(line + (" " + peaks if peaks else ""))
    return lines


@register_table(FEEDS, order=70)
def stability_tables(results) -> list:
    """[the "Stability map" section holding the per-cell table (the verdicts as its notes too) and its maps], or []
    without stability runs."""
    table = stability_table(results.runs)
    if table is None:
        return []
    lines = verdicts(results.runs)
    runs = results.runs
    learnt = learnt_sentence(runs)
    lines = lines + [learnt] if learnt else lines
    commits = commits_of(stability_runs(runs))
    return [Section("Stability map (Table 1 'Fail', Figure 1, Appendix E lazy regularization)", [
        Bullets(tuple(lines)), *experiment_wall_times(results, FEEDS), dataclasses.replace(table, notes=table.notes + tuple(lines)),
        Figure("stability-map", "Stability map", functools.partial(plot_stability_map, runs), caption="Stability map: divergence rate",
               commits=commits),
        *([Figure("stability-map-learnt", "Stability map: runs that learnt",
                  functools.partial(plot_stability_map, runs, "Learnt rate (finished and met the learning criterion)", "learnt_rate"),
                  caption="Stability map: the rate of runs that learnt", commits=commits)] if table_has_learnt(runs) else []),
        Figure("stability-peak-loss", "Stability map: log10 median peak G loss",
               functools.partial(plot_stability_map, runs, "log10 of the median peak G loss over seeds", "median_peak_loss_G"),
               commits=commits)])]


def learnt_sentence(runs: pd.DataFrame) -> str:
    """One line: how many runs learnt, per penalties and lr ("" when no cell has a learning criterion)."""
    cells = cell_statistics(runs)
    if not len(cells) or not cells["learnt"].notna().any():
        return ""
    cells = cells[cells["learnt"].notna()]
    parts = []
    for penalties, part in cells.groupby("penalties", sort=True):
        counts = part.groupby("lr", sort=False)[["learnt", "n"]].sum()
        counts = counts.reindex(sorted(counts.index, key=float))
        parts.append(f"{penalties}: " + ", ".join(f"{int(r['learnt'])}/{int(r['n'])} at lr {lr}" for lr, r in counts.iterrows()))
    return ("Runs that learnt (finished and met their data set's learning criterion, reports/claims.yaml), over every "
            "data set and loss: " + "; ".join(parts) + ".")


def table_has_learnt(runs: pd.DataFrame) -> bool:
    """Whether any cell's data set has a learning criterion (else the learnt map has nothing to show)."""
    cells = cell_statistics(runs)
    return bool(len(cells)) and cells["learnt"].notna().any()


def plot_stability_map(runs: pd.DataFrame, title: str = "Divergence rate", value: str = "rate", axes=None):
    """Heatmaps over lr x gamma, one panel per (data set, network, loss + penalties, lazy); `axes`: at least that many,
    2-D. (fig, axes)

    value: "rate" (the divergence rate, 0..1), "learnt_rate" (the rate of runs that met their data set's learning
    criterion, 0..1) or "median_peak_loss_G" (drawn as log10: the G loss explodes by orders of magnitude in runs the
    divergence rule still counts as finished)."""
    import seaborn as sns

    from reports.figures import figure_for

    cells = cell_statistics(runs)
    panels = sorted({(r["dataset"], r["model"], r["loss"], r["penalties"], r["lazy_interval"]) for _, r in cells.iterrows()})
    columns = min(4, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    fig, axes = figure_for(axes, rows, columns, figsize=(3.0 * columns + 0.8, 2.6 * rows), squeeze=False, layout="constrained")
    for ax, (dataset, model, loss, penalties, lazy) in zip(axes.flat, panels):
        part = cells[(cells["dataset"] == dataset) & (cells["model"] == model) & (cells["loss"] == loss) & (cells["penalties"] == penalties)
                     & (cells["lazy_interval"] == lazy)]
        grid = part.pivot_table(index="gamma", columns="lr", values=value, aggfunc="mean")
        grid = grid.reindex(sorted(grid.index, key=float)).reindex(columns=sorted(grid.columns, key=float))
        if value in RATE_MAPS:
            sns.heatmap(grid, vmin=0, vmax=1, cmap=RATE_MAPS[value][0], annot=True, fmt=".2f", cbar=False, ax=ax, annot_kws=dict(size=7))
        else:
            sns.heatmap(np.log10(grid.clip(lower=1e-3)), vmin=0, vmax=7, cmap="rocket_r", annot=True, fmt=".1f", cbar=False, ax=ax,
                        annot_kws=dict(size=7))
        # The network is named with the loss: the toy MLP and the small ResNet share panel layouts.
        ax.set_title(f"{dataset}, {model}: {loss} + {penalties}" + (f", lazy {lazy}" if lazy != "1" else ""), fontsize=8)
        ax.set(xlabel="lr", ylabel="gamma")
        ax.tick_params(axis="y", labelrotation=0)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    # One colour bar for every panel (they share the scale).
    from matplotlib import cm, colors

    cmap, label = RATE_MAPS.get(value, ("rocket_r", "log10 median peak G loss"))
    norm = colors.Normalize(0, 1) if value in RATE_MAPS else colors.Normalize(0, 7)
    bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=sns.color_palette(cmap, as_cmap=True)), ax=list(axes.flat),
                       shrink=0.6, pad=0.01, aspect=30)
    bar.set_label(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig, axes
