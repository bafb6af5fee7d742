"""Every table, figure and section of a report, and the runs no table claims (paper Tables 1-3, the toys, Appendix E, stability).

They come from the registry (reports/registry.py): every module of the `reports` package is
imported once here, so a table registered in a new module is found without a list to edit.
"""
import importlib
import pkgutil

import pandas as pd

import reports
from reports.registry import registered_feeds, table_entries
from reports.sections import tables_of
from reports.tables import Cell, Table


def load_report_modules() -> None:
    """Import every module of the reports package and the `r3bench.plugins` entry points (idempotent),
    so that their tables are registered: a plug-in package's table is one module of its own."""
    from roadmap.registry import load_plugins

    for module in pkgutil.iter_modules(reports.__path__):
        importlib.import_module(f"reports.{module.name}")
    load_plugins()


def claimed_feeds() -> set:
    """Every `feeds` name some registered table or section takes its runs from."""
    load_report_modules()
    return registered_feeds()


def report_items(results) -> list:
    """What every registered builder makes of the collected results (tables, figures, sections, notes), in report order."""
    load_report_modules()
    return [item for entry in table_entries() for item in entry.builder(results)]


def all_tables(results) -> list:
    """Every table the collected results have data for, in report order; each takes only the runs that declared it."""
    return tables_of(report_items(results))


def unclaimed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs whose experiment feeds no table of this report (no `feeds`, or a name no table knows)."""
    if not len(runs):
        return runs
    feeds = runs["feeds"] if "feeds" in runs else pd.Series(None, index=runs.index)
    return runs[~feeds.isin(claimed_feeds())]


def unclaimed_table(runs: pd.DataFrame):
    """A table listing the unclaimed runs (experiment, run, feeds, status), or None when every run is claimed."""
    part = unclaimed_runs(runs)
    if not len(part):
        return None
    header = ["Experiment", "Run", "Feeds", "Status"]
    rows = [[Cell(text=str(r["experiment"])), Cell(text=str(r["run"])),
             Cell(text=r.get("feeds") if isinstance(r.get("feeds"), str) else "(none)"), Cell(text=str(r["status"]))]
            for _, r in part.sort_values(["experiment", "run"]).iterrows()]
    return Table("unclaimed", "Runs that no table claims (their experiment declares no known `feeds`)", header,
                 pd.DataFrame(rows, columns=header), align="llll")
