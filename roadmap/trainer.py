"""One training loop for every registered configuration, loss and data set (paper Sections 2-3, Table 9).

Time is counted in real images shown to D (kimg). Each step is one D step (adversarial loss,
plus the R1/R2 penalties on every `lazy_interval`-th step weighted by that interval) followed
by one G step on a second real batch (as the official loop draws one), then the G EMA update;
the step itself lives in roadmap/step.py, shared with the benchmark. A tick appends one line of averaged statistics to
metrics.jsonl; checkpoints are written atomically at tick boundaries and hold every random
state, so a resumed run continues the same trajectory (bitwise on CPU). A checkpoint resumes only
the run whose settings and shapes it holds (the rule of roadmap.config.settings_difference).

Multi-GPU (torch.distributed, started by runners/job.py): every rank draws the same global
batch from the same generators and trains on its own slice; gradients and statistics are
averaged over ranks, so N ranks follow the trajectory of one process with the global batch
(up to float reduction order). Every rank takes part in an evaluation, generating its share of the
samples (roadmap/evaluation.py); only rank 0 writes files; summary.json and the reason of a failure
come from roadmap/outcome.py, as for every way a run ends.
"""
import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
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
from roadmap.outcome import failure_reason, run_summary, write_summary
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


def _device(config: RunConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {config.device!r} requested but CUDA is not available")
    return torch.device(config.device)


@dataclasses.dataclass
class RandomStreams:
    """The run's own generators (data batches, latents, augmentation); a checkpoint holds them with torch's global state."""
    data: torch.Generator
    latent: torch.Generator
    augment: torch.Generator

    def state(self) -> dict:
        state = dict(torch=torch.get_rng_state(), data=self.data.get_state(), latent=self.latent.get_state(),
                     augment=self.augment.get_state())
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        self.data.set_state(state["data"])
        self.latent.set_state(state["latent"])
        if "augment" in state:
            self.augment.set_state(state["augment"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _random_streams(config: RunConfig, data, device) -> RandomStreams:
    # A data set that lives on the device (Stacked MNIST on CUDA) draws its batches there; others on the host.
    return RandomStreams(torch.Generator(device if callable(getattr(data, "to", None)) else "cpu").manual_seed(config.seed * 2 + 1),
                         torch.Generator(device).manual_seed(config.seed * 2 + 2),  # z is drawn where it is used: no copy per step
                         torch.Generator(device).manual_seed(config.seed * 2 + 3))


def generate(generator, latent_dim, num_classes, n, device, batch=256, seed=EVAL_SEED):
    """n samples from `generator` with fixed latents (and uniform labels when conditional), on CPU."""
    return torch.cat([chunk.cpu() for chunk in generate_chunks(generator, latent_dim, num_classes, n, device, batch, seed)])


def generate_chunks(generator, latent_dim, num_classes, n, device, batch=256, seed=EVAL_SEED):
    """The samples of `generate`, the same numbers, as float chunks of `batch` left on `device` (streaming evaluation)."""
    with torch.no_grad():
        for z, labels in _latents(latent_dim, num_classes, n, batch, seed):
            yield generator(z.to(device), None if labels is None else labels.to(device)).float()


def _latents(latent_dim, num_classes, n, batch, seed):
    """(z [<= batch, latent_dim], labels [<= batch] or None) of `generate`'s chunks, drawn on the CPU in order."""
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch):
        size = min(batch, n - start)
        z = torch.randn(size, latent_dim, generator=rng)
        yield z, torch.randint(num_classes, (size,), generator=rng) if num_classes else None


class Samples:
    """What a data set's `evaluate` gets: called with n, all n samples on the CPU (every data set);
    `chunks(n)` yields the same samples chunk by chunk on `device`, so an evaluation that streams
    (roadmap/fid.py) holds one chunk at a time, whatever n is, and scores on the training device;
    `blocks(n, size)` yields the blocks of them that this rank (of `world`) maps in a shared evaluation
    (roadmap/evaluation.py)."""

    BATCH = 256  # samples per generator call, as `generate`

    def __init__(self, generator, latent_dim: int, num_classes: int, device, rank: int = 0, world: int = 1):
        self.generator, self.latent_dim, self.num_classes, self.device = generator, latent_dim, num_classes, device
        self.rank, self.world = rank, world

    def __call__(self, n: int) -> torch.Tensor:
        return generate(self.generator, self.latent_dim, self.num_classes, n, self.device, self.BATCH)

    def chunks(self, n: int):
        return generate_chunks(self.generator, self.latent_dim, self.num_classes, n, self.device, self.BATCH)

    def blocks(self, n: int, size: int):
        """Blocks k = rank, rank + world, ... of the n samples of `chunks(n)` on `device` ([size, ...], the last
        shorter): the latents of every chunk are drawn in order (the other ranks' too, and dropped), so a block is
        the samples one process makes at its positions."""
        if size % self.BATCH:
            raise ValueError(f"a block of {size} samples is not a whole number of generator batches ({self.BATCH})")
        per_block, block = size // self.BATCH, []
        with torch.no_grad():
            for chunk, (z, labels) in enumerate(_latents(self.latent_dim, self.num_classes, n, self.BATCH, EVAL_SEED)):
                if (chunk // per_block) % self.world != self.rank:
                    continue
                block.append(self.generator(z.to(self.device), None if labels is None else labels.to(self.device)).float())
                if len(block) == per_block or chunk == math.ceil(n / self.BATCH) - 1:
                    yield torch.cat(block)
                    block = []


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

    share = int(os.environ.get("R3BENCH_GPU_SHARE", "1"))  # local jobs sharing this GPU (runners/job.py)
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
    run_dir, start_time, device = Path(run_dir), time.time(), _device(config)
    rank, world_size = _world()
    part, writer = _rank_slice(config, rank, world_size), rank == 0
    _set_speed_options(config, device)
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
    networks = dict(generator=generator, discriminator=discriminator, generator_ema=generator_ema)
    optimization, streams = _optimization(config, generator, discriminator, device), _random_streams(config, data, device)

    # Resume (from a checkpoint of this run only: other settings or shapes fall back to the previous one).
    checkpoint = _restore(config, run_dir, resolved, networks, optimization, streams, writer)
    nimg, step, tick, wall_before = _position(checkpoint)
    if writer:
        _record_settings(run_dir, config, resolved, micro_D, micro_G, world_size)
    board = _open_tensorboard(config, run_dir) if writer else None
    _rank_streams(config, rank, step, streams.augment)
    broadcast_from_rank0((generator, discriminator, generator_ema), world_size)
    loader = _image_loader(config, data, part, streams.data, device)  # after resuming: it copies the data stream's state
    sample, drift = Samples(generator_ema, pair.latent_dim, data.num_classes, device, rank, world_size), ScoreDrift(checkpoint)

    # Main loop.
    duration_nimg, tick_nimg, burn_in_nimg = int(config.duration_kimg * 1000), config.tick_kimg * 1000, config.burn_in_kimg * 1000
    status, reason, diverged_kimg = "completed", None, None
    statistics, tick_start = TickStatistics(), time.time()
    bar = _progress_bar(progress and writer, config, nimg)
    check_every_step = device.type == "cpu"  # reading a CPU tensor is free; on a GPU, divergence is read once per tick
    while nimg < duration_nimg:
        # Schedules.
        schedule = Schedule.at(config, nimg, burn_in_nimg, streams.augment)
        schedule.apply(optimization)

        # D and G steps, on this rank's slices of two global batches.
        batch_D, batch_G = _draw_batches(data, config, pair.latent_dim, streams, part, device, loader)
        stats = training_iteration(pair, optimization, loss, step, schedule.gamma, batch_D, batch_G, schedule.augment,
                                   world_size, micro_D, micro_G)
        stats.update(_counters(config, pair, optimization, step))

        # EMA.
        _update_ema(generator_ema, generator, schedule.ema_beta)
        nimg += config.batch
        step += 1
        statistics.add(dict(stats, grad_norm_fake_mean_max=stats["grad_norm_fake"], **schedule.statistics()))
        if bar is not None:
            bar.update(config.batch / 1000)
        tick_due = nimg >= (tick + 1) * tick_nimg or nimg >= duration_nimg

        # Divergence (a step's own statistics on CPU; the tick's on GPU, read once).
        if check_every_step or tick_due:
            reason = _divergence(stats if check_every_step else statistics.divergence_probe(), config, device, world_size)
            if reason is not None:
                status, diverged_kimg = "diverged", nimg / 1000

        # Tick.
        if tick_due or status == "diverged":
            tick, now = tick + 1, time.time()
            row = _tick_row(tick, nimg, wall_before + now - start_time, now - tick_start, statistics, device, world_size)
            if status != "diverged" and config.score_ticks and tick % config.score_ticks == 0 and nimg < duration_nimg:
                scores = _scores(data, sample, drift, config)  # every rank takes part; rank 0's are the scores
                if writer:
                    row.update(scores)
            if writer:
                _write_tick(run_dir, row, board, nimg, echo=bar is None and progress)
            statistics, tick_start = TickStatistics(), now
            if status == "diverged":
                break
            if writer and (tick % config.checkpoint_ticks == 0 or nimg >= duration_nimg):
                _save_checkpoint(run_dir, networks, optimization, streams, resolved, drift, nimg=nimg, step=step, tick=tick,
                                 wall_seconds=wall_before + time.time() - start_time)
    if bar is not None:
        bar.close()

    # Finish (every rank evaluates its share; rank 0 collects the metrics and writes).
    metrics = _final_evaluation(data, sample, generator_ema, config, run_dir, writer) if status == "completed" else {}
    summary = run_summary(config, run_dir, status, reason=reason, kimg=nimg / 1000, diverged_kimg=diverged_kimg, metrics=metrics,
                          wall_seconds=round(wall_before + time.time() - start_time, 3), device=_device_name(device),
                          stability=_stability(run_dir) if writer else {}, fingerprint=_fingerprint(config) if writer else None)
    if writer:
        write_summary(run_dir, summary)
        _log(run_dir, f"finished: {status}" + (f" ({reason})" if reason else "")
             + f" at kimg {nimg / 1000:g}; metrics {json.dumps(metrics)}")
        if board is not None:
            board.close()
    return summary


def _rank_slice(config: RunConfig, rank: int, world_size: int) -> slice:
    """This rank's slice of every global batch."""
    if config.batch % world_size:
        raise ConfigError(f"batch: {config.batch} does not split evenly over {world_size} ranks")
    return slice(rank * config.batch // world_size, (rank + 1) * config.batch // world_size)


def _set_speed_options(config: RunConfig, device: torch.device) -> None:
    if config.threads:
        torch.set_num_threads(config.threads)
    set_tf32(device, config.tf32)
    set_cudnn_benchmark(device, config.cudnn_benchmark)


def _optimization(config: RunConfig, generator, discriminator, device: torch.device) -> Optimization:
    """Adam for G and D at the schedules' step-0 values, and their loss scalers.

    Dynamic loss scaling for IEEE fp16 (skips steps whose gradients overflow); disabled, both
    scalers pass losses and optimizer steps through unchanged.
    """
    betas = (0.0, cosine_ramp(config.beta2, 0, config.burn_in_kimg * 1e3))
    lr0 = cosine_ramp(config.lr, 0, config.burn_in_kimg * 1e3)
    return Optimization(
        torch.optim.Adam(generator.parameters(), lr=lr0, betas=betas), torch.optim.Adam(discriminator.parameters(), lr=lr0, betas=betas),
        torch.amp.GradScaler(device.type, enabled=config.grad_scaler), torch.amp.GradScaler(device.type, enabled=config.grad_scaler))


def _restore(config: RunConfig, run_dir: Path, resolved: dict, networks: dict, optimization, streams, writer: bool):
    """The checkpoint this run resumes from, its state loaded (or None: a fresh start, from `init_from` weights if set).

    Rank 0 also readies the folder: tick lines written after the checkpoint are dropped (the resumed
    run writes them again; every other good row is kept), or a fresh run starts empty files.
    """
    if writer and run_dir.is_dir():
        files.remove_leftovers(run_dir)
    checkpoint = files.load_checkpoint(run_dir, refuse=lambda state: _not_this_run(state, resolved, networks), set_aside=writer)
    if checkpoint is not None:
        _load_state(checkpoint, networks, optimization, streams)
        if writer:
            kept = [row for row in files.read_jsonl(run_dir / "metrics.jsonl") if row.get("tick", math.inf) <= checkpoint["tick"]]
            files.write_text(run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in kept))
            _log(run_dir, f"resumed from the checkpoint at kimg {checkpoint['nimg'] / 1000:g} (tick {checkpoint['tick']})")
    elif writer:
        files.make_dirs(run_dir)
        files.write_text(run_dir / "metrics.jsonl", "")
        files.write_text(run_dir / "log.txt", f"# {run_dir.name}: resolved settings\n" + yaml.safe_dump(resolved, sort_keys=False))
    if checkpoint is None and config.init_from is not None:  # fine-tuning: weights only, optimizers and kimg from zero
        from roadmap.warm_start import load_initial_weights

        load_initial_weights(config.init_from, networks["generator"], networks["discriminator"], networks["generator_ema"])
    return checkpoint


def _position(checkpoint) -> tuple:
    """(nimg, step, tick, wall seconds) the run continues from."""
    if checkpoint is None:
        return 0, 0, 0, 0.0
    return checkpoint["nimg"], checkpoint["step"], checkpoint["tick"], checkpoint["wall_seconds"]


def _record_settings(run_dir: Path, config: RunConfig, resolved: dict, micro_D: int, micro_G: int, world_size: int) -> None:
    """config.yaml (the settings this folder belongs to), and the micro-batches when they split a rank's share."""
    files.write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    if micro_D > 1 or micro_G > 1:  # chosen here when batch_gpu is unset on CUDA: say what ran
        share = config.batch // world_size
        _log(run_dir, f"micro-batches per rank: D {micro_D} x {share // micro_D}, G {micro_G} x {share // micro_G} images")


def _image_loader(config: RunConfig, data, part: slice, data_rng, device):
    """Image data sets decode ahead, this rank's slice only (roadmap/loader.py); None for the others."""
    if not callable(getattr(data, "decode", None)):
        return None
    from roadmap.loader import ImageLoader

    return ImageLoader(data, config.batch, part, data_rng, device, config.data_workers, config.data_prefetch)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """One step's hyperparameters: cosine ramps over the burn-in (Table 9), and the augmentation at its probability."""
    lr: float
    gamma: float
    beta2: float
    ema_beta: float
    augment_p: float
    augment: object  # images -> images

    @classmethod
    def at(cls, config: RunConfig, nimg: int, burn_in_nimg: float, augment_rng) -> "Schedule":
        augment, augment_p = _augmenter(config, nimg, burn_in_nimg, augment_rng)
        return cls(lr=cosine_ramp(config.lr, nimg, burn_in_nimg), gamma=cosine_ramp(config.gamma, nimg, burn_in_nimg),
                   beta2=cosine_ramp(config.beta2, nimg, burn_in_nimg),
                   ema_beta=ema_beta(config.batch, cosine_ramp(config.ema_half_life_kimg, nimg, burn_in_nimg) * 1000),
                   augment_p=augment_p, augment=augment)

    def apply(self, optimization) -> None:
        for optimizer in (optimization.optimizer_G, optimization.optimizer_D):
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = self.lr, (0.0, self.beta2)

    def statistics(self) -> dict:
        """The values a tick row reports (their tick means)."""
        return dict(lr=self.lr, gamma=self.gamma, beta2=self.beta2, ema_beta=self.ema_beta, augment_p=self.augment_p)


def _draw_batches(data, config: RunConfig, latent_dim: int, streams: RandomStreams, part: slice, device, loader) -> tuple:
    """(D batch, G batch): every rank draws the global batches, then keeps its own slice; the G step gets a
    second real batch, as in the official loop."""
    real_D, labels_D = _sample_real(data, config, streams.data, part, device, loader)
    z_D = torch.randn(config.batch, latent_dim, generator=streams.latent, device=device)[part]
    real_G, labels_G = _sample_real(data, config, streams.data, part, device, loader)
    z_G = torch.randn(config.batch, latent_dim, generator=streams.latent, device=device)[part]
    return Batch(real_D, labels_D, z_D), Batch(real_G, labels_G, z_G)


def _counters(config: RunConfig, pair: ModelPair, optimization, step: int) -> dict:
    """A step's statistics beside its losses: the loss scales, and the networks' own counters (e.g. fp16 overflow/NaN events)."""
    counters = {}
    if config.grad_scaler:
        counters.update(loss_scale_D=optimization.scaler_D.get_scale(), loss_scale_G=optimization.scaler_G.get_scale())
    if pair.step_statistics is not None:
        counters.update(pair.step_statistics(step))
    return counters


def _update_ema(generator_ema, generator, beta: float) -> None:
    with torch.no_grad():
        for p_ema, p in zip(generator_ema.parameters(), generator.parameters()):
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in zip(generator_ema.buffers(), generator.buffers()):
            b_ema.copy_(b)


class TickStatistics:
    """The statistics of the steps since the last tick: sums for their means, or maxima (`_combined_by_max`);
    tensors stay on their device until the tick reads them all at once."""

    def __init__(self):
        self.sums, self.counts = {}, defaultdict(int)

    def add(self, stats: dict) -> None:
        for key, value in stats.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float()
            if _combined_by_max(key):
                if not self.counts[key]:
                    self.sums[key] = value
                elif isinstance(value, torch.Tensor):
                    self.sums[key] = torch.maximum(torch.as_tensor(self.sums[key]), torch.as_tensor(value))
                else:
                    self.sums[key] = max(self.sums[key], value)
                self.counts[key] = 1
            else:
                self.sums[key] = self.sums.get(key, 0.0) + value
                self.counts[key] += 1

    def means(self) -> dict:
        return {key: self.sums[key] / self.counts[key] if not _combined_by_max(key) else self.sums[key] for key in self.sums}

    def divergence_probe(self) -> dict:
        """The tick's means of the divergence statistics, with the peak of the fake gradient norm's step means."""
        return {key: self.sums["grad_norm_fake_mean_max"] if key == "grad_norm_fake" else self.sums[key] / self.counts[key]
                for key in DIVERGENCE_KEYS}


def _divergence(stats: dict, config: RunConfig, device, world_size: int):
    """Why the run diverged, from a step's or a tick's statistics (a non-finite loss or gradient, or a mean
    ||grad_x D|| on fakes above `divergence_grad_norm`), or None. Every rank takes the same decision."""
    probe = _average_stats(_as_floats({key: stats[key] for key in DIVERGENCE_KEYS}), device, world_size)
    finite = all(math.isfinite(probe[key]) for key in DIVERGENCE_KEYS)
    if finite and not probe["grad_norm_fake"] > config.divergence_grad_norm:
        return None
    return ("non-finite loss or gradient" if not finite else
            f"mean ||grad_x D|| on fakes {probe['grad_norm_fake']:.3g} > {config.divergence_grad_norm:g}")


def _tick_row(tick: int, nimg: int, seconds: float, tick_seconds: float, statistics: TickStatistics, device, world_size: int) -> dict:
    """The line of metrics.jsonl for a tick: position, wall time, and the tick's statistics averaged over ranks."""
    row = dict(tick=tick, kimg=nimg / 1000, seconds=round(seconds, 3), tick_seconds=round(tick_seconds, 3), r1=None, r2=None)
    row.update(_average_stats(_as_floats(statistics.means()), device, world_size))
    return row


class ScoreDrift:
    """Late-training oscillation of G (issue 25): the periodic score's samples come from the same fixed
    latents every time, so consecutive scores' samples are paired point by point."""

    def __init__(self, checkpoint):
        self.previous = checkpoint.get("drift_samples") if checkpoint is not None else None
        self.current = None

    def recording(self, sample):
        """`sample`, keeping what it returns for the next `drift()`."""
        def recorded(n):
            self.current = sample(n)
            return self.current
        return recorded

    def drift(self):
        """sample_drift between the last two scores' samples (None without both); the last becomes the previous."""
        drift = sample_drift(self.previous, self.current)
        self.previous, self.current = self.current, None
        return drift


def _scores(data, sample, drift: ScoreDrift, config: RunConfig) -> dict:
    """The periodic score of a tick (`score_ticks`): the data set's metrics as score_* columns, and score_drift."""
    kwargs = {} if config.score_samples is None else dict(n=config.score_samples)
    # The drift is for the 2-D toys only (for images a pixel distance says little, and they stream their samples).
    scored = data.evaluate(drift.recording(sample) if len(data.shape) == 1 else sample, **kwargs)
    row = {f"score_{key}": value for key, value in scored.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    shift = drift.drift()
    if shift is not None:
        row["score_drift"] = shift
    return row


def _write_tick(run_dir: Path, row: dict, board, nimg: int, echo: bool) -> None:
    """A tick's row: one line of metrics.jsonl (one write), one of log.txt, TensorBoard scalars, and stdout when `echo`."""
    files.append_line(run_dir / "metrics.jsonl", json.dumps(row))
    _log(run_dir, _tick_line(run_dir.name, row))
    if board is not None:
        for key, value in row.items():
            if isinstance(value, (int, float)) and key not in ("tick", "kimg"):
                board.add_scalar(key, value, global_step=nimg)
        board.flush()
    if echo:
        print(_tick_line(run_dir.name, row), flush=True)


def _save_checkpoint(run_dir: Path, networks: dict, optimization, streams: RandomStreams, resolved: dict, drift: ScoreDrift,
                     **position) -> None:
    """Everything the run continues from (bitwise on CPU), after the ticks it covers are on disk."""
    files.fsync(run_dir / "metrics.jsonl")
    files.save_checkpoint(run_dir, dict(
        {name: network.state_dict() for name, network in networks.items()},
        optimizer_G=optimization.optimizer_G.state_dict(), optimizer_D=optimization.optimizer_D.state_dict(),
        scaler_D=optimization.scaler_D.state_dict(), scaler_G=optimization.scaler_G.state_dict(), random_state=streams.state(),
        **position, config=resolved, drift_samples=drift.previous))


def _final_evaluation(data, sample, generator_ema, config: RunConfig, run_dir: Path, writer: bool) -> dict:
    """The data set's metrics of G_ema at the end of a completed run (every rank takes part), and its sample sheet;
    rank 0 returns the metrics and writes the sheet, the other ranks return {}."""
    generator_ema.eval()
    kwargs = {} if config.eval_samples is None else dict(n=config.eval_samples)
    metrics = data.evaluate(sample, **kwargs)
    if not writer:
        return {}
    files.make_dirs(run_dir / "samples")
    data.save_samples(sample(64 if len(data.shape) > 1 else 2500), run_dir / "samples" / "final.png")
    return metrics


def sample_drift(previous, current):
    """Mean Euclidean distance between paired samples [N, D] of two consecutive scores (same latents); None without both."""
    if previous is None or current is None or previous.shape != current.shape:
        return None
    return float((current.double() - previous.double()).norm(dim=1).mean())


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


def _load_state(checkpoint: dict, networks: dict, optimization, streams: RandomStreams) -> None:
    for name, network in networks.items():
        network.load_state_dict(checkpoint[name])
    optimization.optimizer_G.load_state_dict(checkpoint["optimizer_G"])
    optimization.optimizer_D.load_state_dict(checkpoint["optimizer_D"])
    if "scaler_D" in checkpoint:
        optimization.scaler_D.load_state_dict(checkpoint["scaler_D"])
        optimization.scaler_G.load_state_dict(checkpoint["scaler_G"])
    streams.load(checkpoint["random_state"])


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


def run(config: RunConfig, run_dir, progress: bool = False) -> dict:
    """Train one run; an exception becomes a `failed` summary (the sweep goes on) instead of a crash."""
    run_dir = Path(run_dir)
    try:
        return train(config, run_dir, progress=progress)
    except Exception as error:  # a failed run is a result, recorded with its reason
        summary = run_summary(config, run_dir, "failed", reason=failure_reason(error), traceback=traceback.format_exc())
        try:
            files.make_dirs(run_dir)
            write_summary(run_dir, summary)
            _log(run_dir, f"failed: {summary['reason']}")
        except OSError:  # e.g. the disk is still full: the summary goes to the caller, which records what it can
            pass
        return summary
