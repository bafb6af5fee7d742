"""Report plot functions: Figure 1 (G loss, log scale), D input-gradient norms, sample grids, learning curves, DiracGAN (Appendix B).

Every plot function takes an optional `ax` (one panel) or `axes` (several), draws into it or, when
none is given, into a new figure, and returns what it drew, (fig, ax) or (fig, axes), as rliable's
do: panels of different plots compose into one figure. Nothing is shown; `save_figure` writes PNG
and PDF atomically and closes the figure. One style for all (seaborn "paper" context, colorblind
palette). Which figures a report draws is decided by the table builders (reports/gallery.py and the
section modules).
"""
import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from reports.stats import mean_ci  # noqa: E402
from roadmap.files import write_bytes  # noqa: E402

PALETTE = sns.color_palette("colorblind")
STYLE = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("paper"),
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "font.size": 9,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "figure.dpi": 110,
}
SEED_LINE = dict(lw=0.8, alpha=0.7)  # one thin line per seed
DIVERGED_MARKER = dict(marker="X", s=40, edgecolor="black", linewidth=0.5, zorder=5)


def new_figure(*args, **kwargs):
    """`plt.subplots(*args, **kwargs)` in the report style: (fig, ax or axes)."""
    with matplotlib.rc_context(STYLE):
        return plt.subplots(*args, **kwargs)


CURVE_FIGSIZE = (8.0, 3.4)  # curves over kimg with the legend outside on the right: the axes keep about 60% of the width


def figure_for(ax, *args, **kwargs) -> tuple:
    """(fig, ax): the figure holding the given `ax` (one axes or several), or a new figure (new_figure(*args, **kwargs))
    when ax is None."""
    if ax is None:
        return new_figure(*args, **kwargs)
    return np.atleast_1d(ax).ravel()[0].figure, ax


def save_figure(fig, out_dir, name: str) -> list:
    """Write `name`.png and `name`.pdf into out_dir atomically; close the figure; return the paths."""
    paths = []
    with matplotlib.rc_context(STYLE):
        if not fig.get_constrained_layout():  # a figure laid out by constrained layout (colour bars) keeps it
            fig.tight_layout()
        for suffix in ("png", "pdf"):
            buffer = io.BytesIO()
            # No creation date in the PDF: a rebuilt report is byte-identical when nothing changed.
            metadata = {"CreationDate": None} if suffix == "pdf" else None
            fig.savefig(buffer, format=suffix, dpi=150, bbox_inches="tight", metadata=metadata)
            path = Path(out_dir) / f"{name}.{suffix}"
            write_bytes(path, buffer.getvalue())
            paths.append(path)
    plt.close(fig)
    return paths


def _run_ticks(ticks: pd.DataFrame, run_dir: str) -> pd.DataFrame:
    if not len(ticks) or "run_dir" not in ticks:
        return ticks.iloc[0:0]
    return ticks[ticks["run_dir"] == run_dir].sort_values("kimg")


def _finite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if column not in frame:
        return frame.iloc[0:0]
    values = pd.to_numeric(frame[column], errors="coerce")
    return frame[np.isfinite(values) & (values > 0)].assign(**{column: values})


def group_label(label: str, runs: pd.DataFrame) -> str:
    """A curve's legend label names the network as well as the loss (e.g. "RpGAN + R1 + R2, small_resnet")."""
    models = sorted(str(m) for m in runs["model"].dropna().unique()) if "model" in runs else []
    named = "/".join(models)
    return f"{label}, {named}" if models and not label.endswith(named) else label


def _is_r1_only(runs: pd.DataFrame) -> bool:
    return "penalties" in runs and set(runs["penalties"].astype(str)) == {"r1"}


