"""Adversarial objectives (GAN, RpGAN) and zero-centred gradient penalties R1/R2 (paper Section 2).

Every function returns a per-sample tensor [N]; the training loop owns reduction, gamma,
the lazy-interval weight and `.backward()`. Convention: a logit is high for real data, so the
paper's f(t) = -softplus(-t) appears here as softplus terms to be minimized.
"""
import torch
import torch.nn.functional as F

from roadmap.errors import ConfigError, unknown

OBJECTIVES = ("gan", "rpgan")
PENALTIES = ("r1", "r2")


def f(t: torch.Tensor) -> torch.Tensor:
    """The paper's f(t) = -softplus(-t) = -log(1 + exp(-t)); f'(0) = 1/2."""
    return -F.softplus(-t)


def discriminator_loss(objective: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss per sample [N] from logits real [N] and fake [N].

    gan:   softplus(-D(x)) + softplus(D(G(z)))            (= -f(-D(G z)) - f(D x), unpaired)
    rpgan: softplus(-(D(x) - D(G(z))))                    (= -f(D x - D(G z)), paired per sample)
    """
    if objective == "gan":
        return F.softplus(-real_logits) + F.softplus(fake_logits)
    if objective == "rpgan":
        return F.softplus(fake_logits - real_logits)
    raise unknown("loss", objective, OBJECTIVES)


def generator_loss(objective: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's loss per sample [N]: non-saturating for gan, the relativistic pair for rpgan."""
    if objective == "gan":
        return F.softplus(-fake_logits)
    if objective == "rpgan":
        return F.softplus(real_logits - fake_logits)
    raise unknown("loss", objective, OBJECTIVES)


def input_gradient(logits: torch.Tensor, inputs: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """d(sum of logits)/d(inputs), shape of inputs; per-sample because samples are independent."""
    (gradient,) = torch.autograd.grad(logits.sum(), inputs, create_graph=create_graph, retain_graph=True)
    return gradient


def squared_norm(gradient: torch.Tensor) -> torch.Tensor:
    """||g_i||^2 per sample [N] for gradients [N, ...]."""
    return gradient.square().flatten(1).sum(1)


def gradient_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Zero-centred penalty ||grad_x D(x_i)||^2 per sample [N] (differentiable, for R1 and R2).

    R1 applies it to real inputs, R2 to fake inputs; the loop multiplies by gamma/2.
    """
    return squared_norm(input_gradient(logits, inputs, create_graph=True))


def check_loss_spec(objective: str, penalties, lazy_interval: int) -> None:
    """Validate a loss selection by name before any job starts."""
    if objective not in OBJECTIVES:
        raise unknown("loss", objective, OBJECTIVES)
    for penalty in penalties:
        if penalty not in PENALTIES:
            raise unknown("penalty", penalty, PENALTIES)
    if len(set(penalties)) != len(penalties):
        raise ConfigError(f"penalties: listed twice in {list(penalties)}")
    if not isinstance(lazy_interval, int) or lazy_interval < 1:
        raise ConfigError(f"lazy_interval: must be an integer >= 1, got {lazy_interval!r}")


def regularization_weight(d_step: int, lazy_interval: int) -> int:
    """Weight of the penalty on D step `d_step` (0-based): k on every k-th step, else 0.

    StyleGAN2's lazy regularization: the penalty is evaluated on steps 0, k, 2k, ... and scaled
    by k so that its expected contribution per step is unchanged.
    """
    return lazy_interval if d_step % lazy_interval == 0 else 0
