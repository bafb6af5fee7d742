"""Overflow / underflow / NaN event counting for the low-precision stages (Table 9 mixed precision, Appendix E).

The paper says IEEE fp16 "cripples training" and bf16 does not. To explain the failure instead of
only observing it, a `PrecisionMonitor` counts, per training step, for every monitored tensor:
- `nonfinite`: elements that are inf or NaN;
- `overflow`: finite fp32 elements too large for the format (|x| > finfo(dtype).max: they become
  inf when cast, e.g. 65504 for fp16);
- `underflow`: non-zero elements that the format rounds to zero (|x| < finfo(dtype).tiny * 2^-mantissa / 2,
  i.e. below half the smallest subnormal: 2^-25 for fp16).
Monitored tensors (names as in the tick line): `<G|D>.s<res>.act` the activation leaving the stage
at resolution <res> (forward), `<G|D>.s<res>.grad` the gradient arriving at that activation
(backward, including the input-gradient passes of R1/R2), `D.logits` the discriminator's output.
Counts are taken in fp32 *before* the cast through the format, so they say what the format does
to the tensor. The first time a tensor holds a non-finite element, its global step (plus
1e-3 x the order of detection within that step) is kept as `first_nonfinite.<name>` (-1 until
then), so the tensor that broke first is the one with the smallest non-negative value.

On CUDA the stages compute in the format itself, so `.act` and `.grad` tensors arrive already
cast: an overflow shows there as `nonfinite` (it became inf) and an underflow is invisible (it
became 0). Only the `.in` counts (the fp32 tensor entering a stage) keep all three meanings on a
GPU; on the CPU emulation every count does.

The networks call `count(name, tensor, dtype)`; the trainer calls `step_statistics(step)` once per
step (through `ModelPair.step_statistics`), which returns {"prec.<name>.<kind>": count, ...}
and resets the per-step counters.
"""
from collections import defaultdict

import torch

KINDS = ("nonfinite", "overflow", "underflow")
PREFIX = "prec."


def _underflow_threshold(dtype: torch.dtype) -> float:
    """Half the smallest subnormal of `dtype`: non-zero values below it round to zero."""
    info = torch.finfo(dtype)
    return info.tiny * info.eps / 2  # smallest subnormal = tiny * eps; fp16: 2^-14 * 2^-10 / 2 = 2^-25


class PrecisionMonitor:
    """Per-step counts of non-finite, overflowing and underflowing elements of named tensors."""

    def __init__(self):
        self.names = []  # registration order (G stages low -> high resolution, then D)
        self.counts = defaultdict(float)  # (name, kind) -> elements this step
        self.first_nonfinite = {}  # name -> step + 1e-3 x detection order
        self.pending = []  # names that went non-finite during the current step, in detection order

    def register(self, name: str) -> str:
        if name not in self.names:
            self.names.append(name)
        return name

    @torch.no_grad()
    def count(self, name: str, tensor: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        """Add the events of `tensor` (about to be cast to `dtype`) to this step's counts."""
        x = tensor.detach().float()
        finite = torch.isfinite(x)
        nonfinite = x.numel() - int(finite.sum())
        magnitude = x.abs()
        if dtype != torch.float32:
            info = torch.finfo(dtype)
            self.counts[(name, "overflow")] += int((finite & (magnitude > info.max)).sum())
            self.counts[(name, "underflow")] += int(((magnitude > 0) & (magnitude < _underflow_threshold(dtype))).sum())
        self.counts[(name, "nonfinite")] += nonfinite
        if nonfinite and name not in self.first_nonfinite and name not in self.pending:
            self.pending.append(name)

    def step_statistics(self, step: int) -> dict:
        """Counts of training step `step` (the trainer's global step, so resumed runs number steps
        correctly) as flat float statistics (every name and kind, zeros included); resets."""
        for order, name in enumerate(self.pending):
            self.first_nonfinite[name] = step + 1e-3 * order
        self.pending.clear()
        stats = {f"{PREFIX}{name}.{kind}": float(self.counts.get((name, kind), 0.0)) for name in self.names for kind in KINDS}
        # -1: not yet; every key on every step, so all ranks of a multi-GPU run report the same keys.
        stats.update({f"{PREFIX}first_nonfinite.{name}": self.first_nonfinite.get(name, -1.0) for name in self.names})
        self.counts.clear()
        return stats


def first_nonfinite(row: dict):
    """(name, step) of the tensor that went non-finite first according to a tick line; None if none did."""
    firsts = {key[len(PREFIX + "first_nonfinite."):]: value for key, value in row.items()
              if key.startswith(PREFIX + "first_nonfinite.") and value is not None and value >= 0}
    if not firsts:
        return None
    name = min(firsts, key=firsts.get)
    return name, int(firsts[name])
