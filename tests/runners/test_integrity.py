"""Run folders bound to their settings, one writer per folder, tick lines, file modes, worker lifecycle, death reasons."""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest
import yaml

from roadmap import files
from roadmap.config import to_dict
from runners import lock
from runners.cli import main
from runners.experiment import expand, load_experiment
from runners.dead_jobs import death_reason, mark_dead_runs
from runners.job import TrainingJob
from runners.run_folder import run_state

TOY = """\
description: one toy run
base: {{model: toy_mlp, model_args: {{hidden: {hidden}, depth: 2}}, dataset: 25gaussians, loss: rpgan, penalties: [r1, r2],
       lazy_interval: 1, batch: 64, duration_kimg: {kimg}, tick_kimg: {tick}, checkpoint_ticks: 1, eval_samples: 500}}
seeds: [0]
resources: {{timeout_min: 10, cpus_per_task: 1}}
"""
ENV = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))


def experiment_file(tmp_path, name="toy", hidden=16, kimg=1.28, tick=0.32):
    path = tmp_path / f"{name}.yaml"
    path.write_text(TOY.format(hidden=hidden, kimg=kimg, tick=tick))
    return path


def _default_sigint():
    # A suite started in the background (`cmd &` in a script) inherits SIGINT ignored, and Python then
    # never raises KeyboardInterrupt: give the command Ctrl-C as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*argv, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "runners.cli", *argv], env=ENV, preexec_fn=_default_sigint, **kwargs)


def wait_for(predicate, timeout=90.0, what="condition"):
    end = time.time() + timeout
    while not predicate():
        if time.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_intact(run_dir, ticks):
    raw = (run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in raw]  # every line parses
    assert [row["tick"] for row in rows] == list(range(1, ticks + 1))
    summary = json.loads((run_dir / "summary.json").read_text(), parse_constant=lambda token: 1 / 0)
    assert summary["status"] == "completed" and summary["kimg"] == pytest.approx(rows[-1]["kimg"])


def test_changed_gamma_is_refused_in_one_line_and_force_reruns(tmp_path, capsys):
    path = experiment_file(tmp_path)
    out = tmp_path / "results"
    argv = ["run", str(path), "--executor", "debug", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    [spec] = expand(load_experiment(str(path)), out)
    capsys.readouterr()
    assert main(argv + ["gamma=10"]) == 2
    err = capsys.readouterr().err
    assert err == (f"r3bench run: error: toy/{spec.name}: finished with other settings (gamma: stored 1.0, now 10); "
                   "use --force to re-run from scratch or --out for a new folder\n")
    assert main(argv + ["gamma=10", "--dry-run"]) == 0
    assert "[finished with other settings]" in capsys.readouterr().out
    # A worker started on the folder (another parent, a requeue) refuses as well and leaves it alone.
    [changed] = expand(load_experiment(str(path)), out, overrides={"gamma": 10.0})
    stamp = (spec.run_dir / "summary.json").stat().st_mtime_ns
    [verdict] = TrainingJob()([(to_dict(changed.config), str(changed.run_dir))])
    assert verdict["status"] == "skipped" and "(gamma: stored 1.0, now 10.0)" in verdict["reason"]
    assert (spec.run_dir / "summary.json").stat().st_mtime_ns == stamp
    # Settings that cannot change the result do not bind the folder.
    assert main(argv + ["threads=1", "checkpoint_ticks=2"]) == 0
    assert "1 runs already finished" in capsys.readouterr().out
    assert main(argv + ["gamma=10", "--force"]) == 0
    assert yaml.safe_load((spec.run_dir / "config.yaml").read_text())["gamma"] == 10
    assert run_state(spec.run_dir) == ("completed", 1.28)


def test_interrupted_run_with_other_lr_is_refused(tmp_path, capsys):
    path = experiment_file(tmp_path)
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(path)), out)
    spec.run_dir.mkdir(parents=True)
    files.write_text(spec.run_dir / "config.yaml", (json.dumps(dict(to_dict(spec.config), lr=1e-3))))
    assert main(["run", str(path), "--executor", "debug", "--out", str(out), "lr=0.0002"]) == 2
    assert "interrupted with other settings (lr: stored 0.001, now 0.0002)" in capsys.readouterr().err


def test_a_locked_run_is_skipped_and_status_names_its_writer(tmp_path, capsys):
    path = experiment_file(tmp_path)
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(path)), out)
    with lock.RunLock(spec.run_dir) as held:
        assert held.acquire(attempts=1) is True
        [verdict] = TrainingJob()([(to_dict(spec.config), str(spec.run_dir))])
        assert verdict["status"] == "skipped"
        host = os.uname().nodename
        assert verdict["reason"] == f"toy/{spec.name}: skipped, being written by pid {os.getpid()} on host {host}"
        assert capsys.readouterr().out == verdict["reason"] + "\n"
        assert main(["status", str(path), "--out", str(out), "--json"]) == 0
        [row] = json.loads(capsys.readouterr().out)
        assert row["state"] == "running" and row["writer"] == dict(pid=os.getpid(), host=host)
    assert lock.holder(spec.run_dir) is None
    assert not (spec.run_dir / "summary.json").exists()


