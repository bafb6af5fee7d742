"""Report sections for the negative results of Appendix E (lazy regularization, IEEE fp16 vs bf16, activations, GroupNorm, Adam beta2).

One `NegativeResult` per bundled experiment, one report section each: the paper's claim quoted
(FACTS.md), the variant axis and its baseline, and one or more `Check`s (a variant against the
baseline, with the direction the claim predicts). From the runs it builds a table (tables.TableSpec:
a row per data set x network x variant, modes and KL as mean +- 95% CI over seeds, diverged/total),
two figures (final KL per seed and variant; D input-gradient norm over kimg per variant; runs that
record low-precision events add a third, the events over kimg) and a one-line verdict computed by
the pure functions below, with the rule printed next to it. All of it is one `sections.Section`,
registered like a table.

The rule (`check_outcome`, then `reports.verdicts.pool`), per data set x network, paired by seed:
- when a seed of either arm diverged, the per-seed divergence is compared (exact McNemar, one-sided);
- otherwise the final KL (lower is better) is compared on the log scale (paired t-test), with an
  equivalence margin of KL_RATIO_MARGIN (TOST);
- a check expecting `worse` wants the variant's KL (or divergence) higher, `not_worse` not higher,
  `not_better` not lower; each ends reproduced, contradicted or inconclusive with the effect the
  seeds could have detected (reports/verdicts.py);
- a data set x network whose baseline runs did not all meet the data set's learning criterion
  (reports/claims.yaml) is "not tested at this scale" and left out (gate added 2026-12-02, session 4:
  the 4-16 kimg smoke runs had been judged);
- the section's verdict pools its primary checks over every data set x network with Holm's
  correction: reproduced when all are, contradicted when some are and none is reproduced,
  inconclusive otherwise; "not tested at this scale" when no group's baseline learnt.
"""
import dataclasses
import functools
import math

import pandas as pd

from reports.collect import experiment_wall_times, metric_values
from reports.figures import CURVE_FIGSIZE, DIVERGED_MARKER, PALETTE, figure_for, group_label, mean_curves, plot_gradient_norms
from reports.registry import register_table
from reports.sections import Figure, Links, Quote, Section
from reports.tables import CI_NOTE, DIVERGED, RECOGNISABLE, Metric, Row, TableSpec, build_table
from reports.staleness import commits_of
from reports.scoreboard import learning_criterion, run_failures, shown_failures
from reports.verdicts import CONTRADICTED, INCONCLUSIVE, NOT_TESTED, REPRODUCED, Verdict, compare_binary, compare_continuous, pool
from roadmap.networks.precision import KINDS, PREFIX, first_nonfinite

KL_RATIO_MARGIN = 1.25  # KLs within x1.25 either way are "the same" (TOST); set 2026-12-02, after these runs (issue 24)
GROUP_COLUMNS = ("dataset", "model")
DIRECTION = dict(worse="higher", not_worse="not_higher", not_better="not_lower")  # expected variant KL vs the baseline's
RULE = (f"rule: per data set x network, paired by seed: divergence (exact McNemar) when any seed diverged, else final KL on "
        f"the log scale (paired t, equivalence margin x{KL_RATIO_MARGIN:g}); alpha 0.05; only where the baseline runs met their "
        f"data set's learning criterion (reports/claims.yaml); the section pools its primary checks with Holm's correction")


@dataclasses.dataclass
class Check:
    """One comparison the claim predicts: `variant` against the section's baseline."""

    variant: str
    expect: str  # worse | not_worse | not_better
    primary: bool = True  # secondary checks are reported but do not decide the section's verdict


@dataclasses.dataclass
class NegativeResult:
    name: str  # the `feeds` name its experiments declare (lazy-reg and its includes)
    title: str
    claim: str  # quoted from FACTS.md (Appendix E)
    column: str  # run-table column holding the variant
    baseline: str
    checks: tuple
    labels: dict = dataclasses.field(default_factory=dict)  # variant value -> label
    scale_note: str = ""
    # The runs record low-precision events (roadmap/networks/precision.py): the table adds their sum and the first
    # non-finite tensor, and a figure their rate over kimg.
    events: bool = False


