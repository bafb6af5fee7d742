"""The report's "Figures" section: Figure 1 and the D gradient norms (Table 1 runs), sample grids, learning curves, DiracGAN portraits (Appendix B).

Each builder is registered like a table (reports/registry.py) and returns `sections.Figure`s, drawn
only when the report is written, and notes on the figures it had to leave out. They claim no runs:
they draw the runs that tables claim. An included experiment's runs join their parent's figures,
as in the tables.
"""
import functools

import pandas as pd

from reports import figures
from reports.registry import register_table
from reports.sections import Figure
from reports.staleness import commits_of
from reports.tables import kind_mask, slug, table1_groups, table1_mask

MAX_DIRAC_GAMMAS = 4  # phase-portrait figures per report (each takes a few seconds)


def by_experiment(runs: pd.DataFrame, mask) -> list:
    """[(top-level experiment, its runs)] of the runs where `mask`."""
    selected = runs[mask] if len(runs) else runs
    top = selected["experiment"].astype(str).str.split("/").str[0] if len(selected) else None
    experiments = sorted(top.unique()) if len(selected) else []
    return [(experiment, selected[top == experiment]) for experiment in experiments]


def figure_name(base: str, experiment: str, count: int) -> str:
    """`base`, or `base-<experiment>` when `count` experiments have this figure."""
    return base if count == 1 else f"{base}-{slug(experiment)}"


def _first_samples(runs: pd.DataFrame):
    """samples/final.png of the lowest-seed run that has one, else None."""
    with_samples = runs[runs["samples_png"].notna()] if "samples_png" in runs else runs.iloc[0:0]
    if not len(with_samples):
        return None
    return with_samples.sort_values("seed", key=lambda s: pd.to_numeric(s, errors="coerce")).iloc[0]["samples_png"]


def _loss_label(run_group: dict) -> str:
    lazy = str(run_group.get("lazy_interval"))
    return f"{run_group.get('loss')} + {run_group.get('penalties')}" + (f", lazy {lazy}" if lazy not in ("1", "None", "nan") else "")


@register_table(order=10.5)  # beside Table 1
def table1_figures(results) -> list:
    """Figure 1 (G loss) and the D input-gradient norms of the Table 1 runs (negative-result runs have their own figures)."""
    runs, ticks = results.runs, results.ticks
    made = []
    groups_by_experiment = by_experiment(runs, table1_mask(runs) if len(runs) else [])
    count = len(groups_by_experiment)
    for experiment, part in groups_by_experiment:
        groups = table1_groups(part)
        if not groups:
            continue
        suffix = "" if count == 1 else f" ({experiment})"
        commits = commits_of(pd.concat([group for _, group in groups]))
        made += [Figure(figure_name("figure1", experiment, count), f"Figure 1: G loss over kimg{suffix}",
                        functools.partial(figures.plot_generator_loss, ticks, groups, title=f"G loss{suffix}"), commits=commits),
                 Figure(figure_name("grad-norms", experiment, count), f"D input-gradient norm, real vs fake{suffix}",
                        functools.partial(figures.plot_gradient_norms, ticks, groups, title=f"D input-gradient norm{suffix}"),
                        commits=commits)]
    return made


@register_table(order=40.5)  # beside the toy tables
def toy_sample_grids(results) -> list:
    """2-D toy samples, data set x loss, per experiment."""
    runs = results.runs
    toy = by_experiment(runs, kind_mask(runs, "toy_mixture", "toy_curve") if len(runs) else [])
    made = []
    for experiment, part in toy:
        entries = []
        # a setting that varies within the experiment (the stability map's lr, gamma) gets its own column,
        # named in the label: one run's samples never stand for another setting's
        varying = [c for c in ("model_args.depth", "model_args.hidden", "lr", "gamma") if c in part and part[c].astype(str).nunique() > 1]
        columns = ["dataset", "loss", "penalties", "lazy_interval"] + varying
        for keys, group in part.groupby(columns, dropna=False, sort=True):
            values = dict(zip(columns, keys))
            settings = ", ".join(f"{c.split('.')[-1]} {values[c]:g}" if isinstance(values[c], float) else f"{c.split('.')[-1]} {values[c]}"
                                 for c in varying)
            label = _loss_label(values) + (f"\n{settings}" if settings else "")  # two lines: neighbouring labels must not overlap
            entries.append((str(keys[0]), label, _first_samples(group)))
        if not any(path for _, _, path in entries):
            made.append(f"Toy sample grid ({experiment}): no run saved samples/final.png.")
            continue
        made.append(Figure(figure_name("toy-samples", experiment, len(toy)), f"2-D toy samples, data set x loss ({experiment})",
                           functools.partial(figures.plot_image_grid, entries, title=f"2-D toy samples over the data ({experiment})"),
                           commits=commits_of(part)))
    return made


