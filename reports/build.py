"""`build_report`: every table and figure the results have data for, an index report.md and a self-contained report.html.

Layout of the output folder: tables/<name>.md and .tex, figures/<name>.png and .pdf,
report.md (links + provenance) and report.html (figures embedded as base64). Missing data
never raises: an empty results folder, a corrupt summary.json or an absent figure input
becomes a sentence in the report.
"""
import base64
import dataclasses
import datetime
import html
from pathlib import Path

import pandas as pd

from reports import convergence, figures, negative, stability
from reports.catalog import all_tables, unclaimed_table
from reports.collect import REFERENCE, Results, collect, experiment_wall_times
from reports.scoreboard import scoreboard, summary_counts
from reports.staleness import mark_stale, stale_tables
from reports.tables import (
    kind_mask,
    provenance_table,
    render_html,
    render_latex,
    render_markdown,
    slug,
    table1_groups,
    table1_mask,
)
from roadmap import files
from roadmap.errors import ConfigError

STATUSES = ("completed", "diverged", "failed", "running", "unreadable")
MAX_DIRAC_GAMMAS = 4  # phase-portrait figures per report (each takes a few seconds)


def _by_experiment(runs: pd.DataFrame, mask) -> list:
    """[(top-level experiment, its runs)]: an included experiment's runs join their parent's figures, as in the tables."""
    selected = runs[mask] if len(runs) else runs
    top = selected["experiment"].astype(str).str.split("/").str[0] if len(selected) else None
    experiments = sorted(top.unique()) if len(selected) else []
    return [(experiment, selected[top == experiment]) for experiment in experiments]


def _name(base: str, experiment: str, count: int) -> str:
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


