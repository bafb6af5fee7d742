"""Report sections for the negative results of Appendix E (lazy regularization, IEEE fp16 vs bf16, activations, GroupNorm, Adam beta2).

One `Section` per bundled experiment: the paper's claim quoted (FACTS.md), the variant axis and its
baseline, and one or more `Check`s (a variant against the baseline, with the direction the claim
predicts). From the runs it builds a table (tables.TableSpec: a row per data set x network x variant,
modes and KL as mean +- 95% CI over seeds, diverged/total), two figures (final KL per seed and
variant; D input-gradient norm over kimg per variant; the precision section adds its overflow /
NaN events over kimg) and a one-line verdict computed by the pure functions below, with the rule
printed next to it.

The rule (`compare`, then `check_verdict`, then `combine`), on the primary metric KL (lower is
better; every data set here reports it) per data set x network:
- a seed of an arm *fails* when it diverged, or when its KL is >= KL_MARGIN above the other arm's
  worst (highest) KL, i.e. worse than every seed of the other arm by a clear margin;
- variant `worse`: >= 2/3 of its finished seeds fail and fewer than half of the baseline's diverged;
  `better`: the same with the arms swapped and no failing variant seed;
  `same`: no seed of either arm fails and |mean KL difference| <= the larger 95% CI half-width
  (or <= KL_MARGIN when an arm has one seed); `unclear` otherwise, or with < MIN_SEEDS finished seeds in an arm;
- a check expecting `worse` is reproduced on `worse`, not reproduced on `same`/`better`; expecting
  `not_worse` (bf16 "fixes it") is reproduced on `same`/`better`, not reproduced on `worse`;
  expecting `not_better` (GroupNorm "no gain") is reproduced on `same`/`worse`, not on `better`;
  `unclear` is inconclusive;
- the section's verdict combines its primary checks over every data set x network: reproduced
  when all are reproduced, not reproduced at this scale when none is reproduced and at least one is
  not reproduced, inconclusive otherwise (mixed or missing).
"""
import dataclasses
import math
import pandas as pd

from reports.collect import experiment_wall_times, metric_values
from roadmap.networks.precision import KINDS, PREFIX, first_nonfinite
from reports.stats import mean_ci
from reports.registry import register_table
from reports.tables import CI_NOTE, DIVERGED, RECOGNISABLE, Metric, Row, TableSpec, build_table

KL_MARGIN = 0.25  # nats: a KL this much above the other arm's highest KL counts as a failed seed
WORSE_FRACTION = 2 / 3  # at least this share of an arm's finished seeds must fail
MIN_SEEDS = 2  # finished seeds needed in each arm for anything but "inconclusive"
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced at this scale", "inconclusive"
GROUP_COLUMNS = ("dataset", "model")
RULE = (f"rule: per data set x network, a seed fails when it diverged or its KL is >= {KL_MARGIN} nats above the "
        f"other arm's highest KL; the variant is worse when >= 2/3 of its seeds fail (and < 1/2 of the baseline's diverged), "
        f"the same when no seed fails and the mean KLs differ by <= the larger 95% CI half-width; "
        f">= {MIN_SEEDS} finished seeds per arm; reproduced = every primary check agrees with the claim, "
        f"not reproduced = none does, inconclusive otherwise")


@dataclasses.dataclass
class Check:
    """One comparison the claim predicts: `variant` against the section's baseline."""

    variant: str
    expect: str  # worse | not_worse | not_better
    primary: bool = True  # secondary checks are reported but do not decide the section's verdict


@dataclasses.dataclass
class Section:
    name: str  # the `feeds` name its experiments declare (lazy-reg and its includes)
    title: str
    claim: str  # quoted from FACTS.md (Appendix E)
    column: str  # run-table column holding the variant
    baseline: str
    checks: tuple
    labels: dict = dataclasses.field(default_factory=dict)  # variant value -> label
    scale_note: str = ""


