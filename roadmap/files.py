"""Run-folder files written atomically (temp file + rename), and the two-deep checkpoint chain.

Files are created 0644 and folders 0755 whatever the umask of a cluster job: results are shared
with colleagues. JSON is strict (no NaN/Infinity tokens), so any reader can parse summary.json.
"""
import errno
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import torch

CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint-previous.pt"
FILE_MODE = 0o644
DIR_MODE = 0o755
UNREADABLE_SUFFIX = ".unreadable"


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


def _readable_os_error(error: OSError, path) -> OSError:
    if error.errno == errno.ENOSPC:
        return WriteError(error.errno, f"no space left on device (writing {path})")
    if error.errno == errno.EDQUOT:
        return WriteError(error.errno, f"disk quota exceeded (writing {path})")
    return error


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


def write_torch(path, obj) -> None:
    """torch.save(obj) to `path` atomically."""
    _atomic(path, lambda stream: torch.save(obj, stream))


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


def save_checkpoint(run_dir, state: dict) -> None:
    """Write checkpoint.pt atomically, keeping the one before as checkpoint-previous.pt."""
    run_dir = Path(run_dir)
    latest = run_dir / CHECKPOINT
    if latest.exists():
        os.replace(latest, run_dir / PREVIOUS_CHECKPOINT)
    write_torch(latest, state)


def load_checkpoint(run_dir):
    """Newest readable checkpoint of a run, or None. A corrupt latest one falls back, with a warning.

    When no checkpoint is readable the run restarts from scratch: the unreadable files are moved
    aside (`checkpoint.pt.unreadable`) so the new run does not overwrite what may be recoverable.
    """
    run_dir = Path(run_dir)
    unreadable = []
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # truncated or garbled file: try the older one
            unreadable.append(f"{path.name} ({type(error).__name__})")
            continue
        if unreadable:
            warnings.warn(f"{run_dir / CHECKPOINT} is unreadable ({unreadable[0].split('(')[1].rstrip(')')}); "
                          "falling back to the previous checkpoint")
        return state
    if unreadable:
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
            if (run_dir / name).exists():
                os.replace(run_dir / name, run_dir / (name + UNREADABLE_SUFFIX))
        warnings.warn(f"{run_dir}: no readable checkpoint ({', '.join(unreadable)}); the run restarts from scratch "
                      f"(unreadable files kept as *{UNREADABLE_SUFFIX})")
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