def _figures(results: Results, out_dir: Path, portrait_steps: int) -> tuple:
    """Write every figure with data; return ([(name, title)], [notes on skipped figures])."""
    made, notes = [], []
    runs, ticks = results.runs, results.ticks
    figure_dir = out_dir / "figures"

    def save(result, name, title):
        figures.save_figure(result[0], figure_dir, name)
        made.append((name, title))

    # Figure 1 and the gradient norms: Table 1 runs (negative-result runs have their own figures).
    groups_by_experiment = _by_experiment(runs, table1_mask(runs) if len(runs) else [])
    for experiment, part in groups_by_experiment:
        groups = table1_groups(part)
        if not groups:
            continue
        suffix = "" if len(groups_by_experiment) == 1 else f" ({experiment})"
        save(figures.plot_generator_loss(ticks, groups, title=f"G loss{suffix}"),
             _name("figure1", experiment, len(groups_by_experiment)), f"Figure 1: G loss over kimg{suffix}")
        save(figures.plot_gradient_norms(ticks, groups, title=f"D input-gradient norm{suffix}"),
             _name("grad-norms", experiment, len(groups_by_experiment)), f"D input-gradient norm, real vs fake{suffix}")

    # Toy 2-D sample grids: data set x loss.
    toy = _by_experiment(runs, kind_mask(runs, "toy_mixture", "toy_curve") if len(runs) else [])
    for experiment, part in toy:
        entries = []
        # a setting that varies within the experiment (the stability map's lr, gamma) gets its own column,
        # named in the label: one run's samples never stand for another setting's
        varying = [c for c in ("lr", "gamma") if c in part and part[c].astype(str).nunique() > 1]
        columns = ["dataset", "loss", "penalties", "lazy_interval"] + varying
        for keys, group in part.groupby(columns, dropna=False, sort=True):
            values = dict(zip(columns, keys))
            label = _loss_label(values) + "".join(f", {c} {values[c]:g}" if isinstance(values[c], float) else f", {c} {values[c]}"
                                                  for c in varying)
            entries.append((str(keys[0]), label, _first_samples(group)))
        if not any(path for _, _, path in entries):
            notes.append(f"Toy sample grid ({experiment}): no run saved samples/final.png.")
            continue
        save(figures.plot_image_grid(entries, title=f"2-D toy samples over the data ({experiment})"),
             _name("toy-samples", experiment, len(toy)), f"2-D toy samples, data set x loss ({experiment})")

    # Stacked MNIST sample grids and mode histograms.
    mnist = _by_experiment(runs, kind_mask(runs, "stackedmnist") if len(runs) else [])
    for experiment, part in mnist:
        entries = []
        # Settings that vary within the experiment (an Appendix E variant: activation, normalization, precision,
        # beta2) get their own panel, named in the label: one variant's samples never stand for another's.
        varying = [c for c in ("model_args.activation", "model_args.normalization", "model_args.precision", "beta2", "kimg")
                   if c in part and part[c].astype(str).nunique() > 1]
        columns = ["model", "loss", "penalties", "lazy_interval"] + varying
        for keys, group in part.groupby(columns, dropna=False, sort=True):
            values = dict(zip(columns, keys))
            label = f"{keys[0]}: " + _loss_label(values) + "".join(f", {c.split('.')[-1]} {values[c]}" for c in varying)
            entries.append((experiment, label, _first_samples(group)))
        if any(path for _, _, path in entries):
            save(figures.plot_image_grid(entries, title=f"Stacked MNIST samples ({experiment})"),
                 _name("stackedmnist-samples", experiment, len(mnist)), f"Stacked MNIST samples ({experiment})")
        else:
            notes.append(f"Stacked MNIST sample grid ({experiment}): no run saved samples/final.png.")

    # Discrete-time DiracGAN (`r3bench dirac --discrete DIR`, saved as results): the prediction for the toys.
    for path in sorted(Path(results.results_dir).rglob("dirac-discrete.json"))[:1]:
        try:
            from toy2d.dirac_discrete import plot_cycle_maps

            save(plot_cycle_maps(files.read_json(path)), "dirac-discrete",
                 "Discrete-time DiracRpGAN: where the trainer's iteration settles (cycle size over lr x gamma, lazy 1 and 8)")
        except (OSError, ValueError, KeyError, TypeError) as error:
            notes.append(f"Discrete-time DiracGAN map skipped: {path} unreadable ({error}).")
            continue
        # The toys against that prediction (dirac-toys beside lazy-reg-toys), when their runs are here.
        try:
            drawn = convergence.plot_dirac_toys(runs, convergence.lazy_factor(files.read_json(path)))
        except (OSError, ValueError, KeyError, TypeError) as error:
            drawn = None
            notes.append(f"Dirac prediction vs the toys skipped: {path} unreadable ({error}).")
        if drawn is not None:
            save(drawn, "dirac-toys", "Discrete-time DiracGAN prediction (drift proportional to lr; lazy 8 x the simulated factor) "
                 "vs the toys' late drift")

    # Learning curves: the periodic scores (score_ticks) that size each experiment's duration (issue 25).
    for experiment, part in _by_experiment(runs, runs["run_dir"].notna() if len(runs) else []):
        curves = figures.plot_learning_curves(ticks, part, title=f"Learning curves ({experiment})")
        if curves is not None:
            save(curves, _name("learning-curves", experiment, 2), f"Learning curves ({experiment}): periodic scores over kimg")

    # DiracGAN phase portraits.
    gammas = sorted({float(entry.get("gamma", 1.0)) for entry in results.dirac})
    if gammas:
        try:
            for gamma in gammas[:MAX_DIRAC_GAMMAS]:
                save(figures.plot_dirac_portraits(gamma, steps=portrait_steps), f"dirac-gamma{gamma:g}",
                     f"DiracGAN / DiracRpGAN phase portraits, gamma = {gamma:g}")
        except ImportError as error:
            notes.append(f"DiracGAN phase portraits skipped: toy2d.dirac.plot_phase_portrait unavailable ({error}).")
    return made, notes


def _own_section(table) -> bool:
    """Tables shown in their own section (Appendix E, stability) rather than under "Tables"."""
    return table.name.startswith("negative-") or table.name == stability.FEEDS


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
        return [f"Every finished run is current: its fingerprint equals this code's (commits {', '.join(commits)}).", ""]
    return [f"**Stale runs: {count} of {len(runs)}** (fingerprint differs from this code's, or none recorded); tables holding "
            f"them: {', '.join(stale) or 'none'} (marked in their cells). Commits of the runs: {', '.join(commits)}. "
            "`r3bench report --check` fails while any table holds stale runs.", ""]