SECTIONS = (
    Section("lazy-reg", "Lazy regularization", "Lazy regularization (R1, R2 every 8 minibatches): slightly worse FID on "
            "FFHQ/CIFAR-10; complete convergence failure on Stacked MNIST and 2-D toy data sets (line, circle, 25 Gaussians).",
            "lazy_interval", "1", (Check("8", "worse"),), {"1": "every step", "8": "every 8th step x 8"}),
    Section("precision", "IEEE fp16 vs bf16", "IEEE FP16 mixed precision: cripples training; BFloat16 fixes it.",
            "model_args.precision", "fp32", (Check("fp16", "worse"), Check("bf16", "not_worse", primary=False)),
            scale_note="CPU runs emulate the format at stage boundaries only (roadmap/networks/layers.py)."),
    Section("activations", "Activation functions", "GELU, Swish, SMU instead of leaky ReLU in G and D: FID deteriorates considerably.",
            "model_args.activation", "lrelu", (Check("gelu", "worse"), Check("silu", "worse"), Check("smu", "worse")),
            {"lrelu": "leaky ReLU", "gelu": "GELU", "silu": "SiLU (Swish)", "smu": "SMU"}),
    Section("groupnorm", "Group normalization", "Group normalization in G and D: no FID or stability gain.",
            "model_args.normalization", "none", (Check("group", "not_better"),), {"none": "no normalization", "group": "GroupNorm"}),
    Section("beta2", "Adam beta2", "Adam beta2 = 0.999: instability on ImageNet models.",
            "beta2", "0.9->0.99", (Check("0.9->0.999", "worse"),), {"0.9->0.99": "0.9 -> 0.99", "0.9->0.999": "0.9 -> 0.999"}),
)


# ----------------------------------------------------------------------------------------------
# Verdict rules (pure functions of per-seed results).

@dataclasses.dataclass
class Arm:
    """The seeds of one variant in one data set x network: final KLs of completed seeds, divergences."""

    kl: list  # KL of each completed seed
    diverged: int = 0

    @property
    def finished(self) -> int:
        return len(self.kl) + self.diverged


def _fails(arm: Arm, reference: list, margin: float) -> int:
    """Seeds of `arm` that diverged or whose KL is >= margin above every KL in `reference`."""
    high = sum(1 for v in arm.kl if v >= max(reference) + margin) if reference else 0
    return arm.diverged + high


def compare(baseline: Arm, variant: Arm, margin: float = KL_MARGIN) -> str:
    """worse | better | same | unclear: the variant against the baseline (module docstring rule)."""
    if baseline.finished < MIN_SEEDS or variant.finished < MIN_SEEDS:
        return "unclear"
    mean_b, half_b, n_b = mean_ci(baseline.kl)
    mean_v, half_v, n_v = mean_ci(variant.kl)
    fails_v, fails_b = _fails(variant, baseline.kl, margin), _fails(baseline, variant.kl, margin)
    if variant.diverged and not baseline.kl:  # every baseline seed diverged: nothing to compare with
        return "unclear"
    if fails_v >= math.ceil(WORSE_FRACTION * variant.finished) and baseline.diverged < baseline.finished / 2:
        return "worse"
    if fails_b >= math.ceil(WORSE_FRACTION * baseline.finished) and fails_v == 0:  # fails_v counts divergences too
        return "better"
    if fails_b == 0 and fails_v == 0 and n_b and n_v:
        widths = [w for w in (half_b, half_v) if w is not None]
        tolerance = max(widths) if widths else margin
        if abs(mean_v - mean_b) <= tolerance:
            return "same"
    return "unclear"


def check_verdict(outcome: str, expect: str) -> str:
    """Map a comparison outcome to a verdict for a claim expecting `expect` (worse | not_worse | not_better)."""
    agree = dict(worse={"worse"}, not_worse={"same", "better"}, not_better={"same", "worse"})[expect]
    if outcome == "unclear":
        return INCONCLUSIVE
    return REPRODUCED if outcome in agree else NOT_REPRODUCED


def combine(verdicts: list) -> str:
    """A section's verdict from its primary check verdicts (module docstring rule)."""
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if verdicts and REPRODUCED not in verdicts and NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    return INCONCLUSIVE


