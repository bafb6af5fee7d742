"""Run specs -> jobs through submitit (local, debug, slurm): checks before submission, the jobs, waiting, the end.

Only submitit talks to schedulers. The executor is always named explicitly: submitit's
AutoExecutor silently picks SLURM whenever `srun` is on PATH. The parts live beside this module:
the job body (runners/job.py), run folders and which runs still need work (runners/run_folder.py),
the progress view (runners/progress.py), jobs that died outside their runs (runners/dead_jobs.py)
and what relies on submitit's internals (runners/submitit_compat.py).

Worker lifecycle: SIGTERM and SIGHUP to `r3bench run` cancel the local jobs as Ctrl-C does, and
a local worker exits when its `r3bench run` is gone (kill -9). A job that dies outside its runs
(killed, segfault) leaves its started runs a `failed` summary with the reason.
"""
import os
import signal
import threading
from pathlib import Path

from roadmap.config import to_dict
from roadmap.errors import ConfigError
from runners import submitit_compat
from runners.dead_jobs import dead_jobs, mark_dead_runs
from runners.job import TrainingJob
from runners.progress import wait
from runners.run_folder import DONE_STATES, run_state, select

EXECUTORS = ("local", "debug", "slurm")
DEFAULT_TIMEOUT_MIN = 60
LOCAL_RESULTS_TIMEOUT_S = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP during `launch`: the one line the CLI prints, and the signal."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.message, self.signum = message, signum


def _payload(spec) -> tuple:
    return (to_dict(spec.config), str(Path(spec.run_dir).resolve()))  # jobs may start in another directory


def make_executor(kind: str, folder, resources: dict, jobs_per_task: int = 1):
    import submitit

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


def world_size(resources: dict) -> int:
    return resources.get("tasks_per_node", 1) * resources.get("nodes", 1)


def check_batches(specs, resources: dict) -> None:
    """Each rank trains an equal slice of the global batch: fail before submission if it does not split."""
    ranks = world_size(resources)
    for spec in specs:
        if spec.config.batch % ranks:
            raise ConfigError(f"{spec.experiment}/{spec.name}: batch {spec.config.batch} does not split evenly over "
                              f"{ranks} ranks (resources.tasks_per_node x nodes)")


def job_cores(kind: str, resources: dict) -> int:
    """CPU cores a job will have: this machine's (those this process may use) when it starts here, else cpus_per_task."""
    if kind in ("local", "debug"):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return resources.get("cpus_per_task", 1)


def preflight(specs, kind: str, resources: dict) -> None:
    """Checks that need the machine, before any folder is written (ConfigError, one line).

    A job that starts here needs its CUDA device here; a SLURM job checks its own node when it
    starts (the submitting node may have no GPU) and fails as one line in its summary. torch
    threads may not exceed the cores the job will have: an oversized OpenMP pool can kill the worker.
    """
    cores = job_cores(kind, resources)
    where = "this machine has" if kind in ("local", "debug") else "resources.cpus_per_task gives a job"
    for spec in specs:
        name, device = f"{spec.experiment}/{spec.name}", str(spec.config.device)
        if spec.config.threads > cores:
            raise ConfigError(f"{name}: threads: {spec.config.threads} is more than the {cores} cores {where}")
        if kind == "slurm" or not device.startswith("cuda"):
            continue
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"{name}: device: {device!r} requested but CUDA is not available on this machine")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ConfigError(f"{name}: device: {device!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")


