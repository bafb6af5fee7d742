"""A registry of adversarial objectives (GAN, RpGAN, ...) and the zero-centred gradient penalties R1/R2 (paper Section 2).

Every function returns a per-sample tensor [N]; the training loop owns reduction, gamma,
the lazy-interval weight and `.backward()`. Convention: a logit is high for real data, so the
paper's f(t) = -softplus(-t) appears here as softplus terms to be minimized.
"""
import dataclasses
from typing import Callable

import torch
import torch.nn.functional as F

from roadmap.errors import ConfigError, unknown
from roadmap.plugins import load_plugins

PENALTIES = ("r1", "r2")


@dataclasses.dataclass(frozen=True)
class Objective:
    """A registered adversarial objective: D's and G's per-sample losses from logits real [N], fake [N]."""

    name: str  # the value of RunConfig.loss / LossSpec.loss
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real_logits, fake_logits) -> [N]
    generator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real_logits, fake_logits) -> [N]
    generator_needs_real: bool  # G's loss reads real logits (relativistic pairing): the G step scores reals too
    f_prime_at_zero: float  # slope of the objective's f at 0: DiracGAN eigenvalues are +-f'(0) i without penalty
    description: str = ""


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """What one run optimizes: the objective's name, its zero-centred penalties and their lazy interval."""

    loss: str  # registered objective (Objective.name)
    penalties: tuple = ()  # subset of PENALTIES
    lazy_interval: int = 1  # penalties on every k-th D step, weighted by k

    @classmethod
    def from_dict(cls, values: dict) -> "LossSpec":
        """From its YAML form (a builder's `loss` option: penalties a list, lazy_interval optional)."""
        return cls(values["loss"], tuple(values["penalties"]), values.get("lazy_interval", 1))

    def as_dict(self) -> dict:
        """Its YAML form (RunConfig's keys loss, penalties as a list, lazy_interval; the config hash reads them)."""
        return dict(loss=self.loss, penalties=list(self.penalties), lazy_interval=self.lazy_interval)


_objectives: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Add an objective to the registry (one entry makes it trainable, tabulated and analysed by `r3bench dirac`)."""
    if objective.name in _objectives:
        raise ValueError(f"loss {objective.name!r} registered twice")
    _objectives[objective.name] = objective
    return objective


def list_objectives() -> list[str]:
    load_plugins()
    return list(_objectives)


def get_objective(name: str) -> Objective:
    # A plug-in loss named in YAML is looked up by `resolve` before anything else loads the entry
    # points, in the parent and again in a fresh worker; the built-ins never miss, so per-step lookups stay a dict read.
    if name not in _objectives:
        load_plugins()
    if name not in _objectives:
        raise unknown("loss", name, _objectives)
    return _objectives[name]


def f(t: torch.Tensor) -> torch.Tensor:
    """The paper's f(t) = -softplus(-t) = -log(1 + exp(-t)); f'(0) = 1/2."""
    return -F.softplus(-t)


# gan: D: softplus(-D(x)) + softplus(D(G(z))) (= -f(-D(G z)) - f(D x), unpaired); G: non-saturating.
register_objective(Objective(
    "gan", lambda real, fake: F.softplus(-real) + F.softplus(fake), lambda real, fake: F.softplus(-fake),
    generator_needs_real=False, f_prime_at_zero=0.5, description="non-saturating GAN (paper eq. 1)"))
# rpgan: D: softplus(-(D(x) - D(G(z)))) (= -f(D x - D(G z)), paired per sample); G: the mirrored pair.
register_objective(Objective(
    "rpgan", lambda real, fake: F.softplus(fake - real), lambda real, fake: F.softplus(real - fake),
    generator_needs_real=True, f_prime_at_zero=0.5, description="relativistic pairing GAN (paper eq. 2)"))


# hinge (Lim & Ye 2017; BigGAN): D: relu(1 - D(x)) + relu(1 + D(G(z))); G: -D(G(z)). Not in the
# paper; here because a loss is one entry. Near t = 0 its D loss has slope 1, so f'(0) = 1.
register_objective(Objective(
    "hinge", lambda real, fake: F.relu(1 - real) + F.relu(1 + fake), lambda real, fake: -fake,
    generator_needs_real=False, f_prime_at_zero=1.0, description="hinge loss (not in the paper)"))


def discriminator_loss(objective: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss per sample [N] from logits real [N] and fake [N], for the registered objective's name."""
    return get_objective(objective).discriminator(real_logits, fake_logits)


def generator_loss(objective: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's loss per sample [N] for the registered objective's name."""
    return get_objective(objective).generator(real_logits, fake_logits)


def input_gradient(logits: torch.Tensor, inputs: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """d(sum of logits)/d(inputs), shape of inputs; per-sample because samples are independent.

    The D step measures it through cpu_ops.Capture.input_gradient, which lets the fast operators skip the
    parameter gradients that this autograd.grad on the inputs alone would compute and discard.
    """
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
    get_objective(objective)
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
