"""Run-folder files written atomically (temp file + rename), and the two-deep checkpoint chain."""
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint-previous.pt"


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda stream: stream.write(data))


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode())


def write_torch(path, obj) -> None:
    """torch.save(obj) to `path` atomically."""
    _atomic(path, lambda stream: torch.save(obj, stream))


def write_json(path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path):
    with open(path) as stream:
        return json.load(stream)


def save_checkpoint(run_dir, state: dict) -> None:
    """Write checkpoint.pt atomically, keeping the one before as checkpoint-previous.pt."""
    run_dir = Path(run_dir)
    latest = run_dir / CHECKPOINT
    if latest.exists():
        os.replace(latest, run_dir / PREVIOUS_CHECKPOINT)
    write_torch(latest, state)


def load_checkpoint(run_dir):
    """Newest readable checkpoint of a run, or None. A corrupt latest one falls back, with a warning."""
    run_dir = Path(run_dir)
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # truncated or garbled file: try the older one
            warnings.warn(f"{path} is unreadable ({type(error).__name__}); falling back to the previous checkpoint")
    return None


def read_jsonl(path) -> list:
    """Lines of a jsonl file; a torn last line (killed writer) is dropped."""
    rows = []
    if Path(path).exists():
        with open(path) as stream:
            for line in stream:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break
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
