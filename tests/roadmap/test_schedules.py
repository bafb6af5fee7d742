"""Burn-in ramps and EMA beta (Table 9)."""
import pytest

from roadmap.schedules import cosine_ramp, ema_beta


def test_cosine_ramp_runs_from_start_to_end_then_holds():
    ramp, burn_in = [1.0, 0.1], 2_000_000
    assert cosine_ramp(ramp, 0, burn_in) == pytest.approx(1.0)
    assert cosine_ramp(ramp, burn_in / 2, burn_in) == pytest.approx(0.55)
    assert cosine_ramp(ramp, burn_in / 4, burn_in) == pytest.approx(0.1 + 0.9 * (1 + 2**-0.5) / 2)
    assert cosine_ramp(ramp, burn_in, burn_in) == pytest.approx(0.1)
    assert cosine_ramp(ramp, 10 * burn_in, burn_in) == pytest.approx(0.1)
    assert cosine_ramp(2e-4, 123, burn_in) == 2e-4
    assert cosine_ramp([0.9, 0.99], 5, 0) == 0.99  # no burn-in: the end value at once


def test_ema_beta_halves_weight_every_half_life():
    batch, half_life = 512, 500_000
    beta = ema_beta(batch, half_life)
    assert beta == pytest.approx(0.5 ** (512 / 500_000))
    assert beta ** (half_life / batch) == pytest.approx(0.5)
    assert ema_beta(batch, 0) == 0.0
