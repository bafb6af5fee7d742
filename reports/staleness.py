"""Stale evidence made visible (issue 24): a run is current when the fingerprint in its summary equals what the code computes now.

The fingerprint (roadmap/fingerprint.py) hashes two training iterations of the run's network,
loss and precision on fixed inputs, so a refactor that keeps every number bitwise keeps its runs
current, and a change of arithmetic makes them stale whichever files it touched. Runs without a
fingerprint (written before it existed) are stale. Unfinished runs are not judged.
"""
import pandas as pd
import yaml

STALE_NOTE = "stale"  # prefix of the table-cell note that marks stale runs (reports/tables.py summarize)


def stale_reasons(runs: pd.DataFrame, cache=None) -> pd.Series:
    """run_dir-indexed reasons (None for current or unfinished runs) for each row of the run table."""
    from pathlib import Path

    from roadmap.fingerprint import FingerprintCache, config_from_stored

    cache = cache or FingerprintCache()
    reasons = []
    for _, run in runs.iterrows():
        if run.get("status") not in ("completed", "diverged"):
            reasons.append(None)
            continue
        stored = run.get("fingerprint")
        if not isinstance(stored, str) or not stored:
            reasons.append("no fingerprint (run before fingerprints were recorded)")
            continue
        try:
            config = config_from_stored(yaml.safe_load((Path(run["run_dir"]) / "config.yaml").read_text()))
            now = cache(config)
        except Exception as error:  # an unreadable or unbuildable configuration cannot be shown current
            reasons.append(f"fingerprint not computable now ({type(error).__name__})")
            continue
        reasons.append(None if now == stored else f"fingerprint {stored}, the code computes {now}")
    return pd.Series(reasons, index=runs.index, dtype=object)


def mark_stale(runs: pd.DataFrame, cache=None) -> pd.DataFrame:
    """The run table with a `stale` column (reason or None)."""
    runs = runs.copy()
    runs["stale"] = stale_reasons(runs, cache) if len(runs) else pd.Series(dtype=object)
    return runs


def commits_of(runs: pd.DataFrame) -> tuple:
    """The git commits the runs were computed at, sorted (runs without one are left out)."""
    if not len(runs) or "git_commit" not in runs:
        return ()
    return tuple(sorted({str(c) for c in runs["git_commit"].dropna() if str(c) not in ("", "nan", "None")}))


def commits_note(commits) -> str:
    """"Runs from commit(s) ...": stated under every table and figure of runs, so which code made them is never a guess."""
    commits = tuple(commits)
    return f"Runs from commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}." if commits else ""


def commits_notes(runs: pd.DataFrame) -> tuple:
    """A table's notes for its runs' commits: (the commits_note,), or () when none recorded one."""
    note = commits_note(commits_of(runs))
    return (note,) if note else ()


def stale_note(count: int, total: int) -> str:
    return f"{STALE_NOTE}: {count} of {total} runs computed by code whose fingerprint differs from this code's (or have none)"


def stale_tables(tables) -> list:
    """Names of built tables with a cell that holds stale runs."""
    return [table.name for table in tables
            if any(note.startswith(STALE_NOTE + ":") for column in table.cells for cell in table.cells[column] for note in cell.notes)]
