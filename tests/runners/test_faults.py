"""Faults and bad inputs: a full disk on every write path, pre-flight checks, garbage in run folders, status and exit codes."""
import errno
import json
import os
import random
import re
import shutil
import subprocess
import sys

import pytest
import torch

from roadmap import files
from runners import launch, lock
from runners.cli import main
from runners.experiment import expand, load_experiment
from runners.dead_jobs import death_reason, mark_dead_runs
from runners.run_folder import run_state

TOY = """\
description: one toy run
base: {model: toy_mlp, model_args: {hidden: 16, depth: 2}, dataset: 25gaussians, loss: rpgan, penalties: [r1, r2],
       lazy_interval: 1, batch: 64, duration_kimg: 1.28, tick_kimg: 0.32, checkpoint_ticks: 1, eval_samples: 500}
seeds: [0]
resources: {timeout_min: 10, cpus_per_task: 1}
"""
ENV = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
FREE = shutil._ntuple_diskusage(10**12, 10**12 - 4096, 4096)  # what a full disk reports: 4.1 kB free


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(TOY)
    return path


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class DeadJob:
    job_id = "4242"
    state = "FINISHED"

    def __init__(self, stderr="", stdout="", folder=None):
        self._stderr, self._stdout = stderr, stdout
        self.paths = type("Paths", (), dict(folder=folder))()

    def stderr(self):
        return self._stderr

    def stdout(self):
        return self._stdout


NO_OUTPUT = RuntimeError("Job 4242 has not produced any output (state: FINISHED)")


# 4. A full disk, outside the checkpoint writer too.

def test_a_dead_job_whose_log_reports_a_full_disk_is_diagnosed_disk_full():
    log = "Traceback (most recent call last):\n  ...\nOSError: [Errno 28] No space left on device: '/r/.submitit/4242/4242_0_result.pkl'\n"
    assert death_reason(DeadJob(stderr=log), NO_OUTPUT) == (
        "disk full (the worker's log: OSError: [Errno 28] No space left on device: '/r/.submitit/4242/4242_0_result.pkl')")


def test_a_dead_job_with_an_empty_log_on_a_full_disk_is_not_blamed_on_sigkill(tmp_path, monkeypatch):
    assert death_reason(DeadJob(folder=tmp_path), NO_OUTPUT).endswith("(SIGKILL: out of memory or kill -9?)")
    monkeypatch.setattr(os, "fsync", enospc)  # the errno of a write into the job's folder now
    assert death_reason(DeadJob(folder=tmp_path), NO_OUTPUT) == f"disk full (writing into {tmp_path} fails: no space left on device)"


def test_a_dead_job_on_a_full_disk_leaves_one_line_instead_of_a_traceback(toy, tmp_path, monkeypatch, capsys):
    [spec] = expand(load_experiment(str(toy)), tmp_path / "results")
    files.write_text(spec.run_dir / "config.yaml", "gamma: 1.0\n")
    monkeypatch.setattr(os, "fsync", enospc)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: FREE)
    assert mark_dead_runs([(DeadJob(), "disk full")], {"4242": [spec]}) == []
    assert capsys.readouterr().err == (f"warning: toy/{spec.name}: its failed summary was not written: no space left on device "
                                       f"(writing {spec.run_dir / 'summary.json'}; 4.1 kB free)\n")


def test_experiment_json_on_a_full_disk_is_one_warning_line(toy, tmp_path, monkeypatch, capsys):
    real = files.write_json

    def write_json(path, data):
        if path.name == "experiment.json":
            raise files.WriteError(errno.ENOSPC, f"no space left on device (writing {path}; 4.1 kB free)")
        real(path, data)

    monkeypatch.setattr(files, "write_json", write_json)
    out = tmp_path / "results"
    assert main(["run", str(toy), "--executor", "debug", "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"warning: experiment.json not written: no space left on device (writing {out / 'toy' / 'experiment.json'}; 4.1 kB free)\n" in err
    assert "Traceback" not in err


def test_report_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "results").mkdir()
    monkeypatch.setattr(os, "fsync", enospc)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: FREE)
    assert main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "report")]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(rf"r3bench report: error: no space left on device \(writing {re.escape(str(tmp_path / 'report'))}/\S+; "
                        r"4\.1 kB free\)\n", err), err


# 5. Pre-flight: before any folder is written.

