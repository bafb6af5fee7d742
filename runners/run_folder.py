"""A run folder as `r3bench run` finds it: its state (pending, running, finished), whether it belongs to the
run's settings, and which runs still need work.

A run folder belongs to one resolved configuration: before submitting (`select`) and again in the job
before training (runners/job.py), its config.yaml is compared with the run's settings, and a run whose
folder holds other settings is refused in one line unless --force.
"""
import shutil
import time
from pathlib import Path

import yaml

from roadmap import files
from roadmap.config import settings_difference as stored_settings_difference  # the binding rule, shared with checkpoints
from roadmap.config import to_dict
from roadmap.errors import ConfigError
from runners import lock

DONE_STATES = ("completed", "diverged")  # a diverged run is a result: never re-run without --force
ORPHAN_WAIT_SECONDS = 10.0


def settings_difference(config_values: dict, run_dir):
    """'gamma: stored 1.0, now 10.0' for the first setting that differs from the run's config.yaml, or None.

    A folder without config.yaml (never started) or an unreadable one binds nothing. Settings the
    stored file lacks (added to RunConfig since) are not compared.
    """
    path = Path(run_dir) / "config.yaml"
    try:
        stored = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return stored_settings_difference(stored, config_values)


def state_words(state: str) -> str:
    return {"completed": "finished", "diverged": "diverged", "failed": "failed", "running": "interrupted"}.get(state, state)


def refusal(name: str, state: str, difference: str) -> str:
    return (f"{name}: {state_words(state)} with other settings ({difference}); "
            "use --force to re-run from scratch or --out for a new folder")


def run_state(run_dir) -> tuple:
    """(state, kimg reached) of a run folder: pending | running | completed | diverged | failed.

    `running` means started but not finished: alive (see `lock.holder`), or interrupted and resumable.
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        try:
            summary = files.read_json(summary_path)
        except (OSError, ValueError):
            summary = None
        if not isinstance(summary, dict):
            return "failed", _last_kimg(run_dir)
        kimg = summary.get("kimg")
        if isinstance(kimg, bool) or not isinstance(kimg, (int, float)):  # a failed run records none: its last tick says
            kimg = _last_kimg(run_dir)
        return summary.get("status", "failed"), kimg
    if (run_dir / "config.yaml").exists():
        return "running", _last_kimg(run_dir)
    return "pending", 0.0


def _last_kimg(run_dir: Path) -> float:
    """kimg of the last tick line in metrics.jsonl with a numeric kimg (0.0 when none)."""
    for row in reversed(files.read_jsonl(run_dir / "metrics.jsonl")):
        kimg = row.get("kimg")
        if isinstance(kimg, (int, float)) and not isinstance(kimg, bool):
            return kimg
    return 0.0


def reset(run_dir) -> None:
    """Forget a run's results so that --force trains it from scratch."""
    run_dir = Path(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)


def _wait_for_orphan(run_dir):
    """The lock holder of a run, after giving an orphaned worker (its parent gone) time to stop itself."""
    record = lock.holder(run_dir)
    end = time.time() + ORPHAN_WAIT_SECONDS
    while record is not None and lock.orphaned(record) and time.time() < end:
        time.sleep(0.2)
        record = lock.holder(run_dir)
    return record


def select(specs, force: bool) -> list:
    """The runs that still need work: not completed/diverged (or all, after reset, with --force).

    A run being written by a live process is left to it (one line each); a run folder whose
    stored settings differ is refused (ConfigError, before anything is touched) unless `force`.
    """
    busy = {}
    for spec in specs:
        record = _wait_for_orphan(spec.run_dir)
        if record is not None:
            busy[spec.run_dir] = record
            print(f"{spec.experiment}/{spec.name}: skipped, {lock.describe(record)}", flush=True)
    if not force:
        for spec in specs:
            if spec.run_dir in busy:
                continue
            difference = settings_difference(to_dict(spec.config), spec.run_dir)
            if difference:
                raise ConfigError(refusal(f"{spec.experiment}/{spec.name}", run_state(spec.run_dir)[0], difference))
    todo = []
    for spec in specs:
        if spec.run_dir in busy:
            continue
        if force:
            reset(spec.run_dir)
        state = run_state(spec.run_dir)[0]
        if state == "failed":  # tried again: its old verdict must not show while it trains
            (Path(spec.run_dir) / "summary.json").unlink(missing_ok=True)
        if state not in DONE_STATES:
            todo.append(spec)
    return todo
