"""One training loop for every registered configuration, loss and data set (paper Sections 2-3, Table 9).

Time is counted in real images shown to D (kimg). Each step is one D step (adversarial loss,
plus the R1/R2 penalties on every `lazy_interval`-th step weighted by that interval) followed
by one G step on a second real batch (as the official loop draws one), then the G EMA update;
the step itself lives in roadmap/step.py, shared with the benchmark. A tick appends one line of averaged statistics to
metrics.jsonl; checkpoints are written atomically at tick boundaries and hold every random
state, so a resumed run continues the same trajectory (bitwise on CPU). A checkpoint resumes only
the run whose settings and shapes it holds (the rule of roadmap.config.settings_difference).

Multi-GPU (torch.distributed, started by runners/launch.py): every rank draws the same global
batch from the same generators and trains on its own slice; gradients and statistics are
averaged over ranks, so N ranks follow the trajectory of one process with the global batch
(up to float reduction order). Only rank 0 writes files.
"""
import copy
import dataclasses
import errno
import hashlib
import json
import math
import os
import platform
import subprocess
import time
import traceback
from collections import defaultdict
from pathlib import Path

import torch
import torch.distributed as dist
import yaml

from roadmap import files
from roadmap.config import RunConfig, micro_batches, settings_difference, to_dict
from roadmap.errors import ConfigError
from roadmap.fingerprint import compute_fingerprint
from roadmap.losses import LossSpec
from roadmap.registry import ModelPair, create_dataset, create_model
from roadmap.schedules import cosine_ramp, ema_beta
from roadmap.stability import run_convergence, run_stability
from roadmap.step import (  # noqa: F401  (re-exported: the step functions are the trainer's)
    Batch,
    Optimization,
    discriminator_step,
    generator_step,
    training_iteration,
)

EVAL_SEED = 123_456_789  # latents for the final evaluation and sample sheet, fixed across runs
DIVERGENCE_KEYS = ("loss_D", "loss_G", "grad_norm_fake", "grad_norm_real")


def _world() -> tuple:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _combined_by_max(key: str) -> bool:
    """Statistics named first_* hold the step of a first event (-1 until it happens, then fixed), and
    *_max ones a peak: over a tick and over ranks they combine by max, since an average would
    invent a step or flatten the spike that the stability statistics look for."""
    return "first_" in key or key.endswith("_max")


def _average_stats(stats: dict, device, world_size: int) -> dict:
    """Mean of each statistic over ranks (slices are equal, so this is the global-batch mean);
    first_* statistics take the max.

    Every rank then takes the same divergence decision and leaves the loop together.
    """
    if world_size == 1:
        return stats
    combined = {}
    for op, keys in ((dist.ReduceOp.SUM, sorted(k for k in stats if not _combined_by_max(k))),
                     (dist.ReduceOp.MAX, sorted(k for k in stats if _combined_by_max(k)))):
        if not keys:
            continue
        values = torch.tensor([stats[key] for key in keys], dtype=torch.float64, device=device)
        dist.all_reduce(values, op=op)
        if op == dist.ReduceOp.SUM:
            values /= world_size
        combined.update(zip(keys, values.tolist()))
    return combined


def _check_shapes(pair: ModelPair, data) -> None:
    """G's samples must have the data's shape (e.g. a 64 px preset on 32 px data): one clear line."""
    with torch.random.fork_rng(), torch.no_grad():  # leaves every random stream untouched
        labels = torch.zeros(2, dtype=torch.long) if data.num_classes else None
        shape = tuple(pair.generator(torch.zeros(2, pair.latent_dim), labels).shape[1:])
    if pair.step_statistics is not None:
        pair.step_statistics(0)  # drain what this probe counted, so step 0 reports only itself
    if shape != tuple(data.shape):
        raise ConfigError(f"model_args: {pair.description or 'the generator'} makes samples of shape {shape}, "
                          f"but data set {data.name!r} has shape {tuple(data.shape)} (check preset/resolution)")


def config_hash(config: RunConfig) -> str:
    return hashlib.sha1(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:12]


