"""The body of one submitit job: train its runs in turn, each under its folder's lock, on its share of the machine.

Preemption and time limits: a job is a `TrainingJob`, which submitit treats as checkpointable.
On SLURM's warning signal (or `job._interrupt()`), submitit calls `TrainingJob.checkpoint`,
which hands back the same job, requeues it and exits; the requeued job skips finished runs and
resumes the others from their last checkpoint (written atomically at tick boundaries, the
previous one kept), so the trajectory is the one an uninterrupted job would have followed.

One writer per run folder: the job trains a run under an flock on `<run>/.lock` (runners/lock.py);
a second process finding it held skips that run. A local worker exits when its `r3bench run` is
gone (kill -9).

Multi-GPU: with `tasks_per_node` (x `nodes`) > 1, submitit starts one task per rank and each
task joins torch.distributed (NCCL on GPUs, gloo on CPU) before training; see roadmap/trainer.py.
"""
import datetime
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from roadmap import files
from runners import lock
from runners.run_folder import DONE_STATES, refusal, run_state, settings_difference

PARENT_POLL_SECONDS = 0.5
COLLECTIVE_TIMEOUT_MIN = 240  # longest wait of a rank in a collective (the part of an evaluation rank 0 does alone included)


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def one_line_warnings() -> None:
    """Warnings print as 'warning: MESSAGE', one line: the warn() call's file and source line mean nothing to a user."""
    warnings.formatwarning = _warning_line


class TrainingJob:
    """Body of one submitit job: train each (config dict, run dir) in turn; returns the summaries.

    Finished runs are skipped, so a requeued job only does what is left. A failure inside a run
    is recorded in that run's summary.json and the job goes on with the next run. Each run is
    trained under its folder's lock; a run locked by another process, or whose folder holds other
    settings, is skipped with one line (and a summary dict with status `skipped`).
    """

    def __init__(self, cpus_per_task: int = 1, parent_pid: int = None, gpu_share: int = 1):
        # torch threads per task (a run's own `threads` wins): submitit's local executor exports no
        # CPU count, and torch's default of one thread per core is many times slower on a shared machine.
        self.cpus_per_task = cpus_per_task
        # The `r3bench run` process of a local job: the job ends when it is gone (kill -9 included).
        self.parent_pid = parent_pid
        # Local jobs sharing one GPU: each sizes its default micro-batch for this fraction of the memory.
        self.gpu_share = gpu_share

    def __call__(self, specs: list, cuda_devices: str = None) -> list:
        import faulthandler

        if cuda_devices is not None:  # the local executor's GPU for this job (round robin), before CUDA starts
            os.environ["CUDA_VISIBLE_DEVICES"] = cuda_devices
        if self.gpu_share > 1:
            os.environ["R3BENCH_GPU_SHARE"] = str(self.gpu_share)  # read by roadmap.trainer's default micro-batch

        import torch

        from roadmap.config import resolve
        from roadmap.trainer import run

        one_line_warnings()
        try:  # a segfault leaves "Fatal Python error: Segmentation fault" for the parent to report
            faulthandler.enable()
        except (OSError, ValueError, AttributeError):  # stderr without a file descriptor (in-process, captured)
            pass
        if self.parent_pid is not None and self.parent_pid != os.getpid():
            _watch_parent(self.parent_pid)
        rank, world_size = _join_process_group()
        summaries = []
        try:
            for config_values, run_dir in specs:
                run_lock = lock.RunLock(run_dir, self.parent_pid)
                verdict = _claim(run_lock, config_values, run_dir) if rank == 0 else None
                if world_size > 1:  # every rank follows rank 0's decision
                    shared = [verdict]
                    torch.distributed.broadcast_object_list(shared, src=0)
                    verdict = shared[0]
                try:
                    if verdict is not None:
                        if verdict.get("status") == "skipped":
                            print(verdict["reason"], flush=True)
                        summaries.append(verdict)
                        continue
                    config = resolve(config_values)
                    if rank == 0:
                        _record_job(run_dir, world_size)
                    torch.set_num_threads(config.threads or self.cpus_per_task)
                    summaries.append(run(config, run_dir, progress=True))
                finally:
                    run_lock.release()
        finally:
            if world_size > 1:
                torch.distributed.destroy_process_group()
        return summaries

    def checkpoint(self, specs: list, cuda_devices: str = None):
        """Called by submitit on preemption or timeout: requeue this same job.

        Nothing is saved here: the signal arrives in the middle of a step, where the state is
        not a point of the trajectory; the runs resume from their last tick-boundary checkpoint.
        SIGTERM is ignored from here on, and so by the `scontrol requeue` that submitit starts next:
        the requeue itself makes SLURM send SIGTERM to the whole job step, and a scontrol killed by
        it before exiting raised CalledProcessError inside the run, which was then recorded as failed
        and skipped by the requeued job (seen in tests/runners/test_slurm.py under load).
        """
        import submitit

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return submitit.helpers.DelayedSubmission(self, specs, *([] if cuda_devices is None else [cuda_devices]))


def _claim(run_lock, config_values: dict, run_dir):
    """None when this process may train the run (its lock is then held), else the summary to return instead."""
    name = f"{Path(run_dir).parent.name}/{Path(run_dir).name}"
    if not run_lock.acquire():
        record = lock.holder(run_dir) or dict(pid="?", host="?")
        return dict(status="skipped", reason=f"{name}: skipped, {lock.describe(record)}", run=name)
    state = run_state(run_dir)[0]
    difference = settings_difference(config_values, run_dir)
    if difference:  # checked again here: the folder may have changed since the parent looked
        run_lock.release()
        return dict(status="skipped", reason=refusal(name, state, difference), run=name)
    if state in DONE_STATES:  # finished before a requeue, or by another process meanwhile
        run_lock.release()
        return files.read_json(Path(run_dir) / "summary.json")
    return None


def _watch_parent(parent_pid: int) -> None:
    """Exit this worker when the `r3bench run` that launched it is gone (kill -9, lost terminal).

    submitit's local controller is a child of that process but does not watch it, so without
    this the workers train on as orphans. Checkpoints and summaries are written atomically, so
    leaving at any moment is as safe as kill -9; the run resumes from its last checkpoint.
    """
    def poll():
        while lock.pid_alive(parent_pid):
            time.sleep(PARENT_POLL_SECONDS)
        print(f"r3bench run (pid {parent_pid}) is gone: stopping this worker", file=sys.stderr, flush=True)
        os._exit(1)

    threading.Thread(target=poll, name="r3bench-parent-watch", daemon=True).start()


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
    # Every rank generates and featurises its share of an evaluation (roadmap/evaluation.py), and rank 0 alone adds
    # up the results and computes the distance while the others wait in the next collective. That tail is short,
    # but a slow rank 0 (a snapshot write, a sample grid, a loaded file system) must not hit NCCL's default
    # 10 minutes: the timeout stays generous.
    torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo",
                                         timeout=datetime.timedelta(minutes=COLLECTIVE_TIMEOUT_MIN))
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
    record.update(pid=os.getpid(), world_size=world_size, starts=previous.get("starts", 0) + 1 if same_job else 1,
                  cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    files.write_json(path, record)
