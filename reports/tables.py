"""Paper-style tables (Tables 1-3, toy 2-D, DiracGAN) from the runs DataFrame, in Markdown, LaTeX and HTML.

One generic builder serves every table: a `TableSpec` (rows, each a filter on the runs table
plus the paper's values; metrics, each a summary-metric key) -> `build_table` groups the
matching runs (one run = one seed) into `Cell`s -> `render_markdown` / `render_latex` /
`render_html`. A new table (e.g. a negative-results section) is a spec of a few lines.

Cells of ours show mean +- half-width of the 95% Student-t interval over seeds with the seed
count; "Fail (k/n)" when k of n finished seeds diverged; "-" with a footnote saying why when
nothing can be shown (not run, running, failed, metric not reported).
"""
import dataclasses
import functools
import html
import math
import re
from pathlib import Path
from typing import Callable, Optional

import pandas as pd
import yaml

from reports.collect import metric_values
from reports.registry import register_table
from reports.staleness import commits_notes, stale_note
from reports.stats import mean_ci

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")
DIVERGED = "diverged/total"  # pseudo-metric: k/n seeds diverged
# What each table claims: runs are chosen by the `feeds` their experiment file declares (recorded
# in config.yaml), never by model, loss or folder names; data sets by their registered kind.
# Each table registers under its feeds name at the end of this file (reports/registry.py).
CI_NOTE = ("Ours: mean ± half-width of the 95% Student-t confidence interval over seeds (n = seeds that "
           "finished without diverging); Fail (k/n): k of n finished seeds diverged.")
SINGLE_SEED = "single seed (n=1): no confidence interval"


@functools.lru_cache(maxsize=1)
def paper_numbers() -> dict:
    """The paper's reference values (reports/paper_numbers.yaml, from FACTS.md)."""
    return yaml.safe_load(PAPER_NUMBERS.read_text())


@dataclasses.dataclass
class Cell:
    """One table cell: a literal text, or a statistic over seeds with optional divergence count."""

    text: str = ""  # literal content (paper values, labels, "-")
    mean: Optional[float] = None
    half_width: Optional[float] = None  # None: no interval (n = 1)
    n: int = 0  # seeds the statistic is over
    diverged: int = 0  # k in "Fail (k/n)"
    finished: int = 0  # n in "Fail (k/n)"
    digits: int = 3
    notes: tuple = ()  # footnote reasons (rendered as markers)

    def _number(self, value: float, latex: bool) -> str:
        if math.isinf(value):
            return ("-" if value < 0 else "") + (r"\infty" if latex else "inf")
        return f"{value:.{self.digits}f}"

    def render(self, latex: bool = False) -> str:
        parts = []
        if self.mean is not None:
            number = self._number(self.mean, latex)
            if self.half_width is not None:
                number += (r" \pm " if latex else " ± ") + self._number(self.half_width, latex)
            parts.append((f"${number}$" if latex else number) + f" (n={self.n})")
        if self.diverged:
            parts.append(f"Fail ({self.diverged}/{self.finished})")
        if not parts:
            return latex_escape(self.text) if latex else self.text
        return ", ".join(parts)


@dataclasses.dataclass
class Metric:
    """A column group: summary metric `key` (or DIVERGED), with the paper's value beside ours if `paper`."""

    key: str
    label: str
    digits: int = 3
    paper: bool = False


@dataclasses.dataclass
class Row:
    """A table row: runs matching `match` (column -> value or tuple of values) are its seeds."""

    label: str
    match: Optional[dict] = None  # None: no runs (a literature or reference row)
    paper: dict = dataclasses.field(default_factory=dict)  # metric key -> value as the paper prints it
    ours: Optional[dict] = None  # metric key -> Cell/str, replacing statistics over runs (e.g. real data)
    extra: dict = dataclasses.field(default_factory=dict)  # extra column header -> Cell/str