def _chunks(specs, kind: str, resources: dict) -> list:
    """Runs per job: local, one job per worker (runs dealt round-robin); else one array task per run."""
    if kind == "local":
        workers = resources.get("max_parallel") or max(1, (os.cpu_count() or 1) // (resources.get("cpus_per_task", 1) * world_size(resources)))
        return [specs[i::workers] for i in range(min(workers, len(specs)))]
    return [[spec] for spec in specs]


def _host_gpus() -> list:
    """This host's GPUs as CUDA_VISIBLE_DEVICES names them (that variable's list, else 0..count-1)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [name for name in visible.split(",") if name.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]  # NVML: no CUDA context in this process


def local_gpu_slots(jobs: int, resources: dict, host_gpus: list) -> list:
    """CUDA_VISIBLE_DEVICES of each local job: its gpus_per_node GPUs dealt round robin over the host's,
    so parallel jobs do not all land on GPU 0 (submitit's local executor gives each the first ones);
    None each where there is nothing to deal (no GPU asked, several ranks per job, or no more GPUs than a job takes)."""
    per_job = resources.get("gpus_per_node", 0)
    if not per_job or world_size(resources) > 1 or len(host_gpus) <= per_job:
        return [None] * jobs
    return [",".join(host_gpus[(job * per_job + k) % len(host_gpus)] for k in range(per_job)) for job in range(jobs)]


def local_gpu_share(jobs: int, resources: dict, host_gpus: list) -> int:
    """How many local jobs run on each GPU at once (e.g. `table3 --preset gpu`: 3 on one GPU): 1 unless
    parallel jobs outnumber the host's GPUs."""
    per_job = resources.get("gpus_per_node", 0)
    if not per_job or not host_gpus or world_size(resources) > 1:
        return 1
    return max(1, -(-jobs * per_job // len(host_gpus)))


def submit(specs, kind: str, resources: dict, folder) -> list:
    """Submit the runs; local: one job per worker (runs dealt round-robin), else one array task per run."""
    chunks = _chunks(specs, kind, resources)
    executor = make_executor(kind, folder, resources, jobs_per_task=max(len(chunk) for chunk in chunks))
    share = local_gpu_share(len(chunks), resources, _host_gpus() if kind == "local" and resources.get("gpus_per_node") else [])
    job = TrainingJob(resources.get("cpus_per_task", 1), parent_pid=os.getpid() if kind == "local" else None, gpu_share=share)
    if kind == "debug":  # in-process, one after the other
        return [executor.submit(job, [_payload(s) for s in chunk]) for chunk in chunks]
    if kind == "local":
        with submitit_compat.QuietControllers(folder):
            payloads = [[_payload(s) for s in chunk] for chunk in chunks]
            slots = local_gpu_slots(len(chunks), resources, _host_gpus() if resources.get("gpus_per_node") else [])
            jobs = executor.map_array(job, payloads, slots) if any(slots) else executor.map_array(job, payloads)
        submitit_compat.set_results_timeout(jobs, LOCAL_RESULTS_TIMEOUT_S)
        return jobs
    return executor.map_array(job, [[_payload(s) for s in chunk] for chunk in chunks])


def _raise_interrupted(signum, frame):
    raise Interrupted(f"{signal.Signals(signum).name}", signum)


def launch(specs, kind: str, resources: dict, results_root, force: bool = False, progress: bool = True,
           lines: bool = False) -> dict:
    """Run every spec that still needs it; returns counts and job problems (runs report themselves)."""
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor: unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
    check_batches(specs, resources)
    preflight(specs, kind, resources)
    if kind == "debug" and world_size(resources) > 1:
        raise ConfigError("resources.tasks_per_node: the debug executor runs in-process, one rank only")
    todo = select(specs, force)
    finished = sum(run_state(spec.run_dir)[0] in DONE_STATES for spec in specs if spec not in todo)
    if not todo:
        return dict(submitted=0, skipped=finished, problems=[])
    folder = Path(results_root) / ".submitit"
    # SIGTERM and SIGHUP (a closed terminal, a killed session) stop the local jobs as Ctrl-C does.
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, _raise_interrupted) for signum in handled}
    try:
        jobs = submit(todo, kind, resources, folder)
        if kind == "slurm":
            print(f"submitted {len(todo)} runs as SLURM job array {jobs[0].job_id.split('_')[0]}", flush=True)
        wait(jobs, todo, progress=progress, lines=lines and kind != "debug")  # in-process runs print their own tick lines
    except KeyboardInterrupt as interrupt:
        signum = getattr(interrupt, "signum", signal.SIGINT)
        name = signal.Signals(signum).name
        if kind == "local" and "jobs" in locals():  # local jobs are this machine's processes: they stop with the command
            for job in jobs:
                job.cancel(check=False)
            raise Interrupted(f"{name}: cancelled the local jobs; the same command resumes them from their checkpoints", signum)
        if kind == "slurm":
            raise Interrupted(f"{name}: the SLURM jobs keep running; `r3bench status` follows them", signum)
        raise Interrupted(f"{name}: the same command resumes the runs from their checkpoints", signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    chunks = {job.job_id: chunk for job, chunk in zip(jobs, _chunks(todo, kind, resources))}
    results = {}
    dead = dead_jobs(jobs, results)
    mark_dead_runs(dead, chunks)
    notes = [s["reason"] for outcome in results.values() for result in outcome for s in (result or [])
             if isinstance(s, dict) and s.get("status") == "skipped"]
    return dict(submitted=len(todo), skipped=finished, problems=[reason for _, reason in dead],
                notes=sorted(set(notes)))