# ----------------------------------------------------------------------------------------------
# From the runs table.

def section_runs(runs: pd.DataFrame, section: Section) -> pd.DataFrame:
    """Runs whose experiment declared that it feeds this section (config.yaml's `feeds`)."""
    if not len(runs) or "feeds" not in runs:
        return runs.iloc[0:0]
    return runs[runs["feeds"] == section.name]


def negative_mask(runs: pd.DataFrame) -> pd.Series:
    """True for runs of any negative-result experiment (kept out of the paper's Tables 1-3)."""
    mask = pd.Series(False, index=runs.index)
    for section in SECTIONS:
        mask |= runs.index.isin(section_runs(runs, section).index)
    return mask


def _value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _variants(part: pd.DataFrame, section: Section) -> pd.Series:
    if section.column not in part:
        return pd.Series(["None"] * len(part), index=part.index)
    return part[section.column].apply(_value)


def arm_of(runs: pd.DataFrame) -> Arm:
    finished = runs[runs["status"].isin(["completed", "diverged"])]
    return Arm(kl=metric_values(finished[finished["status"] == "completed"], "kl"),
               diverged=int((finished["status"] == "diverged").sum()))


def groups_of(part: pd.DataFrame) -> list:
    """[(label 'dataset, model', runs)] in sorted order."""
    present = [c for c in GROUP_COLUMNS if c in part]
    if not len(part):
        return []
    keys = part[present].astype(str).agg(", ".join, axis=1)
    return [(key, part[keys == key]) for key in sorted(keys.unique())]


def evaluate_section(runs: pd.DataFrame, section: Section) -> dict:
    """{'verdict', 'checks': [(group, variant, expect, outcome, verdict, primary)], 'runs': count}."""
    part = section_runs(runs, section)
    variants = _variants(part, section)
    results = []
    for group, group_runs in groups_of(part):
        baseline = arm_of(group_runs[variants[group_runs.index] == section.baseline])
        for check in section.checks:
            variant = arm_of(group_runs[variants[group_runs.index] == check.variant])
            outcome = compare(baseline, variant)
            results.append((group, check.variant, check.expect, outcome, check_verdict(outcome, check.expect), check.primary))
    verdict = combine([r[4] for r in results if r[5]])
    return dict(verdict=verdict, checks=results, runs=len(part))


def verdict_line(section: Section, evaluation: dict) -> str:
    """'Verdict: X (group: variant outcome; ...). <rule>' in one line."""
    details = "; ".join(f"{group}: {section.labels.get(v, v)} {outcome} -> {verdict}" + ("" if primary else " (secondary)")
                        for group, v, _, outcome, verdict, primary in evaluation["checks"])
    return f"Verdict: **{evaluation['verdict']}** ({details or 'no runs'}). {RULE}."


# ----------------------------------------------------------------------------------------------
# Tables.

def _events(ticks: pd.DataFrame, run_dirs) -> tuple:
    """(overflow + underflow + non-finite element counts summed over ticks, first non-finite tensor) of some runs."""
    if not len(ticks) or "run_dir" not in ticks:
        return None, None
    rows = ticks[ticks["run_dir"].isin(list(run_dirs))]
    columns = [c for c in rows.columns if c.startswith(PREFIX) and c.rsplit(".", 1)[-1] in KINDS]
    if not columns:
        return None, None
    total = float(rows[columns].apply(pd.to_numeric, errors="coerce").fillna(0).sum().sum())
    first_columns = [c for c in rows.columns if c.startswith(PREFIX + "first_nonfinite.")]
    earliest = {c: pd.to_numeric(rows[c], errors="coerce").where(lambda v: v >= 0).min() for c in first_columns}
    found = first_nonfinite({c: v for c, v in earliest.items() if pd.notna(v)})
    first = found[0] if found else "none"
    return total, first