SECTIONS = (  # one report section each, in this order
    NegativeResult("lazy-reg", "Lazy regularization", "Lazy regularization (R1, R2 every 8 minibatches): slightly worse FID "
                   "on FFHQ/CIFAR-10; complete convergence failure on Stacked MNIST and 2-D toy data sets (line, circle, 25 "
                   "Gaussians).", "lazy_interval", "1", (Check("8", "worse"),), {"1": "every step", "8": "every 8th step x 8"}),
    NegativeResult("precision", "IEEE fp16 vs bf16", "IEEE FP16 mixed precision: cripples training; BFloat16 fixes it.",
                   "model_args.precision", "fp32", (Check("fp16", "worse"), Check("bf16", "not_worse", primary=False)),
                   scale_note="CPU runs emulate the format at stage boundaries only (roadmap/networks/layers.py).", events=True),
    NegativeResult("activations", "Activation functions", "GELU, Swish, SMU instead of leaky ReLU in G and D: FID deteriorates "
                   "considerably.", "model_args.activation", "lrelu", (Check("gelu", "worse"), Check("silu", "worse"),
                                                                       Check("smu", "worse")),
                   {"lrelu": "leaky ReLU", "gelu": "GELU", "silu": "SiLU (Swish)", "smu": "SMU"}),
    NegativeResult("groupnorm", "Group normalization", "Group normalization in G and D: no FID or stability gain.",
                   "model_args.normalization", "none", (Check("group", "not_better"),), {"none": "no normalization", "group": "GroupNorm"}),
    NegativeResult("beta2", "Adam beta2", "Adam beta2 = 0.999: instability on ImageNet models.",
                   "beta2", "0.9->0.99", (Check("0.9->0.999", "worse"),), {"0.9->0.99": "0.9 -> 0.99", "0.9->0.999": "0.9 -> 0.999"}),
)


# ----------------------------------------------------------------------------------------------
# Verdict rule (pure functions of per-seed results).

def check_outcome(baseline: dict, variant: dict, expect: str) -> Verdict:
    """The verdict of one check from per-seed results {seed: KL float, or None when the seed diverged}."""
    seeds = sorted(set(baseline) & set(variant), key=str)
    if not seeds:
        return Verdict(INCONCLUSIVE, note="no seed ran in both arms")
    base, var = [baseline[s] for s in seeds], [variant[s] for s in seeds]
    if any(v is None for v in base + var):
        verdict = compare_binary([v is None for v in base], [v is None for v in var], "higher")
        if expect != "worse" and verdict.outcome == REPRODUCED:  # the variant diverging more rules out "not worse"
            verdict.outcome, verdict.note = CONTRADICTED, "the variant diverged significantly more often"
        elif expect != "worse":
            verdict.outcome = INCONCLUSIVE
        return verdict
    return compare_continuous(base, var, DIRECTION[expect], KL_RATIO_MARGIN, log_scale=True)


# ----------------------------------------------------------------------------------------------
# From the runs table.

def section_runs(runs: pd.DataFrame, negative: NegativeResult) -> pd.DataFrame:
    """Runs whose experiment declared that it feeds this section (config.yaml's `feeds`)."""
    if not len(runs) or "feeds" not in runs:
        return runs.iloc[0:0]
    return runs[runs["feeds"] == negative.name]


def negative_mask(runs: pd.DataFrame) -> pd.Series:
    """True for runs of any negative-result experiment (kept out of the paper's Tables 1-3)."""
    mask = pd.Series(False, index=runs.index)
    for negative in SECTIONS:
        mask |= runs.index.isin(section_runs(runs, negative).index)
    return mask


def _value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _variants(part: pd.DataFrame, negative: NegativeResult) -> pd.Series:
    if negative.column not in part:
        return pd.Series(["None"] * len(part), index=part.index)
    return part[negative.column].apply(_value)


def arm_of(runs: pd.DataFrame) -> dict:
    """{seed: final KL, or None when the seed diverged} of an arm's finished runs."""
    arm = {}
    for _, run in runs[runs["status"].isin(["completed", "diverged"])].iterrows():
        value = metric_values(runs.loc[[run.name]], "kl") if run["status"] == "completed" else [None]
        if value:
            arm[str(run.get("seed"))] = value[0]
    return arm