def _problem_lines(results: Results) -> list:
    return [f"`{path}`: {reason}" for path, reason in results.problems]


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
    tables = all_tables(results)
    reference_tables = []
    if reference_dir is not None:
        reference = collect(reference_dir)
        reference.runs = mark_stale(reference.runs)
        reference_tables = [dataclasses.replace(table, name=f"reference-{table.name}",
                                                caption=f"{table.caption} - reference runs (results/{REFERENCE})")
                            for table in all_tables(reference)]
        if not len(results.runs):  # nothing of yours yet: the scoreboard judges the reference evidence
            results.dirac = reference.dirac
            board_runs = reference.runs
        else:
            board_runs = results.runs
    else:
        board_runs = results.runs
    board = scoreboard(board_runs, results.dirac, set(board_runs.loc[board_runs["stale"].notna(), "run_dir"])
                       if len(board_runs) else set())
    stale = stale_tables(tables + reference_tables + [board])
    stale_feeds = set(board_runs.loc[board_runs["stale"].notna(), "feeds"].astype(str)) if len(board_runs) else set()
    stale += [table.name for table in tables if table.name in stale_feeds and table.name not in stale]  # tables without run cells
    for table in reference_tables:
        files.write_text(out_dir / "tables" / f"{table.name}.md", render_markdown(table))
        files.write_text(out_dir / "tables" / f"{table.name}.tex", render_latex(table))
    references = {table.name[len("reference-"):]: table for table in reference_tables}
    if stale_out is not None:
        stale_out.extend(stale)
    files.write_text(out_dir / "tables" / "scoreboard.md", render_markdown(board))
    files.write_text(out_dir / "tables" / "scoreboard.tex", render_latex(board))
    for table in tables:
        files.write_text(out_dir / "tables" / f"{table.name}.md", render_markdown(table))
        files.write_text(out_dir / "tables" / f"{table.name}.tex", render_latex(table))
    made, figure_notes = _figures(results, out_dir, portrait_steps)
    provenance = provenance_table(results.runs)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    # report.md
    md = ["# r3bench report", "", f"Results folder: `{results_dir}`; built {stamp}.", "", _status_line(results.runs), "",
          "## Claims scoreboard", "", f"Verdicts: {summary_counts(board)}.", "", render_markdown(board), *_stale_lines(results, stale)]
    if results.problems:
        md += ["## Problems", "", "These could not be read and are left out of the tables:", ""]
        md += [f"- {line}" for line in _problem_lines(results)] + [""]
    negative_sections = negative.report_sections(results, out_dir)
    stability_table = next((table for table in tables if table.name == stability.FEEDS), None)  # written above
    if stability_table is not None:
        stability_verdicts = stability.verdicts(results.runs)
        figures.save_figure(stability.plot_stability_map(results.runs)[0], out_dir / "figures", "stability-map")
        figures.save_figure(stability.plot_stability_map(results.runs, "log10 of the median peak G loss over seeds",
                                                         "median_peak_loss_G")[0], out_dir / "figures", "stability-peak-loss")
        md += ["## Stability map (Table 1 'Fail', Figure 1, Appendix E lazy regularization)", "",
               *[f"- {line}" for line in stability_verdicts], "",
               *[line + "\n" for line in experiment_wall_times(results, stability.FEEDS)], render_markdown(stability_table),
               "![Stability map](figures/stability-map.png)", "",
               "![Stability map: log10 median peak G loss](figures/stability-peak-loss.png)", ""]
    unclaimed = unclaimed_table(results.runs)
    if unclaimed is not None:
        files.write_text(out_dir / "tables" / "unclaimed.md", render_markdown(unclaimed))
        md += ["## Unclaimed runs", "", f"**Warning:** {len(unclaimed.cells)} run(s) feed no table of this report: their "
               "experiment file declares no `feeds:` that a table knows, so they appear in no table or verdict.", "",
               render_markdown(unclaimed)]
    md += ["## Tables", ""]
    if not tables and not references:
        md += ["No table has data yet.", ""]
    elif reference_dir is not None:
        md += [f"Each table of your runs is followed by the same table of the reference runs (`{reference_dir}`, the "
               "committed evidence); both carry the paper's numbers.", ""]
    shown = [table for table in tables if not _own_section(table)]
    shown += [table for name, table in references.items() if name not in {t.name for t in tables} and not _own_section(
        dataclasses.replace(table, name=name))]
    for table in shown:
        name = table.name[len("reference-"):] if table.name.startswith("reference-") else table.name
        md += [f"### Table `{name}`", "", f"[Markdown](tables/{table.name}.md) · [LaTeX](tables/{table.name}.tex)", ""]
        if table.name.startswith("reference-"):
            md += ["No runs of yours for this table yet.", ""]
        else:
            md += [render_markdown(table)]
        if name in references:
            md += [render_markdown(references[name])]
    md += ["## Figures", ""]
    if not made:
        md += ["No figure has data yet.", ""]
    for name, title in made:
        md += [f"### {title}", "", f"![{title}](figures/{name}.png)", "", f"[PDF](figures/{name}.pdf)", ""]
    md += [f"- {note}" for note in figure_notes] + ([""] if figure_notes else [])
    if negative_sections:
        md += ["## Negative results (paper Appendix E)", ""] + negative.markdown_lines(negative_sections)
    if provenance is not None:
        md += ["## Provenance", "", render_markdown(provenance)]
    report_md = out_dir / "report.md"
    files.write_text(report_md, "\n".join(md).rstrip() + "\n")

    # report.html: the same content, figures embedded.
    body = [f"<h1>r3bench report</h1><p>Results folder: <code>{html.escape(str(results_dir))}</code>; built {stamp}.</p>",
            f"<p>{html.escape(_status_line(results.runs))}</p>", "<h2>Claims scoreboard</h2>", render_html(board),
            "".join(f"<p>{html.escape(line)}</p>" for line in _stale_lines(results, stale) if line)]
    if results.problems:
        body.append("<h2>Problems</h2><ul>" + "".join(
            f"<li><code>{html.escape(path)}</code>: {html.escape(reason)}</li>" for path, reason in results.problems) + "</ul>")
    body.append("<h2>Tables</h2>" + ("" if shown else "<p>No table has data yet.</p>"))
    for table in shown:
        name = table.name[len("reference-"):] if table.name.startswith("reference-") else table.name
        body += [render_html(table)] + ([render_html(references[name])] if name in references and table.name != f"reference-{name}" else [])
    body.append("<h2>Figures</h2>" + ("" if made else "<p>No figure has data yet.</p>"))
    for name, title in made:
        data = base64.b64encode((out_dir / "figures" / f"{name}.png").read_bytes()).decode()
        body.append(f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(title)}</figcaption></figure>")
    body += [f'<p class="note">{html.escape(note)}</p>' for note in figure_notes]
    if stability_table is not None:
        body += ["<h2>Stability map (Table 1 'Fail', Figure 1, Appendix E lazy regularization)</h2>",
                 "<ul>" + "".join(f"<li>{html.escape(line.replace('**', ''))}</li>" for line in stability_verdicts) + "</ul>",
                 render_html(stability_table)]
        for name, caption in (("stability-map", "Stability map: divergence rate"),
                              ("stability-peak-loss", "Stability map: log10 median peak G loss")):
            data = base64.b64encode((out_dir / "figures" / f"{name}.png").read_bytes()).decode()
            body.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')
    if negative_sections:
        body.append("<h2>Negative results (paper Appendix E)</h2>")
    for entry in negative_sections:
        section = entry["section"]
        body += [f"<h3>{html.escape(section.title)} ({html.escape(section.name)})</h3>",
                 f"<blockquote>Paper (Appendix E): &quot;{html.escape(section.claim)}&quot;</blockquote>",
                 f"<p>{html.escape(entry['verdict'].replace('**', ''))}</p>", render_html(entry["table"])]
        for name, title in entry["figures"]:
            data = base64.b64encode((out_dir / "figures" / f"{name}.png").read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(title)}</figcaption></figure>")
    if unclaimed is not None:
        body += ["<h2>Unclaimed runs</h2>", f"<p><b>Warning:</b> {len(unclaimed.cells)} run(s) feed no table of this report.</p>",
                 render_html(unclaimed)]
    if provenance is not None:
        body += ["<h2>Provenance</h2>", render_html(provenance)]
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border-top:1px solid #ccc;padding:2px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}caption{font-weight:bold;text-align:left}"
             "img{max-width:100%}.note{font-size:85%;color:#444;margin:0.2em 0}")
    files.write_text(out_dir / "report.html", "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>r3bench report</title>"
                     f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    return report_md
