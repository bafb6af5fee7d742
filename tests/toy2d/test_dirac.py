"""DiracGAN/DiracRpGAN eigenvalues measured through the project's losses vs the closed form (Appendix B)."""
import json
import math

import numpy as np
import pytest

from roadmap.losses import list_objectives
from runners.cli import main
from toy2d.dirac import analyse, trajectory


def rows(result):
    return {(row["loss"], row["penalty"]): row for row in result["results"]}


def test_unregularized_eigenvalues_are_plus_minus_f_prime_i():
    """+-f'(0) i: 1/2 for f(t) = -softplus(-t) (GAN, RpGAN), 1 for the hinge loss."""
    slopes = {"gan": 0.5, "rpgan": 0.5, "hinge": 1.0}
    for row in analyse(0.0)["results"]:
        s = slopes[row["loss"]]
        assert np.allclose(row["eigenvalues"], [[0.0, -s], [0.0, s]], atol=1e-6), row


def test_hinge_with_r1_at_gamma_two_is_critically_damped():
    """c = 2, f'(0) = 1: -c/2 +- sqrt(c^2/4 - 1) = -1 (double root), measured through the hinge entry."""
    row = rows(analyse(2.0))[("hinge", "r1")]
    assert np.allclose(row["eigenvalues"], [[-1.0, 0.0], [-1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("loss", ["gan", "rpgan"])
@pytest.mark.parametrize("penalty", ["r1", "r2"])
def test_gamma_two_gives_known_real_eigenvalues(loss, penalty):
    row = rows(analyse(2.0))[(loss, penalty)]
    expected = [-1 - math.sqrt(0.75), -1 + math.sqrt(0.75)]  # -0.134 and -1.866
    assert np.allclose(row["eigenvalues"], [[expected[0], 0.0], [expected[1], 0.0]], atol=1e-6)
    assert np.allclose(row["eigenvalues"], row["closed_form"], atol=1e-6)


def test_every_penalty_matches_closed_form_across_gammas():
    for gamma in (0.1, 0.5, 1.0, 3.0):
        for row in analyse(gamma)["results"]:
            assert np.allclose(row["eigenvalues"], row["closed_form"], atol=1e-6), (gamma, row)


def test_cli_json_contract(capsys):
    assert main(["dirac", "--gamma", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gamma"] == 2.0 and len(result["results"]) == 4 * len(list_objectives())  # 4 penalty sets per loss
    assert set(result["results"][0]) == {"loss", "penalty", "eigenvalues", "closed_form"}


def test_negative_gamma_is_one_line_error(capsys):
    assert main(["dirac", "--gamma", "-1"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_flow_circles_without_penalty_and_converges_with_it():
    free = trajectory("rpgan", (), 0.0, (0.3, 0.0), steps=600, step_size=0.02)
    damped = trajectory("rpgan", ("r1",), 1.0, (0.3, 0.0), steps=600, step_size=0.02)
    radius = np.linalg.norm(free, axis=1)
    assert radius.min() > 0.2  # keeps circling near its starting radius
    assert np.linalg.norm(damped[-1]) < 0.02