def not_learnt(baseline_runs: pd.DataFrame):
    """Verdict(NOT_TESTED) when the baseline arm's finished runs did not all meet their data set's learning criterion
    (reports/claims.yaml; none finished counts too), else None. A run that has not learnt can neither fail nor
    succeed as the claim means, so its checks are not judged (the smoke runs at 4-16 kimg draw noise)."""
    finished = baseline_runs[baseline_runs["status"].isin(["completed", "diverged"])] if len(baseline_runs) else baseline_runs
    if not len(finished):
        return Verdict(NOT_TESTED, note="no finished baseline run")
    criterion = learning_criterion(finished["dataset"].iloc[0]) if "dataset" in finished else {}
    failures = [f for _, run in finished.iterrows()
                for f in (run_failures(run, criterion) if run["status"] == "completed" else [f"{run['run']}: diverged"])] if criterion else []
    if not failures:
        return None
    return Verdict(NOT_TESTED, n=len(finished), note=f"the baseline runs did not learn: {shown_failures(failures, keep=2)}")


def groups_of(part: pd.DataFrame) -> list:
    """[(label 'dataset, model', runs)] in sorted order."""
    present = [c for c in GROUP_COLUMNS if c in part]
    if not len(part):
        return []
    keys = part[present].astype(str).agg(", ".join, axis=1)
    return [(key, part[keys == key]) for key in sorted(keys.unique())]


def evaluate_section(runs: pd.DataFrame, negative: NegativeResult) -> dict:
    """{'verdict': Verdict, 'checks': [(group, variant, expect, Verdict, primary)], 'runs': count}."""
    part = section_runs(runs, negative)
    variants = _variants(part, negative)
    results = []
    for group, group_runs in groups_of(part):
        baseline_runs = group_runs[variants[group_runs.index] == negative.baseline]
        baseline = arm_of(baseline_runs)
        untested = not_learnt(baseline_runs)
        for check in negative.checks:
            variant = arm_of(group_runs[variants[group_runs.index] == check.variant])
            outcome = untested or check_outcome(baseline, variant, check.expect)
            results.append((group, check.variant, check.expect, outcome, check.primary))
    primary = [r[3] for r in results if r[4]]
    tested = [v for v in primary if v.outcome != NOT_TESTED]
    if len(tested) > 1:
        verdict = pool(tested)
    elif tested:
        verdict = tested[0]
    else:
        verdict = Verdict(NOT_TESTED, note="the baseline runs did not learn") if primary else Verdict(INCONCLUSIVE, note="no runs")
    return dict(verdict=verdict, checks=results, runs=len(part))


def verdict_line(negative: NegativeResult, evaluation: dict) -> str:
    """'Verdict: X (group: variant outcome; ...). <rule>' in one line."""
    def one(verdict: Verdict) -> str:
        effect = "" if verdict.effect is None or verdict.test.startswith("exact") else f", KL x{verdict.effect:.3g}"
        p = "" if verdict.p_value is None else f", p = {verdict.p_value:.3g}"
        return f"{verdict.outcome}{effect}{p}" + (f"; {verdict.note}" if verdict.note else "")

    details = "; ".join(f"{group}: {negative.labels.get(v, v)} {one(verdict)}" + ("" if primary else " (secondary)")
                        for group, v, _, verdict, primary in evaluation["checks"])
    return f"Verdict: **{evaluation['verdict'].outcome}** ({details or 'no runs'}). {RULE}."


# ----------------------------------------------------------------------------------------------
# Tables.

def _events(ticks: pd.DataFrame, run_dirs) -> tuple:
    """({kind: element count summed over ticks} for each of KINDS, first non-finite tensor) of some runs; (None, None)
    when the runs recorded no events."""
    if not len(ticks) or "run_dir" not in ticks:
        return None, None
    rows = ticks[ticks["run_dir"].isin(list(run_dirs))]
    columns = [c for c in rows.columns if c.startswith(PREFIX) and c.rsplit(".", 1)[-1] in KINDS]
    if not columns:
        return None, None
    sums = rows[columns].apply(pd.to_numeric, errors="coerce").fillna(0).sum()
    totals = {kind: float(sums[[c for c in columns if c.rsplit(".", 1)[-1] == kind]].sum()) for kind in KINDS}
    first_columns = [c for c in rows.columns if c.startswith(PREFIX + "first_nonfinite.")]
    earliest = {c: pd.to_numeric(rows[c], errors="coerce").where(lambda v: v >= 0).min() for c in first_columns}
    found = first_nonfinite({c: v for c, v in earliest.items() if pd.notna(v)})
    first = found[0] if found else "none"
    return totals, first


