"""Resume after kill -9, after preemption (submitit requeue), and from the previous checkpoint when the latest is torn."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from roadmap import files, trainer
from runners.cli import main
from runners.experiment import expand, load_experiment
from runners.job import TrainingJob
from runners.launch import submit
from runners.run_folder import run_state

# 800 steps of 64 samples (~4 s on one core), a checkpoint at each of the 20 ticks: long enough to
# be killed well before the end, short enough for the suite.
EXPERIMENT = """\
description: one tiny run to interrupt
base: {model: toy_mlp, model_args: {hidden: 64, depth: 2}, dataset: ring8, batch: 64, duration_kimg: 51.2,
       tick_kimg: 2.56, checkpoint_ticks: 1, lr: 1.0e-3, eval_samples: 2000}
seeds: [3]
resources: {timeout_min: 10, cpus_per_task: 1}
"""
TICKS = 20


def ticks(run_dir):
    """metrics.jsonl without the wall-clock columns."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "tick_seconds")}
            for row in files.read_jsonl(run_dir / "metrics.jsonl")]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """(experiment file, its one run spec under a fresh results root, the uninterrupted run's folder)."""
    folder = tmp_path_factory.mktemp("resume")
    path = folder / "interrupt.yaml"
    path.write_text(EXPERIMENT)
    [spec] = expand(load_experiment(str(path)), folder / "results")
    whole = folder / "whole"
    trainer.train(spec.config, whole)  # uninterrupted, in this process (one thread, like the jobs)
    assert len(ticks(whole)) == TICKS
    return path, spec, whole


def wait_for(predicate, timeout=60.0, what="condition"):
    end = time.time() + timeout
    while not predicate():
        if time.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def assert_same_run(run_dir, whole):
    assert ticks(run_dir) == ticks(whole)
    summary = files.read_json(run_dir / "summary.json")
    assert summary["status"] == "completed"
    assert summary["metrics"] == files.read_json(whole / "summary.json")["metrics"]


def test_kill_9_then_same_command_resumes_the_same_trajectory(experiment, tmp_path):
    path, spec, whole = experiment
    out = tmp_path / "results"
    argv = ["run", str(path), "--executor", "local", "--out", str(out), "--no-progress"]
    run_dir = out / "interrupt" / spec.name
    # The CLI, submitit's controller and the training task share one process group: kill all of them.
    process = subprocess.Popen([sys.executable, "-m", "runners.cli", *argv], cwd=tmp_path, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run_dir / files.CHECKPOINT).exists(), what="the first checkpoint")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    time.sleep(0.2)
    assert run_state(run_dir)[0] == "running" and not (run_dir / "summary.json").exists()
    killed_at = len(files.read_jsonl(run_dir / "metrics.jsonl"))
    assert 1 <= killed_at < TICKS
    assert main(argv) == 0
    assert_same_run(run_dir, whole)


def test_truncated_checkpoint_falls_back_to_the_previous_one_and_says_so(experiment, tmp_path, monkeypatch):
    path, spec, whole = experiment
    out = tmp_path / "results"
    run_dir = out / "interrupt" / spec.name
    real_save = files.save_checkpoint
    saves = []

    def save_then_die(run_dir, state):
        real_save(run_dir, state)
        saves.append(state["tick"])
        if len(saves) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(files, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(spec.config, run_dir)
    monkeypatch.setattr(files, "save_checkpoint", real_save)
    latest = run_dir / files.CHECKPOINT
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # torn write
    with pytest.warns(UserWarning, match=r"checkpoint\.pt is unreadable .*falling back to the previous checkpoint"):
        assert main(["run", str(path), "--executor", "debug", "--out", str(out), "--no-progress"]) == 0
    assert_same_run(run_dir, whole)


def test_checkpoint_hands_back_the_same_job_with_the_same_runs():
    job = TrainingJob()
    specs = [({"seed": 1}, "/tmp/a"), ({"seed": 2}, "/tmp/b")]
    delayed = job.checkpoint(specs)
    assert delayed.function is job and delayed.args == (specs,) and delayed.kwargs == {}


def test_preempted_local_job_is_requeued_and_resumes(experiment, tmp_path):
    """SIGUSR2 is what SLURM sends before a time limit or preemption. submitit's LocalJob._interrupt
    signals the controller, which has no handler for it, so the signal goes to the training task."""
    path, spec, whole = experiment
    [spec] = expand(load_experiment(str(path)), tmp_path / "results")
    [job] = submit([spec], "local", dict(timeout_min=10), tmp_path / "submitit")
    wait_for(lambda: (spec.run_dir / files.CHECKPOINT).exists(), what="the first checkpoint")
    task = json.loads((spec.run_dir / "job.json").read_text())
    os.kill(task["pid"], signal.SIGUSR2)
    [summary] = job.result()
    assert summary["status"] == "completed"
    record = json.loads((spec.run_dir / "job.json").read_text())
    assert record["job_id"] == task["job_id"] and record["starts"] == 2 and record["pid"] != task["pid"]
    assert "Requeued job" in job.stderr() or "Requeued job" in (job.stdout() or "")
    assert_same_run(spec.run_dir, whole)
