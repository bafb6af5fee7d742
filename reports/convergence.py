"""Convergence as the theory defines it (paper Section 2, Appendix B; Appendix E's lazy regularization; issue 25): tables and the Dirac figures.

Per cell, over seeds: D's final input-gradient norms on real and fake data (the regularized equilibrium has
them vanish), G's late drift (the toys' analogue of the discrete-time DiracGAN's cycle) and the learning
metrics that say whether the runs had learnt. The toy table holds the lazy-regularization runs, the toys run
against the Dirac prediction and the learning curves that sized them; the Stacked MNIST table puts the lazy
runs beside their every-step twins, Table 1's RpGAN + R1 + R2 runs. The figures: the discrete-time DiracGAN
map (`r3bench dirac --discrete DIR`, saved as results) and the toys against its prediction.
"""
import functools
import math
from pathlib import Path
from typing import Optional

import matplotlib.ticker
import numpy as np
import pandas as pd

from reports.registry import register_table
from reports.sections import Figure
from reports.staleness import commits_of
from reports.tables import (CI_NOTE, DIVERGED, Metric, TableSpec, build_table, feeds_mask, group_rows, select_mask)
from roadmap import files

TOY_FEEDS = ("lazy-reg-toys", "dirac-toys", "learning-curves")
STACKEDMNIST_FEED = "lazy-reg-stackedmnist"
TWINS = dict(loss="rpgan", penalties="r1+r2")  # table1's runs with these settings are the lazy runs' every-step arm
GRADIENTS = [Metric("stability.final_grad_norm_real", "Final ||grad D|| real", 4),
             Metric("stability.final_grad_norm_fake", "Final ||grad D|| fake", 4),
             Metric("stability.final_grad_ratio", "Fake / real", 2)]
NOTE = ("Final: the mean over the last quarter of training's ticks (roadmap/stability.py); drift: the mean distance "
        "between consecutive ticks' samples of the same latents there (the toys' analogue of the DiracGAN cycle).")


def _toy_label(match: dict) -> str:
    network = f"{match['network']}, " if "network" in match else ""
    return f"{match['dataset']}, {network}lr {float(match['lr']):g}, gamma {float(match['gamma']):g}, lazy {match['lazy_interval']}"


def _networks(part: pd.DataFrame) -> pd.Series:
    """'MLP depth x hidden' per run (toy_mlp's defaults, 3 x 128, where the run did not set model_args)."""
    def size(name: str, default: int) -> pd.Series:
        values = pd.to_numeric(part[name], errors="coerce") if name in part else pd.Series(np.nan, index=part.index)
        return values.fillna(default).astype(int).astype(str)

    return "MLP " + size("model_args.depth", 3) + " x " + size("model_args.hidden", 128)


def toy_table(runs: pd.DataFrame):
    """The toy convergence table (one row per data set x lr x gamma x lazy interval, and network where the runs use
    more than one), or None without such runs."""
    part = runs[feeds_mask(runs, *TOY_FEEDS)] if len(runs) else runs
    if not len(part):
        return None
    part = part.assign(network=_networks(part))
    keys = ("dataset", "network", "lr", "gamma", "lazy_interval") if part["network"].nunique() > 1 else ("dataset", "lr", "gamma", "lazy_interval")
    # A setting run again with the same seed by another experiment (the 25-Gaussians probe repeats learning-curve-toys'
    # run) is one sample, not two: the trainer is deterministic, the values are the same.
    same = [c for c in ("dataset", "network", "loss", "penalties", "lr", "gamma", "lazy_interval", "batch", "duration_kimg", "seed") if c in part]
    part = part.loc[~part[same].astype(str).duplicated()]
    metrics = [Metric("coverage", "Coverage", 3), Metric("modes", "Modes (25 Gaussians)", 1), Metric("hq_fraction", "High-quality fraction", 3),
               Metric("stability.final_drift", "Final drift", 4)] + GRADIENTS + [Metric(DIVERGED, "Diverged/total")]
    spec = TableSpec(name="toy-convergence", caption="2-D toys: convergence (lazy regularization, the Dirac prediction, learning curves)",
                     rows=group_rows(part, keys, _toy_label), metrics=metrics,
                     row_header="Data, network, lr, gamma, lazy" if "network" in keys else "Data, lr, gamma, lazy", split_by=("duration_kimg",), notes=(CI_NOTE, NOTE))
    return build_table(part, spec)


