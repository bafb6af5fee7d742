"""DiracGAN / DiracRpGAN local-convergence analysis (paper Appendix B), from the project's own losses.

p_D = delta(0), G = delta(theta), D(x) = psi * x. The gradient vector field v(theta, psi) =
(-dL_G/dtheta, -dL_D/dpsi) is built by autograd through roadmap.losses (not a formula), and its
Jacobian at the equilibrium (0, 0) is differentiated numerically by autograd as well. The closed
form beside it: each zero-centred penalty adds gamma/2 psi^2 to L_D, so with c = gamma * (number
of penalties) the eigenvalues are -c/2 +- sqrt(c^2/4 - f'(0)^2), with each registered objective's
f'(0) (1/2 for f(t) = -softplus(-t)). Every objective in the loss registry is analysed.
"""
import cmath

import numpy as np
import torch

from roadmap.losses import discriminator_loss, generator_loss, get_objective, gradient_penalty, list_objectives

PENALTY_SETS = {"none": (), "r1": ("r1",), "r2": ("r2",), "r1+r2": ("r1", "r2")}


def vector_field(objective: str, penalties, gamma: float, theta: torch.Tensor, psi: torch.Tensor, minimax: bool = False):
    """(dtheta/dt, dpsi/dt) of simultaneous gradient descent on L_G (theta) and L_D (psi).

    theta, psi: 0-d float64 tensors. The result stays differentiable in both (create_graph).
    minimax: G ascends D's adversarial loss (L_G = -L_D without penalties; the paper's Appendix B
    game, whose unregularized flow conserves theta^2 + psi^2) instead of the objective's own G loss
    (non-saturating for GAN, whose unregularized flow spirals inward away from the equilibrium's
    neighbourhood). Both have the same Jacobian at (0, 0).
    """
    real = torch.zeros(1, 1, dtype=theta.dtype, requires_grad=True)  # one sample [N=1, dim=1]: x = 0
    fake = theta.reshape(1, 1)  # G's only sample; still a function of theta
    real_logits, fake_logits = (psi * real).sum(1), (psi * fake).sum(1)  # D(x) = psi * x, logits [1]
    loss_D = discriminator_loss(objective, real_logits, fake_logits).sum()
    if "r1" in penalties:
        loss_D = loss_D + gamma / 2 * gradient_penalty(real_logits, real).sum()
    if "r2" in penalties:
        loss_D = loss_D + gamma / 2 * gradient_penalty(fake_logits, fake).sum()
    loss_G = (-discriminator_loss(objective, real_logits, fake_logits).sum() if minimax else
              generator_loss(objective, real_logits, fake_logits).sum())
    (d_psi,) = torch.autograd.grad(loss_D, psi, create_graph=True)
    (d_theta,) = torch.autograd.grad(loss_G, theta, create_graph=True)
    return -d_theta, -d_psi


def jacobian_at_equilibrium(objective: str, penalties, gamma: float) -> np.ndarray:
    """2x2 Jacobian of the vector field at (theta, psi) = (0, 0), rows (theta', psi')."""
    theta = torch.zeros((), dtype=torch.float64, requires_grad=True)
    psi = torch.zeros((), dtype=torch.float64, requires_grad=True)
    rows = []
    for component in vector_field(objective, penalties, gamma, theta, psi):
        d_theta, d_psi = torch.autograd.grad(component, (theta, psi), retain_graph=True, allow_unused=True)
        rows.append([0.0 if d is None else d.item() for d in (d_theta, d_psi)])
    return np.array(rows)


def closed_form_eigenvalues(gamma: float, num_penalties: int, f_prime_at_zero: float = 0.5) -> list:
    """-c/2 +- sqrt(c^2/4 - f'(0)^2) with c = gamma * num_penalties, as [[re, im], ...] sorted."""
    c = gamma * num_penalties
    root = cmath.sqrt(c * c / 4 - f_prime_at_zero**2)
    return _sorted_pairs([-c / 2 + root, -c / 2 - root])


