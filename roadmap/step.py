"""One training iteration (D step with R1/R2, then G step), shared by the trainer and the benchmark (paper Sections 2-3).

`training_iteration` is the only place where a D or G update is computed: roadmap/trainer.py
calls it once per step and roadmap/bench.py times it. Statistics come back as 0-d tensors on
the training device (no host synchronization inside the step); the trainer reads them once per
tick, or per step on the CPU where reading is free.

Augmentation (StyleGAN2-ADA 'bgc', roadmap/augment.py) is applied to everything D sees, real
and fake, in both steps, while R1/R2 are taken with respect to the images before augmentation
(the gradient flows back through the augmentation), as in the official R3GAN code.
"""
import dataclasses
from typing import Callable, Optional

import torch
import torch.distributed as dist

from roadmap.errors import ConfigError
from roadmap.losses import LossSpec, get_objective, regularization_weight, squared_norm
from roadmap.networks import cpu_ops
from roadmap.networks.operators import fold_obstacles, hand_capture
from roadmap.registry import ModelPair


def _identity(x):
    return x


@dataclasses.dataclass
class Batch:
    """What one step consumes: real samples [N, ...], labels [N] or None, latents [N, latent_dim]."""

    real: torch.Tensor
    labels: Optional[torch.Tensor]
    z: torch.Tensor


@dataclasses.dataclass
class Optimization:
    """G's and D's optimizers and loss scalers (GradScaler, a pass-through unless IEEE fp16 loss scaling is on)."""

    optimizer_G: torch.optim.Optimizer
    optimizer_D: torch.optim.Optimizer
    scaler_G: torch.amp.GradScaler
    scaler_D: torch.amp.GradScaler


# The zero-centred penalty of each side of the D step (losses.PENALTIES): R1 on real samples, R2 on fake ones;
# also the name of its statistic in metrics.jsonl.
PENALTY = dict(real="r1", fake="r2")


def discriminator_step(pair: ModelPair, real, labels, z, objective: str, penalties, gamma, weight,
                       scale=_identity, augment=_identity) -> dict:
    """Forward + backward of one D step (no optimizer step); returns 0-d statistic tensors.

    `weight` is this step's lazy-regularization weight (losses.regularization_weight; 0: no penalty).
    Input gradients on real and fake samples are always measured: they are the penalties'
    integrands when R1/R2 are on this step, and the divergence signal (paper Figure 1) otherwise.
    Two strategies compute the same gradients: `_folded` where the discriminator's layers can fold
    the adversarial gradient into a backward that runs anyway (networks/operators.py: no
    `fold_obstacles`, e.g. on the fast operators), with fewer passes over D; else `_unfolded`.
    """
    with torch.no_grad():
        fake = pair.generator(z, labels)
    sides = dict(real=real.detach().requires_grad_(True), fake=fake.detach().requires_grad_(True))
    penalty_weights = {side: weight * gamma / 2 if weight > 0 and PENALTY[side] in penalties else None for side in sides}
    strategy = _folded if folds(pair.discriminator) else _unfolded
    return strategy(pair.discriminator, sides, labels, get_objective(objective), penalty_weights, scale, augment)


def folds(discriminator) -> bool:
    """Whether the D step folds: every parameter of `discriminator` in a layer that folds, no declared exception."""
    return not fold_obstacles(discriminator)


def _discriminate(discriminator, inputs, labels, capture: cpu_ops.Capture):
    """D's logits on `inputs` (already augmented), with `capture` handed to its layers for this one call."""
    hand_capture(discriminator, capture)
    try:
        return discriminator(inputs, labels)
    finally:
        hand_capture(discriminator, None)


def _unfolded(discriminator, sides: dict, labels, objective, penalty_weights: dict, scale, augment) -> dict:
    """The D step as autograd runs it: the adversarial loss and the penalties in one backward."""
    captures = {side: cpu_ops.Capture() for side in sides}  # nothing to fold: the input-gradient passes only
    logits = {side: _discriminate(discriminator, augment(inputs), labels, captures[side]) for side, inputs in sides.items()}
    adversarial = objective.discriminator(logits["real"], logits["fake"])
    total = adversarial.mean()
    stats = _logit_statistics(adversarial, logits)
    for side, inputs in sides.items():
        penalized = penalty_weights[side] is not None
        gradient = captures[side].input_gradient(logits[side], inputs, create_graph=penalized)
        _gradient_statistics(stats, side, gradient)
        if penalized:
            total = total + penalty_weights[side] * _penalty(stats, side, gradient)
    stats["grad_ratio_max"] = stats["grad_norm_fake"] / stats["grad_norm_real"].clamp_min(1e-12)
    scale(total).backward()
    return stats


