"""`build_report`: every table and figure the results have data for (paper Tables 1-3, Figure 1, Appendix E), in report.md and a self-contained report.html.

The registered table builders (reports/registry.py) return tables, figures and sections; this module
arranges them into one tree of sections (reports/sections.py) in a fixed order: claims scoreboard,
problems, unclaimed runs, "Tables" (every table no section holds, each followed by the reference's
twin), "Figures", the builders' own sections in registration order, provenance; it writes the files
and renders the tree twice. Layout of the output folder: tables/<name>.md and .tex, figures/<name>.png
and .pdf, report.md (links) and report.html (figures embedded as base64). Missing data never raises:
an empty results folder, a corrupt summary.json or an absent figure input becomes a sentence in the
report.
"""
import dataclasses
import datetime
from pathlib import Path

import pandas as pd

from reports.catalog import report_items, unclaimed_table
from reports.collect import REFERENCE, Results, collect
from reports.figures import save_figure
from reports.scoreboard import scoreboard, summary_counts
from reports.sections import Bullets, Figure, Links, Section, tables_of, to_html, to_markdown
from reports.staleness import mark_stale, stale_tables
from reports.tables import provenance_table, render_latex, render_markdown
from roadmap import files
from roadmap.errors import ConfigError

STATUSES = ("completed", "diverged", "failed", "running", "unreadable")


def _status_line(runs: pd.DataFrame) -> str:
    if not len(runs):
        return "No run folders (folders holding config.yaml) were found."
    counts = runs["status"].value_counts()
    parts = [f"{int(counts[s])} {s}" for s in STATUSES if s in counts]
    parts += [f"{int(n)} {s}" for s, n in counts.items() if s not in STATUSES]
    return f"{len(runs)} run(s): " + ", ".join(parts) + "."


def _stale_lines(results: Results, stale: list) -> list:
    """The staleness paragraph: which tables hold runs of other code (fingerprint), and the commits of all runs."""
    runs = results.runs
    if not len(runs) or "stale" not in runs:
        return []
    count = int(runs["stale"].notna().sum())
    commits = sorted({str(c) for c in runs["git_commit"].dropna()})
    if not count:
        return [f"Every finished run is current: its fingerprint equals this code's (commits {', '.join(commits)})."]
    return [f"**Stale runs: {count} of {len(runs)}** (fingerprint differs from this code's, or none recorded); tables holding "
            f"them: {', '.join(stale) or 'none'} (marked in their cells). Commits of the runs: {', '.join(commits)}. "
            "`r3bench report --check` fails while any table holds stale runs."]


def _tables_section(tables: list, placed: set, references: dict, reference_dir) -> Section:
    """The "Tables" section: each table of yours that no section holds, followed by the reference's table of the same
    name, then the reference tables you have no runs for."""
    if not tables and not references:
        intro = ["No table has data yet."]
    elif reference_dir is not None:
        intro = [f"Each table of your runs is followed by the same table of the reference runs (`{reference_dir}`, the "
                 "committed evidence); both carry the paper's numbers."]
    else:
        intro = []
    yours = {table.name for table in tables}
    parts = [Section(f"Table `{table.name}`", [Links(table.name), table, *([references[table.name]] if table.name in references else [])])
             for table in tables if table.name not in placed]
    parts += [Section(f"Table `{name}`", [Links(table.name), "No runs of yours for this table yet.", table])
              for name, table in references.items() if name not in yours and name not in placed]
    return Section("Tables", intro + parts)


def _figures_section(items: list) -> Section:
    """The "Figures" section: a subsection per figure the table builders made, then the notes on those they left out."""
    made = [item for item in items if isinstance(item, Figure)]
    notes = tuple(item for item in items if isinstance(item, str))
    return Section("Figures", ([] if made else ["No figure has data yet."]) + [Section(figure.title, [figure]) for figure in made]
                   + ([Bullets(notes)] if notes else []))


def _write_table(out_dir: Path, table) -> None:
    files.write_text(out_dir / "tables" / f"{table.name}.md", render_markdown(table))
    files.write_text(out_dir / "tables" / f"{table.name}.tex", render_latex(table))