def test_two_processes_on_one_folder_leave_intact_results(tmp_path):
    path = experiment_file(tmp_path, hidden=64, kimg=102.4, tick=1.28)  # long enough to still run when the second starts
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(path)), out)
    argv = ["run", str(path), "--executor", "debug", "--out", str(out), "--no-progress"]
    first = cli(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (spec.run_dir / "config.yaml").exists(), what="the first writer")
    second = cli(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second_out, second_err = second.communicate(timeout=300)
    first_out, _ = first.communicate(timeout=300)
    assert first.returncode == 0
    assert f"toy/{spec.name}: skipped, being written by pid {first.pid} on host" in second_out, second_out + second_err
    assert_intact(spec.run_dir, 80)


def test_tick_lines_when_stdout_is_a_file_and_files_are_0644(tmp_path):
    path = experiment_file(tmp_path)
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(path)), out)
    log = tmp_path / "log.txt"
    with open(log, "w") as stream:
        process = cli("run", str(path), "--executor", "local", "--out", str(out), stdout=stream, stderr=subprocess.PIPE)
        process.wait(timeout=300)
    assert process.returncode == 0
    text = log.read_text()
    ticks = re.findall(rf"^\[toy/{spec.name}\] kimg (\d+\.\d) loss_D -?[\d.e+-]+ loss_G -?[\d.e+-]+$", text, re.M)
    assert ticks == ["0.3", "0.6", "1.0", "1.3"]
    assert re.search(rf"^\[toy/{spec.name}\] completed at kimg 1.28: .*modes \d+", text, re.M)
    assert_intact(spec.run_dir, 4)
    modes = {}
    for folder, dirs, names in os.walk(spec.run_dir):
        for name in names:
            modes[os.path.relpath(os.path.join(folder, name), spec.run_dir)] = stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
        for name in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == 0o755
    assert {"summary.json", "config.yaml", "metrics.jsonl", files.CHECKPOINT, ".lock"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if mode != 0o644} == {}