@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_run_on_cuda_without_cuda_is_refused_before_any_folder(toy, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", str(toy), "device=cuda", "--executor", "local", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("r3bench run: error: toy/seed0: device: 'cuda' "
                                       "requested but CUDA is not available on this machine\n")
    assert not out.exists()
    # a dry run plans (perhaps for another machine) and says what the pre-flight here would refuse
    assert main(["run", str(toy), "device=cuda", "--executor", "local", "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "note: run here with --executor local, this would stop before any folder is written: "
        "toy/seed0: device: 'cuda' requested but CUDA is not available on this machine")
    assert not out.exists()


def test_threads_beyond_the_cores_of_the_job_are_refused_before_any_folder(toy, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", str(toy), "threads=100000", "--executor", "local", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "r3bench run: error: toy: threads: must be an integer <= 4096, got 100000\n"
    cores = launch.job_cores("local", {})
    assert main(["run", str(toy), f"threads={cores + 1}", "--executor", "local", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"r3bench run: error: toy/seed0: threads: {cores + 1} "
                                       f"is more than the {cores} cores this machine has\n")
    assert not out.exists()
    [spec] = expand(load_experiment(str(toy)), out, overrides={"threads": 4})
    with pytest.raises(launch.ConfigError, match=r"threads: 4 is more than the 2 cores resources.cpus_per_task gives a job"):
        launch.preflight([spec], "slurm", dict(cpus_per_task=2))
    launch.preflight([spec], "slurm", dict(cpus_per_task=4))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_slurm_job_on_a_node_without_cuda_fails_as_one_line_in_its_summary(toy, tmp_path):
    from roadmap.config import to_dict

    [spec] = expand(load_experiment(str(toy)), tmp_path / "results", overrides={"device": "cuda"})
    launch.preflight([spec], "slurm", dict(cpus_per_task=1))  # the submitting node may have no GPU
    [summary] = launch.TrainingJob()([(to_dict(spec.config), str(spec.run_dir))])
    assert summary["status"] == "failed" and summary["reason"] == "ConfigError: device: 'cuda' requested but CUDA is not available"
    assert files.read_json(spec.run_dir / "summary.json")["reason"] == summary["reason"]


def test_bench_threads_beyond_the_cores_are_one_line(capsys):
    cores = launch.job_cores("local", {})
    assert main(["bench", "--config", "A", "--threads", str(cores + 1)]) == 2
    assert capsys.readouterr().err == f"r3bench bench: error: --threads: must be an integer <= {cores}, got {cores + 1}\n"


# 6. Tracebacks.

def test_an_override_into_a_scalar_is_one_line(toy, tmp_path, capsys):
    assert main(["run", str(toy), "batch.x=1", "--executor", "debug", "--out", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err == "r3bench run: error: batch.x: batch is 64, not a mapping with keys\n"


def test_report_lists_garbage_under_problems_and_builds_the_rest(tmp_path):
    from reports.build import build_report

    results = tmp_path / "results"
    for run, summary, metrics in (
            ("good", dict(status="completed", kimg=1.28, wall_seconds=3.5, metrics=dict(coverage=0.9)), '{"tick": 1, "kimg": 1.28}\n'),
            ("bad", dict(status="completed", kimg="lots", wall_seconds=[1], metrics=dict(coverage="high"), device=7),
             '{"tick": 1, "kimg": 0.32}\n{"tick": 2, "kimg": "x"}\n')):
        files.write_text(results / "toy" / run / "config.yaml", "model: toy_mlp\ndataset: ring8\nseed: 0\n")
        files.write_json(results / "toy" / run / "summary.json", summary)
        files.write_text(results / "toy" / run / "metrics.jsonl", metrics)
    # a config.yaml that YAML cannot parse (a multi-line parser message), a metrics.jsonl of random bytes, a damaged
    # middle line; a lone torn last line is a killed writer's normal trace and no problem
    files.write_text(results / "toy" / "yaml" / "config.yaml", "model: [toy_mlp\nseed: {0\n")
    for run, metrics in (("bytes", random.Random(0).randbytes(300).decode("latin-1").replace("\n", " ").replace("\r", " ")),
                         ("middle", '{"tick": 1, "kimg": 0.32}\n{"tick": 2, "kim\n{"tick": 3, "kimg": 0.96}\n'),
                         ("torn", '{"tick": 1, "kimg": 0.32}\n{"tick": 2, "ki')):
        files.write_text(results / "toy" / run / "config.yaml", "model: toy_mlp\ndataset: ring8\nseed: 0\n")
        files.write_text(results / "toy" / run / "metrics.jsonl", metrics)
    report = build_report(results, tmp_path / "report").read_text()
    problems = report[report.index("## Problems"):report.index("\n## ", report.index("## Problems") + 3)]
    [yaml_line] = [line for line in problems.splitlines() if "toy/yaml" in line]
    assert yaml_line.startswith("- `toy/yaml`: config.yaml unreadable (ParserError: ") or \
        yaml_line.startswith("- `toy/yaml`: config.yaml unreadable (ScannerError: "), yaml_line
    assert "- `toy/bytes`: metrics.jsonl: 1 damaged line(s) skipped (line 1 first)" in problems
    assert "- `toy/middle`: metrics.jsonl: 1 damaged line(s) skipped (line 2 first)" in problems
    assert "toy/torn" not in problems
    assert ("- `toy/bad`: summary.json: kimg is 'lots' (expected a number); wall_seconds is [1] (expected a number); "
            "device is 7 (expected text); metrics.coverage is 'high' (expected a number)") in problems
    assert "- `toy/bad`: metrics.jsonl row 2: kimg is 'x'; rows like it are left out" in problems
    assert "toy/good" not in problems
    provenance = report[report.index("## Provenance"):]
    assert "| toy | bad | completed | - | - | - | - | - |" in provenance and "| toy | good | completed | 1.3 | 4 | - |" in provenance


# 7. Smaller.

def test_status_shows_the_kimg_a_failed_run_reached(toy, tmp_path, capsys):
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(toy)), out)
    files.write_text(spec.run_dir / "config.yaml", "gamma: 1.0\n")
    files.write_text(spec.run_dir / "metrics.jsonl", "".join(json.dumps(dict(tick=t, kimg=0.32 * t)) + "\n" for t in (1, 2, 3)))
    files.write_json(spec.run_dir / "summary.json", dict(status="failed", reason="out of memory", kimg=None))
    assert run_state(spec.run_dir) == ("failed", 0.96)
    assert main(["status", str(toy), "--out", str(out), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["state"] == "failed" and row["kimg"] == 0.96


def test_checkpoint_warnings_are_one_line_without_python_source(toy, tmp_path):
    out = tmp_path / "results"
    argv = ["run", str(toy), "--executor", "debug", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    [spec] = expand(load_experiment(str(toy)), out)
    (spec.run_dir / "summary.json").unlink()
    latest = spec.run_dir / files.CHECKPOINT
    latest.write_bytes(latest.read_bytes()[:100])
    done = subprocess.run([sys.executable, "-m", "runners.cli", *argv], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    warnings_seen = [line for line in done.stderr.splitlines() if "checkpoint" in line]
    assert warnings_seen == [f"warning: {latest} is unreadable (RuntimeError); falling back to the previous checkpoint (the latest kept as checkpoint.pt.unreadable)"], done.stderr


def test_a_run_another_command_holds_but_has_not_started_is_not_a_success(toy, tmp_path, capsys):
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(toy)), out)
    with lock.RunLock(spec.run_dir) as held:  # the first `r3bench run` claimed it and has not written config.yaml yet
        assert held.acquire(attempts=1) is True
        assert main(["run", str(toy), "--executor", "debug", "--out", str(out), "--no-progress"]) == 1
    assert f"toy/{spec.name}: skipped, being written by pid {os.getpid()}" in capsys.readouterr().out
    assert run_state(spec.run_dir)[0] == "pending"


# 1. A checkpoint of another run, through the command line.

def test_run_refuses_a_checkpoint_of_another_run_in_one_line_and_keeps_its_rows(toy, tmp_path, capsys):
    out, foreign = tmp_path / "results", tmp_path / "foreign"
    assert main(["run", str(toy), "lr=0.002", "--executor", "debug", "--out", str(foreign), "--no-progress"]) == 0
    argv = ["run", str(toy), "--executor", "debug", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    [spec] = expand(load_experiment(str(toy)), out)
    (spec.run_dir / "summary.json").unlink()  # interrupted after its last checkpoint
    for name in (files.CHECKPOINT, files.PREVIOUS_CHECKPOINT):
        shutil.copy(foreign / "toy" / spec.name / name, spec.run_dir / name)
    metrics = (spec.run_dir / "metrics.jsonl").read_bytes()
    capsys.readouterr()
    assert main(argv) == 1
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("failed:")]
    assert line.startswith(f"failed: toy/{spec.name}: CheckpointRefused: {spec.run_dir}: checkpoint.pt is from a run with "
                           "other settings (lr: stored 0.002, now 0.0002);")
    assert (spec.run_dir / "metrics.jsonl").read_bytes() == metrics