def section_table(results, section: Section):
    """The section's Table (None without runs): a row per data set x network x variant."""
    part = section_runs(results.runs, section)
    if not len(part):
        return None
    variants = _variants(part, section)
    order = [section.baseline] + [c.variant for c in section.checks]
    rows = []
    for group, group_runs in groups_of(part):
        present = sorted(set(variants[group_runs.index]), key=lambda v: (order.index(v) if v in order else len(order), v))
        for variant in present:
            selected = group_runs[variants[group_runs.index] == variant]
            match = dict(run_dir=tuple(selected["run_dir"]))
            extra = {}
            if section.name == "precision":
                total, first = _events(results.ticks, selected["run_dir"])
                extra = {"Events (sum)": "-" if total is None else f"{total:.0f}", "First non-finite": first or "-"}
            rows.append(Row(label=f"{group}, {section.labels.get(variant, variant)}", match=match, extra=extra))
    extra_columns = ("Events (sum)", "First non-finite") if section.name == "precision" else ()
    notes = (CI_NOTE,)
    if section.name == "precision":
        notes += ("Events: overflowing (|x| > format max), underflowing (non-zero -> 0) and non-finite elements of the "
                  "tensors crossing low-precision stage boundaries (activations forward, gradients backward) and of D's "
                  "logits: each tick's mean per step, summed over ticks and seeds; first non-finite: the tensor that held inf/NaN first.",)
    if section.scale_note:
        notes += (section.scale_note,)
    spec = TableSpec(name=f"negative-{section.name}", caption=f"{section.title} (Appendix E negative result)",
                     row_header="Data, network, variant", rows=rows,
                     metrics=[Metric("modes", "Modes", 1), Metric("kl", "KL", 3), *RECOGNISABLE, Metric(DIVERGED, "Diverged/total")],
                     extra_columns=extra_columns, notes=notes)
    return build_table(part, spec)


def negative_tables(results) -> list:
    """One table per Appendix E section with runs; registered as claiming every section's feeds name."""
    return [table for table in (section_table(results, s) for s in SECTIONS) if table is not None]


register_table(*(section.name for section in SECTIONS), order=60, name="negative")(negative_tables)


# ----------------------------------------------------------------------------------------------
# Figures.

def plot_final_kl(runs: pd.DataFrame, section: Section, title: str = ""):
    """Final KL per seed, x = data set x network, colour = variant; diverged seeds as X at the top. (fig, ax)"""
    from reports.figures import DIVERGED_MARKER, PALETTE, _figure

    part = section_runs(runs, section)
    variants = _variants(part, section)
    order = [section.baseline] + [c.variant for c in section.checks]
    present = [v for v in order if v in set(variants)] + sorted(set(variants) - set(order))
    groups = groups_of(part)
    fig, ax = _figure(figsize=(max(4.8, 1.1 * len(groups) + 2), 3.2))
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
        ax.scatter(xs, ys, color=color, s=14, label=section.labels.get(variant, variant))
        if dx:
            ax.scatter(dx, dy, color=color, **DIVERGED_MARKER)
    ax.set_xticks(range(len(groups)), [label for label, _ in groups], rotation=20, ha="right")
    ax.set(ylabel="final KL (lower is better)", title=title or section.title)
    if (part["status"] == "diverged").any():  # the legend names the marker only when a run diverged
        ax.scatter([], [], color="white", label="diverged (at top)", **DIVERGED_MARKER)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig, ax


def variant_groups(runs: pd.DataFrame, section: Section) -> list:
    """[(variant label, runs)] for figures.plot_gradient_norms / plot_generator_loss."""
    part = section_runs(runs, section)
    variants = _variants(part, section)
    order = [section.baseline] + [c.variant for c in section.checks]
    present = [v for v in order if v in set(variants)] + sorted(set(variants) - set(order))
    groups = [(section.labels.get(v, v), part[variants == v]) for v in present]
    # One curve per data set x network too: runs of different networks (toy MLP, small ResNet, Config E)
    # and durations are never averaged into one curve.
    settings = part[list(GROUP_COLUMNS)].astype(str).agg(", ".join, axis=1) if len(part) else pd.Series(dtype=str)
    if settings.nunique() > 1:
        groups = [(f"{label}, {setting}", runs[settings[runs.index] == setting]) for label, runs in groups
                  for setting in sorted(settings[runs.index].unique())]
    return groups


