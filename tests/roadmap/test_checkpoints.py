"""Checkpoints bound to their run (settings and shapes), fallback to the previous one, and kill -9 during a write."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from roadmap import files, trainer
from roadmap.config import resolve, to_dict

# 16 steps of 16 samples, a tick per 2 steps and a checkpoint per tick: 8 checkpoint writes in well under a second.
TINY = dict(model="toy_mlp", model_args=dict(hidden=16, depth=2, latent_dim=4), dataset="ring8", batch=16,
            duration_kimg=0.256, tick_kimg=0.032, checkpoint_ticks=1, gamma=1.0, lr=1e-3, eval_samples=500)
ENV = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))


def ticks(run_dir):
    """metrics.jsonl without the wall-clock columns."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "tick_seconds")}
            for row in files.read_jsonl(run_dir / "metrics.jsonl")]


def weights(path):
    state = torch.load(path, weights_only=False)
    return {f"{part}.{key}": value for part in ("generator", "discriminator", "generator_ema") for key, value in state[part].items()}


def assert_bitwise_same_run(run_dir, whole):
    assert ticks(run_dir) == ticks(whole)
    assert files.read_json(run_dir / "summary.json")["metrics"] == files.read_json(whole / "summary.json")["metrics"]
    mine, reference = weights(run_dir / files.CHECKPOINT), weights(whole / files.CHECKPOINT)
    assert mine.keys() == reference.keys() and all(torch.equal(mine[key], reference[key]) for key in mine)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted run."""
    folder = tmp_path_factory.mktemp("whole")
    trainer.train(resolve(TINY), folder)
    assert len(ticks(folder)) == 8
    return folder


def interrupted(run_dir, values=TINY, saves=4):
    """Train `values` into `run_dir` and stop right after the `saves`-th checkpoint (as a kill there would)."""
    real_save = files.save_checkpoint
    done = []

    def save_then_stop(folder, state):
        real_save(folder, state)
        done.append(state["tick"])
        if len(done) == saves:
            raise KeyboardInterrupt

    files.save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.train(resolve(values), run_dir)
    finally:
        files.save_checkpoint = real_save


def test_a_checkpoint_of_another_run_is_refused_and_the_run_stops_untouched(tmp_path):
    foreign, run_dir = tmp_path / "foreign", tmp_path / "run"
    interrupted(foreign, dict(TINY, lr=2e-3), saves=6)
    interrupted(run_dir, saves=2)
    for name in (files.CHECKPOINT, files.PREVIOUS_CHECKPOINT):  # same shapes, other lr
        shutil.copy(foreign / name, run_dir / name)
    metrics = (run_dir / "metrics.jsonl").read_bytes()
    summary = trainer.run(resolve(TINY), run_dir)
    assert summary["status"] == "failed"
    assert summary["reason"] == (f"CheckpointRefused: {run_dir}: checkpoint.pt is from a run with other settings "
                                 "(lr: stored 0.002, now 0.001); checkpoint-previous.pt is from a run with other settings "
                                 "(lr: stored 0.002, now 0.001); no checkpoint of this run to resume from "
                                 "(move it away, or --force to re-run from scratch)")
    assert (run_dir / "metrics.jsonl").read_bytes() == metrics  # its own 2 ticks, not cut to the foreign tick 6
    assert len(ticks(run_dir)) == 2 and torch.load(run_dir / files.CHECKPOINT, weights_only=False)["tick"] == 6


def test_a_foreign_latest_checkpoint_falls_back_to_the_previous_and_resumes_bitwise(tmp_path, whole):
    foreign, run_dir = tmp_path / "foreign", tmp_path / "run"
    interrupted(foreign, dict(TINY, batch=32, tick_kimg=0.064), saves=3)
    interrupted(run_dir, saves=4)
    shutil.copy(foreign / files.CHECKPOINT, run_dir / files.CHECKPOINT)
    with pytest.warns(UserWarning) as caught:
        trainer.train(resolve(TINY), run_dir)
    assert [str(w.message) for w in caught] == [
        f"{run_dir / files.CHECKPOINT} is from a run with other settings (batch: stored 32, now 16); "
        "falling back to the previous checkpoint (the latest kept as checkpoint.pt.refused)"]
    assert_bitwise_same_run(run_dir, whole)


def test_a_latest_checkpoint_of_another_shape_falls_back_instead_of_failing(tmp_path, whole):
    """A checkpoint without a stored config (written before configs were stored, or by hand) is checked by its shapes."""
    other, run_dir = tmp_path / "other", tmp_path / "run"
    interrupted(other, dict(TINY, model_args=dict(hidden=32, depth=2, latent_dim=4)), saves=5)
    interrupted(run_dir, saves=3)
    state = torch.load(other / files.CHECKPOINT, weights_only=False)
    del state["config"]
    torch.save(state, run_dir / files.CHECKPOINT)
    with pytest.warns(UserWarning, match=r"is from a run with other settings \(generator\.[\w.]+: stored shape \(32, 4\), "
                                         r"now \(16, 4\)\); falling back to the previous checkpoint"):
        trainer.train(resolve(TINY), run_dir)
    assert_bitwise_same_run(run_dir, whole)


def test_threads_and_the_checkpoint_interval_do_not_bind_a_checkpoint(tmp_path, whole):
    run_dir = tmp_path / "run"
    interrupted(run_dir, dict(TINY, threads=1), saves=3)
    trainer.train(resolve(dict(TINY, threads=0, logger="jsonl")), run_dir)  # no warning, no fallback
    assert_bitwise_same_run(run_dir, whole)


# kill -9 at set points of the n-th checkpoint write, each in its own run folder. One process imports
# torch once and forks a child per kill (no torch thread pool has started, so forking is safe).
KILL_POINTS = ("mid-write", "before the first rename", "between the renames", "after the last rename")
KILLS = [(point, number) for point in KILL_POINTS for number in (2, 3, 4, 5, 6)]
KILLER = r"""
import json, os, signal, sys
from pathlib import Path
import torch
from roadmap import files, trainer
from roadmap.config import resolve

