"""Run specs -> jobs through submitit (local, debug, slurm), with skip/resume, preemption and a live progress view.

Only submitit talks to schedulers. The executor is always named explicitly: submitit's
AutoExecutor silently picks SLURM whenever `srun` is on PATH.

Preemption and time limits: a job is a `TrainingJob`, which submitit treats as checkpointable.
On SLURM's warning signal (or `job._interrupt()`), submitit calls `TrainingJob.checkpoint`,
which hands back the same job, requeues it and exits; the requeued job skips finished runs and
resumes the others from their last checkpoint (written atomically at tick boundaries, the
previous one kept), so the trajectory is the one an uninterrupted job would have followed.

Multi-GPU: with `tasks_per_node` (x `nodes`) > 1, submitit starts one task per rank and each
task joins torch.distributed (NCCL on GPUs, gloo on CPU) before training; see roadmap/trainer.py.
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


class TrainingJob:
    """Body of one submitit job: train each (config dict, run dir) in turn; returns the summaries.

    Finished runs are skipped, so a requeued job only does what is left. A failure inside a run
    is recorded in that run's summary.json and the job goes on with the next run.
    """

    def __init__(self, cpus_per_task: int = 1):
        # torch threads per task (a run's own `threads` wins): submitit's local executor exports no
        # CPU count, and torch's default of one thread per core is many times slower on a shared machine.
        self.cpus_per_task = cpus_per_task

    def __call__(self, specs: list) -> list:
        import torch

        from roadmap.config import resolve
        from roadmap.trainer import run

        rank, world_size = _join_process_group()
        summaries = []
        try:
            for config_values, run_dir in specs:
                state = run_state(run_dir)[0]
                if state in DONE_STATES:  # finished before a requeue
                    summaries.append(files.read_json(Path(run_dir) / "summary.json"))
                    continue
                config = resolve(config_values)
                if rank == 0:
                    _record_job(run_dir, world_size)
                torch.set_num_threads(config.threads or self.cpus_per_task)
                summaries.append(run(config, run_dir, progress=True))
        finally:
            if world_size > 1:
                torch.distributed.destroy_process_group()
        return summaries

    def checkpoint(self, specs: list):
        """Called by submitit on preemption or timeout: requeue this same job.

        Nothing is saved here: the signal arrives in the middle of a step, where the state is
        not a point of the trajectory; the runs resume from their last tick-boundary checkpoint.
        """
        import submitit

        return submitit.helpers.DelayedSubmission(self, specs)


def _join_process_group() -> tuple:
    """(rank, world size); with several submitit tasks, join torch.distributed first."""
    import submitit

    try:
        environment = submitit.JobEnvironment()
    except RuntimeError:  # called directly, not inside a submitit job
        return 0, 1
    if environment.num_tasks == 1:
        return 0, 1
    import torch

    # One GPU per rank: CUDA_VISIBLE_DEVICES = local rank, set before anything touches CUDA
    # (harmless on CPU hosts, where the gloo backend is used).
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=True)
    torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def _record_job(run_dir, world_size: int = 1) -> None:
    """job.json: which scheduler job trains this run, and how often it started (shown by `r3bench status`)."""
    import submitit

    path = Path(run_dir) / "job.json"
    try:
        environment = submitit.JobEnvironment()
        record = dict(job_id=environment.job_id, cluster=environment.cluster, hostname=environment.hostname)
    except RuntimeError:  # not inside a submitit job (called directly)
        record = dict(job_id=None, cluster="in-process", hostname=os.uname().nodename)
    previous = {}
    if path.exists():
        try:
            previous = files.read_json(path)
        except (OSError, ValueError):
            pass
    same_job = previous.get("job_id") == record["job_id"] and record["job_id"] is not None
    record.update(pid=os.getpid(), world_size=world_size, starts=previous.get("starts", 0) + 1 if same_job else 1)
    files.write_json(path, record)


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
        state = run_state(spec.run_dir)[0]
        if state == "failed":  # tried again: its old verdict must not show while it trains
            (Path(spec.run_dir) / "summary.json").unlink(missing_ok=True)
        if state not in DONE_STATES:
            todo.append(spec)
    return todo


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


def submit(specs, kind: str, resources: dict, folder) -> list:
    """Submit the runs; local: one job per worker (runs dealt round-robin), else one array task per run."""
    if kind == "local":
        workers = resources.get("max_parallel") or max(1, (os.cpu_count() or 1) // (resources.get("cpus_per_task", 1) * world_size(resources)))
        chunks = [specs[i::workers] for i in range(min(workers, len(specs)))]
    else:
        chunks = [[spec] for spec in specs]
    executor = make_executor(kind, folder, resources, jobs_per_task=max(len(chunk) for chunk in chunks))
    job = TrainingJob(resources.get("cpus_per_task", 1))
    if kind == "debug":  # in-process, one after the other
        return [executor.submit(job, [_payload(s) for s in chunk]) for chunk in chunks]
    return executor.map_array(job, [[_payload(s) for s in chunk] for chunk in chunks])


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
            job.results()  # one result per task (rank)
        except Exception as error:  # the job itself failed; its runs show as running/failed
            problems.append(f"job {job.job_id}: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}")
    return problems


def launch(specs, kind: str, resources: dict, results_root, force: bool = False, progress: bool = True) -> dict:
    """Run every spec that still needs it; returns counts and job problems (runs report themselves)."""
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor: unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
    check_batches(specs, resources)
    if kind == "debug" and world_size(resources) > 1:
        raise ConfigError("resources.tasks_per_node: the debug executor runs in-process, one rank only")
    todo = select(specs, force)
    if not todo:
        return dict(submitted=0, skipped=len(specs), problems=[])
    folder = Path(results_root) / ".submitit"
    jobs = submit(todo, kind, resources, folder)
    if kind == "slurm":
        print(f"submitted {len(todo)} runs as SLURM job array {jobs[0].job_id.split('_')[0]}", flush=True)
    try:
        wait(jobs, todo, progress=progress)
    except KeyboardInterrupt:
        if kind == "local":  # local jobs are this machine's processes: they stop with the command
            for job in jobs:
                job.cancel(check=False)
            print("cancelled the local jobs; the same command resumes them from their checkpoints", flush=True)
        else:
            print("the SLURM jobs keep running; `r3bench status` follows them", flush=True)
        raise
    return dict(submitted=len(todo), skipped=len(specs) - len(todo), problems=job_problems(jobs))
