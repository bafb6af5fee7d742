"""Jobs that died outside their runs (killed, out of memory, a full disk): why, in one line, and a `failed`
summary for each run they left without one (roadmap/outcome.py diagnoses the logs and writes the summary)."""
import sys
from pathlib import Path

from roadmap import files, outcome
from runners import lock, submitit_compat
from runners.run_folder import run_state


def death_reason(job, error) -> str:
    """Why a job died outside its runs, in words: what its logs say (roadmap.outcome), the scheduler's state,
    or submitit's last line."""
    logged = outcome.worker_log_reason(_job_log(job, "stderr"), _job_log(job, "stdout"))
    if logged:
        return logged
    try:
        state = job.state
    except Exception:
        state = "UNKNOWN"
    text = str(error).strip()
    if submitit_compat.no_output(error):  # no result pickle, so no Python exception either
        folder = getattr(getattr(job, "paths", None), "folder", None)
        full = outcome.folder_reason(folder) if folder is not None else None
        if full:
            return full
        words = "the worker was killed without a Python error (SIGKILL: out of memory or kill -9?)"
    else:
        words = text.splitlines()[-1] if text else type(error).__name__
    if state and state not in ("FINISHED", "COMPLETED", "UNKNOWN", "RUNNING"):
        return f"job {job.job_id} ended {state}: {words}"
    return f"job {job.job_id} died outside the run: {words}"


def _job_log(job, name: str) -> str:
    try:
        return getattr(job, name)() or ""
    except Exception:  # no log (never started, cleaned up, or a stand-in job)
        return ""


def dead_jobs(jobs, results: dict = None) -> list:
    """(job, reason) for each job without results; `results` collects {job id: results} of the others."""
    dead = []
    for job in jobs:
        try:
            returned = job.results()  # one result per task (rank)
        except Exception as error:  # the job itself failed; its runs show as running/failed
            dead.append((job, death_reason(job, error)))
            continue
        if results is not None:
            results[job.job_id] = returned
    return dead


def mark_dead_runs(dead, chunks) -> list:
    """Runs a dead job had started and left without a summary (and no live writer) get a `failed` one.

    Their checkpoints stay: a failed run is tried again by the next `r3bench run`, which resumes it.
    """
    marked = []
    for job, reason in dead:
        for spec in chunks.get(job.job_id, []):
            run_dir = Path(spec.run_dir)
            if (run_dir / "summary.json").exists() or not (run_dir / "config.yaml").exists() or lock.holder(run_dir):
                continue
            summary = outcome.run_summary(spec.config, run_dir, "failed", reason=reason, kimg=run_state(run_dir)[1],
                                          experiment=spec.experiment, run=spec.name,
                                          written_by="r3bench run (the job died outside the run)")
            try:
                outcome.write_summary(run_dir, summary)
            except files.WriteError as error:  # e.g. the disk that killed the job is still full: one line, go on
                print(f"warning: {spec.experiment}/{spec.name}: its failed summary was not written: {error}", file=sys.stderr)
                continue
            marked.append(spec)
    return marked
