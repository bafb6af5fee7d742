"""Run-folder files: permissions, strict JSON, damaged jsonl lines, unreadable checkpoints, full disk."""
import errno
import json
import math
import os
import shutil
import stat

import pytest
import torch

from roadmap import files


def _reject(token):
    raise ValueError(f"non-standard JSON token {token}")


def test_files_are_0644_and_new_folders_0755_under_a_strict_umask(tmp_path):
    old = os.umask(0o077)
    try:
        files.write_json(tmp_path / "a" / "b" / "summary.json", dict(x=1))
        files.write_torch(tmp_path / "a" / "t.pt", dict(x=torch.zeros(2)))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "b" / "summary.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "a" / "t.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755


def test_write_json_is_strict_and_notes_non_finite_values(tmp_path):
    path = tmp_path / "summary.json"
    original = dict(status="diverged", metrics={"loss_G": math.nan, "prec.D/x": -math.inf, "kl": 0.5}, ticks=[1.0, math.inf])
    files.write_json(path, original)
    data = json.loads(path.read_text(), parse_constant=_reject)
    assert data["metrics"] == {"loss_G": None, "prec.D/x": None, "kl": 0.5} and data["ticks"] == [1.0, None]
    assert data["nonfinite"] == {"/metrics/loss_G": "nan", "/metrics/prec.D~1x": "-inf", "/ticks/1": "inf"}
    back = files.read_json(path)  # our own reader gives the floats back
    assert math.isnan(back["metrics"].pop("loss_G")) and math.isnan(original["metrics"].pop("loss_G"))
    assert back == original


def test_a_torn_middle_line_loses_only_itself(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps(dict(tick=tick, kimg=tick * 0.5)) for tick in range(1, 13)]
    lines[3] = lines[3][:7]  # torn write in the middle
    path.write_text("\n".join(lines) + "\n")
    skipped = []
    with pytest.warns(UserWarning, match=r"metrics\.jsonl: skipped damaged line\(s\) 4"):
        rows = files.read_jsonl(path, skipped)
    assert [row["tick"] for row in rows] == [1, 2, 3] + list(range(5, 13))
    assert skipped == [4]


def test_a_torn_last_line_is_dropped_quietly(tmp_path, recwarn):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"tick": 1}\n{"tick": 2}\n{"ti')
    assert files.read_jsonl(path) == [dict(tick=1), dict(tick=2)]
    assert not recwarn.list


def test_both_checkpoints_unreadable_restart_and_are_kept_aside(tmp_path):
    (tmp_path / files.CHECKPOINT).write_bytes(b"garbage")
    (tmp_path / files.PREVIOUS_CHECKPOINT).write_bytes(b"more garbage")
    with pytest.warns(UserWarning, match=r"no readable checkpoint \(checkpoint.pt \(UnpicklingError\), "):
        assert files.load_checkpoint(tmp_path) is None  # a reader (evaluation, init_from) leaves the folder alone
    assert sorted(os.listdir(tmp_path)) == [files.PREVIOUS_CHECKPOINT, files.CHECKPOINT]
    with pytest.warns(UserWarning, match="restarts from scratch") as caught:
        assert files.load_checkpoint(tmp_path, set_aside=True) is None
    assert not any("falling back" in str(w.message) for w in caught)
    assert (tmp_path / "checkpoint.pt.unreadable").read_bytes() == b"garbage"
    assert (tmp_path / "checkpoint-previous.pt.unreadable").read_bytes() == b"more garbage"
    assert not (tmp_path / files.CHECKPOINT).exists() and not (tmp_path / files.PREVIOUS_CHECKPOINT).exists()


def test_torn_latest_falls_back_to_previous(tmp_path):
    files.save_checkpoint(tmp_path, dict(tick=1))
    files.save_checkpoint(tmp_path, dict(tick=2))
    (tmp_path / files.CHECKPOINT).write_bytes(b"torn")
    with pytest.warns(UserWarning, match="falling back to the previous checkpoint"):
        assert files.load_checkpoint(tmp_path) == dict(tick=1)


def test_full_disk_is_one_readable_line(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 12345, 12345))
    with pytest.raises(files.WriteError) as caught:
        files.write_json(tmp_path / "summary.json", dict(x=1))
    assert str(caught.value) == f"no space left on device (writing {tmp_path / 'summary.json'}; 12.3 kB free)"
    assert os.listdir(tmp_path) == []  # no temp file left behind


@pytest.mark.parametrize("room", [0, 2])  # the disk fills at the first write, or later in the zip writer
def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_keeps_both_checkpoints(tmp_path, monkeypatch, room):
    """Filled later in the write, torch.save reports `enforce fail at inline_container.cc ... unexpected pos` and
    hides the errno; the reason must still be the full disk, in one line."""
    files.save_checkpoint(tmp_path, dict(tick=1))
    files.save_checkpoint(tmp_path, dict(tick=2))

    class Full:
        """A file object whose writes fail as a full disk does after `room` writes."""

        def __init__(self, stream):
            self.stream, self.writes = stream, 0

        def write(self, data):
            self.writes += 1
            if self.writes > room:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.stream.write(data)

        def __getattr__(self, name):
            return getattr(self.stream, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *args, **kwargs: Full(real_fdopen(*args, **kwargs)))
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 512, 512))
    with pytest.raises(files.WriteError) as caught:
        files.save_checkpoint(tmp_path, dict(tick=3, weights=torch.zeros(1000)))
    assert str(caught.value) == f"no space left on device (writing {tmp_path / files.CHECKPOINT}; 512 B free)"
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [files.PREVIOUS_CHECKPOINT, files.CHECKPOINT]  # no temp file left
    assert files.load_checkpoint(tmp_path) == dict(tick=2)
    assert torch.load(tmp_path / files.PREVIOUS_CHECKPOINT) == dict(tick=1)


