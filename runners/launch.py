"""Run specs -> jobs through submitit (local, debug, slurm), with skip/resume, preemption and a live progress view.

Only submitit talks to schedulers. The executor is always named explicitly: submitit's
AutoExecutor silently picks SLURM whenever `srun` is on PATH.

Preemption and time limits: a job is a `TrainingJob`, which submitit treats as checkpointable.
On SLURM's warning signal (or `job._interrupt()`), submitit calls `TrainingJob.checkpoint`,
which hands back the same job, requeues it and exits; the requeued job skips finished runs and
resumes the others from their last checkpoint (written atomically at tick boundaries, the
previous one kept), so the trajectory is the one an uninterrupted job would have followed.

A run folder belongs to one resolved configuration: before submitting (`select`) and again in
the job before training (`_claim`), its config.yaml is compared with the run's settings, and a
run whose folder holds other settings is refused in one line unless --force. One writer per run
folder: the job trains a run under an flock on `<run>/.lock` (runners/lock.py); a second process
finding it held skips that run.

Worker lifecycle: SIGTERM and SIGHUP to `r3bench run` cancel the local jobs as Ctrl-C does, and
a local worker exits when its `r3bench run` is gone (kill -9). A job that dies outside its runs
(killed, segfault) leaves its started runs a `failed` summary with the reason, written here.

Multi-GPU: with `tasks_per_node` (x `nodes`) > 1, submitit starts one task per rank and each
task joins torch.distributed (NCCL on GPUs, gloo on CPU) before training; see roadmap/trainer.py.
"""
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import yaml

from roadmap import files
from roadmap.config import DEFAULTED_SETTINGS, IGNORED_SETTINGS, to_dict  # noqa: F401  (re-exported)
from roadmap.config import settings_difference as stored_settings_difference  # the binding rule, shared with checkpoints
from roadmap.errors import ConfigError
from runners import lock

EXECUTORS = ("local", "debug", "slurm")
DONE_STATES = ("completed", "diverged")  # a diverged run is a result: never re-run without --force
DEFAULT_TIMEOUT_MIN = 60
PARENT_POLL_SECONDS = 0.5
ORPHAN_WAIT_SECONDS = 10.0
LOCAL_RESULTS_TIMEOUT_S = 2


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def one_line_warnings() -> None:
    """Warnings print as 'warning: MESSAGE', one line: the warn() call's file and source line mean nothing to a user."""
    warnings.formatwarning = _warning_line


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP during `launch`: the one line the CLI prints, and the signal."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.message, self.signum = message, signum


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


def _state_words(state: str) -> str:
    return {"completed": "finished", "diverged": "diverged", "failed": "failed", "running": "interrupted"}.get(state, state)