def git_commit() -> str:
    """Short hash of the checkout this code runs from, or "unknown" (recorded in summary.json and experiment.json)."""
    try:
        source = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def _device(config: RunConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {config.device!r} requested but CUDA is not available")
    return torch.device(config.device)


def _random_state(data_rng, latent_rng, augment_rng) -> dict:
    state = dict(torch=torch.get_rng_state(), data=data_rng.get_state(), latent=latent_rng.get_state(),
                 augment=augment_rng.get_state())
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_random_state(state: dict, data_rng, latent_rng, augment_rng) -> None:
    torch.set_rng_state(state["torch"])
    data_rng.set_state(state["data"])
    latent_rng.set_state(state["latent"])
    if "augment" in state:
        augment_rng.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generate(generator, latent_dim, num_classes, n, device, batch=256, seed=EVAL_SEED):
    """n samples from `generator` with fixed latents (and uniform labels when conditional), on CPU."""
    return torch.cat([chunk.cpu() for chunk in generate_chunks(generator, latent_dim, num_classes, n, device, batch, seed)])


def generate_chunks(generator, latent_dim, num_classes, n, device, batch=256, seed=EVAL_SEED):
    """The samples of `generate`, the same numbers, as float chunks of `batch` left on `device` (streaming evaluation)."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for start in range(0, n, batch):
            size = min(batch, n - start)
            z = torch.randn(size, latent_dim, generator=rng).to(device)
            labels = torch.randint(num_classes, (size,), generator=rng).to(device) if num_classes else None
            yield generator(z, labels).float()


class Samples:
    """What a data set's `evaluate` gets: called with n, all n samples on the CPU (every data set);
    `chunks(n)` yields the same samples chunk by chunk on `device`, so an evaluation that streams
    (roadmap/fid.py) holds one chunk at a time, whatever n is, and scores on the training device."""

    def __init__(self, generator, latent_dim: int, num_classes: int, device):
        self.generator, self.latent_dim, self.num_classes, self.device = generator, latent_dim, num_classes, device

    def __call__(self, n: int) -> torch.Tensor:
        return generate(self.generator, self.latent_dim, self.num_classes, n, self.device)

    def chunks(self, n: int):
        return generate_chunks(self.generator, self.latent_dim, self.num_classes, n, self.device)


def rank_seed(seed: int, rank: int, stream: str, step: int = 0) -> int:
    """A seed of its own for `rank`'s `stream` (64 bits of a hash), for ranks other than 0."""
    digest = hashlib.sha256(f"{seed}/{rank}/{stream}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _rank_streams(config: RunConfig, rank: int, step: int, augment_rng) -> None:
    """Per-rank randomness, as the official code seeds each rank: the augmentation's draws and the global
    torch stream (Config A's noise and style mixing, the path length noise) differ from rank to rank.
    Rank 0 keeps the single-process streams, so one process is exactly the run it was. The data and
    latent generators stay shared: every rank draws the global batch and keeps its slice. Only rank 0's
    states reach the checkpoint, so a resumed rank > 0 starts fresh streams from (seed, rank, step)."""
    if rank == 0:
        return
    torch.manual_seed(rank_seed(config.seed, rank, "torch", step))
    augment_rng.manual_seed(rank_seed(config.seed, rank, "augment", step))


def broadcast_from_rank0(modules, world_size: int) -> None:
    """Every rank starts from rank 0's parameters and buffers (the official loop broadcasts them too):
    the same seed builds the same weights, but nothing else would guarantee it."""
    if world_size == 1:
        return
    with torch.no_grad():
        for module in modules:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)


def set_tf32(device: torch.device, enabled: bool) -> None:
    """TF32 matmuls and convolutions on CUDA: off unless asked (the official loop turns them off for accuracy)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def set_cudnn_benchmark(device: torch.device, enabled: bool) -> None:
    """cuDNN autotuning of convolution kernels on CUDA (the official loop turns it on; shapes are fixed, so it pays)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = enabled


def _with_default_micro_batch(config: RunConfig, loss: LossSpec, device: torch.device, world_size: int) -> RunConfig:
    """On CUDA without batch_gpu: the largest micro-batch whose estimated peak (roadmap/memory.py) fits this
    GPU's memory (its share of it when local jobs share the GPU); elsewhere the config as it is (one pass)."""
    if device.type != "cuda" or config.batch_gpu is not None:
        return config
    from roadmap.memory import choose_micro_batch

    share = int(os.environ.get("R3BENCH_GPU_SHARE", "1"))  # local jobs sharing this GPU (runners/launch.py)
    size = choose_micro_batch(config.model, config.model_args, config.batch // world_size,
                              torch.cuda.get_device_properties(device).total_memory // share, loss.loss, loss.penalties)
    return dataclasses.replace(config, batch_gpu=size)


def _augmenter(config: RunConfig, nimg: int, burn_in_nimg: float, rng):
    """The 'bgc' augmentation at this step's probability (cosine ramp over the burn-in), or the identity at p = 0."""
    p = cosine_ramp(config.augment_p, nimg, burn_in_nimg)
    if p == 0:
        return (lambda x: x), p
    from roadmap.augment import augment

    return (lambda x: augment(x, p, generator=rng)), p


def _sample_real(data, config: RunConfig, rng, part: slice, device, loader=None) -> tuple:
    """(reals, labels) of this rank's slice of a global batch drawn from the data RNG, x-flipped if asked."""
    if loader is not None:  # image data sets: decoded ahead, this rank's slice only (roadmap/loader.py)
        return loader.next(rng)
    real, labels = data.sample(config.batch, rng)
    real = real[part].to(device, non_blocking=True)
    labels = labels[part].to(device, non_blocking=True) if labels is not None else None
    return real, labels


def _log(run_dir: Path, text: str) -> None:
    """Append to log.txt (a human-readable record; metrics.jsonl is the data)."""
    with open(run_dir / "log.txt", "a") as stream:
        stream.write(text if text.endswith("\n") else text + "\n")


def _tick_line(run_name: str, row: dict) -> str:
    score = "".join(f" {key} {row[key]:.4g}" for key in row if key.startswith("score_") and isinstance(row[key], (int, float)))
    return (f"[{run_name}] tick {row['tick']} kimg {row['kimg']:.1f} loss_D {row['loss_D']:.4f} loss_G {row['loss_G']:.4f} "
            f"|grad fake| {row['grad_norm_fake']:.3g} sec/tick {row['tick_seconds']:.1f}{score}")


def _open_tensorboard(config: RunConfig, run_dir: Path):
    if config.logger != "tensorboard":
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _build_data(config: RunConfig, device):
    options = dict(config.dataset_args)
    if config.xflip:  # honoured by the data set itself; one that cannot flip is refused before any job starts
        options["xflip"] = True
    data = create_dataset(config.dataset, **options)
    if device.type == "cuda" and callable(getattr(data, "to", None)):
        data = data.to(device)  # e.g. Stacked MNIST keeps its digits on the GPU and samples there
    return data


def train(config: RunConfig, run_dir, progress: bool = False) -> dict:
    """Train one run into `run_dir` (resuming if it holds a checkpoint); returns the summary."""
    # Setup.
    run_dir = Path(run_dir)
    start_time = time.time()
    device = _device(config)
    rank, world_size = _world()
    if config.batch % world_size:
        raise ConfigError(f"batch: {config.batch} does not split evenly over {world_size} ranks")
    part = slice(rank * config.batch // world_size, (rank + 1) * config.batch // world_size)  # this rank's slice
    writer = rank == 0
    if config.threads:
        torch.set_num_threads(config.threads)
    set_tf32(device, config.tf32)
    set_cudnn_benchmark(device, config.cudnn_benchmark)
    torch.manual_seed(config.seed)
    pair = create_model(config.model, **config.model_args)
    loss = config.resolved_loss(pair.loss_spec)
    resolved = dict(to_dict(config), **loss.as_dict())
    data = _build_data(config, device)
    _check_shapes(pair, data)
    micro_D, micro_G = micro_batches(_with_default_micro_batch(config, loss, device, world_size), world_size)
    pair.place(device)  # the one choice of the layers' operators (networks/operators.py)
    generator, discriminator = pair.generator, pair.discriminator
    generator_ema = copy.deepcopy(generator).eval().requires_grad_(False)
    betas = (0.0, cosine_ramp(config.beta2, 0, config.burn_in_kimg * 1e3))
    lr0 = cosine_ramp(config.lr, 0, config.burn_in_kimg * 1e3)
    # Dynamic loss scaling for IEEE fp16 (skips steps whose gradients overflow); disabled, both
    # scalers pass losses and optimizer steps through unchanged.
    optimization = Optimization(
        torch.optim.Adam(generator.parameters(), lr=lr0, betas=betas), torch.optim.Adam(discriminator.parameters(), lr=lr0, betas=betas),
        torch.amp.GradScaler(device.type, enabled=config.grad_scaler), torch.amp.GradScaler(device.type, enabled=config.grad_scaler))
    # A data set that lives on the device (Stacked MNIST on CUDA) draws its batches there; others on the host.
    data_rng = torch.Generator(device if callable(getattr(data, "to", None)) else "cpu").manual_seed(config.seed * 2 + 1)
    latent_rng = torch.Generator(device).manual_seed(config.seed * 2 + 2)  # z is drawn where it is used: no copy per step
    augment_rng = torch.Generator(device).manual_seed(config.seed * 2 + 3)
    nimg, step, tick, wall_before = 0, 0, 0, 0.0

    # Resume (from a checkpoint of this run only: other settings or shapes fall back to the previous one).
    if writer and run_dir.is_dir():
        files.remove_leftovers(run_dir)
    checkpoint = files.load_checkpoint(run_dir, refuse=lambda state: _not_this_run(
        state, resolved, dict(generator=generator, discriminator=discriminator, generator_ema=generator_ema)))
    if checkpoint is not None:
        _load_state(checkpoint, generator, discriminator, generator_ema, optimization, data_rng, latent_rng, augment_rng)
        nimg, step, tick, wall_before = checkpoint["nimg"], checkpoint["step"], checkpoint["tick"], checkpoint["wall_seconds"]
        if writer:  # drop tick lines written after the checkpoint (the resumed run writes them again); keep every other good row
            kept = [row for row in files.read_jsonl(run_dir / "metrics.jsonl") if row.get("tick", math.inf) <= tick]
            files.write_text(run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in kept))
            _log(run_dir, f"resumed from the checkpoint at kimg {nimg / 1000:g} (tick {tick})")
    elif writer:
        files.make_dirs(run_dir)
        files.write_text(run_dir / "metrics.jsonl", "")
        files.write_text(run_dir / "log.txt", f"# {run_dir.name}: resolved settings\n" + yaml.safe_dump(resolved, sort_keys=False))
    if checkpoint is None and config.init_from is not None:  # fine-tuning: weights only, optimizers and kimg from zero
        from roadmap.warm_start import load_initial_weights

        load_initial_weights(config.init_from, generator, discriminator, generator_ema)
    if writer:
        files.write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        if micro_D > 1 or micro_G > 1:  # chosen here when batch_gpu is unset on CUDA: say what ran
            share = config.batch // world_size
            _log(run_dir, f"micro-batches per rank: D {micro_D} x {share // micro_D}, G {micro_G} x {share // micro_G} images")
    board = _open_tensorboard(config, run_dir) if writer else None
    _rank_streams(config, rank, step, augment_rng)
    broadcast_from_rank0((generator, discriminator, generator_ema), world_size)
    loader = None
    if callable(getattr(data, "decode", None)):  # after resuming: the loader copies the data generator's state
        from roadmap.loader import ImageLoader

        loader = ImageLoader(data, config.batch, part, data_rng, device, config.data_workers, config.data_prefetch)

    def save():
        files.save_checkpoint(run_dir, dict(
            generator=generator.state_dict(), discriminator=discriminator.state_dict(),
            generator_ema=generator_ema.state_dict(), optimizer_G=optimization.optimizer_G.state_dict(),
            optimizer_D=optimization.optimizer_D.state_dict(), scaler_D=optimization.scaler_D.state_dict(),
            scaler_G=optimization.scaler_G.state_dict(), random_state=_random_state(data_rng, latent_rng, augment_rng),
            nimg=nimg, step=step, tick=tick, wall_seconds=wall_before + time.time() - start_time, config=resolved,
            drift_samples=drift_state.get("previous"),
        ))

    sample = Samples(generator_ema, pair.latent_dim, data.num_classes, device)

    # Late-training oscillation of G (issue 25): the periodic score's samples come from the same fixed
    # latents every time, so consecutive scores' samples are paired point by point.
    drift_state = {"previous": checkpoint.get("drift_samples") if checkpoint is not None else None}

    def recorded_sample(n):  # 2-D toys only (for images a pixel distance says little, and they stream their samples)
        samples = sample(n)
        drift_state["current"] = samples
        return samples

    # Main loop.
    duration_nimg = int(config.duration_kimg * 1000)
    tick_nimg = config.tick_kimg * 1000
    burn_in_nimg = config.burn_in_kimg * 1000
    status, reason, diverged_kimg = "completed", None, None
    sums, counts, tick_start = {}, defaultdict(int), time.time()
    bar = _progress_bar(progress and writer, config, nimg)
    check_every_step = device.type == "cpu"  # reading a CPU tensor is free; on a GPU, divergence is read once per tick
    while nimg < duration_nimg:
        # Schedules.
        lr = cosine_ramp(config.lr, nimg, burn_in_nimg)
        gamma = cosine_ramp(config.gamma, nimg, burn_in_nimg)
        beta2 = cosine_ramp(config.beta2, nimg, burn_in_nimg)
        beta_ema = ema_beta(config.batch, cosine_ramp(config.ema_half_life_kimg, nimg, burn_in_nimg) * 1000)
        augment, augment_p = _augmenter(config, nimg, burn_in_nimg, augment_rng)
        for optimizer in (optimization.optimizer_G, optimization.optimizer_D):
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = lr, (0.0, beta2)

        # Data: every rank draws the global batches, then keeps its own slice; the G step gets a
        # second real batch, as in the official loop.
        real_D, labels_D = _sample_real(data, config, data_rng, part, device, loader)
        z_D = torch.randn(config.batch, pair.latent_dim, generator=latent_rng, device=device)[part]
        real_G, labels_G = _sample_real(data, config, data_rng, part, device, loader)
        z_G = torch.randn(config.batch, pair.latent_dim, generator=latent_rng, device=device)[part]

        # D and G steps.
        stats = training_iteration(pair, optimization, loss, step, gamma, Batch(real_D, labels_D, z_D),
                                   Batch(real_G, labels_G, z_G), augment, world_size, micro_D, micro_G)
        if config.grad_scaler:
            stats.update(loss_scale_D=optimization.scaler_D.get_scale(), loss_scale_G=optimization.scaler_G.get_scale())
        if pair.step_statistics is not None:  # the networks' own counters (e.g. fp16 overflow/NaN events)
            stats.update(pair.step_statistics(step))

        # EMA.
        with torch.no_grad():
            for p_ema, p in zip(generator_ema.parameters(), generator.parameters()):
                p_ema.lerp_(p, 1.0 - beta_ema)
            for b_ema, b in zip(generator_ema.buffers(), generator.buffers()):
                b_ema.copy_(b)
        nimg += config.batch
        step += 1
        _accumulate(sums, counts, dict(stats, grad_norm_fake_mean_max=stats["grad_norm_fake"], lr=lr, gamma=gamma, beta2=beta2, ema_beta=beta_ema, augment_p=augment_p))
        if bar is not None:
            bar.update(config.batch / 1000)
        tick_due = nimg >= (tick + 1) * tick_nimg or nimg >= duration_nimg

        # Divergence (a step's own statistics on CPU; the tick's on GPU, read once).
        if check_every_step or tick_due:
            probe = _average_stats(_as_floats({k: stats[k] for k in DIVERGENCE_KEYS} if check_every_step else
                                              {k: sums[k] / counts[k] for k in DIVERGENCE_KEYS} | {"grad_norm_fake": sums["grad_norm_fake_mean_max"]}),
                                   device, world_size)
            finite = all(math.isfinite(probe[key]) for key in DIVERGENCE_KEYS)
            if not finite or probe["grad_norm_fake"] > config.divergence_grad_norm:
                status, diverged_kimg = "diverged", nimg / 1000
                reason = ("non-finite loss or gradient" if not finite else
                          f"mean ||grad_x D|| on fakes {probe['grad_norm_fake']:.3g} > {config.divergence_grad_norm:g}")

        # Tick.
        if tick_due or status == "diverged":
            tick += 1
            now = time.time()
            row = dict(tick=tick, kimg=nimg / 1000, seconds=round(wall_before + now - start_time, 3),
                       tick_seconds=round(now - tick_start, 3), r1=None, r2=None)
            row.update(_average_stats(_as_floats({key: sums[key] / counts[key] if not _combined_by_max(key) else sums[key]
                                                  for key in sums}), device, world_size))
            if writer and status != "diverged" and config.score_ticks and tick % config.score_ticks == 0 and nimg < duration_nimg:
                kwargs = {} if config.score_samples is None else dict(n=config.score_samples)
                row.update({f"score_{key}": value for key, value in data.evaluate(recorded_sample if len(data.shape) == 1 else sample, **kwargs).items()
                            if isinstance(value, (int, float)) and not isinstance(value, bool)})
                drift = sample_drift(drift_state.get("previous"), drift_state.get("current"))
                if drift is not None:
                    row["score_drift"] = drift
                drift_state["previous"] = drift_state.pop("current", None)
            if writer:
                files.append_line(run_dir / "metrics.jsonl", json.dumps(row))  # one write per tick
                _log(run_dir, _tick_line(run_dir.name, row))
                if board is not None:
                    for key, value in row.items():
                        if isinstance(value, (int, float)) and key not in ("tick", "kimg"):
                            board.add_scalar(key, value, global_step=nimg)
                    board.flush()
            sums, counts, tick_start = {}, defaultdict(int), now
            if bar is None and progress and writer:
                print(_tick_line(run_dir.name, row), flush=True)
            if status == "diverged":
                break
            if writer and (tick % config.checkpoint_ticks == 0 or nimg >= duration_nimg):
                files.fsync(run_dir / "metrics.jsonl")  # the ticks a checkpoint covers are on disk before it
                save()
    if bar is not None:
        bar.close()

    # Finish (rank 0 evaluates and writes; the other ranks are done).
    metrics = {}
    if status == "completed" and writer:
        generator_ema.eval()
        kwargs = {} if config.eval_samples is None else dict(n=config.eval_samples)
        metrics = data.evaluate(sample, **kwargs)
        files.make_dirs(run_dir / "samples")
        data.save_samples(sample(64 if len(data.shape) > 1 else 2500), run_dir / "samples" / "final.png")
    summary = _summary(config, run_dir, status, reason=reason, kimg=nimg / 1000, diverged_kimg=diverged_kimg, metrics=metrics,
                       wall_seconds=round(wall_before + time.time() - start_time, 3), device=_device_name(device),
                       stability=_stability(run_dir) if writer else {},
                       fingerprint=_fingerprint(config) if writer else None)
    if writer:
        files.write_json(run_dir / "summary.json", summary)
        _log(run_dir, f"finished: {status}" + (f" ({reason})" if reason else "") + f" at kimg {nimg / 1000:g}; metrics {json.dumps(metrics)}")
        if board is not None:
            board.close()
    return summary


def sample_drift(previous, current):
    """Mean Euclidean distance between paired samples [N, D] of two consecutive scores (same latents); None without both."""
    if previous is None or current is None or previous.shape != current.shape:
        return None
    return float((current.double() - previous.double()).norm(dim=1).mean())


def _accumulate(sums: dict, counts: dict, stats: dict) -> None:
    """Add one step's statistics (tensors stay on their device) to the tick's sums, or maxima."""
    for key, value in stats.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().float()
        if _combined_by_max(key):
            sums[key] = (torch.maximum(torch.as_tensor(sums[key]), torch.as_tensor(value)) if isinstance(value, torch.Tensor)
                         else max(sums[key], value)) if counts[key] else value
            counts[key] = 1
        else:
            sums[key] = sums.get(key, 0.0) + value
            counts[key] += 1


def _as_floats(stats: dict) -> dict:
    """Statistic tensors -> Python floats, with one host synchronization for all of them."""
    keys = [key for key, value in stats.items() if isinstance(value, torch.Tensor)]
    floats = dict(stats)
    if keys:
        values = torch.stack([stats[key].reshape(()).float() for key in keys]).cpu().tolist()
        floats.update(zip(keys, values))
    return {key: float(value) for key, value in floats.items()}


def _stability(run_dir: Path) -> dict:
    """Per-run stability statistics from the tick rows (roadmap/stability.py): peaks, largest spike, recovery."""
    rows = files.read_jsonl(run_dir / "metrics.jsonl")
    return dict(run_stability(rows), **run_convergence(rows))


def _not_this_run(state, resolved: dict, modules: dict):
    """Why checkpoint `state` is not one of this run ('lr: stored 0.001, now 0.002'), or None.

    Settings compare by the rule that binds a run folder to its config.yaml (roadmap.config,
    settings_difference); tensor shapes are checked too, so a checkpoint without a stored config
    (or with one that hides a shape change) falls back instead of failing in load_state_dict.
    """
    if not isinstance(state, dict):
        return f"not a checkpoint ({type(state).__name__})"
    difference = settings_difference(state.get("config"), resolved)
    if difference:
        return difference
    for name, module in modules.items():
        stored = state.get(name)
        if not isinstance(stored, dict):
            return f"{name}: missing"
        mine = module.state_dict()
        for key in list(mine) + [k for k in stored if k not in mine]:
            have, want = stored.get(key), mine.get(key)
            if not isinstance(want, torch.Tensor) and want is not None and key in stored:  # a module's extra state: no shape
                continue
            if want is None or not isinstance(have, torch.Tensor) or have.shape != want.shape:
                describe = lambda t: "absent" if t is None else tuple(getattr(t, "shape", ()))  # noqa: E731
                return f"{name}.{key}: stored shape {describe(have)}, now {describe(want)}"
    return None


def _load_state(checkpoint, generator, discriminator, generator_ema, optimization, data_rng, latent_rng, augment_rng) -> None:
    generator.load_state_dict(checkpoint["generator"])
    discriminator.load_state_dict(checkpoint["discriminator"])
    generator_ema.load_state_dict(checkpoint["generator_ema"])
    optimization.optimizer_G.load_state_dict(checkpoint["optimizer_G"])
    optimization.optimizer_D.load_state_dict(checkpoint["optimizer_D"])
    if "scaler_D" in checkpoint:
        optimization.scaler_D.load_state_dict(checkpoint["scaler_D"])
        optimization.scaler_G.load_state_dict(checkpoint["scaler_G"])
    _set_random_state(checkpoint["random_state"], data_rng, latent_rng, augment_rng)


def _summary(config: RunConfig, run_dir: Path, status: str, **fields) -> dict:
    """summary.json of a run: its verdict and provenance (one builder for finished and failed runs)."""
    return dict(dict(reason=None, kimg=None, diverged_kimg=None, metrics={}, wall_seconds=None, device=str(config.device)),
                status=status, git_commit=git_commit(), config_hash=config_hash(config), experiment=run_dir.parent.name,
                run=run_dir.name, torch=torch.__version__, feeds=config.feeds, **fields)


def _fingerprint(config: RunConfig):
    """The run's computation fingerprint (roadmap/fingerprint.py), or None when it cannot be computed: a finished
    run stays finished (the report then lists it as stale, which is what it cannot prove otherwise)."""
    try:
        return compute_fingerprint(config)
    except Exception:
        return None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def _progress_bar(progress: bool, config: RunConfig, nimg: int):
    """A tqdm bar over kimg on an interactive terminal; None elsewhere (tick lines are printed)."""
    if not progress or not os.isatty(2):
        return None
    from tqdm import tqdm

    return tqdm(total=config.duration_kimg, initial=nimg / 1000, unit="kimg", leave=False,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} kimg [{elapsed}<{remaining}]")


def failure_reason(error: BaseException) -> str:
    """A readable reason for a failed run: a full disk says so instead of a serializer's internal message."""
    if isinstance(error, files.WriteError):  # already one line with the path and the free space
        return str(error)
    text = f"{type(error).__name__}: {error}"
    if "inline_container" in text:  # torch's serializer lost the errno: its internals tell the reader nothing
        return "no space left on device (torch could not write a file)"
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in text:
        return f"no space left on device ({text.splitlines()[0][:200]})"
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return f"out of memory ({text.splitlines()[0][:200]})"
    return text


def run(config: RunConfig, run_dir, progress: bool = False) -> dict:
    """Train one run; an exception becomes a `failed` summary (the sweep goes on) instead of a crash."""
    run_dir = Path(run_dir)
    try:
        return train(config, run_dir, progress=progress)
    except Exception as error:  # a failed run is a result, recorded with its reason
        summary = _summary(config, run_dir, "failed", reason=failure_reason(error), traceback=traceback.format_exc())
        try:
            files.make_dirs(run_dir)
            files.write_json(run_dir / "summary.json", summary)
            _log(run_dir, f"failed: {summary['reason']}")
        except OSError:  # e.g. the disk is still full: the summary goes to the caller, which records what it can
            pass
        return summary
