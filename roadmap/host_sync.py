"""Counting the host reads of device tensors inside a training step (issue 22: no host stalls at paper scale).

On a GPU, reading a tensor's value on the host (`.item()`, `bool(t)`, `float(t)`, `int(t)`,
`.tolist()`, `.cpu()`, `.numpy()`) waits for every kernel queued before it: one such read in a
step stalls the pipeline that keeps the GPU busy. On the CPU the same calls are free but happen
at the same places, so counting them during `training_iteration` on the CPU shows where a GPU
step would stall. The optimizers' reads of their own host-side step counters (torch.optim keeps
`step` as a CPU tensor and reads it each update) touch no device memory and are not counted.
"""
import contextlib
import dataclasses
import sys
import traceback
from pathlib import Path

import torch

READS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy")
_TORCH = str(Path(torch.__file__).parent)
_OPTIMIZERS = str(Path(torch.__file__).parent / "optim")


@dataclasses.dataclass(frozen=True)
class HostRead:
    """One host read: the method called and the first frame of our code that caused it ('file:line function')."""

    kind: str
    where: str


def _caller() -> str:
    """The innermost frame outside torch and this module: the line in our code that read the tensor."""
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(_TORCH) and frame.filename != __file__:
            return f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
    return "torch"


def _from_optimizer() -> bool:
    frame = sys._getframe(2)  # the caller of the patched method
    while frame is not None:
        if frame.f_code.co_filename.startswith(_OPTIMIZERS):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def count_host_reads():
    """Within the block, record every host read of a tensor into the yielded list (of HostRead)."""
    reads = []
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def wrap(name, original):
        def read(self, *args, **kwargs):
            if not _from_optimizer():
                reads.append(HostRead(name, _caller()))
            return original(self, *args, **kwargs)
        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield reads
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