import torch._dynamo  # noqa: F401  (imported by the first optimizer, ~2 s: once here rather than in every child)
from roadmap.registry import create_model

torch.set_num_threads(1)
values, root, kills = json.loads(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
create_model(values["model"], **values["model_args"])  # loads the configuration plug-ins once, before forking


def child(point, number):
    saves, real_save, real_replace = [0], files._save_torch, os.replace
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)

    def save(state, stream):
        saves[0] += 1
        if saves[0] == number and point == "mid-write":
            import io
            buffer = io.BytesIO()
            torch.save(state, buffer)
            stream.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            stream.flush()
            die()
        real_save(state, stream)

    def replace(source, target):
        due = saves[0] == number
        if due and point == "before the first rename" and Path(target).name == files.PREVIOUS_CHECKPOINT:
            die()
        real_replace(source, target)
        if due and point == "between the renames" and Path(target).name == files.PREVIOUS_CHECKPOINT:
            die()
        if due and point == "after the last rename" and Path(target).name == files.CHECKPOINT:
            die()

    files._save_torch, os.replace = save, replace
    trainer.train(resolve(values), root / f"{point.replace(' ', '-')}-{number}")
    os._exit(3)  # the kill point was never reached


statuses = []
for point, number in kills:
    pid = os.fork()
    if pid == 0:
        try:
            child(point, number)
        finally:
            os._exit(4)
    statuses.append(os.waitpid(pid, 0)[1])
print(json.dumps(statuses))
"""


def test_kill_9_during_checkpoint_writes_never_leaves_fewer_than_one_valid_checkpoint(tmp_path, whole):
    out = subprocess.run([sys.executable, "-c", KILLER, json.dumps(TINY), str(tmp_path), json.dumps(KILLS)],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [9] * len(KILLS)  # every child died of SIGKILL at its point
    for point, number in KILLS:
        run_dir = tmp_path / f"{point.replace(' ', '-')}-{number}"
        written = number if point == "after the last rename" else number - 1  # checkpoint n holds tick n
        latest, previous = run_dir / files.CHECKPOINT, run_dir / files.PREVIOUS_CHECKPOINT
        temp = list(run_dir.glob(".*.tmp"))
        if point == "between the renames":  # the old latest is already the previous one; the new one is complete
            assert not latest.exists() and torch.load(previous, weights_only=False)["tick"] == written
            [leftover] = temp
            assert torch.load(leftover, weights_only=False)["tick"] == number
        else:
            assert torch.load(latest, weights_only=False)["tick"] == written, (point, number)
            assert (torch.load(previous, weights_only=False)["tick"] if previous.exists() else 0) == written - 1
            assert len(temp) == (point != "after the last rename")
        assert files.load_checkpoint(run_dir)["tick"] == written
        assert not (run_dir / "summary.json").exists()

        real_save = files.save_checkpoint
        after_first_write = []

        def save_and_check(folder, state):
            real_save(folder, state)
            if not after_first_write:  # no temp file survives the restart; the next write leaves both valid
                after_first_write.append((sorted(p.name for p in folder.glob(".*.tmp")),
                                          torch.load(latest, weights_only=False)["tick"],
                                          torch.load(previous, weights_only=False)["tick"]))

        files.save_checkpoint = save_and_check
        try:
            trainer.train(resolve(TINY), run_dir)
        finally:
            files.save_checkpoint = real_save
        assert after_first_write == [([], written + 1, written)], (point, number)
        assert_bitwise_same_run(run_dir, whole)
