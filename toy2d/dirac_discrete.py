"""Discrete-time DiracGAN (paper Appendix B, issue 25): the iteration the trainer actually runs, not the gradient flow.

The continuous analysis (toy2d/dirac.py) says R1 or R2 makes (0, 0) locally convergent for any
gamma > 0. Training is a discrete iteration: alternating D and G steps with Adam (beta1 = 0, the
trainer's beta2), a learning rate, and R1/R2 on every `lazy`-th D step weighted by `lazy`. This
module runs that iteration on DiracGAN (p_D = delta(0), G = delta(theta), D(x) = psi * x) through
the project's own losses and measures where it ends: converged to (0, 0), or circling in a cycle
whose size is the mean distance from (0, 0) over the last CYCLE_FRACTION of the steps. Adam
normalizes each step by a running RMS of the gradient, so near (0, 0) a step stays ~lr long
whatever the gradient: the iteration settles in a cycle of size ~lr rather than at the point,
which a flow cannot show.
"""
import numpy as np
import torch

from roadmap.losses import discriminator_loss, generator_loss, gradient_penalty, regularization_weight

CYCLE_FRACTION = 0.1  # the final phase over which the cycle size is averaged
EPS = 1e-8  # Adam's epsilon (torch.optim.Adam's default, the trainer's)


def simulate(objective: str = "rpgan", penalties=("r1", "r2"), gamma: float = 1.0, lr: float = 1e-2, lazy: int = 1,
             steps: int = 4000, beta2: float = 0.99, start=(1.0, 1.0)) -> np.ndarray:
    """(theta, psi) after each of `steps` alternating D-then-G Adam steps [steps + 1, 2], float64.

    The D step adds gamma/2 * ||grad_x D||^2 at the real (R1) and fake (R2) sample on every `lazy`-th
    step, weighted by `lazy` (roadmap.losses.regularization_weight), as the trainer does.
    """
    theta = torch.tensor(float(start[0]), dtype=torch.float64, requires_grad=True)
    psi = torch.tensor(float(start[1]), dtype=torch.float64, requires_grad=True)
    optimizer_D = torch.optim.Adam([psi], lr=lr, betas=(0.0, beta2), eps=EPS)
    optimizer_G = torch.optim.Adam([theta], lr=lr, betas=(0.0, beta2), eps=EPS)
    path = [(theta.item(), psi.item())]
    for step in range(steps):
        # D step.
        real = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
        fake = theta.detach().reshape(1, 1).requires_grad_(True)
        real_logits, fake_logits = (psi * real).sum(1), (psi * fake).sum(1)
        loss_D = discriminator_loss(objective, real_logits, fake_logits).sum()
        weight = regularization_weight(step, lazy)
        if weight:
            if "r1" in penalties:
                loss_D = loss_D + weight * gamma / 2 * gradient_penalty(real_logits, real).sum()
            if "r2" in penalties:
                loss_D = loss_D + weight * gamma / 2 * gradient_penalty(fake_logits, fake).sum()
        optimizer_D.zero_grad()
        loss_D.backward()
        optimizer_D.step()
        # G step (against the updated D, as the trainer alternates).
        real_logits = (psi.detach() * torch.zeros(1, 1, dtype=torch.float64)).sum(1)
        fake_logits = (psi.detach() * theta.reshape(1, 1)).sum(1)
        optimizer_G.zero_grad()
        generator_loss(objective, real_logits, fake_logits).sum().backward()
        optimizer_G.step()
        path.append((theta.item(), psi.item()))
    return np.array(path)


def cycle_size(path: np.ndarray, fraction: float = CYCLE_FRACTION) -> float:
    """Mean distance from (0, 0) over the last `fraction` of a path [steps + 1, 2]."""
    tail = path[-max(1, int(len(path) * fraction)):]
    return float(np.linalg.norm(tail, axis=1).mean())


TRAVEL = 10.0  # steps per lr: enough for ~lr-long Adam steps to travel this far (the start is sqrt(2) from (0, 0))
MAX_STEPS = 50_000


def steps_for(lr: float, minimum: int = 4000) -> int:
    """Steps the iteration gets at `lr`: at least `minimum`, and TRAVEL / lr (capped at MAX_STEPS), so that a small
    learning rate is judged where it has arrived rather than on its way."""
    return int(min(MAX_STEPS, max(minimum, np.ceil(TRAVEL / lr))))


def convergence_map(lrs, gammas, lazy: int = 1, steps: int = 4000, objective: str = "rpgan", penalties=("r1", "r2"),
                    beta2: float = 0.99, done=None) -> np.ndarray:
    """Cycle size [len(gammas), len(lrs)] of the iteration for each (gamma, lr), with steps_for(lr, steps) steps.

    done: called after each simulation (a progress bar's update), or None.
    """
    def one(gamma, lr):
        size = cycle_size(simulate(objective, penalties, gamma, lr, lazy, steps_for(lr, steps), beta2))
        if done is not None:
            done()
        return size

    return np.array([[one(gamma, lr) for lr in lrs] for gamma in gammas])


def plot_cycle_maps(result: dict, ax=None):
    """Heatmaps of log10 cycle size over lr x gamma, one panel per lazy interval, from a `r3bench dirac --discrete`
    result ({"lrs", "gammas", "steps", "cycle_size": {lazy: [gamma][lr]}}); returns (fig, axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs, gammas, lazies = result["lrs"], result["gammas"], sorted(result["cycle_size"], key=int)
    fig, axes = plt.subplots(1, len(lazies), figsize=(3.6 * len(lazies) + 0.8, 3.2), layout="constrained") if ax is None \
        else (np.atleast_1d(ax)[0].figure, ax)
    axes = np.atleast_1d(axes)
    image = None
    for axis, lazy in zip(axes, lazies):
        sizes = np.array(result["cycle_size"][lazy])
        image = axis.imshow(np.log10(np.maximum(sizes, 1e-6)), origin="lower", cmap="magma_r", vmin=-4, vmax=1, aspect="auto")
        for i in range(len(gammas)):
            for j in range(len(lrs)):
                axis.text(j, i, f"{sizes[i, j]:.1g}", ha="center", va="center", fontsize=7,
                          color="white" if np.log10(max(sizes[i, j], 1e-6)) > -1.5 else "black")
        axis.set(xticks=range(len(lrs)), xticklabels=[f"{v:g}" for v in lrs], yticks=range(len(gammas)),
                 yticklabels=[f"{v:g}" for v in gammas], xlabel="lr", ylabel="gamma",
                 title=f"R1+R2 every {'step' if lazy == '1' else f'{lazy}th step x {lazy}'}")
    bar = fig.colorbar(image, ax=list(axes), shrink=0.9)
    bar.set_label(f"log10 cycle size (mean |(theta, psi)|, last {CYCLE_FRACTION:.0%} of the steps)", fontsize=7)
    fig.suptitle("Discrete-time DiracRpGAN: the trainer's iteration (Adam, beta1 0, alternating D/G steps)", fontsize=8)
    return fig, axes
