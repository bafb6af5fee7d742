"""The discrete-time DiracGAN iteration (issue 25): Adam settles in a cycle of size ~lr, lazy regularization in a larger one."""
import math

import numpy as np
import pytest

from toy2d.dirac_discrete import cycle_size, simulate


@pytest.mark.parametrize("lr", [1e-2, 1e-1])
def test_adam_with_r1_r2_settles_in_a_cycle_of_size_lr_over_sqrt_2(lr):
    """Adam normalizes each step (beta1 = 0): near (0, 0) theta and psi keep moving ~lr per step, so the
    iteration circles at |(theta, psi)| = lr / sqrt(2) (measured) instead of converging like the flow."""
    size = cycle_size(simulate("rpgan", ("r1", "r2"), gamma=1.0, lr=lr, lazy=1, steps=2000))
    assert size == pytest.approx(lr / math.sqrt(2), rel=0.1)


def test_lazy_regularization_settles_in_a_larger_cycle():
    every = cycle_size(simulate("rpgan", ("r1", "r2"), gamma=1.0, lr=1e-2, lazy=1, steps=2000))
    lazy = cycle_size(simulate("rpgan", ("r1", "r2"), gamma=1.0, lr=1e-2, lazy=8, steps=2000))
    assert lazy > 2.5 * every


def test_the_iteration_is_the_trainers_first_step():
    """Step 0 from (1, 1): Adam's first step moves each coordinate by exactly lr against its gradient's sign."""
    path = simulate("rpgan", ("r1", "r2"), gamma=1.0, lr=0.01, lazy=1, steps=1)
    # D lowers psi (its loss and penalties grow with psi at (1, 1)); G, facing D(x) = psi x with psi > 0,
    # raises its fake logit psi * theta by raising theta: psi 1 -> 0.99, theta 1 -> 1.01.
    assert path[1] == pytest.approx(np.array([1.01, 0.99]), abs=1e-9)
