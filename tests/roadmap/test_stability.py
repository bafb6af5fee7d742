"""Stability statistics on synthetic tick rows with outcomes known by hand."""
import math

import pytest

from roadmap.stability import KEYS, RECOVERY_FACTOR, SPIKE_FACTOR, run_stability


def rows_from(norms, losses=None, real=1.0):
    """Tick rows at kimg 1, 2, ... with the given fake-gradient norms (means only)."""
    losses = losses or [1.0] * len(norms)
    return [dict(kimg=float(i + 1), loss_G=loss, grad_norm_fake=norm, grad_norm_real=real)
            for i, (norm, loss) in enumerate(zip(norms, losses))]


def test_constants_are_the_documented_ones():
    assert (SPIKE_FACTOR, RECOVERY_FACTOR) == (5.0, 2.0)


def test_spike_and_recover_gives_recovery_time():
    # baseline before tick 4 = median(1, 2, 1) = 1; spike 10 -> factor 10; tick 5 (3.0) > 2x1,
    # tick 6 (1.5) <= 2: recovered 6 - 4 = 2 kimg after the spike.
    result = run_stability(rows_from([1.0, 2.0, 1.0, 10.0, 3.0, 1.5, 1.0], losses=[1, 2, 3, 9, 4, 2, 1], real=0.5))
    assert result["spike_kimg"] == 4.0
    assert result["spike_factor"] == pytest.approx(10.0)
    assert result["spike"] is True
    assert result["recovered"] is True
    assert result["recovery_kimg"] == pytest.approx(2.0)
    assert result["peak_loss_G"] == 9.0
    assert result["peak_grad_norm_fake"] == 10.0
    assert result["peak_grad_ratio"] == pytest.approx(20.0)  # 10 / 0.5, no grad_ratio_max recorded
    assert result["nonfinite"] is False


def test_peak_columns_win_over_means():
    rows = rows_from([1.0, 1.0, 1.0, 1.0])
    for row in rows:
        row.update(loss_G_max=3.0, grad_norm_fake_max=2.0, grad_ratio_max=4.0)
    rows[2]["grad_norm_fake_max"] = 12.0  # baseline median(2, 2) = 2 -> factor 6; tick 4 back at 2 <= 4
    result = run_stability(rows)
    assert (result["peak_loss_G"], result["peak_grad_norm_fake"], result["peak_grad_ratio"]) == (3.0, 12.0, 4.0)
    assert (result["spike_kimg"], result["spike_factor"]) == (3.0, pytest.approx(6.0))
    assert (result["recovered"], result["recovery_kimg"]) == (True, pytest.approx(1.0))


def test_spike_that_never_recovers():
    # baseline median(1, 1) = 1; spike 8 at kimg 3; later 5 and 3 both stay above 2x1.
    result = run_stability(rows_from([1.0, 1.0, 8.0, 5.0, 3.0]))
    assert (result["spike_kimg"], result["spike_factor"], result["spike"]) == (3.0, pytest.approx(8.0), True)
    assert result["recovered"] is False
    assert result["recovery_kimg"] is None


def test_flat_run_has_no_spike():
    result = run_stability(rows_from([2.0, 2.0, 2.0, 2.0]))
    assert result["spike"] is False
    assert result["spike_factor"] == pytest.approx(1.0)
    assert result["recovered"] is None and result["recovery_kimg"] is None


def test_spike_on_the_last_tick_is_not_judged():
    result = run_stability(rows_from([1.0, 1.0, 9.0]))
    assert result["spike"] is True and result["spike_kimg"] == 3.0
    assert result["recovered"] is None and result["recovery_kimg"] is None


def test_below_spike_factor_is_no_spike():
    result = run_stability(rows_from([1.0, 1.0, 4.9, 1.0]))
    assert result["spike_factor"] == pytest.approx(4.9)
    assert result["spike"] is False and result["recovered"] is None


def test_empty_rows_are_all_none():
    assert run_stability([]) == dict.fromkeys(KEYS)


def test_nan_blow_up_is_flagged_and_none_ticks_skipped():
    rows = rows_from([1.0, None, 3.0, math.nan, math.nan], losses=[1.0, None, 2.0, math.inf, math.nan])
    result = run_stability(rows)
    assert result["nonfinite"] is True
    assert result["peak_loss_G"] is None and result["peak_grad_norm_fake"] is None and result["peak_grad_ratio"] is None
    # the first NaN tick is the spike; baseline median(1, 3) = 2; the later tick is NaN, not back.
    assert (result["spike"], result["spike_kimg"], result["spike_factor"]) == (True, 4.0, None)
    assert result["recovered"] is False and result["recovery_kimg"] is None


def test_nan_in_loss_only_keeps_gradient_statistics():
    result = run_stability(rows_from([1.0, 1.0, 1.0], losses=[1.0, math.nan, 1.0]))
    assert result["nonfinite"] is True and result["peak_loss_G"] is None
    assert result["peak_grad_norm_fake"] == 1.0 and result["spike"] is False