def _sorted_pairs(values) -> list:
    return sorted(([float(v.real) + 0.0, float(v.imag) + 0.0] for v in values), key=lambda pair: (pair[0], pair[1]))


def analyse(gamma: float) -> dict:
    """Measured and closed-form eigenvalues for every loss x penalty set: the `r3bench dirac` JSON."""
    results = []
    for objective in list_objectives():
        for penalty_name, penalties in PENALTY_SETS.items():
            eigenvalues = np.linalg.eigvals(jacobian_at_equilibrium(objective, penalties, gamma))
            results.append(dict(
                loss=objective, penalty=penalty_name, eigenvalues=_sorted_pairs(eigenvalues),
                closed_form=closed_form_eigenvalues(gamma, len(penalties), get_objective(objective).f_prime_at_zero),
            ))
    return dict(gamma=gamma, results=results)


def trajectory(objective: str, penalties, gamma: float, start, steps: int = 2000, step_size: float = 0.01,
               minimax: bool = False) -> np.ndarray:
    """Gradient-flow trajectory [steps + 1, 2] of (theta, psi) from `start`, by RK4 on the field."""

    def field(point):
        theta = torch.tensor(point[0], dtype=torch.float64, requires_grad=True)
        psi = torch.tensor(point[1], dtype=torch.float64, requires_grad=True)
        return np.array([v.item() for v in vector_field(objective, penalties, gamma, theta, psi, minimax)])

    points = [np.asarray(start, dtype=np.float64)]
    for _ in range(steps):
        p = points[-1]
        k1 = field(p)
        k2 = field(p + step_size / 2 * k1)
        k3 = field(p + step_size / 2 * k2)
        k4 = field(p + step_size * k3)
        points.append(p + step_size / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
    return np.stack(points)


def plot_phase_portrait(gamma: float, loss: str = "rpgan", penalty: str = "none", ax=None, steps: int = 1500,
                        minimax: bool = False):
    """Vector field and one trajectory from (1, 1) in the (theta, psi) plane; returns (fig, ax).
    minimax: the paper's game (see vector_field); otherwise the objective's own (non-saturating) G loss.

    Without a penalty the trajectory circles the equilibrium forever (theta^2 + psi^2 conserved
    up to integration error); with R1 or R2 and gamma > 0 it spirals into (0, 0).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    penalties = PENALTY_SETS[penalty]
    fig, ax = plt.subplots(figsize=(3.4, 3.4)) if ax is None else (ax.figure, ax)
    grid = np.linspace(-2, 2, 15)
    u = np.zeros((len(grid), len(grid)))
    v = np.zeros_like(u)
    for i, psi_value in enumerate(grid):
        for j, theta_value in enumerate(grid):
            theta = torch.tensor(theta_value, dtype=torch.float64, requires_grad=True)
            psi = torch.tensor(psi_value, dtype=torch.float64, requires_grad=True)
            u[i, j], v[i, j] = (c.item() for c in vector_field(loss, penalties, gamma, theta, psi, minimax))
    ax.quiver(grid, grid, u, v, color="0.6", angles="xy")
    path = trajectory(loss, penalties, gamma if penalties else 0.0, (1.0, 1.0), steps=steps, step_size=0.02, minimax=minimax)
    ax.plot(path[:, 0], path[:, 1], color="tab:red", lw=1.2)
    ax.plot([1.0], [1.0], "o", color="tab:red", ms=4)
    ax.plot([0.0], [0.0], "k*", ms=7)
    ax.set(xlabel=r"$\theta$", ylabel=r"$\psi$", xlim=(-2, 2), ylim=(-2, 2), aspect="equal",
           title=f"{loss}, {penalty}" + (f", $\\gamma$={gamma:g}" if penalties else "") + (" (minimax)" if minimax else " (non-saturating G)"))
    return fig, ax
