"""DiracGAN/DiracRpGAN eigenvalues measured through the project's losses vs the closed form (Appendix B)."""
import json
import math

import numpy as np
import pytest

from runners.cli import main
from toy2d.dirac import analyse, trajectory


def rows(result):
    return {(row["loss"], row["penalty"]): row for row in result["results"]}


def test_unregularized_eigenvalues_are_plus_minus_half_i():
    for row in analyse(0.0)["results"]:
        assert np.allclose(row["eigenvalues"], [[0.0, -0.5], [0.0, 0.5]], atol=1e-6)


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
    assert result["gamma"] == 2.0 and len(result["results"]) == 8
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
