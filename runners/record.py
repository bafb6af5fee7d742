"""experiment.json beside an experiment's run folders: the measured wall time of the `r3bench run` that trained them.

Written by `r3bench run` when it trained at least one run (a call that only skipped finished runs
keeps the earlier record); read by reports (the stability and Appendix E sections quote it).
"""
import datetime
import os
import platform
import sys
from pathlib import Path

from roadmap import files


def write_experiment_record(folder: Path, name: str, preset, executor: str, started: float, finished: float, runs: int,
                            trained: int, max_parallel=None, git_commit=None) -> None:
    """experiment.json beside the run folders: the measured wall time of the `r3bench run` that trained them, and where.

    `git_commit`: the code the runs started from (read when the call began); None reads it now."""
    from roadmap.outcome import git_commit as current_commit

    def stamp(seconds):
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    record = dict(
        experiment=name, preset=preset, executor=executor, started=stamp(started), finished=stamp(finished),
        wall_seconds=round(finished - started, 1), runs=runs, trained=trained, max_parallel=max_parallel,
        git_commit=git_commit or current_commit(), machine=f"{platform.machine()}, {os.cpu_count()} cores")
    try:
        files.write_json(folder / "experiment.json", record)
    except files.WriteError as error:  # the runs are written and summarized already: a warning, not a traceback
        print(f"warning: experiment.json not written: {error}", file=sys.stderr)


def read_experiment_record(folder: Path):
    """The experiment.json written by write_experiment_record, or None."""
    try:
        return files.read_json(Path(folder) / "experiment.json")
    except (OSError, ValueError):
        return None


def wall_time_line(folder: Path) -> str:
    """'Wall time of `r3bench run NAME`: 41 min 3 s (...)' from experiment.json, or '' when none was recorded."""
    record = read_experiment_record(folder)
    if not record:
        return ""
    minutes, seconds = divmod(int(round(record["wall_seconds"])), 60)
    parallel = f", {record['max_parallel']} at a time" if record.get("max_parallel") else ""
    preset = f" ({record['preset']} preset)" if record.get("preset") else ""
    return (f"Wall time of `r3bench run {record['experiment']}`{preset}: {minutes} min {seconds} s, "
            f"{record['started']} to {record['finished']}; {record['trained']} of {record['runs']} runs trained{parallel}, "
            f"commit {record['git_commit']}, {record['machine']}.")