def refusal(name: str, state: str, difference: str) -> str:
    return (f"{name}: {_state_words(state)} with other settings ({difference}); "
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


COLLECTIVE_TIMEOUT_MIN = 240  # longest wait of a rank in a collective (rank 0's final evaluation included)


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
    # Only rank 0 evaluates at the end of a run while the others wait in the next run's first collective:
    # the timeout must outlast an evaluation (FID-50k at 256 px), not NCCL's default 10 minutes.
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


class _QuietControllers:
    """Start submitit's local controllers with their output in `<folder>/controllers.log`.

    A controller shares the terminal of `r3bench run`: on Ctrl-C it would print its own
    KeyboardInterrupt traceback beside our one line. The tasks have their own log files already.
    """

    def __init__(self, folder):
        self.folder = Path(folder)

    def __enter__(self):
        import submitit.local.local as local

        self.module, self.real = local.subprocess, local.subprocess.Popen
        files.make_dirs(self.folder)
        log = open(self.folder / "controllers.log", "a")
        real = self.real

        class Popen(real):
            def __init__(self, command, *args, **kwargs):
                if "submitit.local._local" in str(command):
                    kwargs.setdefault("stdout", log)
                    kwargs.setdefault("stderr", log)
                super().__init__(command, *args, **kwargs)

        self.log = log
        local.subprocess = type(sys)("subprocess_for_submitit")
        local.subprocess.__dict__.update(subprocess.__dict__)
        local.subprocess.Popen = Popen
        return self

    def __exit__(self, *exc):
        import submitit.local.local as local

        local.subprocess = self.module
        self.log.close()


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
        with _QuietControllers(folder):
            payloads = [[_payload(s) for s in chunk] for chunk in chunks]
            slots = local_gpu_slots(len(chunks), resources, _host_gpus() if resources.get("gpus_per_node") else [])
            jobs = executor.map_array(job, payloads, slots) if any(slots) else executor.map_array(job, payloads)
        for local_job in jobs:  # submitit waits 15 s for a missing result file (shared file systems); here it is local
            for task in [local_job, *local_job._sub_jobs]:
                task._results_timeout_s = LOCAL_RESULTS_TIMEOUT_S
        return jobs
    return executor.map_array(job, [[_payload(s) for s in chunk] for chunk in chunks])


class _TickLines:
    """Progress as plain lines (stdout is a file or a pipe): each new tick of each run, and each finished run."""

    def __init__(self, specs):
        self.specs = specs
        self.offsets = {spec.run_dir: 0 for spec in specs}
        self.reported = set()

    def update(self, states) -> None:
        for spec, (state, _) in zip(self.specs, states):
            name = f"{spec.experiment}/{spec.name}"
            for row in self._new_rows(spec.run_dir):
                losses = " ".join(f"{key} {row[key]:.4g}" for key in ("loss_D", "loss_G") if isinstance(row.get(key), (int, float)))
                print(f"[{name}] kimg {row.get('kimg', 0):.1f} {losses}".rstrip(), flush=True)
            if state in DONE_STATES + ("failed",) and spec.run_dir not in self.reported:
                self.reported.add(spec.run_dir)
                print(f"[{name}] {state}{_outcome_words(spec.run_dir)}", flush=True)

    def _new_rows(self, run_dir) -> list:
        path = Path(run_dir) / "metrics.jsonl"
        try:
            size = path.stat().st_size
        except OSError:
            return []
        if size < self.offsets[run_dir]:  # rewritten on resume: start over
            self.offsets[run_dir] = 0
        with open(path, "rb") as stream:
            stream.seek(self.offsets[run_dir])
            chunk = stream.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self.offsets[run_dir] += len(complete)
        rows = []
        for line in complete.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows


def _outcome_words(run_dir) -> str:
    try:
        summary = files.read_json(Path(run_dir) / "summary.json")
    except (OSError, ValueError):
        return ""
    if summary.get("status") == "failed":
        return f": {str(summary.get('reason') or 'no reason recorded').splitlines()[0]}"
    metrics = summary.get("metrics") or {}
    shown = [f"{key} {value:.4g}" for key, value in metrics.items() if isinstance(value, (int, float))]
    kimg = summary.get("diverged_kimg") if summary.get("status") == "diverged" else summary.get("kimg")
    return f" at kimg {kimg:g}" * isinstance(kimg, (int, float)) + (": " + ", ".join(shown) if shown else "")


def wait(jobs, specs, progress: bool = True, poll_seconds: float = 1.0, lines: bool = False) -> None:
    """Block until every job ends, showing runs done and kimg trained (tqdm) or tick lines while they run."""
    total_kimg = sum(spec.config.duration_kimg for spec in specs)
    bars = None
    ticks = _TickLines(specs) if lines else None
    if progress:
        from tqdm import tqdm

        bars = (tqdm(total=len(specs), desc="runs", unit="run", position=0),
                tqdm(total=round(total_kimg, 1), desc="kimg", unit="kimg", position=1, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} kimg [{elapsed}<{remaining}]"))
    while True:
        finished = all(job.done() for job in jobs)
        states = [run_state(spec.run_dir) for spec in specs]
        if ticks is not None:
            ticks.update(states)
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


# What faulthandler writes (TrainingJob enables it) when a worker dies of a fatal signal.
FATAL_SIGNALS = {"Segmentation fault": signal.SIGSEGV, "Aborted": signal.SIGABRT, "Bus error": signal.SIGBUS,
                 "Floating-point exception": signal.SIGFPE, "Illegal instruction": signal.SIGILL}


def death_reason(job, error) -> str:
    """Why a job died outside its runs, in words: a fatal signal, the scheduler's state, or submitit's last line."""
    try:
        stderr = job.stderr() or ""
    except Exception:  # no log (never started, or cleaned up)
        stderr = ""
    for words, number in FATAL_SIGNALS.items():
        if f"Fatal Python error: {words}" in stderr:
            return f"killed by signal {int(number)} ({words.lower()})"
    full = _disk_full_line(stderr + "\n" + _job_log(job, "stdout"))
    if full:
        return f"disk full (the worker's log: {full})"
    try:
        state = job.state
    except Exception:
        state = "UNKNOWN"
    text = str(error).strip()
    if "has not produced any output" in text:  # submitit: no result pickle, so no Python exception either
        folder = getattr(getattr(job, "paths", None), "folder", None)
        full = _write_fails(folder) if folder is not None else None
        if full:  # a full disk also swallows the worker's log and result: the errno of a write here says so
            return f"disk full ({full})"
        words = "the worker was killed without a Python error (SIGKILL: out of memory or kill -9?)"
    else:
        words = text.splitlines()[-1] if text else type(error).__name__
    if state and state not in ("FINISHED", "COMPLETED", "UNKNOWN", "RUNNING"):
        return f"job {job.job_id} ended {state}: {words}"
    return f"job {job.job_id} died outside the run: {words}"


DISK_FULL_WORDS = ("No space left on device", "no space left on device", "[Errno 28]", "Disk quota exceeded", "[Errno 122]")


def _job_log(job, name: str) -> str:
    try:
        return getattr(job, name)() or ""
    except Exception:  # no log (never started, cleaned up, or a stand-in job)
        return ""


def _disk_full_line(log: str):
    """The last line of a worker's log that reports a full disk or quota (errno 28 / 122), or None."""
    lines = [line.strip() for line in log.splitlines() if any(words in line for words in DISK_FULL_WORDS)]
    return lines[-1][:300] if lines else None


def _write_fails(folder):
    """'writing into FOLDER fails: no space left on device' when a small synced write there fails with ENOSPC/EDQUOT, else None."""
    import errno
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * 65536)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"writing into {folder} fails: {os.strerror(error.errno).lower()}"
    return None


def job_problems(jobs) -> list:
    """One line per job that died outside a run (killed, out of memory, scheduler error)."""
    return [reason for _, reason in _dead_jobs(jobs)]


def _dead_jobs(jobs, results: dict = None) -> list:
    """(job, reason) for each job without results; `results` collects {job id: results} of the others."""
    dead = []
    for job in jobs:
        try:
            outcome = job.results()  # one result per task (rank)
        except Exception as error:  # the job itself failed; its runs show as running/failed
            dead.append((job, death_reason(job, error)))
            continue
        if results is not None:
            results[job.job_id] = outcome
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
            try:
                files.write_json(run_dir / "summary.json", dict(
                    status="failed", reason=reason, kimg=run_state(run_dir)[1], diverged_kimg=None, metrics={},
                    experiment=spec.experiment, run=spec.name, written_by="r3bench run (the job died outside the run)"))
            except files.WriteError as error:  # e.g. the disk that killed the job is still full: one line, go on
                print(f"warning: {spec.experiment}/{spec.name}: its failed summary was not written: {error}", file=sys.stderr)
                continue
            marked.append(spec)
    return marked


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
    dead = _dead_jobs(jobs, results)
    mark_dead_runs(dead, chunks)
    notes = [s["reason"] for outcome in results.values() for result in outcome for s in (result or [])
             if isinstance(s, dict) and s.get("status") == "skipped"]
    return dict(submitted=len(todo), skipped=finished, problems=[reason for _, reason in dead],
                notes=sorted(set(notes)))