def stackedmnist_table(runs: pd.DataFrame):
    """Lazy 8 on Stacked MNIST beside its every-step twins (table1's RpGAN + R1 + R2), or None without lazy runs."""
    if not len(runs) or not feeds_mask(runs, STACKEDMNIST_FEED).any():
        return None
    part = runs[feeds_mask(runs, STACKEDMNIST_FEED) | (feeds_mask(runs, "table1") & select_mask(runs, TWINS))]
    rows = group_rows(part, ("lazy_interval",), lambda match: "RpGAN + R1 + R2, " + (
        "every step (table1's runs)" if str(match["lazy_interval"]) == "1" else f"every {match['lazy_interval']}th step x {match['lazy_interval']}"))
    metrics = [Metric("modes", "Modes", 1), Metric("kl", "KL", 4), Metric("recognisable_modes", "Recognisable modes", 1),
               Metric("fd_mnist_classifier", "FD (MNIST classifier)", 2)] + GRADIENTS + [Metric(DIVERGED, "Diverged/total")]
    spec = TableSpec(name="stackedmnist-convergence", caption="Stacked MNIST: lazy regularization at the learning-criterion length",
                     rows=rows, metrics=metrics, row_header="Loss, regularization", notes=(CI_NOTE, NOTE))
    return build_table(part, spec)


@register_table(*TOY_FEEDS, STACKEDMNIST_FEED, order=65, name="convergence")
def convergence_tables(results) -> list:
    return [table for table in (toy_table(results.runs), stackedmnist_table(results.runs)) if table is not None]


def _toy_runs(runs: pd.DataFrame, datasets, lazy=(1, 8)) -> pd.DataFrame:
    """The finished toy runs on `datasets` at gamma 1 with a lazy interval in `lazy`: what plot_dirac_toys draws."""
    part = runs[feeds_mask(runs, *TOY_FEEDS) & select_mask(runs, dict(dataset=tuple(datasets), gamma=1.0, lazy_interval=tuple(lazy)))]
    return part[part["status"].eq("completed")] if len(part) else part


def _drifts(runs: pd.DataFrame, dataset: str, lazy: int) -> pd.DataFrame:
    """[lr, drift] of finished toy runs on `dataset` at gamma 1 with lazy interval `lazy`."""
    part = _toy_runs(runs, [dataset], [lazy])
    if not len(part) or "stability.final_drift" not in part:
        return pd.DataFrame(columns=["lr", "drift"])
    frame = pd.DataFrame({"lr": pd.to_numeric(part["lr"], errors="coerce"), "drift": pd.to_numeric(part["stability.final_drift"], errors="coerce")})
    return frame[(frame["lr"] > 0) & (frame["drift"] > 0)]


def toy_datasets(runs: pd.DataFrame, datasets=("circle", "line")) -> list:
    """The data sets among `datasets` with finished lazy-1 toy runs at gamma 1: the panels of plot_dirac_toys."""
    return [d for d in datasets if len(_drifts(runs, d, 1))]


