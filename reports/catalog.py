"""Every table of a report, and the runs no table claims (paper Tables 1-3, the toys, Appendix E sections)."""
import pandas as pd

from reports import negative, stability
from reports.tables import TABLE_FEEDS, Cell, Table, dirac_table, table1, table2, table3, toy_tables


def claimed_feeds() -> set:
    """Every `feeds` name some table or section of the report takes its runs from."""
    return set(TABLE_FEEDS) | {section.name for section in negative.SECTIONS} | {stability.FEEDS}


def all_tables(results) -> list:
    """Every table the collected results have data for; each takes only the runs that declared it."""
    runs = results.runs
    return (table1(runs, results.real) + table2(runs) + table3(runs, results.real) + toy_tables(runs)
            + dirac_table(results.dirac) + negative.negative_tables(results))


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
