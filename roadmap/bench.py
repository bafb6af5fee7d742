"""Training throughput of a configuration: full iterations (D step with its penalties + G step) after warm-up (Table 2/9 models).

One iteration is the trainer's own function, roadmap.step.training_iteration: the D step
(adversarial loss, R1/R2 on the configuration's lazy schedule, input-gradient norms) + Adam
step, then the G step (+ Config A's path length penalty on its interval) + Adam step. Real
images are random tensors of the preset's shape (data loading is not measured; the same
tensor serves as D's and G's real batch). The step counter starts at
0 with the warm-up, as in training. The speed settings are the trainer's: TF32 as RunConfig.tf32
(off unless asked), cudnn.benchmark as RunConfig.cudnn_benchmark (on), micro-batches as batch_gpu;
the result says which ran, beside the peak memory that roadmap/memory.py estimates.
"""
import resource
import time

import torch

from roadmap.config import RunConfig
from roadmap.errors import ConfigError
from roadmap.presets import NUM_CLASSES, PRESETS
from roadmap.registry import create_model
from roadmap.step import Batch, Optimization, training_iteration


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_counts(config: str, preset: str, width: float = 1.0, **overrides) -> dict:
    """{"G": int, "D": int} trainable parameters, built on the meta device (no memory, ~1 s for ImageNet)."""
    with torch.device("meta"):
        pair = create_model(config, preset=preset, width=width, **overrides)
    return dict(G=count_parameters(pair.generator), D=count_parameters(pair.discriminator))


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; process-wide peak RSS


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark(config: str, preset: str, width: float = 1.0, batch: int = 8, steps: int = 5, warmup: int = 2,
              device: str = "cpu", precision: str = "fp32", gamma: float = 1.0, channels_last: bool = False, seed: int = 0,
              tf32: bool = RunConfig.tf32, cudnn_benchmark: bool = RunConfig.cudnn_benchmark, batch_gpu: int = None) -> dict:
    """Seconds per training iteration and images per second (real images shown to D) after `warmup` iterations."""
    for name, value in (("batch", batch), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"warmup: must be an integer >= 0, got {warmup!r}")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device: expected cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but CUDA is not available")
    if batch_gpu is not None and (isinstance(batch_gpu, bool) or not isinstance(batch_gpu, int) or batch_gpu < 1 or batch % batch_gpu):
        raise ConfigError(f"batch_gpu: must be an integer >= 1 dividing the batch {batch}, got {batch_gpu!r}")
    from roadmap.trainer import set_cudnn_benchmark, set_tf32

    torch.manual_seed(seed)
    pair = create_model(config, preset=preset, width=width, precision=precision)
    device = torch.device(device)
    set_tf32(device, tf32)  # as the trainer: the same numbers and speed as a training run with these settings
    set_cudnn_benchmark(device, cudnn_benchmark)
    micro = 1 if batch_gpu is None else batch // batch_gpu
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    pair.place(device)  # and with it the operators the step runs there (networks/operators.py)
    generator = pair.generator.to(memory_format=memory_format)
    discriminator = pair.discriminator.to(memory_format=memory_format)
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.0, 0.99))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.0, 0.99))
    resolution = PRESETS[preset]["resolution"]
    num_classes = NUM_CLASSES.get(preset, 0) if PRESETS[preset]["conditional"] else 0  # the builders' default
    real = (torch.rand(batch, 3, resolution, resolution, device=device) * 2 - 1).contiguous(memory_format=memory_format)
    labels = torch.randint(num_classes, (batch,), device=device) if num_classes else None
    loss = pair.loss_spec
    optimization = Optimization(optimizer_G, optimizer_D, torch.amp.GradScaler(device.type, enabled=False),
                                torch.amp.GradScaler(device.type, enabled=False))

    def iteration(step):
        z_D = torch.randn(batch, pair.latent_dim, device=device)
        z_G = torch.randn(batch, pair.latent_dim, device=device)
        training_iteration(pair, optimization, loss, step, gamma, Batch(real, labels, z_D), Batch(real, labels, z_G),
                           micro_batches_D=micro, micro_batches_G=micro)

    for step in range(warmup):
        iteration(step)
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for step in range(warmup, warmup + steps):
        iteration(step)
    _synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    return dict(config=config, preset=preset, width=width, batch=batch, steps=steps, precision=precision,
                img_per_s=batch / seconds, sec_per_iter=seconds, G_params=count_parameters(generator),
                D_params=count_parameters(discriminator), peak_mem_mb=round(_peak_memory_mb(device), 1),
                estimated_peak_mb=round(_estimated_peak_mb(config, preset, width, precision, batch // micro), 1),
                micro_batch=batch // micro, tf32=tf32 and device.type == "cuda", cudnn_benchmark=cudnn_benchmark and device.type == "cuda",
                device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")


def _estimated_peak_mb(config, preset, width, precision, micro_batch) -> float:
    """roadmap/memory.py's estimate for this benchmark (the GPU path), to set beside the measured peak; NaN if unavailable."""
    from roadmap.memory import estimate

    try:
        return estimate(config, dict(preset=preset, width=width, precision=precision), micro_batch).peak / 2**20
    except (RuntimeError, NotImplementedError):
        return float("nan")
