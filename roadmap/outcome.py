"""How a run ended: its summary.json (one builder, one writer, one set of fields) and why it failed, in words.

Every path that ends a run writes its summary here: the trainer (completed, diverged, or failed with
an exception), the launcher (a job that died outside its runs: runners/dead_jobs.py) and the import of
an official checkpoint (roadmap/official.py). So every summary.json has the fields of SUMMARY_FIELDS;
a field a path knows nothing about is null (or {} for the mappings).

The diagnosis of a failure from its error text (a full disk, out of memory, a fatal signal) lives here
too, for the trainer's exceptions and for the logs of dead workers alike.
"""
import errno
import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import torch

from roadmap import files
from roadmap.config import RunConfig, to_dict

# Every summary.json holds these fields. The trainer's own were the first 15; a dead job's summary added
# `written_by`, an imported official checkpoint `origin` and `source_sha256` (issue 21 joined the writers).
SUMMARY_FIELDS = ("reason", "kimg", "diverged_kimg", "metrics", "wall_seconds", "device", "status", "git_commit", "config_hash",
                  "experiment", "run", "torch", "feeds", "stability", "fingerprint", "traceback", "written_by", "origin",
                  "source_sha256")
MAPPING_FIELDS = ("metrics", "stability")


def config_hash(config: RunConfig) -> str:
    return hashlib.sha1(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:12]


def git_commit() -> str:
    """Short hash of the checkout this code runs from, or "unknown" (recorded in summary.json and experiment.json)."""
    try:
        source = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def run_summary(config: RunConfig, run_dir, status: str, **fields) -> dict:
    """The summary of run `run_dir` trained (or imported) with `config`: provenance, and what `fields` say."""
    unknown = sorted(set(fields) - set(SUMMARY_FIELDS))
    if unknown:
        raise TypeError(f"summary.json has no field {', '.join(unknown)} (roadmap.outcome.SUMMARY_FIELDS)")
    run_dir = Path(run_dir)
    summary = {key: {} if key in MAPPING_FIELDS else None for key in SUMMARY_FIELDS}
    summary.update(device=str(config.device), status=status, git_commit=git_commit(), config_hash=config_hash(config),
                   experiment=run_dir.parent.name, run=run_dir.name, torch=torch.__version__, feeds=config.feeds)
    summary.update(fields)
    return summary


def write_summary(run_dir, summary: dict) -> None:
    """Write `run_dir`/summary.json atomically: the only writer of that file (files.WriteError on a full disk)."""
    if tuple(summary) != SUMMARY_FIELDS:
        raise ValueError("summary.json is built by roadmap.outcome.run_summary")
    files.write_json(Path(run_dir) / "summary.json", summary)


def failure_reason(error: BaseException) -> str:
    """A readable reason for a failed run: a full disk says so instead of a serializer's internal message."""
    if isinstance(error, files.WriteError):  # already one line with the path and the free space
        return str(error)
    text = f"{type(error).__name__}: {error}"
    if "inline_container" in text:  # torch's serializer lost the errno: its internals tell the reader nothing
        return "no space left on device (torch could not write a file)"
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in text:
        return f"no space left on device ({text.splitlines()[0][:200]})"
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return f"out of memory ({text.splitlines()[0][:200]})"
    return text


# What faulthandler writes (runners/job.py enables it) when a worker dies of a fatal signal.
FATAL_SIGNALS = {"Segmentation fault": signal.SIGSEGV, "Aborted": signal.SIGABRT, "Bus error": signal.SIGBUS,
                 "Floating-point exception": signal.SIGFPE, "Illegal instruction": signal.SIGILL}
DISK_FULL_WORDS = ("No space left on device", "no space left on device", "[Errno 28]", "Disk quota exceeded", "[Errno 122]")


def worker_log_reason(stderr: str, stdout: str = ""):
    """Why a worker died, read from its logs: a fatal signal or a full disk (errno 28 / 122); None when they do not say."""
    for words, number in FATAL_SIGNALS.items():
        if f"Fatal Python error: {words}" in stderr:
            return f"killed by signal {int(number)} ({words.lower()})"
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if any(words in line for words in DISK_FULL_WORDS)]
    if lines:
        return f"disk full (the worker's log: {lines[-1][:300]})"
    return None


def folder_reason(folder):
    """'disk full (writing into FOLDER fails: ...)' when a small synced write there fails with ENOSPC/EDQUOT, else None.

    A full disk also swallows a worker's log and result: the errno of a write made now says so.
    """
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * 65536)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"disk full (writing into {folder} fails: {os.strerror(error.errno).lower()})"
    return None