# One column per kind: the fp16 runs' events are all underflows, which one summed column hid.
EVENT_KINDS = (("overflow", "Overflow (sum)"), ("underflow", "Underflow (sum)"), ("nonfinite", "Non-finite (sum)"))
EVENT_COLUMNS = tuple(label for _, label in EVENT_KINDS) + ("First non-finite",)
EVENT_NOTE = ("Overflow: elements with |x| > the format's max; underflow: non-zero elements that become 0; non-finite: "
              "inf/NaN; counted in the tensors crossing low-precision stage boundaries (activations forward, gradients "
              "backward) and in D's logits, as each tick's mean per step, summed over ticks and seeds (a scale, not a "
              "count of events); first non-finite: the tensor that held inf/NaN first.")


def _event_cells(ticks: pd.DataFrame, run_dirs) -> dict:
    totals, first = _events(ticks, run_dirs)
    counts = ["-" if totals is None else f"{totals[kind]:.0f}" for kind, _ in EVENT_KINDS]
    return dict(zip(EVENT_COLUMNS, counts + [first or "-"]))


def section_table(results, negative: NegativeResult):
    """The section's Table (None without runs): a row per data set x network x variant."""
    part = section_runs(results.runs, negative)
    if not len(part):
        return None
    variants = _variants(part, negative)
    order = [negative.baseline] + [c.variant for c in negative.checks]
    rows = []
    for group, group_runs in groups_of(part):
        present = sorted(set(variants[group_runs.index]), key=lambda v: (order.index(v) if v in order else len(order), v))
        for variant in present:
            selected = group_runs[variants[group_runs.index] == variant]
            extra = _event_cells(results.ticks, selected["run_dir"]) if negative.events else {}
            rows.append(Row(label=f"{group}, {negative.labels.get(variant, variant)}", match=dict(run_dir=tuple(selected["run_dir"])),
                            extra=extra))
    notes = (CI_NOTE,) + ((EVENT_NOTE,) if negative.events else ()) + ((negative.scale_note,) if negative.scale_note else ())
    spec = TableSpec(name=f"negative-{negative.name}", caption=f"{negative.title} (Appendix E negative result)",
                     row_header="Data, network, variant", rows=rows,
                     metrics=[Metric("modes", "Modes", 1), Metric("kl", "KL", 3), *RECOGNISABLE, Metric(DIVERGED, "Diverged/total")],
                     extra_columns=EVENT_COLUMNS if negative.events else (), notes=notes)
    return build_table(part, spec)


# ----------------------------------------------------------------------------------------------
# Figures.

def plot_final_kl(runs: pd.DataFrame, negative: NegativeResult, title: str = "", ax=None):
    """Final KL per seed, x = data set x network, colour = variant; diverged seeds as X at the top. (fig, ax)"""
    part = section_runs(runs, negative)
    variants = _variants(part, negative)
    order = [negative.baseline] + [c.variant for c in negative.checks]
    present = [v for v in order if v in set(variants)] + sorted(set(variants) - set(order))
    groups = groups_of(part)
    fig, ax = figure_for(ax, figsize=(max(4.8, 1.1 * len(groups) + 2), 3.2))
    finite = [v for v in metric_values(part[part["status"] == "completed"], "kl") if math.isfinite(v)]
    top = (max(finite) if finite else 1.0) * 1.15 + 0.05
    width = 0.8 / max(1, len(present))
    for index, variant in enumerate(present):
        color = PALETTE[index % len(PALETTE)]
        xs, ys, dx, dy = [], [], [], []
        for position, (_, group_runs) in enumerate(groups):
            selected = group_runs[variants[group_runs.index] == variant]
            offset = position - 0.4 + width * (index + 0.5)
            values = metric_values(selected[selected["status"] == "completed"], "kl")
            xs += [offset] * len(values)
            ys += values
            diverged = int((selected["status"] == "diverged").sum())
            dx += [offset] * diverged
            dy += [top] * diverged
        ax.scatter(xs, ys, color=color, s=14, label=negative.labels.get(variant, variant))
        if dx:
            ax.scatter(dx, dy, color=color, **DIVERGED_MARKER)
    ax.set_xticks(range(len(groups)), [label for label, _ in groups], rotation=20, ha="right")
    ax.set(ylabel="final KL (lower is better)", title=title or negative.title)
    if (part["status"] == "diverged").any():  # the legend names the marker only when a run diverged
        ax.scatter([], [], color="white", label="diverged (at top)", **DIVERGED_MARKER)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig, ax