def _long_ticks(ticks: pd.DataFrame, groups: list, columns: tuple) -> pd.DataFrame:
    """One row per (group, run, tick) with `columns` finite and > 0, labelled for seaborn."""
    frames = []
    for label, runs in groups:
        name = group_label(label, runs)
        for _, run in runs.iterrows():
            frame = _run_ticks(ticks, run["run_dir"])
            for column in columns:
                part = _finite(frame, column)
                if len(part):
                    frames.append(pd.DataFrame(dict(kimg=part["kimg"].astype(float), value=part[column].astype(float),
                                                    variant=name, quantity=column, run=run["run_dir"])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["kimg", "value", "variant", "quantity", "run"])


def _mark_diverged(ax, ticks: pd.DataFrame, groups: list, column: str, colors: dict) -> bool:
    """An X at the last finite tick of every diverged run; True when there was one."""
    any_diverged = False
    for label, runs in groups:
        for _, run in runs[runs["status"] == "diverged"].iterrows() if "status" in runs else []:
            part = _finite(_run_ticks(ticks, run["run_dir"]), column)
            if len(part):
                ax.scatter(part["kimg"].iloc[-1:], part[column].iloc[-1:], color=colors[group_label(label, runs)],
                           **DIVERGED_MARKER)
                any_diverged = True
    return any_diverged


def t_band(values) -> tuple:
    """(low, high) of the 95% Student-t interval of the mean over seeds, the tables' interval (reports/stats.py
    mean_ci); a single seed has no band. seaborn calls it per x value with that x's values over seeds."""
    mean, half_width, _ = mean_ci(list(values))
    if mean is None or half_width is None:
        return (mean, mean)
    return (mean - half_width, mean + half_width)


def mean_curves(ax, data: pd.DataFrame, groups: list, quantity_styles: dict = None):
    """Mean over seeds with the tables' 95% t-interval band (t_band), one colour per variant; R1-only variants dashed
    (or, with quantity_styles, a line style per quantity)."""
    names = [group_label(label, runs) for label, runs in groups]
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    dashed = {group_label(label, runs) for label, runs in groups if _is_r1_only(runs)}
    if quantity_styles:
        style, dashes = "quantity", {q: quantity_styles[q] for q in data["quantity"].unique()}
    else:
        style = "variant"
        dashes = {name: (4, 2) if name in dashed else "" for name in names if name in set(data["variant"])}
    if len(data):
        with matplotlib.rc_context(STYLE):
            sns.lineplot(data=data, x="kimg", y="value", hue="variant", style=style, dashes=dashes, palette=colors,
                         estimator="mean", errorbar=t_band, ax=ax, lw=1.2)
    return colors


def _finish(ax, any_diverged: bool, ylabel: str, title: str) -> None:
    if any_diverged:
        ax.scatter([], [], color="white", label="diverged (last finite tick)", **DIVERGED_MARKER)
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels) if lab not in ("variant", "quantity")]
    ax.legend([h for h, _ in keep], [lab for _, lab in keep], loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set(yscale="log", xlabel="kimg (thousands of real images shown to D)", ylabel=ylabel, title=title)
    _plain_log_labels(ax)
    ax.tick_params(labelsize=8)


def _plain_log_labels(ax) -> None:
    """A log y axis labelled 2, 3, 0.5 rather than 2x10^0; of the minor ticks only 2, 3 and 5 of each decade, so that
    0.6-0.9 do not pile up under 1."""
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "235" else ""))


def plot_generator_loss(ticks: pd.DataFrame, groups: list, title: str = "G loss (Figure 1)", ax=None):
    """Figure 1: G loss over kimg (log scale), mean over seeds with a 95% band per variant [(label, runs)];
    R1-only variants dashed; an X where a run diverged. Returns (fig, ax)."""
    fig, ax = figure_for(ax, figsize=CURVE_FIGSIZE)
    colors = mean_curves(ax, _long_ticks(ticks, groups, ("loss_G",)), groups)
    _finish(ax, _mark_diverged(ax, ticks, groups, "loss_G", colors), "G loss", title)
    return fig, ax


def plot_gradient_norms(ticks: pd.DataFrame, groups: list, title: str = "D input-gradient norm", ax=None):
    """Mean ||grad_x D|| on real (solid) and fake (dashed) samples over kimg, log scale, mean over seeds with
    a 95% band per variant; returns (fig, ax)."""
    fig, ax = figure_for(ax, figsize=CURVE_FIGSIZE)
    data = _long_ticks(ticks, groups, ("grad_norm_real", "grad_norm_fake"))
    data["quantity"] = data["quantity"].map({"grad_norm_real": "real", "grad_norm_fake": "fake"})
    colors = mean_curves(ax, data, groups, quantity_styles={"real": "", "fake": (4, 2)})
    _finish(ax, _mark_diverged(ax, ticks, groups, "grad_norm_fake", colors), r"mean $\|\nabla_x D\|$", title)
    return fig, ax


LEARNING_SCORES = (  # (score column, label), the first two present are drawn: Stacked MNIST, then curves, then mixtures
    ("score_recognisable_modes", "recognisable modes"), ("score_modes", "modes"), ("score_kl", "KL"),
    ("score_coverage", "near-support coverage"), ("score_hq_fraction", "high-quality fraction"), ("score_drift", "sample drift"))


