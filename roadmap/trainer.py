"""One training loop for every registered configuration, loss and data set (paper Sections 2-3, Table 9).

Time is counted in real images shown to D (kimg). Each step is one D step (adversarial loss,
plus the R1/R2 penalties on every `lazy_interval`-th step weighted by that interval) followed
by one G step, then the G EMA update. A tick appends one line of averaged statistics to
metrics.jsonl; checkpoints are written atomically at tick boundaries and hold every random
state, so a resumed run continues the same trajectory (bitwise on CPU).

Multi-GPU (torch.distributed, started by runners/launch.py): every rank draws the same global
batch from the same generators and trains on its own slice; gradients and statistics are
averaged over ranks, so N ranks follow the trajectory of one process with the global batch
(up to float reduction order). Only rank 0 writes files.
"""
import copy
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
from roadmap.config import RunConfig, to_dict
from roadmap.errors import ConfigError
from roadmap.losses import (
    discriminator_loss,
    generator_loss,
    input_gradient,
    regularization_weight,
    squared_norm,
)
from roadmap.registry import ModelPair, create_dataset, create_model
from roadmap.schedules import cosine_ramp, ema_beta

EVAL_SEED = 123_456_789  # latents for the final evaluation and sample sheet, fixed across runs


def _unscaled(loss):
    return loss


def discriminator_step(pair: ModelPair, real, labels, z, objective, penalties, gamma, regularization_weight,
                       scale=_unscaled) -> dict:
    """Forward + backward of one D step (no optimizer step); returns float statistics.

    Input gradients on real and fake samples are always measured: they are the penalties'
    integrands when R1/R2 are on this step, and the divergence signal (paper Figure 1) otherwise.
    """
    with torch.no_grad():
        fake = pair.generator(z, labels)
    real = real.detach().requires_grad_(True)
    fake = fake.detach().requires_grad_(True)
    real_logits = pair.discriminator(real, labels)
    fake_logits = pair.discriminator(fake, labels)
    adversarial = discriminator_loss(objective, real_logits, fake_logits)
    total = adversarial.mean()
    stats = dict(loss_D=adversarial.mean().item(), logits_real=real_logits.mean().item(), logits_fake=fake_logits.mean().item())
    for name, logits, inputs in (("r1", real_logits, real), ("r2", fake_logits, fake)):
        penalized = regularization_weight > 0 and name in penalties
        gradient = input_gradient(logits, inputs, create_graph=penalized)
        norms = squared_norm(gradient.detach()).sqrt()
        stats["grad_norm_" + ("real" if name == "r1" else "fake")] = norms.mean().item()
        if penalized:
            penalty = squared_norm(gradient)  # = losses.gradient_penalty, reusing this graph
            total = total + regularization_weight * gamma / 2 * penalty.mean()
            stats[name] = penalty.mean().item()
    scale(total).backward()
    return stats


def generator_step(pair: ModelPair, real, labels, z, objective, scale=_unscaled) -> dict:
    """Forward + backward of one G step (no optimizer step); returns float statistics."""
    fake = pair.generator(z, labels)
    fake_logits = pair.discriminator(fake, labels)
    with torch.no_grad():  # RpGAN pairs each fake with a real logit; no gradient flows into it
        real_logits = pair.discriminator(real, labels) if objective == "rpgan" else torch.zeros_like(fake_logits)
    loss = generator_loss(objective, real_logits, fake_logits)
    scale(loss.mean()).backward()
    return dict(loss_G=loss.mean().item())


def _generator_penalty_step(pair: ModelPair, z, labels, weight: int, scale=_unscaled) -> dict:
    penalty = pair.generator_penalty(pair.generator, z, labels)
    scale(weight * penalty.mean()).backward()
    return dict(generator_penalty=penalty.mean().item())


def _world() -> tuple:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(module: torch.nn.Module, world_size: int) -> None:
    """Mean of the gradients over ranks, in one collective.

    By hand rather than DistributedDataParallel: G and D toggle requires_grad every step, D runs
    twice before one backward, and R1/R2 differentiate through input gradients; DDP's reducer
    supports none of these cleanly.
    """
    if world_size == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def _combined_by_max(key: str) -> bool:
    """Statistics named first_* hold the step of a first event (-1 until it happens, then fixed):
    over a tick and over ranks they combine by max, since an average would invent a step."""
    return "first_" in key


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


def _git_commit() -> str:
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