def variant_groups(runs: pd.DataFrame, negative: NegativeResult) -> list:
    """[(variant label, runs)] for figures.plot_gradient_norms / plot_generator_loss."""
    part = section_runs(runs, negative)
    variants = _variants(part, negative)
    order = [negative.baseline] + [c.variant for c in negative.checks]
    present = [v for v in order if v in set(variants)] + sorted(set(variants) - set(order))
    groups = [(negative.labels.get(v, v), part[variants == v]) for v in present]
    # One curve per data set x network too: runs of different networks (toy MLP, small ResNet, Config E)
    # and durations are never averaged into one curve.
    # (the figure's own label adds the network, so the group names only the data set)
    settings = part["dataset"].astype(str) if len(part) and "dataset" in part else pd.Series(dtype=str)
    if len(part) and "model" in part and part[list(GROUP_COLUMNS)].astype(str).agg(", ".join, axis=1).nunique() > settings.nunique():
        settings = part[list(GROUP_COLUMNS)].astype(str).agg(", ".join, axis=1)  # one data set, several networks
    if settings.nunique() > 1:
        groups = [(f"{label}, {setting}", runs[settings[runs.index] == setting]) for label, runs in groups
                  for setting in sorted(settings[runs.index].unique())]
    return groups


def plot_events(ticks: pd.DataFrame, groups: list, title: str = "Low-precision events per step", ax=None):
    """Overflow + underflow + non-finite elements per step (tick mean) over kimg: mean over seeds with a 95% band
    per variant (symlog). (fig, ax)"""
    frames = []
    for label, runs in groups:
        for run_dir in runs["run_dir"]:
            frame = ticks[ticks["run_dir"] == run_dir].sort_values("kimg") if len(ticks) else ticks
            columns = [c for c in frame.columns if c.startswith("prec.") and c.rsplit(".", 1)[-1] in ("overflow", "underflow", "nonfinite")]
            if len(frame) and columns:
                events = frame[columns].apply(pd.to_numeric, errors="coerce").fillna(0).sum(axis=1)
                frames.append(pd.DataFrame(dict(kimg=frame["kimg"].astype(float), value=events.astype(float),
                                                variant=group_label(label, runs), quantity="events", run=run_dir)))
    fig, ax = figure_for(ax, figsize=CURVE_FIGSIZE)
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["kimg", "value", "variant", "quantity", "run"])
    mean_curves(ax, data, groups)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=-0.3)  # counts: no negative half, but room to see the variants that stay at 0 events
    ax.set(xlabel="kimg (thousands of real images shown to D)", ylabel="events per step", title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig, ax


def section_figures(results, negative: NegativeResult) -> list:
    """The section's figures (drawn when the report is written): final KL per seed, D input-gradient norms, and the
    low-precision events when the runs record them."""
    name, title = f"negative-{negative.name}", negative.title
    groups = variant_groups(results.runs, negative)
    commits = commits_of(section_runs(results.runs, negative))
    made = [Figure(f"{name}-kl", f"{title}: final KL per seed and variant",
                   functools.partial(plot_final_kl, results.runs, negative, f"{title}: final KL per seed"), commits=commits),
            Figure(f"{name}-grad-norms", f"{title}: mean ||grad_x D|| on real (solid) and fake (dashed) over kimg, per variant",
                   functools.partial(plot_gradient_norms, results.ticks, groups, title=f"{title}: D input-gradient norm"),
                   commits=commits)]
    if negative.events:
        made.append(Figure(f"{name}-events", f"{title}: overflow + underflow + non-finite elements per step over kimg",
                           functools.partial(plot_events, results.ticks, groups, f"{title}: events per step"), commits=commits))
    return made


# ----------------------------------------------------------------------------------------------
# The report section.

def negative_sections(results) -> list:
    """[the "Negative results" section: per NegativeResult with runs the claim, the verdict, the wall time of its
    experiment, the table and the figures], or [] without such runs. Registered as claiming every feeds name of SECTIONS."""
    parts = []
    for negative in SECTIONS:
        table = section_table(results, negative)
        if table is None:
            continue
        verdict = verdict_line(negative, evaluate_section(results.runs, negative))
        parts.append(Section(f"{negative.title} (`{negative.name}`)", [
            Quote(f'Paper (Appendix E): "{negative.claim}"'), verdict, *experiment_wall_times(results, negative.name),
            Links(table.name), table, *section_figures(results, negative)]))
    return [Section("Negative results (paper Appendix E)", parts)] if parts else []


register_table(*(negative.name for negative in SECTIONS), order=60, name="negative")(negative_sections)