def test_a_kill_between_the_renames_resumes_from_the_previous_checkpoint(tmp_path, recwarn):
    files.save_checkpoint(tmp_path, dict(tick=1))
    files.save_checkpoint(tmp_path, dict(tick=2))
    os.replace(tmp_path / files.CHECKPOINT, tmp_path / files.PREVIOUS_CHECKPOINT)  # what the first rename leaves
    assert files.load_checkpoint(tmp_path) == dict(tick=2)
    assert not recwarn.list


def test_leftover_temp_files_are_removed(tmp_path):
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".metrics.jsonl.x.tmp").write_bytes(b"")
    files.write_text(tmp_path / "config.yaml", "seed: 0\n")
    assert files.remove_leftovers(tmp_path) == [".checkpoint.pt.abc123.tmp", ".metrics.jsonl.x.tmp"]
    assert os.listdir(tmp_path) == ["config.yaml"]


def _other_lr(state):
    return "lr: stored 0.002, now 0.001" if state["lr"] != 0.001 else None


def test_a_refused_latest_falls_back_and_says_why_in_one_line(tmp_path):
    files.save_checkpoint(tmp_path, dict(tick=1, lr=0.001))
    files.save_checkpoint(tmp_path, dict(tick=2, lr=0.002))
    with pytest.warns(UserWarning) as caught:
        assert files.load_checkpoint(tmp_path, refuse=_other_lr, set_aside=True) == dict(tick=1, lr=0.001)
    [warning] = caught
    assert str(warning.message) == (f"{tmp_path / files.CHECKPOINT} is from a run with other settings "
                                    "(lr: stored 0.002, now 0.001); falling back to the previous checkpoint "
                                    "(the latest kept as checkpoint.pt.refused)")
    # The next write keeps the run's own previous checkpoint: the refused one was set aside, not rotated over it.
    files.save_checkpoint(tmp_path, dict(tick=2, lr=0.001))
    assert files.load_checkpoint(tmp_path, refuse=_other_lr) == dict(tick=2, lr=0.001)
    assert torch.load(tmp_path / files.PREVIOUS_CHECKPOINT, weights_only=False) == dict(tick=1, lr=0.001)
    assert torch.load(tmp_path / (files.CHECKPOINT + ".refused"), weights_only=False) == dict(tick=2, lr=0.002)


def test_an_unreadable_latest_is_set_aside_when_the_run_falls_back(tmp_path):
    files.save_checkpoint(tmp_path, dict(tick=1))
    files.save_checkpoint(tmp_path, dict(tick=2))
    (tmp_path / files.CHECKPOINT).write_bytes(b"torn")
    (tmp_path / (files.CHECKPOINT + ".unreadable")).write_bytes(b"older")  # an earlier one is kept too
    with pytest.warns(UserWarning, match=r"is unreadable \(UnpicklingError\); falling back to the previous checkpoint$"):
        assert files.load_checkpoint(tmp_path) == dict(tick=1)  # a reader: nothing renamed
    assert (tmp_path / files.CHECKPOINT).read_bytes() == b"torn"
    with pytest.warns(UserWarning, match=r"is unreadable \(UnpicklingError\); falling back to the previous checkpoint "
                                         r"\(the latest kept as checkpoint.pt.unreadable.1\)"):
        assert files.load_checkpoint(tmp_path, set_aside=True) == dict(tick=1)
    files.save_checkpoint(tmp_path, dict(tick=2))
    assert torch.load(tmp_path / files.PREVIOUS_CHECKPOINT, weights_only=False) == dict(tick=1)
    assert (tmp_path / (files.CHECKPOINT + ".unreadable.1")).read_bytes() == b"torn"
    assert (tmp_path / (files.CHECKPOINT + ".unreadable")).read_bytes() == b"older"


def test_no_checkpoint_of_this_run_stops_and_touches_nothing(tmp_path):
    files.save_checkpoint(tmp_path, dict(tick=1, lr=0.002))
    (tmp_path / files.PREVIOUS_CHECKPOINT).write_bytes(b"torn")
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    with pytest.raises(files.CheckpointRefused) as caught:
        files.load_checkpoint(tmp_path, refuse=_other_lr)
    assert str(caught.value) == (f"{tmp_path}: checkpoint.pt is from a run with other settings (lr: stored 0.002, now 0.001); "
                                 "checkpoint-previous.pt is unreadable (UnpicklingError); no checkpoint of this run to resume "
                                 "from (move it away, or --force to re-run from scratch)")
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