def _worker(run_dir):
    wait_for(lambda: (run_dir / files.CHECKPOINT).exists() and (run_dir / "job.json").exists(), what="the first checkpoint")
    record = json.loads((run_dir / "job.json").read_text())
    return record["pid"], int(record["job_id"])  # the training task and submitit's controller


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_local_workers_stop_with_their_parent(tmp_path, how):
    path = experiment_file(tmp_path, hidden=64, kimg=256.0, tick=1.28)
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(path)), out)
    process = cli("run", str(path), "--executor", "local", "--out", str(out), "--no-progress",
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    task, controller = _worker(spec.run_dir)
    process.send_signal(getattr(signal, how))
    _, err = process.communicate(timeout=60)
    if how != "SIGKILL":  # one line, no traceback (submitit's controller writes its own to controllers.log)
        assert process.returncode == 128 + getattr(signal, how)
        assert err.strip().splitlines() == [f"r3bench run: interrupted ({how}: cancelled the local jobs; "
                                            "the same command resumes them from their checkpoints)"]
    wait_for(lambda: not lock.pid_alive(task) and not lock.pid_alive(controller), timeout=10, what="the workers to stop")
    assert lock.holder(spec.run_dir) is None
    assert run_state(spec.run_dir)[0] == "running" and not (spec.run_dir / "summary.json").exists()


class DeadJob:
    job_id = "4242"
    state = "FINISHED"

    def __init__(self, stderr):
        self._stderr = stderr

    def stderr(self):
        return self._stderr


def test_a_segfaulted_job_leaves_failed_runs_with_the_signal(tmp_path):
    path = experiment_file(tmp_path)
    started, never = (expand(load_experiment(str(path)), tmp_path / name)[0] for name in ("a", "b"))
    files.write_text(started.run_dir / "config.yaml", "gamma: 1.0\n")
    files.write_text(started.run_dir / "metrics.jsonl", '{"tick": 1, "kimg": 0.32}\n')
    job = DeadJob("training...\nFatal Python error: Segmentation fault\n\nThread 0x1 (most recent call first):\n")
    reason = death_reason(job, RuntimeError("Job 4242 has not produced any output (state: FINISHED)"))
    assert reason == "killed by signal 11 (segmentation fault)"
    assert mark_dead_runs([(job, reason)], {"4242": [started, never]}) == [started]
    summary = files.read_json(started.run_dir / "summary.json")
    assert summary["status"] == "failed" and summary["reason"] == reason and summary["kimg"] == 0.32
    assert not (never.run_dir / "summary.json").exists()
    assert death_reason(DeadJob(""), RuntimeError("ValueError: boom")) == "job 4242 died outside the run: ValueError: boom"


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    path = experiment_file(tmp_path)
    target = tmp_path / "results"
    target.write_text("not a folder")
    assert main(["run", str(path), "--executor", "debug", "--out", str(target)]) == 2
    assert capsys.readouterr().err == f"r3bench run: error: --out: {target} is a file, not a folder\n"


def test_a_torn_middle_tick_line_loses_no_other_row_on_resume(tmp_path):
    path = experiment_file(tmp_path)
    out = tmp_path / "results"
    argv = ["run", str(path), "--executor", "debug", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    [spec] = expand(load_experiment(str(path)), out)
    metrics = spec.run_dir / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    assert len(lines) == 4
    lines[1] = lines[1][:10] + "\n"  # a crash mid-write of tick 2
    metrics.write_text("".join(lines))
    (spec.run_dir / "summary.json").unlink()  # interrupted after its last checkpoint (tick 4)
    with pytest.warns(UserWarning, match=r"skipped damaged line\(s\) 2"):
        assert main(argv) == 0
    assert [row["tick"] for row in files.read_jsonl(metrics)] == [1, 3, 4]
    assert run_state(spec.run_dir) == ("completed", 1.28)


def test_summary_counts_interrupted_runs_apart_from_failures(tmp_path):
    from runners.summary import summarize

    path = experiment_file(tmp_path)
    specs = expand(load_experiment(str(path)), tmp_path, overrides={"seeds": [0, 1, 2]})
    files.write_text(specs[0].run_dir / "config.yaml", "gamma: 1.0\n")  # interrupted, resumable
    files.write_json(specs[1].run_dir / "summary.json", dict(status="failed", reason="killed by signal 11"))
    (row,) = summarize(specs)
    assert row["failed"] == "1/3" and row["unfinished"] == "2/3" and row["diverged"] == "0/3"


def test_a_worker_killed_outside_python_leaves_a_failed_run_that_resumes(tmp_path):
    path = experiment_file(tmp_path, hidden=64, kimg=25.6, tick=1.28)
    out = tmp_path / "results"
    [spec] = expand(load_experiment(str(path)), out)
    argv = ["run", str(path), "--executor", "local", "--out", str(out), "--no-progress"]
    process = cli(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    task, _ = _worker(spec.run_dir)
    os.kill(task, signal.SIGKILL)  # what the out-of-memory killer does
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    summary = files.read_json(spec.run_dir / "summary.json")
    assert summary["status"] == "failed" and summary["reason"].endswith(
        "died outside the run: the worker was killed without a Python error (SIGKILL: out of memory or kill -9?)"), summary
    assert f"failed: toy/{spec.name}: {summary['reason']}" in err
    assert main(argv) == 0  # a failed run is tried again: it resumes from its checkpoint
    assert_intact(spec.run_dir, 20)


def test_out_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    import tempfile

    path = experiment_file(tmp_path)

    def read_only(*args, **kwargs):  # a read-only folder (root ignores mode bits, so simulate the refusal)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert main(["run", str(path), "--executor", "debug", "--out", str(tmp_path / "ro")]) == 2
    assert capsys.readouterr().err == f"r3bench run: error: --out: cannot write results under {tmp_path / 'ro'} (Permission denied)\n"


def test_status_reads_run_folders_without_the_data_root(tmp_path, monkeypatch, capsys):
    """`r3bench status table3` needs no MNIST: it reads run folders; `run --dry-run` still checks the root."""
    monkeypatch.delenv("R3BENCH_DATA", raising=False)
    out = tmp_path / "results"
    assert main(["status", "table3", "--out", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and {row["state"] for row in rows} == {"pending"}
    assert main(["run", "table3", "--out", str(out), "--dry-run"]) == 2
    assert "no MNIST root given" in capsys.readouterr().err


def test_run_records_its_wall_time_beside_the_runs_and_the_report_quotes_it(tmp_path, capsys):
    from reports.collect import collect, experiment_wall_times

    path = experiment_file(tmp_path, kimg=0.64)
    out = tmp_path / "results"
    assert main(["run", str(path), "--executor", "debug", "--out", str(out), "--max-parallel", "1"]) == 0
    record = json.loads((out / "toy" / "experiment.json").read_text())
    assert record["experiment"] == "toy" and record["runs"] == record["trained"] == 1 and record["max_parallel"] == 1
    assert 0 < record["wall_seconds"] < 600 and record["started"] <= record["finished"]
    assert stat.S_IMODE((out / "toy" / "experiment.json").stat().st_mode) == 0o644
    # a second call trains nothing (the run is finished) and keeps the measured record
    before = (out / "toy" / "experiment.json").read_text()
    assert main(["run", str(path), "--executor", "debug", "--out", str(out)]) == 0
    assert (out / "toy" / "experiment.json").read_text() == before
    results = collect(out)
    assert results.problems == [] and len(results.runs) == 1
    results.runs["feeds"] = "toyfeed"
    [line] = experiment_wall_times(results, "toyfeed")
    assert line.startswith("Wall time of `r3bench run toy`: 0 min") and "1 of 1 runs trained, 1 at a time" in line