def _folded(discriminator, sides: dict, labels, objective, penalty_weights: dict, scale, augment) -> dict:
    """The D step with each side's adversarial gradient folded (networks/cpu_ops.py, Capture) into a backward of D
    that runs anyway: R1/R2's double backward on a penalized side, else the pass that measures its input gradient.
    (One D call over real and fake concatenated measured no faster here, x1.00.)
    """
    captures, logits = {}, {}
    for side, inputs in sides.items():
        captures[side] = cpu_ops.Capture()
        logits[side] = _discriminate(discriminator, augment(inputs), labels, captures[side])
    detached = [logits[side].detach().requires_grad_(True) for side in sides]
    adversarial = objective.discriminator(*detached)
    # allow_unused: a plug-in objective may ignore one side; its cotangent is then zero
    cotangents = torch.autograd.grad(scale(adversarial.mean()), detached, allow_unused=True)
    for side, logit, cotangent in zip(sides, detached, cotangents):
        captures[side].cotangent = torch.zeros_like(logit) if cotangent is None else cotangent
    stats = _logit_statistics(adversarial, logits)
    terms = []
    for side, inputs in sides.items():
        if penalty_weights[side] is not None:
            gradient = captures[side].input_gradient(logits[side], inputs, create_graph=True)
        else:  # one backward: the input gradient, and (folded) the adversarial parameter gradients
            logits[side].sum().backward()
            gradient = inputs.grad
        _gradient_statistics(stats, side, gradient)
        if penalty_weights[side] is not None:
            terms.append(penalty_weights[side] * _penalty(stats, side, gradient))
    stats["grad_ratio_max"] = stats["grad_norm_fake"] / stats["grad_norm_real"].clamp_min(1e-12)
    if terms:
        scale(sum(terms)).backward()
    return stats


def _logit_statistics(adversarial, logits: dict) -> dict:
    return dict(loss_D=adversarial.detach().mean(), logits_real=logits["real"].detach().mean(),
                logits_fake=logits["fake"].detach().mean())


def _penalty(stats: dict, side: str, gradient) -> torch.Tensor:
    """Mean of ||gradient_i||^2 (= losses.gradient_penalty, reusing the gradient's graph); recorded as stats["r1"|"r2"]."""
    penalty = squared_norm(gradient)
    stats[PENALTY[side]] = penalty.detach().mean()
    return penalty.mean()


def _gradient_statistics(stats: dict, side: str, gradient) -> None:
    norms = squared_norm(gradient.detach()).sqrt()
    stats["grad_norm_" + side] = norms.mean()
    stats["grad_norm_" + side + "_max"] = norms.max()  # the per-tick peak (stability statistics)


def generator_step(pair: ModelPair, real, labels, z, objective: str, scale=_identity, augment=_identity) -> dict:
    """Forward + backward of one G step (no optimizer step); returns 0-d statistic tensors."""
    spec = get_objective(objective)
    fake = pair.generator(z, labels)
    fake_logits = pair.discriminator(augment(fake), labels)
    with torch.no_grad():  # a relativistic G pairs each fake with a real logit; no gradient flows into it
        real_logits = pair.discriminator(augment(real), labels) if spec.generator_needs_real else torch.zeros_like(fake_logits)
    loss = spec.generator(real_logits, fake_logits)
    scale(loss.mean()).backward()
    loss = loss.detach().mean()
    return dict(loss_G=loss, loss_G_max=loss)


def generator_penalty_step(pair: ModelPair, z, labels, weight: int, scale=_identity) -> dict:
    """Config A's path length penalty, weighted by its interval (lazy, like StyleGAN2)."""
    penalty = pair.generator_penalty(pair.generator, z, labels)
    scale(weight * penalty.mean()).backward()
    return dict(generator_penalty=penalty.detach().mean())


def average_gradients(module: torch.nn.Module, world_size: int) -> None:
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


