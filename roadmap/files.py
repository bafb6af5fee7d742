"""Run-folder files written atomically (temp file + rename), and the two-deep checkpoint chain.

Files are created 0644 and folders 0755 whatever the umask of a cluster job: results are shared
with colleagues. JSON is strict (no NaN/Infinity tokens), so any reader can parse summary.json.
A checkpoint write never leaves fewer than one valid checkpoint: the new file is written and
synced in full before the renames that rotate previous <- latest <- new.
"""
import errno
import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from roadmap.errors import ConfigError

CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint-previous.pt"
FILE_MODE = 0o644
DIR_MODE = 0o755
UNREADABLE_SUFFIX = ".unreadable"
REFUSED_SUFFIX = ".refused"  # a readable latest checkpoint of another run, set aside when the run falls back


class CheckpointRefused(ConfigError):
    """No checkpoint in a run folder belongs to the run (they hold other settings): one line, the folder untouched."""


class WriteError(OSError):
    """A run-folder write failed; the message is one readable line (e.g. no space left on device)."""

    def __str__(self) -> str:  # without OSError's "[Errno 28]" prefix: this line lands in summary.json's reason
        return self.strerror


def make_dirs(path) -> Path:
    """mkdir -p with 0755 on every folder this call creates (mkdir's mode is masked by the umask)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        try:
            os.chmod(folder, DIR_MODE)
        except OSError:  # created by someone else meanwhile: theirs to set
            pass
    return path


def _free_space(path) -> str:
    """Free space of the file system holding `path`, in words ("12.3 MB free"), or "" when unknown."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return ""
    unit = 0
    while free >= 1000 and unit < 4:
        free, unit = free / 1000, unit + 1
    return f"; {free:.3g} {('B', 'kB', 'MB', 'GB', 'TB')[unit]} free"


def _readable_os_error(error: OSError, path) -> OSError:
    if error.errno == errno.ENOSPC:
        return WriteError(error.errno, f"no space left on device (writing {path}{_free_space(path)})")
    if error.errno == errno.EDQUOT:
        return WriteError(error.errno, f"disk quota exceeded (writing {path}{_free_space(path)})")
    return error


def readable_write_error(error: BaseException, path):
    """A WriteError naming `path` and the free space when `error` is a full disk or quota, else None."""
    if isinstance(error, WriteError):
        return error
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return _readable_os_error(error, path)
    return None


def _atomic(path: Path, write) -> None:
    path = Path(path)
    make_dirs(path.parent)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600: readable by colleagues once renamed into place.
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException as error:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise _readable_os_error(error, path) from error
        raise


def write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda stream: stream.write(data))


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode())


class _Recorded:
    """A stream that remembers the OSError of a failed write: torch.save turns it into a RuntimeError
    ("enforce fail at inline_container.cc ... file write failed") that has lost the errno."""

    def __init__(self, stream):
        self.stream, self.error = stream, None

    def write(self, data):
        try:
            return self.stream.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self):
        self.stream.flush()


def _save_torch(obj, stream) -> None:
    recorded = _Recorded(stream)
    try:
        torch.save(obj, recorded)
    except Exception as error:
        if recorded.error is not None:
            raise recorded.error from error
        raise


def write_torch(path, obj) -> None:
    """torch.save(obj) to `path` atomically."""
    _atomic(path, lambda stream: _save_torch(obj, stream))


def _pointer_part(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def strict_json(data, nonfinite: dict = None, where: str = ""):
    """`data` with every non-finite float replaced by None; `nonfinite` collects {JSON pointer: "nan"|"inf"|"-inf"}.

    JSON has no NaN/Infinity: Python's json writes them as bare tokens that strict parsers
    (jq, JavaScript, json.loads with parse_constant) reject. null keeps the file valid and the
    note keeps the information (a loss that went NaN is a result, not a missing value). The note's
    keys are JSON pointers (RFC 6901, e.g. "/metrics/kl"): metric names contain dots.
    """
    if isinstance(data, float) and not math.isfinite(data):
        if nonfinite is not None:
            nonfinite[where] = "nan" if math.isnan(data) else ("inf" if data > 0 else "-inf")
        return None
    if isinstance(data, dict):
        return {key: strict_json(value, nonfinite, f"{where}/{_pointer_part(key)}") for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value, nonfinite, f"{where}/{i}") for i, value in enumerate(data)]
    return data


def _restore(data, pointer: str, value: float) -> None:
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    if not parts:
        return
    for part in parts[:-1]:
        data = data[int(part)] if isinstance(data, list) else data[part]
    if isinstance(data, list):
        data[int(parts[-1])] = value
    else:
        data[parts[-1]] = value


def write_json(path, data) -> None:
    """Strict JSON: a non-finite float is written as null and named under the top-level key "nonfinite"."""
    nonfinite = {}
    data = strict_json(data, nonfinite)
    if nonfinite and isinstance(data, dict):
        data = dict(data, nonfinite=dict(data.get("nonfinite") or {}, **nonfinite))
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def read_json(path):
    """A JSON file; values that `write_json` noted as non-finite come back as the floats they were."""
    with open(path) as stream:
        data = json.load(stream)
    notes = data.get("nonfinite") if isinstance(data, dict) else None
    if isinstance(notes, dict) and notes and all(isinstance(k, str) and k.startswith("/") for k in notes):
        data = dict(data)
        data.pop("nonfinite")
        for pointer, word in notes.items():
            try:
                _restore(data, pointer, float(word))
            except (KeyError, IndexError, ValueError, TypeError):  # a hand-edited note: leave the value as is
                pass
    return data