def _learning_ticks(ticks: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    return ticks[ticks["run_dir"].isin(set(runs["run_dir"]))] if len(ticks) and len(runs) else ticks.iloc[0:0]


def learning_scores(ticks: pd.DataFrame, runs: pd.DataFrame) -> list:
    """[(score column, label)] that plot_learning_curves draws for these runs, one per panel; [] without scores."""
    part = _learning_ticks(ticks, runs)
    present = [(key, label) for key, label in LEARNING_SCORES if key in part and part[key].notna().any()]
    keys = dict(present)
    if "score_recognisable_modes" in keys:  # Stacked MNIST: gated coverage and the paper's KL
        chosen = ["score_recognisable_modes", "score_kl" if "score_kl" in keys else None]
    elif "score_hq_fraction" in keys:  # toys: quality and late oscillation
        chosen = ["score_hq_fraction", "score_drift" if "score_drift" in keys else "score_kl" if "score_kl" in keys else None]
    else:
        chosen = [key for key, _ in present[:2]]
    return [(key, keys[key]) for key in chosen if key]


def plot_learning_curves(ticks: pd.DataFrame, runs: pd.DataFrame, title: str = "Learning curves", axes=None):
    """Periodic scores (metrics.jsonl score_*) over kimg, one line per run, a panel per learning_scores entry;
    (fig, axes) or None without scores."""
    present = learning_scores(ticks, runs)
    if not present:
        return None
    part = _learning_ticks(ticks, runs)
    fig, axes = figure_for(axes, 1, len(present), figsize=(4.2 * len(present), 3.2), squeeze=False)
    axes = np.atleast_1d(axes).ravel()
    names = sorted(part["run"].unique())
    # One colour per setting (the run name without its seed), one thin line per seed, one legend entry per setting.
    variant = {name: re.sub(r"_?seed\d+$", "", name) or name for name in names}
    settings = sorted(set(variant.values()))
    colors = {setting: PALETTE[i % len(PALETTE)] for i, setting in enumerate(settings)}
    for axis, (key, label) in zip(axes, present):
        labelled = set()
        for name in names:
            rows = part[(part["run"] == name) & part[key].notna()].sort_values("kimg")
            if len(rows):
                setting = variant[name]
                axis.plot(rows["kimg"], rows[key], lw=0.9, alpha=0.8, color=colors[setting],
                          label=None if setting in labelled else setting)
                labelled.add(setting)
        # The per-tick scores use fewer samples than the final evaluation (Table 1's 1,000 vs 26,000): say how many.
        counts = part["score_n"].dropna().unique() if "score_n" in part else []
        axis.set(xlabel="kimg", ylabel=f"{label}, {int(counts[0]):,} samples" if len(counts) == 1 else label)
        if key in ("score_kl", "score_drift"):
            axis.set_yscale("log")
            _plain_log_labels(axis)
    axes[-1].legend(fontsize=6, loc="best")
    fig.suptitle(title, fontsize=9)
    return fig, axes


def plot_image_grid(entries: list, title: str = "", axes=None):
    """Tile images [(row label, column label, PNG path or None)] in a rows x columns grid (`axes`: that many, 2-D);
    returns (fig, axes).

    A missing image shows as an empty panel saying so (e.g. a diverged run saves no samples).
    """
    row_labels = list(dict.fromkeys(r for r, _, _ in entries))
    column_labels = list(dict.fromkeys(c for _, c, _ in entries))
    images = {(r, c): path for r, c, path in entries}
    fig, axes = figure_for(axes, len(row_labels), len(column_labels), squeeze=False,
                           figsize=(2.4 * len(column_labels), 2.4 * len(row_labels) + 0.4))
    for i, row in enumerate(row_labels):
        for j, column in enumerate(column_labels):
            ax = axes[i, j]
            path = images.get((row, column))
            if path:
                ax.imshow(plt.imread(path))
            else:
                ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes, color="0.5")
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if i == 0:
                ax.set_title(column, fontsize=8)
            if j == 0:
                ax.set_ylabel(row, fontsize=8)
    if title:
        # Above the column labels, however many lines they have (the figure is saved with a tight bounding box).
        lines = max(str(label).count("\n") + 1 for label in column_labels)
        fig.suptitle(title, y=0.98 + 0.05 * (lines - 1) / len(row_labels))
    return fig, axes


def plot_dirac_portraits(gamma: float, steps: int = 800, axes=None):
    """Phase portraits (no penalty vs penalties, GAN and RpGAN; `axes`: four) via toy2d.dirac.plot_phase_portrait;
    (fig, axes)."""
    from toy2d.dirac import plot_phase_portrait

    fig, axes = figure_for(axes, 1, 4, figsize=(13, 3.6))
    for ax, (loss, penalty) in zip(axes, [("gan", "none"), ("gan", "r1"), ("rpgan", "none"), ("rpgan", "r1+r2")]):
        # gamma = 0 makes the penalized panels identical to the unpenalized ones; show them at gamma 1 then.
        plot_phase_portrait(gamma if penalty == "none" or gamma > 0 else 1.0, loss, penalty, ax=ax, steps=steps, minimax=True)
    fig.suptitle("Gradient flow of the minimax game (G ascends D's loss), as in the paper's Appendix B: without a penalty "
                 "it circles forever; with R1/R2 it converges", fontsize=8)
    return fig, axes