def split(batch: Batch, count: int) -> list:
    """`count` equal micro-batches of `batch` (the official loop's batch_gpu rounds), in order; [batch] for 1."""
    if count == 1:
        return [batch]
    size = batch.real.shape[0]
    if size % count:
        raise ConfigError(f"batch_gpu: {size} images per rank do not split into {count} equal micro-batches")
    labels = [None] * count if batch.labels is None else batch.labels.chunk(count)
    return [Batch(real, label, z) for real, label, z in zip(batch.real.chunk(count), labels, batch.z.chunk(count))]


# Statistics that are a maximum over the samples of a batch: over micro-batches they combine by max;
# every other step statistic is a mean over the samples, and micro-batches are equal, so the mean of
# the micro-batch means is the batch's mean.
PER_SAMPLE_MAXIMA = ("grad_norm_real_max", "grad_norm_fake_max")


def combine(parts: list) -> dict:
    """One step's statistics from its micro-batches' (equal sizes): means averaged, per-sample maxima
    maxed, and the ratios and step-level peaks recomputed from the combined values."""
    if len(parts) == 1:
        return parts[0]
    stats = {key: torch.stack([part[key] for part in parts]).amax() if key in PER_SAMPLE_MAXIMA
             else torch.stack([part[key] for part in parts]).mean() for key in parts[0]}
    if "grad_ratio_max" in stats:  # a ratio of means, not a mean of ratios
        stats["grad_ratio_max"] = stats["grad_norm_fake"] / stats["grad_norm_real"].clamp_min(1e-12)
    if "loss_G_max" in stats:  # the peak over a tick of the step's mean loss (its value per step is that mean)
        stats["loss_G_max"] = stats["loss_G"]
    return stats


def _accumulating(scale, count: int):
    """The loss scaler for one of `count` micro-batches: each micro-batch's mean loss divided by
    `count`, so the accumulated gradient is the mean over the whole batch (as one pass computes it);
    the scaler itself for a single pass (bitwise the step without micro-batches)."""
    if count == 1:
        return scale
    return lambda loss: scale(loss / count)


def training_iteration(pair: ModelPair, optimization: Optimization, loss: LossSpec, step: int, gamma: float,
                       batch_D: Batch, batch_G: Batch, augment: Callable = _identity, world_size: int = 1,
                       micro_batches_D: int = 1, micro_batches_G: int = 1) -> dict:
    """One D update then one G update (step `step`, 0-based, sets the lazy schedules); returns 0-d tensors.

    Learning rates and betas are set by the caller. The G step reads its own real batch
    (the official loop draws a second one for it). With `micro_batches_*` > 1 a phase runs its
    batch in that many equal micro-batches, accumulating gradients before the one optimizer step,
    with R1/R2 (and Config A's path length penalty) on each micro-batch, as the official loop's
    batch_gpu rounds do; state kept per call (the path length running mean, style-mixing and noise
    draws, minibatch-stddev groups) then follows the micro-batches, as it does there.
    """
    # D step.
    pair.generator.requires_grad_(False)
    pair.discriminator.requires_grad_(True)
    optimization.optimizer_D.zero_grad(set_to_none=True)
    weight = regularization_weight(step, loss.lazy_interval)
    scale_D = _accumulating(optimization.scaler_D.scale, micro_batches_D)
    stats = combine([discriminator_step(pair, part.real, part.labels, part.z, loss.loss, loss.penalties, gamma, weight,
                                        scale_D, augment) for part in split(batch_D, micro_batches_D)])
    average_gradients(pair.discriminator, world_size)
    optimization.scaler_D.step(optimization.optimizer_D)  # a plain optimizer step unless grad_scaler is on
    optimization.scaler_D.update()

    # G step.
    pair.generator.requires_grad_(True)
    pair.discriminator.requires_grad_(False)
    optimization.optimizer_G.zero_grad(set_to_none=True)
    scale_G = _accumulating(optimization.scaler_G.scale, micro_batches_G)
    parts = split(batch_G, micro_batches_G)
    stats.update(combine([generator_step(pair, part.real, part.labels, part.z, loss.loss, scale_G, augment) for part in parts]))
    if pair.generator_penalty is not None and step % pair.generator_penalty_interval == 0:
        stats.update(combine([generator_penalty_step(pair, part.z, part.labels, pair.generator_penalty_interval, scale_G)
                              for part in parts]))
    average_gradients(pair.generator, world_size)
    optimization.scaler_G.step(optimization.optimizer_G)
    optimization.scaler_G.update()
    return stats