def _sync_folder(folder: Path) -> None:
    """Make renames inside `folder` durable (a crash after them must not bring the old names back)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems cannot sync a folder; the renames are still atomic
        pass
    finally:
        os.close(handle)


def save_checkpoint(run_dir, state: dict) -> None:
    """Write checkpoint.pt, keeping the one before as checkpoint-previous.pt; never fewer than one valid file.

    The new checkpoint is written and synced in full under a temporary name first; only then do two
    renames rotate previous <- latest <- new. A kill at any point leaves the latest or the previous
    checkpoint valid (between the renames, the old latest is already the previous one).
    """
    run_dir = Path(run_dir)
    make_dirs(run_dir)
    latest = run_dir / CHECKPOINT
    handle, temp_name = tempfile.mkstemp(dir=run_dir, prefix=f".{CHECKPOINT}.", suffix=".tmp")
    try:
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "wb") as stream:
            _save_torch(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        if latest.exists():
            os.replace(latest, run_dir / PREVIOUS_CHECKPOINT)
        os.replace(temp_name, latest)
    except BaseException as error:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        readable = readable_write_error(error, latest)
        if readable is not None and readable is not error:
            raise readable from error
        raise
    _sync_folder(run_dir)


def remove_leftovers(run_dir) -> list:
    """Delete the temporary files of writes that a kill interrupted (`.NAME.*.tmp`); returns their names.

    Called when a run starts, under its folder's lock: no write of this run is in flight then.
    """
    removed = []
    for path in sorted(Path(run_dir).glob(".*.tmp")):
        try:
            path.unlink()
            removed.append(path.name)
        except OSError:
            pass
    return removed


def _set_aside(path: Path, suffix: str) -> str:
    """Rename `path` to `path + suffix` (`.1`, `.2`, ... after it when taken: an earlier one is never replaced); the new name."""
    target, number = Path(str(path) + suffix), 0
    while target.exists():
        number += 1
        target = Path(f"{path}{suffix}.{number}")
    os.replace(path, target)
    return target.name


def load_checkpoint(run_dir, refuse=None, set_aside: bool = False):
    """Newest usable checkpoint of a run, or None. A corrupt or refused latest one falls back, with a warning.

    `refuse(state)` returns why a readable checkpoint is not this run's (e.g. "lr: stored 0.001, now
    0.002"), or None to accept it. When a readable one was refused and none is usable,
    CheckpointRefused is raised and nothing in the folder is touched.

    `set_aside`: the caller is the run's one writer, about to resume or restart it (the trainer's rank
    0, under the folder's lock). A bad latest checkpoint it falls back from is then renamed
    (`checkpoint.pt.refused` / `.unreadable`), so the next save does not rotate it over the run's own
    previous checkpoint; and when none is readable, the unreadable files are renamed so the new run
    does not overwrite what may be recoverable. Readers (evaluation, `init_from`, other ranks) leave
    the folder as it is.
    """
    run_dir = Path(run_dir)
    unreadable, refused = [], []
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # truncated or garbled file: try the older one
            unreadable.append(f"{path.name} ({type(error).__name__})")
            continue
        why = refuse(state) if refuse is not None else None
        if why:
            refused.append(f"{path.name} is from a run with other settings ({why})")
            continue
        if unreadable or refused:
            problem = f"is unreadable ({unreadable[0].split('(')[1].rstrip(')')})" if unreadable else refused[0].split(" ", 1)[1]
            kept = ""
            if set_aside:  # left in place, the next save would rotate it over this run's own previous checkpoint
                kept = f" (the latest kept as {_set_aside(run_dir / CHECKPOINT, UNREADABLE_SUFFIX if unreadable else REFUSED_SUFFIX)})"
            warnings.warn(f"{run_dir / CHECKPOINT} {problem}; falling back to the previous checkpoint{kept}")
        return state
    if refused:
        raise CheckpointRefused(f"{run_dir}: {'; '.join(refused + [u.replace(' (', ' is unreadable (', 1) for u in unreadable])}; "
                                "no checkpoint of this run to resume from (move it away, or --force to re-run from scratch)")
    if unreadable and set_aside:
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
            if (run_dir / name).exists():
                _set_aside(run_dir / name, UNREADABLE_SUFFIX)
        warnings.warn(f"{run_dir}: no readable checkpoint ({', '.join(unreadable)}); the run restarts from scratch "
                      f"(unreadable files kept as *{UNREADABLE_SUFFIX})")
    elif unreadable:
        warnings.warn(f"{run_dir}: no readable checkpoint ({', '.join(unreadable)})")
    return None


def read_jsonl(path, skipped: list = None) -> list:
    """Rows of a jsonl file; a damaged line (torn write, garbage) is skipped, never the rows after it.

    Line numbers (1-based) of skipped lines are appended to `skipped` when given; a damaged line
    other than the last (the last is the normal trace of a killed writer) is also warned about.
    """
    rows, bad = [], []
    if Path(path).exists():
        with open(path, errors="replace") as stream:
            lines = stream.readlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                bad.append(number)
        if bad and bad != [len(lines)]:
            warnings.warn(f"{path}: skipped damaged line(s) {', '.join(map(str, bad))}")
    if skipped is not None:
        skipped.extend(bad)
    return rows


def append_line(path, line: str) -> None:
    """Append one line in a single write (a reader never sees half of two lines interleaved)."""
    with open(path, "a") as stream:
        stream.write(line.rstrip("\n") + "\n")
        stream.flush()


def fsync(path) -> None:
    """Flush a file's appended lines to disk (before a checkpoint that covers them is written)."""
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())