def plot_events(ticks: pd.DataFrame, groups: list, title: str = "Low-precision events per step"):
    """Overflow + underflow + non-finite elements per step (tick mean) over kimg: mean over seeds with a 95% band
    per variant (symlog). (fig, ax)"""
    from reports.figures import _curves, _figure, _group_label

    frames = []
    for label, runs in groups:
        for run_dir in runs["run_dir"]:
            frame = ticks[ticks["run_dir"] == run_dir].sort_values("kimg") if len(ticks) else ticks
            columns = [c for c in frame.columns if c.startswith("prec.") and c.rsplit(".", 1)[-1] in ("overflow", "underflow", "nonfinite")]
            if len(frame) and columns:
                events = frame[columns].apply(pd.to_numeric, errors="coerce").fillna(0).sum(axis=1)
                frames.append(pd.DataFrame(dict(kimg=frame["kimg"].astype(float), value=events.astype(float),
                                                variant=_group_label(label, runs), quantity="events", run=run_dir)))
    fig, ax = _figure(figsize=(5.6, 3.2))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["kimg", "value", "variant", "quantity", "run"])
    _curves(ax, data, groups)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=-0.3)  # counts: no negative half, but room to see the variants that stay at 0 events
    ax.set(xlabel="kimg (thousands of real images shown to D)", ylabel="events per step", title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig, ax


def section_figures(results, section: Section, figure_dir) -> list:
    """Write the section's figures; return [(name, title)]."""
    from reports import figures

    part = section_runs(results.runs, section)
    if not len(part):
        return []
    made = []
    name = f"negative-{section.name}"
    figures.save_figure(plot_final_kl(results.runs, section, f"{section.title}: final KL per seed")[0], figure_dir, f"{name}-kl")
    made.append((f"{name}-kl", f"{section.title}: final KL per seed and variant"))
    groups = variant_groups(results.runs, section)
    figures.save_figure(figures.plot_gradient_norms(results.ticks, groups, title=f"{section.title}: D input-gradient norm")[0],
                        figure_dir, f"{name}-grad-norms")
    made.append((f"{name}-grad-norms", f"{section.title}: mean ||grad_x D|| on real (solid) and fake (dashed) over kimg, per variant"))
    if section.name == "precision":
        figures.save_figure(plot_events(results.ticks, groups, f"{section.title}: events per step")[0], figure_dir, f"{name}-events")
        made.append((f"{name}-events", f"{section.title}: overflow/underflow/NaN events per step over kimg"))
    return made


def report_sections(results, out_dir) -> list:
    """Build every section with runs (figures written to out_dir/figures); a dict per section:
    section, verdict (one line), table (tables.Table), figures [(name, title)]."""
    from pathlib import Path

    built = []
    for section in SECTIONS:
        table = section_table(results, section)
        if table is None:
            continue
        evaluation = evaluate_section(results.runs, section)
        built.append(dict(section=section, evaluation=evaluation, verdict=verdict_line(section, evaluation), table=table,
                          figures=section_figures(results, section, Path(out_dir) / "figures"),
                          wall=experiment_wall_times(results, section.name)))
    return built


def markdown_lines(built: list) -> list:
    """The 'Negative results' part of report.md: per section the claim, the verdict, the table, the figures."""
    from reports.tables import render_markdown

    lines = []
    for entry in built:
        section = entry["section"]
        lines += [f"### {section.title} (`{section.name}`)", "", f"> Paper (Appendix E): \"{section.claim}\"", "",
                  entry["verdict"], "", *[line + "\n" for line in entry.get("wall", [])],
                  f"[Markdown](tables/{entry['table'].name}.md) · [LaTeX](tables/{entry['table'].name}.tex)", "",
                  render_markdown(entry["table"])]
        for name, title in entry["figures"]:
            lines += [f"![{title}](figures/{name}.png)", "", f"*{title}* ([PDF](figures/{name}.pdf))", ""]
    return lines
