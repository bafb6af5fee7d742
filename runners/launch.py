"""Run specs -> jobs through submitit (local, debug, slurm), with skip/resume and a live progress view.

Only submitit talks to schedulers. The executor is always named explicitly: submitit's
AutoExecutor silently picks SLURM whenever `srun` is on PATH.
"""
import os
import shutil
import time
from pathlib import Path

from roadmap import files
from roadmap.config import to_dict
from roadmap.errors import ConfigError

EXECUTORS = ("local", "debug", "slurm")
DONE_STATES = ("completed", "diverged")  # a diverged run is a result: never re-run without --force
DEFAULT_TIMEOUT_MIN = 60


def run_state(run_dir) -> tuple:
    """(state, kimg reached) of a run folder: pending | running | completed | diverged | failed.

    `running` means started but not finished: alive, or interrupted and resumable.
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        try:
            summary = files.read_json(summary_path)
            return summary.get("status", "failed"), summary.get("kimg") or 0.0
        except (OSError, ValueError):
            return "failed", 0.0
    if (run_dir / "config.yaml").exists():
        rows = files.read_jsonl(run_dir / "metrics.jsonl")
        return "running", rows[-1]["kimg"] if rows else 0.0
    return "pending", 0.0


def run_job(specs: list) -> list:
    """Body of one submitit job: train each (config dict, run dir) in turn; returns the summaries.

    Module-level so that submitit can pickle it. A failure inside a run is recorded in that run's
    summary.json and the job goes on with the next run.
    """
    import torch

    from roadmap.config import resolve
    from roadmap.trainer import run

    cpus = int(os.environ.get("SUBMITIT_CPUS_PER_TASK", os.environ.get("SLURM_CPUS_PER_TASK", "0")) or 0)
    summaries = []
    for config_values, run_dir in specs:
        config = resolve(config_values)
        _record_job(run_dir)
        if not config.threads and cpus:
            torch.set_num_threads(cpus)
        summaries.append(run(config, run_dir, progress=True))
    return summaries


def _record_job(run_dir) -> None:
    """job.json: which scheduler job trains this run (shown by `r3bench status`)."""
    import submitit

    try:
        environment = submitit.JobEnvironment()
        record = dict(job_id=environment.job_id, cluster=environment.cluster, hostname=environment.hostname)
    except RuntimeError:  # not inside a submitit job (called directly)
        record = dict(job_id=None, cluster="in-process", hostname=os.uname().nodename)
    files.write_json(Path(run_dir) / "job.json", record)


def reset(run_dir) -> None:
    """Forget a run's results so that --force trains it from scratch."""
    run_dir = Path(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)


def select(specs, force: bool) -> list:
    """The runs that still need work: not completed/diverged (or all, after reset, with --force)."""
    todo = []
    for spec in specs:
        if force:
            reset(spec.run_dir)
        if run_state(spec.run_dir)[0] not in DONE_STATES:
            todo.append(spec)
    return todo


def _payload(spec) -> tuple:
    return (to_dict(spec.config), str(spec.run_dir))


def make_executor(kind: str, folder, resources: dict, jobs_per_task: int = 1):
    import submitit

    if kind not in EXECUTORS:
        raise ConfigError(f"--executor: unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    timeout = resources.get("timeout_min", DEFAULT_TIMEOUT_MIN) * jobs_per_task
    parameters = dict(timeout_min=timeout, cpus_per_task=resources.get("cpus_per_task", 1),
                      gpus_per_node=resources.get("gpus_per_node", 0), tasks_per_node=resources.get("tasks_per_node", 1),
                      nodes=resources.get("nodes", 1), name="r3bench")
    if "mem_gb" in resources:
        parameters["mem_gb"] = resources["mem_gb"]
    if kind == "slurm":
        for key in ("partition", "account", "qos", "constraint", "array_parallelism"):
            if key in resources:
                parameters[f"slurm_{key}"] = resources[key]
    if kind == "local":  # submitit's local executor rejects SLURM-only or memory parameters
        parameters.pop("mem_gb", None)
        parameters.pop("nodes", None)
    executor.update_parameters(**parameters)
    return executor


def submit(specs, kind: str, resources: dict, folder) -> list:
    """Submit the runs; local: one job per worker (runs dealt round-robin), else one array task per run."""
    if kind == "local":
        workers = resources.get("max_parallel") or max(1, (os.cpu_count() or 1) // resources.get("cpus_per_task", 1))
        chunks = [specs[i::workers] for i in range(min(workers, len(specs)))]
    else:
        chunks = [[spec] for spec in specs]
    executor = make_executor(kind, folder, resources, jobs_per_task=max(len(chunk) for chunk in chunks))
    if kind == "debug":  # in-process, one after the other
        return [executor.submit(run_job, [_payload(s) for s in chunk]) for chunk in chunks]
    return executor.map_array(run_job, [[_payload(s) for s in chunk] for chunk in chunks])


def wait(jobs, specs, progress: bool = True, poll_seconds: float = 1.0) -> None:
    """Block until every job ends, showing runs done and kimg trained (tqdm) while they run."""
    total_kimg = sum(spec.config.duration_kimg for spec in specs)
    bars = None
    if progress:
        from tqdm import tqdm

        bars = (tqdm(total=len(specs), desc="runs", unit="run", position=0),
                tqdm(total=round(total_kimg, 1), desc="kimg", unit="kimg", position=1, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} kimg [{elapsed}<{remaining}]"))
    while True:
        finished = all(job.done() for job in jobs)
        states = [run_state(spec.run_dir) for spec in specs]
        if bars is not None:
            done = sum(state in DONE_STATES or state == "failed" for state, _ in states)
            kimg = sum(spec.config.duration_kimg if state in DONE_STATES + ("failed",) else kimg
                       for spec, (state, kimg) in zip(specs, states))
            bars[0].n, bars[1].n = done, round(min(kimg, total_kimg), 1)
            for bar in bars:
                bar.refresh()
        if finished:
            break
        time.sleep(poll_seconds)
    if bars is not None:
        for bar in bars:
            bar.close()


def job_problems(jobs) -> list:
    """One line per job that died outside a run (killed, out of memory, scheduler error)."""
    problems = []
    for job in jobs:
        try:
            job.result()
        except Exception as error:  # the job itself failed; its runs show as running/failed
            problems.append(f"job {job.job_id}: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}")
    return problems


def launch(specs, kind: str, resources: dict, results_root, force: bool = False, progress: bool = True) -> dict:
    """Run every spec that still needs it; returns counts and job problems (runs report themselves)."""
    todo = select(specs, force)
    if not todo:
        return dict(submitted=0, skipped=len(specs), problems=[])
    folder = Path(results_root) / ".submitit"
    jobs = submit(todo, kind, resources, folder)
    if kind == "slurm" and progress:
        print(f"submitted {len(todo)} runs as SLURM job array {jobs[0].job_id.split('_')[0]}", flush=True)
    wait(jobs, todo, progress=progress)
    return dict(submitted=len(todo), skipped=len(specs) - len(todo), problems=job_problems(jobs))