@dataclasses.dataclass
class TableSpec:
    name: str  # file stem
    caption: str
    rows: list
    metrics: list
    row_header: str = "Run"
    extra_columns: tuple = ()  # headers of Row.extra cells, after the metric columns
    split_by: tuple = ()  # config columns that, when they vary within a row, split it into one row per value
    notes: tuple = (CI_NOTE,)  # general footnotes


@dataclasses.dataclass
class Table:
    """A built table: header, cells (DataFrame of Cell, one column per header), footnotes."""

    name: str
    caption: str
    header: list
    cells: pd.DataFrame
    notes: tuple = ()
    align: Optional[str] = None  # one of l/r per column; None: label left, numbers right

    def marked(self):
        """Cells as rows of (Cell, marker letters) and the ordered (letter, reason) footnotes."""
        letters, rows = {}, []
        for _, row in self.cells.iterrows():
            marked_row = []
            for cell in row:
                marks = []
                for note in cell.notes:
                    if note not in letters:
                        letters[note] = _letter(len(letters))
                    marks.append(letters[note])
                marked_row.append((cell, ",".join(marks)))
            rows.append(marked_row)
        return rows, [(letter, note) for note, letter in letters.items()]


def _letter(index: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[index % 26] * (index // 26 + 1)


def _as_cell(value) -> Cell:
    if isinstance(value, Cell):
        return value
    return Cell(text="" if value is None else str(value))


def select_mask(runs: pd.DataFrame, match: dict) -> pd.Series:
    keep = pd.Series(True, index=runs.index)
    for column, wanted in match.items():
        if column not in runs:
            return pd.Series(False, index=runs.index)
        wanted = tuple(wanted) if isinstance(wanted, (tuple, list, set)) else (wanted,)
        keep &= runs[column].apply(lambda value: any(_equal(value, w) for w in wanted)).astype(bool)  # object dtype when empty
    return keep


def _equal(value, wanted) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return wanted is None
    try:
        return value == wanted or str(value) == str(wanted)
    except Exception:
        return False


def summarize(runs: pd.DataFrame, metric: Metric) -> Cell:
    """The cell of ours for `metric` over `runs` (one run per seed)."""
    status = runs["status"] if len(runs) else pd.Series(dtype=object)
    completed = runs[status == "completed"]
    diverged = int((status == "diverged").sum())
    running = int((status == "running").sum())
    failed = runs[~status.isin(["completed", "diverged", "running"])]  # failed, unreadable summary
    finished = len(completed) + diverged
    notes = []
    if running and finished:
        notes.append(f"{running} more run(s) still running, not counted")
    if len(failed) and finished:
        notes.append(f"{len(failed)} run(s) failed (crashed), not counted")
    if "stale" in runs and finished:
        stale = int(runs.loc[status.isin(["completed", "diverged"]), "stale"].notna().sum())
        if stale:
            notes.append(stale_note(stale, finished))
    if len(runs) == 0:
        return Cell(text="-", notes=("not run",))
    if finished == 0:
        if running:
            return Cell(text="-", notes=("running: no run has finished yet",))
        return Cell(text="-", notes=(f"failed: {_short_reason(failed)}",))
    if metric.key == DIVERGED:
        return Cell(text=f"{diverged}/{finished}", notes=tuple(notes))
    values = metric_values(completed, metric.key)
    if not values:
        if not diverged:
            return Cell(text="-", notes=tuple(notes) + (f"metric {metric.key} not reported by the completed runs",))
        return Cell(diverged=diverged, finished=finished, notes=tuple(notes))
    mean, half_width, n = mean_ci(values)
    if n == 1:
        notes.append(SINGLE_SEED)
    return Cell(mean=mean, half_width=half_width, n=n, diverged=diverged, finished=finished,
                digits=metric.digits, notes=tuple(notes))


def _short_reason(failed: pd.DataFrame) -> str:
    reasons = [str(r) for r in failed.get("reason", pd.Series(dtype=object)) if r is not None and str(r) != "nan"]
    reason = reasons[0] if reasons else "no reason recorded"
    reason = reason.splitlines()[0] if reason else reason
    return reason if len(reason) <= 100 else reason[:97] + "..."


# Settings that may differ between the seeds of one cell: the seed itself and what cannot change a result.
POOLED_SETTINGS = ("seed", "threads", "checkpoint_ticks", "logger", "device_requested", "feeds")


def _setting_columns(runs: pd.DataFrame) -> list:
    """The run table's columns that are RunConfig settings (flattened: `model_args.width`)."""
    from roadmap.config import FIELDS

    return [c for c in runs.columns if (c.split(".")[0] in FIELDS or c == "device_requested") and c not in POOLED_SETTINGS]


def _split(runs: pd.DataFrame, row: Row, split_by: tuple) -> list:
    """[(label, runs of the row)]: a cell pools only runs that differ in the seed, so every other setting
    that varies among the row's runs splits it, and the label says which value each part has."""
    selected = runs[select_mask(runs, row.match)] if len(runs) else runs
    groups = [(row.label, selected)]
    columns = list(split_by) + [c for c in _setting_columns(selected) if c not in split_by]
    for column in columns:
        if column not in selected or selected[column].astype(str).nunique() < 2:
            continue
        groups = [(f"{label} ({column}={value})", part[part[column].astype(str) == value])
                  for label, part in groups for value in sorted(part[column].astype(str).unique())]
    return groups


def build_table(runs: pd.DataFrame, spec: TableSpec) -> Table:
    """Rows spec x metrics x seeds -> Table of Cells (paper column beside ours where the spec says so)."""
    header = [spec.row_header]
    for metric in spec.metrics:
        if metric.paper:
            header += [f"{metric.label} (paper)", f"{metric.label} (ours)"]
        else:
            header.append(metric.label)
    header += list(spec.extra_columns)
    rows, drawn = [], []
    for row in spec.rows:
        groups = [(row.label, None)] if row.match is None else _split(runs, row, spec.split_by)
        for label, selected in groups:
            if selected is not None:
                drawn.append(selected)
            cells = [Cell(text=label)]
            for metric in spec.metrics:
                if metric.paper:
                    cells.append(_as_cell(row.paper.get(metric.key, "")))
                if row.ours is not None:
                    cells.append(_as_cell(row.ours.get(metric.key, "")))
                elif selected is None:
                    cells.append(Cell(text=""))
                else:
                    cells.append(summarize(selected, metric))
            cells += [_as_cell(row.extra.get(column, "")) for column in spec.extra_columns]
            rows.append(cells)
    notes = tuple(spec.notes) + (commits_notes(pd.concat(drawn)) if drawn else ())
    return Table(spec.name, spec.caption, header, pd.DataFrame(rows, columns=header), notes)


# Renderers.

LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    return re.sub(r"[\\&%$#_{}~^±]", lambda m: LATEX_SPECIALS[m.group()], str(text))


def _alignment(table: Table) -> list:
    return list(table.align) if table.align else ["l"] + ["r"] * (len(table.header) - 1)


def render_markdown(table: Table) -> str:
    rows, footnotes = table.marked()
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = [f"**{table.caption}**", "", "| " + " | ".join(escape(h) for h in table.header) + " |",
             "|" + "|".join(":---" if a == "l" else "---:" for a in _alignment(table)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(escape(cell.render()) + (f" [{mark}]" if mark else "") for cell, mark in row) + " |")
    lines.append("")
    lines += [f"[{letter}] {note}  " for letter, note in footnotes]
    lines += [f"{note}  " for note in table.notes]
    return "\n".join(lines).rstrip() + "\n"


def render_latex(table: Table) -> str:
    """A booktabs tabular inside a table float, footnotes below; needs \\usepackage{booktabs}."""
    rows, footnotes = table.marked()
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.caption)}}}",
             rf"\label{{tab:{re.sub(r'[^A-Za-z0-9:-]', '-', table.name)}}}", r"\small",
             r"\begin{tabular}{" + "".join(_alignment(table)) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    for row in rows:
        lines.append(" & ".join(cell.render(latex=True) + (rf"\textsuperscript{{{mark}}}" if mark else "")
                                for cell, mark in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if footnotes or table.notes:
        lines += [r"\par\smallskip\footnotesize"]
        lines += [rf"\textsuperscript{{{letter}}} {latex_escape(note)}\par" for letter, note in footnotes]
        lines += [rf"{latex_escape(note)}\par" for note in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def render_html(table: Table) -> str:
    rows, footnotes = table.marked()
    out = [f'<table id="{html.escape(table.name)}"><caption>{html.escape(table.caption)}</caption>',
           "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header) + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(cell.render())}" + (f"<sup>{mark}</sup>" if mark else "") + "</td>"
                                    for cell, mark in row) + "</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="note"><sup>{letter}</sup> {html.escape(note)}</p>' for letter, note in footnotes]
    out += [f'<p class="note">{html.escape(note)}</p>' for note in table.notes]
    return "\n".join(out) + "\n"


# The quality gate's columns beside the paper's protocol (stackedmnist/quality.py, issue 24): a mode counts
# as recognisable only with a recognisable sample; runs from before the gate show "-" with a note.
RECOGNISABLE = (Metric("recognisable_modes", "Recognisable modes", 1), Metric("recognisable_fraction", "Recognisable fraction", 3))
GATE_NOTE = ("Recognisable: samples whose three digits pass the quality gate (classifier confidence, distance to real digits, "
             "sharpness; each test calibrated to reject 0.5% of real channels); Modes and KL: the paper's argmax protocol, "
             "which counts noise as modes.")


# Per-experiment helpers.

def per_experiment(runs: pd.DataFrame, keep: pd.Series, make_spec: Callable[[pd.DataFrame, str], TableSpec]) -> list:
    """Build one table per experiment holding runs where `keep`; names get the experiment when several."""
    selected = runs[keep] if len(runs) else runs
    top = selected["experiment"].astype(str).str.split("/").str[0] if len(selected) else None  # includes join their parent
    experiments = sorted(top.unique()) if len(selected) else []
    tables = []
    for experiment in experiments:
        part = selected[top == experiment]
        spec = make_spec(part, experiment)
        if len(experiments) > 1:
            spec = dataclasses.replace(spec, name=f"{spec.name}-{slug(experiment)}")
        spec = dataclasses.replace(spec, caption=f"{spec.caption}; experiment {experiment}")
        tables.append(build_table(part, spec))
    return tables


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-") or "root"


def group_rows(runs: pd.DataFrame, columns: tuple, label: Optional[Callable] = None) -> list:
    """One Row per distinct combination of `columns` in `runs` (sorted), labelled 'a, b, c' by default."""
    present = [c for c in columns if c in runs]
    if not len(runs) or not present:
        return []
    combos = runs[present].astype(str).drop_duplicates().sort_values(present)
    rows = []
    for _, combo in combos.iterrows():
        match = {c: combo[c] for c in present}
        rows.append(Row(label=label(match) if label else ", ".join(f"{v}" for v in match.values()), match=match))
    return rows


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index, dtype=object)


# Table 1.

def _lazy_one(runs: pd.DataFrame) -> pd.Series:
    return _column(runs, "lazy_interval").apply(lambda v: v is None or (isinstance(v, float) and math.isnan(v)) or str(v) == "1")


def real_row(real: Optional[dict], metrics: tuple = ("modes", "kl", "recognisable_modes", "recognisable_fraction")) -> Optional[Row]:
    """The real-data ceiling row from <experiment>/real/eval.json ({"modes", "kl", "n"})."""
    if not real:
        return None
    digits = {"modes": 0, "kl": 4, "recognisable_modes": 0, "recognisable_fraction": 3}
    ours = {}
    for key in metrics:
        value = real.get(key)
        if value is None and key.startswith("recognisable"):
            ours[key] = Cell(text="-", notes=("scored before the quality gate existed",))
            continue
        ours[key] = Cell(text="-", notes=(f"{key} missing from real/eval.json",)) if value is None else \
            Cell(text=f"{float(value):.{digits.get(key, 3)}f}")
    return Row(label=f"Real Stacked MNIST (ceiling, n={real.get('n', '?')} samples)", ours=ours)


def _real_for(real: dict, experiment: str) -> Optional[dict]:
    return real.get(experiment) or (next(iter(real.values())) if real else None)


def feeds_mask(runs: pd.DataFrame, *names) -> pd.Series:
    """Runs whose experiment declared that it feeds one of `names` (config.yaml's `feeds`)."""
    return _column(runs, "feeds").isin(names)


def kind_mask(runs: pd.DataFrame, *kinds) -> pd.Series:
    """Runs on a data set of one of the registered `kinds` (roadmap.registry.register_dataset_kind)."""
    from roadmap.registry import dataset_kind

    return _column(runs, "dataset").map(lambda name: dataset_kind(str(name))).isin(kinds)


def table1_mask(runs: pd.DataFrame) -> pd.Series:
    """Runs that feed Table 1 (and Figure 1)."""
    return feeds_mask(runs, "table1")


def table1_groups(runs: pd.DataFrame) -> list:
    """[(Table 1 row label, its runs)] for the rows that have runs (Figure 1's curves)."""
    groups = [(r["label"], runs[select_mask(runs, dict(loss=r["loss"], penalties=r["penalties"]))])
              for r in paper_numbers()["table1"]["rows"]]
    return [(label, part) for label, part in groups if len(part)]


def table1(runs: pd.DataFrame, real: Optional[dict] = None) -> list:
    """Stacked MNIST loss ablation: rpgan/gan x r1+r2/r1 (lazy interval 1), modes and KL vs Table 1."""
    paper = paper_numbers()["table1"]
    keep = table1_mask(runs)

    def make_spec(part, experiment):
        rows = [Row(label=r["label"], match=dict(loss=r["loss"], penalties=r["penalties"]),
                    paper=dict(modes=r["modes"], kl=r["kl"])) for r in paper["rows"]]
        ceiling = real_row(_real_for(real or {}, experiment))
        return TableSpec(name="table1", caption=paper["caption"], row_header="Loss",
                         rows=rows + ([ceiling] if ceiling else []),
                         metrics=[Metric("modes", "Modes", 1, paper=True), Metric("kl", "KL", 4, paper=True), *RECOGNISABLE],
                         split_by=("gamma", "model"), notes=(CI_NOTE, GATE_NOTE))

    return per_experiment(runs, keep, make_spec)


# Table 2.

@functools.lru_cache(maxsize=None)
def parameter_counts(config: str, preset: str = "ffhq256"):
    """(G, D) parameter counts of a registered configuration, built on the meta device; or an error string."""
    import torch

    from roadmap.registry import create_model

    try:
        with torch.device("meta"):
            pair = create_model(config, preset=preset)
    except Exception as error:  # not registered yet, or the builder refuses this preset
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    return count(pair.generator), count(pair.discriminator)


def _params_cell(count, error_note: str) -> Cell:
    return Cell(text=f"{count / 1e6:.3f}M") if isinstance(count, int) else Cell(text="-", notes=(error_note,))


def table2(runs: pd.DataFrame) -> list:
    """Roadmap rows A..E: FID (or offline feature distances, by their own names) and G/D parameter counts."""
    paper = paper_numbers()["table2"]
    keep = feeds_mask(runs, "table2")

    def make_spec(part, experiment):
        distances = sorted(c[len("metric."):] for c in part.columns
                           if c.startswith("metric.fd_") and part[c].notna().any())
        coverage = [Metric(key, label, digits) for key, label, digits in (("modes", "Modes", 1), ("kl", "KL", 3),
                                                                          ("recognisable_modes", "Recognisable modes", 1),
                                                                          ("recognisable_fraction", "Recognisable fraction", 3))
                    if f"metric.{key}" in part.columns and part[f"metric.{key}"].notna().any()]
        metrics = [Metric("fid", "FID", 3, paper=True)] + [Metric(key, key, 3) for key in distances] + coverage
        rows = []
        for r in paper["rows"]:
            counts = parameter_counts(r["id"])
            note = f"configuration {r['id']} not countable here ({counts})" if isinstance(counts, str) else ""
            g, d = (counts if not isinstance(counts, str) else (None, None))
            rows.append(Row(label=r["label"], match=dict(model=r["id"]), paper=dict(fid=r["fid"]), extra={
                "G params (paper)": r["G_params"], "G params (ours)": _params_cell(g, note),
                "D params (paper)": r["D_params"], "D params (ours)": _params_cell(d, note)}))
        notes = (CI_NOTE, "Parameter counts of ours: the registered configuration at the ffhq256 preset, "
                          "whatever resolution the runs used.")
        if distances:
            notes += (f"{', '.join(distances)}: Fréchet distance in a non-Inception feature space "
                      "(offline); not comparable with FID.",)
        return TableSpec(name="table2", caption=paper["caption"], row_header="Config", rows=rows, metrics=metrics,
                         extra_columns=("G params (paper)", "G params (ours)", "D params (paper)", "D params (ours)"),
                         notes=notes, split_by=("dataset",))

    return per_experiment(runs, keep, make_spec)


# Table 3.

def table3(runs: pd.DataFrame, real: Optional[dict] = None) -> list:
    """Our Config E on Stacked MNIST beside the literature rows of Table 3 and the real-data ceiling."""
    paper = paper_numbers()["table3"]
    keep = feeds_mask(runs, "table3")

    def make_spec(part, experiment):
        rows = [Row(label=r["label"], paper=dict(modes=r["modes"], kl=r["kl"])) for r in paper["rows"]]
        ours = paper["ours"]
        rows.append(Row(label=ours["label"], match=dict(model=ours["model"]), paper=dict(modes=ours["modes"], kl=ours["kl"])))
        ceiling = real_row(_real_for(real or {}, experiment))
        return TableSpec(name="table3", caption=paper["caption"], row_header="Model",
                         rows=rows + ([ceiling] if ceiling else []),
                         metrics=[Metric("modes", "Modes", 1, paper=True), Metric("kl", "KL", 4, paper=True), *RECOGNISABLE],
                         notes=(CI_NOTE, GATE_NOTE))

    return per_experiment(runs, keep, make_spec)


# Toy 2-D.

TOY_GROUPS = ("dataset", "loss", "penalties", "lazy_interval")


def _toy_label(match: dict) -> str:
    lazy = match.get("lazy_interval")
    return f"{match['dataset']}, {match['loss']} + {match['penalties']}" + (f", lazy {lazy}" if lazy not in (None, "1", "None") else "")


def toy_tables(runs: pd.DataFrame) -> list:
    """Toy 2-D results per data set x loss x penalties x lazy interval (mixtures and curves apart)."""
    tables = []
    for name, kind, metrics in (
        ("toy-mixtures", "toy_mixture", [Metric("modes", "Modes", 1), Metric("modes_pacgan", "Modes (PacGAN: >= 1 HQ sample)", 1),
                                    Metric("hq_fraction", "High-quality fraction", 3), Metric("kl", "KL", 3)]),
        ("toy-curves", "toy_curve", [Metric("support_distance", "Support distance", 4), Metric("coverage", "Coverage", 3),
                                Metric("hq_fraction", "High-quality fraction", 3),
                                Metric("kl", "KL", 3)]),
    ):
        def make_spec(part, experiment, name=name, metrics=metrics):
            datasets = sorted(part["dataset"].astype(str).unique())
            return TableSpec(name=name, caption=f"2-D toy data: {', '.join(datasets)}", row_header="Data, loss",
                             rows=group_rows(part, TOY_GROUPS, _toy_label), split_by=("gamma", "model"),
                             metrics=metrics + [Metric(DIVERGED, "Diverged/total")])

        tables += per_experiment(runs, feeds_mask(runs, "toy2d-ablation") & kind_mask(runs, kind), make_spec)
    return tables


# DiracGAN.

def _complex_pairs(pairs) -> str:
    return ", ".join(f"{re_:+.4f}{im:+.4f}i" for re_, im in pairs)


def dirac_table(dirac: list) -> list:
    """Measured vs closed-form Jacobian eigenvalues at the DiracGAN equilibrium, per gamma x loss x penalty."""
    if not dirac:
        return []
    header = ["gamma", "Loss", "Penalty", "Eigenvalues (measured)", "Closed form", "Locally convergent"]
    rows = []
    for entry in sorted(dirac, key=lambda e: (str(e.get("experiment")), float(e.get("gamma", 0)))):
        for result in entry.get("results", []):
            max_real = max(re_ for re_, _ in result["eigenvalues"])
            rows.append([Cell(text=f"{float(entry.get('gamma', float('nan'))):g}"), Cell(text=result["loss"]),
                         Cell(text=result["penalty"]), Cell(text=_complex_pairs(result["eigenvalues"])),
                         Cell(text=_complex_pairs(result["closed_form"])),
                         Cell(text="yes" if max_real < -1e-9 else "no (max Re = %+.4f)" % max_real)])
    notes = ("Jacobian of the gradient vector field at (theta, psi) = (0, 0), measured by autograd through the "
             "implemented losses; closed form (Appendix B): ±f'(0)i without penalty, "
             "-c/2 ± sqrt(c²/4 - f'(0)²) with c = gamma x (number of penalties), f'(0) = 1/2.",)
    return [Table("dirac", "DiracGAN / DiracRpGAN eigenvalues (paper Appendix B)", header,
                  pd.DataFrame(rows, columns=header), notes, align="rlllll")]


# Registration (reports/registry.py): each builder claims the runs of its feeds name.

@register_table("table1", order=10)
def _table1(results) -> list:
    return table1(results.runs, results.real)


@register_table("table2", order=20)
def _table2(results) -> list:
    return table2(results.runs)


@register_table("table3", order=30)
def _table3(results) -> list:
    return table3(results.runs, results.real)


@register_table("toy2d-ablation", order=40)
def _toy(results) -> list:
    return toy_tables(results.runs)


@register_table(order=50)  # from dirac.json analyses, not runs: claims no feeds
def _dirac(results) -> list:
    return dirac_table(results.dirac)


def provenance_table(runs: pd.DataFrame) -> Optional[Table]:
    """Per run: experiment, run, status, kimg, wall time, device, git commit, config hash."""
    if not len(runs):
        return None
    header = ["Experiment", "Run", "Status", "kimg", "Wall (s)", "Device", "Git commit", "Config hash"]
    rows = []
    for _, run in runs.sort_values(["experiment", "run"]).iterrows():
        fmt = lambda value, spec="": "-" if value is None or (isinstance(value, float) and math.isnan(value)) else (  # noqa: E731
            format(value, spec) if isinstance(value, (int, float)) or not spec else str(value))  # garbage shows as itself
        rows.append([Cell(text=str(run["experiment"])), Cell(text=str(run["run"])), Cell(text=str(run["status"])),
                     Cell(text=fmt(run.get("kimg"), ".1f")), Cell(text=fmt(run.get("wall_seconds"), ".0f")),
                     Cell(text=fmt(run.get("device"))), Cell(text=fmt(run.get("git_commit"))),
                     Cell(text=fmt(run.get("config_hash")))])
    return Table("provenance", "Provenance of every run", header, pd.DataFrame(rows, columns=header), align="lllrrlll")