def _random_state(data_rng, latent_rng) -> dict:
    state = dict(torch=torch.get_rng_state(), data=data_rng.get_state(), latent=latent_rng.get_state())
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_random_state(state: dict, data_rng, latent_rng) -> None:
    torch.set_rng_state(state["torch"])
    data_rng.set_state(state["data"])
    latent_rng.set_state(state["latent"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generate(generator, latent_dim, num_classes, n, device, batch=256, seed=EVAL_SEED):
    """n samples from `generator` with fixed latents (and uniform labels when conditional), on CPU."""
    rng = torch.Generator().manual_seed(seed)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, batch):
            size = min(batch, n - start)
            z = torch.randn(size, latent_dim, generator=rng).to(device)
            labels = torch.randint(num_classes, (size,), generator=rng).to(device) if num_classes else None
            chunks.append(generator(z, labels).float().cpu())
    return torch.cat(chunks)


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
    torch.manual_seed(config.seed)
    pair = create_model(config.model, **config.model_args)
    loss = config.resolved_loss(pair.loss)
    resolved = dict(to_dict(config), **loss)
    data = create_dataset(config.dataset, **config.dataset_args)
    _check_shapes(pair, data)
    generator, discriminator = pair.generator.to(device), pair.discriminator.to(device)
    generator_ema = copy.deepcopy(generator).eval().requires_grad_(False)
    betas = (0.0, cosine_ramp(config.beta2, 0, config.burn_in_kimg * 1e3))
    lr0 = cosine_ramp(config.lr, 0, config.burn_in_kimg * 1e3)
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=lr0, betas=betas)
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=lr0, betas=betas)
    # Dynamic loss scaling for IEEE fp16 (skips steps whose gradients overflow); disabled, both
    # scalers pass losses and optimizer steps through unchanged.
    scaler_D = torch.amp.GradScaler(device.type, enabled=config.grad_scaler)
    scaler_G = torch.amp.GradScaler(device.type, enabled=config.grad_scaler)
    data_rng = torch.Generator().manual_seed(config.seed * 2 + 1)
    latent_rng = torch.Generator().manual_seed(config.seed * 2 + 2)
    nimg, step, tick, wall_before = 0, 0, 0, 0.0

    # Resume.
    checkpoint = files.load_checkpoint(run_dir)
    if checkpoint is not None:
        generator.load_state_dict(checkpoint["generator"])
        discriminator.load_state_dict(checkpoint["discriminator"])
        generator_ema.load_state_dict(checkpoint["generator_ema"])
        optimizer_G.load_state_dict(checkpoint["optimizer_G"])
        optimizer_D.load_state_dict(checkpoint["optimizer_D"])
        if "scaler_D" in checkpoint:
            scaler_D.load_state_dict(checkpoint["scaler_D"])
            scaler_G.load_state_dict(checkpoint["scaler_G"])
        _set_random_state(checkpoint["random_state"], data_rng, latent_rng)
        nimg, step, tick, wall_before = checkpoint["nimg"], checkpoint["step"], checkpoint["tick"], checkpoint["wall_seconds"]
        if writer:  # drop tick lines written after the checkpoint: the resumed run writes them again
            kept = [row for row in files.read_jsonl(run_dir / "metrics.jsonl") if row["tick"] <= tick]
            files.write_text(run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in kept))
    elif writer:
        run_dir.mkdir(parents=True, exist_ok=True)
        files.write_text(run_dir / "metrics.jsonl", "")
    if writer:
        files.write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))

    def save():
        files.save_checkpoint(run_dir, dict(
            generator=generator.state_dict(), discriminator=discriminator.state_dict(),
            generator_ema=generator_ema.state_dict(), optimizer_G=optimizer_G.state_dict(),
            optimizer_D=optimizer_D.state_dict(), scaler_D=scaler_D.state_dict(), scaler_G=scaler_G.state_dict(),
            random_state=_random_state(data_rng, latent_rng),
            nimg=nimg, step=step, tick=tick, wall_seconds=wall_before + time.time() - start_time,
            config=resolved,
        ))

    # Main loop.
    duration_nimg = int(config.duration_kimg * 1000)
    tick_nimg = config.tick_kimg * 1000
    burn_in_nimg = config.burn_in_kimg * 1000
    status, reason, diverged_kimg = "completed", None, None
    sums, tick_start = defaultdict(float), time.time()
    counts = defaultdict(int)
    bar = _progress_bar(progress and writer, config, nimg)
    while nimg < duration_nimg:
        # Schedules.
        lr = cosine_ramp(config.lr, nimg, burn_in_nimg)
        gamma = cosine_ramp(config.gamma, nimg, burn_in_nimg)
        beta2 = cosine_ramp(config.beta2, nimg, burn_in_nimg)
        beta_ema = ema_beta(config.batch, cosine_ramp(config.ema_half_life_kimg, nimg, burn_in_nimg) * 1000)
        for optimizer in (optimizer_G, optimizer_D):
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = lr, (0.0, beta2)

        # D step (every rank draws the global batch, then keeps its own slice).
        real, labels = data.sample(config.batch, data_rng)
        real = real[part].to(device)
        labels = labels[part].to(device) if labels is not None else None
        z = torch.randn(config.batch, pair.latent_dim, generator=latent_rng)[part].to(device)
        generator.requires_grad_(False)
        discriminator.requires_grad_(True)
        optimizer_D.zero_grad(set_to_none=True)
        weight = regularization_weight(step, loss["lazy_interval"])
        stats = discriminator_step(pair, real, labels, z, loss["loss"], loss["penalties"], gamma, weight, scaler_D.scale)
        _average_gradients(discriminator, world_size)
        scaler_D.step(optimizer_D)  # a plain optimizer step unless grad_scaler is on
        scaler_D.update()

        # G step.
        z = torch.randn(config.batch, pair.latent_dim, generator=latent_rng)[part].to(device)
        generator.requires_grad_(True)
        discriminator.requires_grad_(False)
        optimizer_G.zero_grad(set_to_none=True)
        stats.update(generator_step(pair, real, labels, z, loss["loss"], scaler_G.scale))
        if pair.generator_penalty is not None and step % pair.generator_penalty_interval == 0:
            stats.update(_generator_penalty_step(pair, z, labels, pair.generator_penalty_interval, scaler_G.scale))
        _average_gradients(generator, world_size)
        scaler_G.step(optimizer_G)
        scaler_G.update()
        if config.grad_scaler:
            stats.update(loss_scale_D=scaler_D.get_scale(), loss_scale_G=scaler_G.get_scale())
        if pair.step_statistics is not None:  # the networks' own counters (e.g. fp16 overflow/NaN events)
            stats.update(pair.step_statistics(step))
        stats = _average_stats(stats, device, world_size)

        # EMA.
        with torch.no_grad():
            for p_ema, p in zip(generator_ema.parameters(), generator.parameters()):
                p_ema.lerp_(p, 1.0 - beta_ema)
            for b_ema, b in zip(generator_ema.buffers(), generator.buffers()):
                b_ema.copy_(b)
        nimg += config.batch
        step += 1
        for key, value in dict(stats, lr=lr, gamma=gamma, beta2=beta2, ema_beta=beta_ema).items():
            if _combined_by_max(key):
                sums[key], counts[key] = (max(sums[key], value) if counts[key] else value), 1
            else:
                sums[key] += value
                counts[key] += 1
        if bar is not None:
            bar.update(config.batch / 1000)

        # Divergence.
        finite = all(math.isfinite(stats[key]) for key in ("loss_D", "loss_G", "grad_norm_fake", "grad_norm_real"))
        if not finite or stats["grad_norm_fake"] > config.divergence_grad_norm:
            status, diverged_kimg = "diverged", nimg / 1000
            reason = ("non-finite loss or gradient" if not finite else
                      f"mean ||grad_x D|| on fakes {stats['grad_norm_fake']:.3g} > {config.divergence_grad_norm:g}")

        # Tick.
        if nimg >= (tick + 1) * tick_nimg or nimg >= duration_nimg or status == "diverged":
            tick += 1
            now = time.time()
            row = dict(tick=tick, kimg=nimg / 1000, seconds=round(wall_before + now - start_time, 3),
                       tick_seconds=round(now - tick_start, 3), r1=None, r2=None)
            row.update({key: sums[key] / counts[key] for key in sums})
            if writer:
                with open(run_dir / "metrics.jsonl", "a") as stream:
                    stream.write(json.dumps(row) + "\n")
            sums, counts, tick_start = defaultdict(float), defaultdict(int), now
            if bar is None and progress and writer:
                print(f"[{run_dir.name}] kimg {row['kimg']:.1f} loss_D {row['loss_D']:.4f} loss_G {row['loss_G']:.4f}", flush=True)
            if status == "diverged":
                break
            if writer and (tick % config.checkpoint_ticks == 0 or nimg >= duration_nimg):
                save()
    if bar is not None:
        bar.close()

    # Finish (rank 0 evaluates and writes; the other ranks are done).
    metrics = {}
    if status == "completed" and writer:
        generator_ema.eval()
        sample = lambda n: generate(generator_ema, pair.latent_dim, data.num_classes, n, device)  # noqa: E731
        kwargs = {} if config.eval_samples is None else dict(n=config.eval_samples)
        metrics = data.evaluate(sample, **kwargs)
        (run_dir / "samples").mkdir(exist_ok=True)
        data.save_samples(sample(64 if len(data.shape) > 1 else 2500), run_dir / "samples" / "final.png")
    summary = dict(
        status=status, reason=reason, kimg=nimg / 1000, diverged_kimg=diverged_kimg, metrics=metrics,
        wall_seconds=round(wall_before + time.time() - start_time, 3), device=_device_name(device),
        git_commit=_git_commit(), config_hash=config_hash(config), experiment=run_dir.parent.name,
        run=run_dir.name, torch=torch.__version__,
    )
    if writer:
        files.write_json(run_dir / "summary.json", summary)
    return summary


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


def run(config: RunConfig, run_dir, progress: bool = False) -> dict:
    """Train one run; an exception becomes a `failed` summary (the sweep goes on) instead of a crash."""
    run_dir = Path(run_dir)
    try:
        return train(config, run_dir, progress=progress)
    except Exception as error:  # a failed run is a result, recorded with its reason
        summary = dict(status="failed", reason=f"{type(error).__name__}: {error}", kimg=None, diverged_kimg=None,
                       metrics={}, wall_seconds=None, device=str(config.device), git_commit=_git_commit(),
                       config_hash=config_hash(config), experiment=run_dir.parent.name, run=run_dir.name,
                       torch=torch.__version__, traceback=traceback.format_exc())
        run_dir.mkdir(parents=True, exist_ok=True)
        files.write_json(run_dir / "summary.json", summary)
        return summary