def build_report(results_dir, out_dir=None, portrait_steps: int = 800, stale_out: list = None) -> Path:
    """Write tables, figures, report.md and report.html for every run under results_dir; return report.md.

    `stale_out`, when given, receives the names of the tables that hold stale runs (reports/staleness.py).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ConfigError(f"RESULTS_DIR: {results_dir} is not a folder")
    out_dir = Path(out_dir) if out_dir is not None else results_dir / "report"
    # The user's runs and, when RESULTS_DIR holds `reference/` (the committed evidence), the reference runs
    # apart: each table of yours is followed by the reference's table of the same name (yours / reference / paper).
    reference_dir = results_dir / REFERENCE if (results_dir / REFERENCE).is_dir() else None
    results = collect(results_dir, exclude=(REFERENCE,) if reference_dir else ())
    results.runs = mark_stale(results.runs)
    results.portrait_steps = portrait_steps
    if reference_dir is not None:
        reference = collect(reference_dir)
        reference.runs = mark_stale(reference.runs)
        results.reference = reference  # for tables that set the reference's rows beside yours (reports/official.py)
    items = report_items(results)
    tables = tables_of(items)
    sections = [item for item in items if isinstance(item, Section)]
    placed = {table.name for section in sections for table in section.tables}  # shown in their own section, not under "Tables"
    reference_tables = []
    if reference_dir is not None:
        reference_items = report_items(reference)
        placed |= {table.name for item in reference_items if isinstance(item, Section) for table in item.tables}
        reference_tables = [dataclasses.replace(table, name=f"reference-{table.name}",
                                                caption=f"{table.caption} - reference runs (results/{REFERENCE})")
                            for table in tables_of(reference_items)]
        if not len(results.runs):  # nothing of yours yet: the scoreboard judges the reference evidence
            results.dirac = reference.dirac
            board_runs = reference.runs
        else:
            board_runs = results.runs
    else:
        board_runs = results.runs
    board = scoreboard(board_runs, results.dirac, _stale_dirs(board_runs))
    if reference_dir is not None and board_runs is not reference.runs:  # yours judged above, the reference's beside it
        reference_tables.insert(0, dataclasses.replace(
            scoreboard(reference.runs, reference.dirac, _stale_dirs(reference.runs)), name="reference-scoreboard",
            caption=f"{board.caption} - reference runs (results/{REFERENCE})"))
    stale = stale_tables(tables + reference_tables + [board])
    stale_feeds = set(board_runs.loc[board_runs["stale"].notna(), "feeds"].astype(str)) if len(board_runs) else set()
    stale += [table.name for table in tables if table.name in stale_feeds and table.name not in stale]  # tables without run cells
    if stale_out is not None:
        stale_out.extend(stale)
    for table in reference_tables + [board] + tables:
        _write_table(out_dir, table)
    references = {table.name[len("reference-"):]: table for table in reference_tables}
    unclaimed = unclaimed_table(results.runs)
    if unclaimed is not None:
        files.write_text(out_dir / "tables" / "unclaimed.md", render_markdown(unclaimed))
    provenance = provenance_table(results.runs)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    # The report, built once as sections and rendered twice: report.md and report.html hold the same order.
    board_blocks = [f"Verdicts: {summary_counts(board)}.", board]
    if "scoreboard" in references:
        board_blocks = [f"Your runs: {summary_counts(board)}.", board,
                        f"The reference runs (results/{REFERENCE}): {summary_counts(references['scoreboard'])}.",
                        references["scoreboard"]]
    parts = [Section("Claims scoreboard", [*board_blocks, *_stale_lines(results, stale)])]
    if results.problems:
        parts.append(Section("Problems", ["These could not be read and are left out of the tables:",
                                          Bullets(tuple(f"`{path}`: {reason}" for path, reason in results.problems))]))
    if unclaimed is not None:
        parts.append(Section("Unclaimed runs", [
            f"**Warning:** {len(unclaimed.cells)} run(s) feed no table of this report: their experiment file declares no "
            "`feeds:` that a table knows, so they appear in no table or verdict.", unclaimed]))
    parts += [_tables_section(tables, placed | {"scoreboard"}, references, reference_dir), _figures_section(items), *sections]
    if provenance is not None:
        parts.append(Section("Provenance", [provenance]))
    report = Section("r3bench report", [f"Results folder: `{results_dir}`; built {stamp}.", _status_line(results.runs), *parts])
    for figure in report.figures:
        save_figure(figure.draw()[0], out_dir / "figures", figure.name)
    report_md = out_dir / "report.md"
    files.write_text(report_md, to_markdown(report))
    files.write_text(out_dir / "report.html", to_html(report, out_dir / "figures"))
    written = {table.name for table in reference_tables + [board] + tables} | ({"unclaimed"} if unclaimed is not None else set())
    _remove_stale_outputs(out_dir, written, {figure.name for figure in report.figures})
    return report_md


def _stale_dirs(runs) -> set:
    """run_dir of every stale run (reports/staleness.py) in a run table."""
    return set(runs.loc[runs["stale"].notna(), "run_dir"]) if len(runs) else set()


def _remove_stale_outputs(out_dir: Path, tables: set, figures: set) -> None:
    """Delete tables/*.md|tex and figures/*.png|pdf that this build did not write: a table or figure whose runs are
    gone (retired evidence) must not linger beside the new ones, where the README splice would still show it."""
    for folder, names, suffixes in (("tables", tables, (".md", ".tex")), ("figures", figures, (".png", ".pdf"))):
        for path in sorted((out_dir / folder).glob("*")) if (out_dir / folder).is_dir() else []:
            if path.is_file() and path.suffix in suffixes and path.stem not in names:
                path.unlink()