def plot_dirac_toys(runs: pd.DataFrame, lazy_factor: float, datasets=("circle", "line"), axes=None):
    """The discrete-time DiracGAN prediction with the toys' measured late drift on top, a panel per toy_datasets entry.
    (fig, axes) or None without runs.

    Points: one per run (G's final drift over lr, lazy 1 and 8, gamma 1); crosses: the geometric mean per lr.
    Lines: the prediction, whose scale a toy does not share with the Dirac game, so it is anchored at the lazy-1
    geometric mean of the smallest lr: drift proportional to lr (slope 1), and lazy 8 `lazy_factor` times lazy 1.
    """
    from reports.figures import figure_for

    present = toy_datasets(runs, datasets)
    if not present:
        return None
    fig, axes = figure_for(axes, 1, len(present), figsize=(3.6 * len(present), 3.2), squeeze=False)
    axes = list(np.atleast_1d(axes).flat)
    colours = {1: "tab:blue", 8: "tab:red"}
    lrs_run = sorted({lr for d in present for lazy in (1, 8) for lr in _drifts(runs, d, lazy)["lr"]})
    for ax, dataset in zip(axes, present):
        anchor: Optional[tuple] = None
        for lazy in (1, 8):
            frame = _drifts(runs, dataset, lazy)
            if not len(frame):
                continue
            jitter = np.exp(np.random.default_rng(lazy).uniform(-0.04, 0.04, len(frame)))  # fixed: the figure is reproducible
            ax.scatter(frame["lr"] * jitter, frame["drift"], s=10, alpha=0.5, color=colours[lazy], label=f"toy runs, lazy {lazy}")
            means = frame.groupby("lr")["drift"].apply(lambda v: float(np.exp(np.log(v).mean())))
            ax.scatter(means.index, means.values, marker="x", s=50, color=colours[lazy])
            if lazy == 1:
                anchor = (float(means.index[0]), float(means.values[0]))
        if anchor is not None:
            lrs = np.array([lrs_run[0] / 1.5, lrs_run[-1] * 1.5])  # every panel over every lr run, so panels compare
            for lazy, factor in ((1, 1.0), (8, lazy_factor)):
                ax.plot(lrs, anchor[1] * factor * lrs / anchor[0], color=colours[lazy], linestyle="--", linewidth=1,
                        label=f"prediction, lazy {lazy}" + (f" (x{lazy_factor:.3g})" if lazy == 8 else " (slope 1)"))
        ax.set(xscale="log", yscale="log", xlabel="lr", ylabel="G's final drift", title=f"{dataset}, gamma 1")
        ax.set_xticks(lrs_run, [f"{lr:.0e}".replace("e-0", "e-") for lr in lrs_run])  # the lrs run, no crowded minor labels
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].legend(fontsize=6, loc="upper left")
    fig.suptitle("Discrete-time DiracGAN prediction (lines) vs the toys (points)", fontsize=9)
    return fig, axes


def lazy_factor(dirac_discrete: dict, gamma: float = 1.0) -> float:
    """The simulated lazy-8 / lazy-1 cycle-size ratio at `gamma`, geometric mean over the simulated lrs."""
    row = [float(g) for g in dirac_discrete["gammas"]].index(gamma)
    one, eight = dirac_discrete["cycle_size"]["1"][row], dirac_discrete["cycle_size"]["8"][row]
    return float(math.exp(np.mean([math.log(b / a) for a, b in zip(one, eight)])))


@register_table(order=65.5)  # after the convergence tables, in "Figures"
def dirac_figures(results) -> list:
    """The discrete-time DiracGAN map of the first dirac-discrete.json under the results, and the toys against it."""
    from toy2d.dirac_discrete import plot_cycle_maps

    for path in sorted(Path(results.results_dir).rglob("dirac-discrete.json"))[:1]:
        try:
            analysis = files.read_json(path)
            missing = [key for key in ("lrs", "gammas", "cycle_size") if key not in analysis]  # what plot_cycle_maps reads
            if missing:
                raise KeyError(", ".join(missing))
        except (OSError, ValueError, KeyError, TypeError) as error:
            return [f"Discrete-time DiracGAN map skipped: {path} unreadable ({error})."]
        made = [Figure("dirac-discrete", "Discrete-time DiracRpGAN: where the trainer's iteration settles (cycle size over lr x "
                       "gamma, lazy 1 and 8)", functools.partial(plot_cycle_maps, analysis))]
        try:
            factor = lazy_factor(analysis)
        except (ValueError, KeyError, TypeError) as error:
            return made + [f"Dirac prediction vs the toys skipped: {path} unreadable ({error})."]
        if toy_datasets(results.runs):
            made.append(Figure("dirac-toys", "Discrete-time DiracGAN prediction (drift proportional to lr; lazy 8 x the simulated "
                               "factor) vs the toys' late drift", functools.partial(plot_dirac_toys, results.runs, factor),
                               commits=commits_of(_toy_runs(results.runs, toy_datasets(results.runs)))))
        return made
    return []