@register_table(order=40.6)
def stackedmnist_sample_grids(results) -> list:
    """Stacked MNIST samples, per experiment, a panel per network x loss (and per varying Appendix E setting)."""
    runs = results.runs
    mnist = by_experiment(runs, kind_mask(runs, "stackedmnist") if len(runs) else [])
    made = []
    for experiment, part in mnist:
        entries = []
        # Settings that vary within the experiment (an Appendix E variant: activation, normalization, precision,
        # beta2) get their own panel, named in the label: one variant's samples never stand for another's.
        varying = [c for c in ("model_args.activation", "model_args.normalization", "model_args.precision", "beta2", "kimg")
                   if c in part and part[c].astype(str).nunique() > 1]
        columns = ["model", "loss", "penalties", "lazy_interval"] + varying
        for keys, group in part.groupby(columns, dropna=False, sort=True):
            values = dict(zip(columns, keys))
            settings = ", ".join(f"{c.split('.')[-1]} {values[c]}" for c in varying)
            label = f"{keys[0]}: " + _loss_label(values) + (f"\n{settings}" if settings else "")  # two lines, as the toys'
            entries.append((experiment, label, _first_samples(group)))
        if any(path for _, _, path in entries):
            made.append(Figure(figure_name("stackedmnist-samples", experiment, len(mnist)), f"Stacked MNIST samples ({experiment})",
                               functools.partial(figures.plot_image_grid, entries, title=f"Stacked MNIST samples ({experiment})"),
                               commits=commits_of(part)))
        else:
            made.append(f"Stacked MNIST sample grid ({experiment}): no run saved samples/final.png.")
    return made


@register_table(order=80)
def learning_curves(results) -> list:
    """The periodic scores (score_ticks) that size each experiment's duration (issue 25), per experiment."""
    runs, ticks = results.runs, results.ticks
    made = []
    for experiment, part in by_experiment(runs, runs["run_dir"].notna() if len(runs) else []):
        if figures.learning_scores(ticks, part):
            made.append(Figure(figure_name("learning-curves", experiment, 2), f"Learning curves ({experiment}): periodic scores over kimg",
                               functools.partial(figures.plot_learning_curves, ticks, part, title=f"Learning curves ({experiment})"),
                               commits=commits_of(part)))
    return made


@register_table(order=80.5)
def dirac_portraits(results) -> list:
    """DiracGAN / DiracRpGAN phase portraits at the gammas of the dirac.json analyses (the first MAX_DIRAC_GAMMAS)."""
    gammas = sorted({float(entry.get("gamma", 1.0)) for entry in results.dirac})
    if not gammas:
        return []
    try:
        from toy2d.dirac import plot_phase_portrait  # noqa: F401 (drawn by figures.plot_dirac_portraits)
    except ImportError as error:
        return [f"DiracGAN phase portraits skipped: toy2d.dirac.plot_phase_portrait unavailable ({error})."]
    return [Figure(f"dirac-gamma{gamma:g}", f"DiracGAN / DiracRpGAN phase portraits, gamma = {gamma:g}",
                   functools.partial(figures.plot_dirac_portraits, gamma, steps=results.portrait_steps))
            for gamma in gammas[:MAX_DIRAC_GAMMAS]]
