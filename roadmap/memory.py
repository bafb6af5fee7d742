"""Peak GPU memory of one rank's training step, estimated before a job starts (issue 22; Table 9 at paper scale).

estimate = static + micro-batch x (per-sample graph of the larger phase) x TRANSIENT, where
- static: parameters, gradients and Adam's two moments of G and D in fp32, plus G's EMA copy
  (4 bytes x (4 P_G + P_G + 4 P_D));
- per-sample graph: the bytes of every tensor autograd saves for backward during one D phase
  (forward on reals and fakes plus R1/R2's create_graph input-gradient pass: all of it is alive
  at the phase's one backward) and during one G phase (G's forward and D's forward on the fakes),
  counted on the meta device at micro-batch 1, in the dtypes CUDA holds them (bf16 stages in bf16),
  each storage once; the graph grows linearly with the micro-batch;
- TRANSIENT: a margin for what the saved graph leaves out (the backward's gradient buffers, the
  CUDA caching allocator's rounding and fragmentation). Calibration on the CPU (fp32, plain
  operators, the process's peak RSS (VmHWM) growth over one step): the saved graph plus static alone came
  within 3-10% of the measured growth for E at widths 1/8 and 1/4 and the small ResNet (2026-12-02);
  tests/roadmap/test_memory.py keeps the estimate within a factor of 1.5 of that measurement;
- not included: the CUDA context and cuDNN workspaces (~0.5-1 GiB), the allocator's fragmentation,
  the data loader's pinned buffers.
The pair is placed on the plain operators whatever the device, so the estimate sizes the plain graph.
A CPU or CUDA run computes through the fast ones (networks/cpu_ops.py), which save less: measured on
the CPU, their step's peak is 0.59-0.63x this estimate (small ResNet, E at width 1/8; the plain path's
is 0.83-0.85x), so the estimate is an upper bound for them and `choose_micro_batch` errs toward fitting
(tests/roadmap/test_memory.py holds both). The fast graph is not counted directly: on the meta device
layouts do not propagate as on the CPU and CUDA (a convolution's gradient comes back contiguous, not
channels_last), so the fast operators' layout copies would be counted as saved tensors that a real
device never makes (+67% for E's D phase at width 1/8).
"""
import dataclasses
import functools
import json

import torch

from roadmap.networks.operators import PlainOperators
from roadmap.registry import create_model
from roadmap.step import discriminator_step, generator_step

TRANSIENT = 1.25  # margin on the saved graph for backward buffers and allocator fragmentation (see the docstring)
ADAM_COPIES = 4  # parameter, gradient, exp_avg, exp_avg_sq


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one rank's peak, by part (see the module docstring)."""

    static: int  # parameters, gradients, Adam moments, EMA copy
    per_sample_D: int  # saved graph of one D phase per sample
    per_sample_G: int  # saved graph of one G phase per sample
    micro_batch: int  # images per pass

    @property
    def peak(self) -> int:
        return int(self.static + self.micro_batch * max(self.per_sample_D, self.per_sample_G) * TRANSIENT)

    def describe(self) -> str:
        return (f"~{self.peak / 2**30:.1f} GiB per GPU (weights+Adam+EMA {self.static / 2**30:.2f} GiB + "
                f"{self.micro_batch} x {max(self.per_sample_D, self.per_sample_G) / 2**20:.0f} MiB graph x {TRANSIENT})")


def _no_backward(loss):
    """A loss scaler whose result's backward stops at once: the phase builds its whole graph, which is what is counted."""
    return loss.detach().requires_grad_(True)


def _saved_bytes(function) -> int:
    """Bytes of the distinct tensors autograd saves for backward while `function` runs."""
    seen = {}

    def pack(tensor):
        key = (tensor.untyped_storage()._cdata, tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        seen[key] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function()
    return sum(seen.values())


@functools.lru_cache(maxsize=64)
def _per_sample(model: str, model_args: str, loss: str, penalties: tuple, device: str) -> tuple:
    with torch.device(device):
        pair = create_model(model, **json.loads(model_args)).place(device, PlainOperators)
    data_shape = _data_shape(pair, device)
    labels = _labels(pair, device)
    real = torch.zeros(1, *data_shape, device=device)
    z = torch.zeros(1, pair.latent_dim, device=device)
    pair.generator.requires_grad_(False)
    d_phase = _saved_bytes(lambda: discriminator_step(pair, real, labels, z, loss, penalties, 1.0, 1, scale=_no_backward))
    pair.generator.requires_grad_(True)
    pair.discriminator.requires_grad_(False)
    g_phase = _saved_bytes(lambda: generator_step(pair, real, labels, z, loss, scale=_no_backward))
    parameters = [sum(p.numel() * 4 for p in module.parameters()) for module in (pair.generator, pair.discriminator)]
    static = ADAM_COPIES * parameters[0] + parameters[0] + ADAM_COPIES * parameters[1]
    return static, d_phase, g_phase


def _data_shape(pair, device) -> tuple:
    with torch.no_grad():
        return tuple(pair.generator(torch.zeros(1, pair.latent_dim, device=device), _labels(pair, device)).shape[1:])


def _labels(pair, device):
    return torch.zeros(1, dtype=torch.long, device=device) if getattr(pair.discriminator, "num_classes", 0) else None


def estimate(model: str, model_args: dict, micro_batch: int, loss: str = None, penalties=None, device: str = "meta") -> MemoryEstimate:
    """Peak memory of one rank training `model` with micro-batches of `micro_batch` images (the module docstring says how)."""
    if loss is None or penalties is None:
        with torch.device("meta"):
            spec = create_model(model, **model_args).loss_spec
        loss = spec.loss if loss is None else loss
        penalties = spec.penalties if penalties is None else penalties
    static, d_phase, g_phase = _per_sample(model, json.dumps(model_args, sort_keys=True), loss, tuple(penalties), device)
    return MemoryEstimate(static, d_phase, g_phase, micro_batch)


CONTEXT_BYTES = 2**30  # the CUDA context, cuDNN workspaces and the loader's pinned buffers, kept free
USABLE = 0.9  # of the device's memory, the rest left to the caching allocator's fragmentation


def choose_micro_batch(model: str, model_args: dict, share: int, memory_bytes: int, loss: str = None, penalties=None) -> int:
    """The largest divisor of the rank's `share` of the batch whose estimated peak fits `memory_bytes`
    (USABLE of it, less CONTEXT_BYTES); 1 when even one image per pass does not fit."""
    budget = memory_bytes * USABLE - CONTEXT_BYTES
    for size in sorted((d for d in range(1, share + 1) if share % d == 0), reverse=True):
        if estimate(model, model_args, size, loss, penalties).peak <= budget:
            return size
    return 1
