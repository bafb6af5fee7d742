"""Three-valued verdicts on constructed data with a known outcome (issue 24): reproduced, contradicted, inconclusive."""
import math

import pytest
from scipy import stats

from reports.verdicts import (CONTRADICTED, INCONCLUSIVE, REPRODUCED, compare_binary, compare_continuous, holm,
                              minimum_discordant, pool)

BASE = [1.0, 1.1, 0.9, 1.05, 0.95]


def test_a_clear_effect_in_the_claimed_direction_is_reproduced():
    verdict = compare_continuous(BASE, [b + 1 for b in BASE], "higher", margin=0.1)
    assert verdict.outcome == REPRODUCED and verdict.effect == pytest.approx(1.0) and verdict.p_value < 1e-6


def test_the_opposite_direction_significant_is_contradicted():
    verdict = compare_continuous(BASE, [b - 1 + 0.01 * i for i, b in enumerate(BASE)], "higher", margin=0.1)
    assert verdict.outcome == CONTRADICTED and "opposite" in verdict.note


def test_an_effect_shown_smaller_than_the_margin_contradicts_a_claimed_difference():
    baseline = [1.0 + 0.01 * math.sin(i) for i in range(12)]
    variant = [b + 0.001 * math.cos(3 * i) for i, b in enumerate(baseline)]
    verdict = compare_continuous(baseline, variant, "higher", margin=0.05)
    assert verdict.outcome == CONTRADICTED and "TOST" in verdict.note


def test_an_underpowered_comparison_is_inconclusive_and_states_its_detectable_effect():
    baseline, variant = [1.0, 2.0, 3.0], [2.5, 1.5, 4.0]  # differences 1.5, -0.5, 1.0
    verdict = compare_continuous(baseline, variant, "higher", margin=0.1)
    diffs = [1.5, -0.5, 1.0]
    se = stats.tstd(diffs) / math.sqrt(3)
    expected = 0.1 + (stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * se  # beyond the margin 0.1
    assert verdict.outcome == INCONCLUSIVE and verdict.detectable == pytest.approx(expected)
    assert "could detect an effect of" in verdict.note and "n = 3" in verdict.note
    assert verdict.low < 0 < verdict.high


def test_a_significant_effect_inside_the_margin_does_not_reproduce_a_claimed_difference():
    """Differences 0.10 +- 0.01 over 8 seeds (se 0.0038): the t-test is significant, and yet with margin 0.12 the
    90% interval [0.093, 0.107] lies inside +-0.12 (TOST): the margin calls it 'the same', so the claimed difference
    is contradicted. With margin 0.1 it is neither beyond nor inside: inconclusive. With 0.05, beyond: reproduced."""
    baseline = [1.0 + 0.1 * i for i in range(8)]
    variant = [b + 0.1 + 0.01 * (-1) ** i for i, b in enumerate(baseline)]
    assert compare_continuous(baseline, variant, "higher", margin=0.12).outcome == CONTRADICTED
    verdict = compare_continuous(baseline, variant, "higher", margin=0.1)
    assert verdict.outcome == INCONCLUSIVE and "not shown beyond the margin 0.1" in verdict.note
    assert verdict.p_value == pytest.approx(1.0)  # the minimum-effect test: effect 0.1 exactly at the margin
    beyond = compare_continuous(baseline, variant, "higher", margin=0.05)  # se = 0.01 * sqrt(8/7) / sqrt(8)
    se = stats.tstd([0.1 + 0.01 * (-1) ** i for i in range(8)]) / math.sqrt(8)
    assert beyond.outcome == REPRODUCED and beyond.p_value == pytest.approx(2 * stats.t.sf(0.05 / se, 7))
    assert "minimum-effect" in beyond.note


def test_log_scale_effects_are_ratios():
    verdict = compare_continuous([1.0, 2.0, 4.0, 8.0], [2.0, 4.0, 8.0, 16.0], "higher", margin=1.25, log_scale=True)
    assert verdict.outcome == REPRODUCED and verdict.effect == pytest.approx(2.0)


def test_a_no_gain_claim_is_reproduced_by_equivalence_and_contradicted_by_a_gain():
    baseline = [5.0 + 0.01 * math.sin(i) for i in range(10)]
    same = [b + 0.002 * math.cos(i) for i, b in enumerate(baseline)]
    assert compare_continuous(baseline, same, "not_lower", margin=0.5).outcome == REPRODUCED
    better = [b - 1.0 + 0.01 * math.cos(i) for i, b in enumerate(baseline)]  # lower KL = a gain
    assert compare_continuous(baseline, better, "not_lower", margin=0.5).outcome == CONTRADICTED


def test_one_seed_is_inconclusive_without_a_test():
    verdict = compare_continuous([1.0], [2.0], "higher", margin=0.1)
    assert verdict.outcome == INCONCLUSIVE and verdict.p_value is None and "needs >= 2" in verdict.note


def test_five_of_five_seeds_diverging_only_in_the_variant_is_reproduced_and_three_is_not_enough():
    assert minimum_discordant() == 5
    five = compare_binary([False] * 5, [True] * 5, "higher")
    assert five.outcome == REPRODUCED and five.p_value == pytest.approx(1 / 32)
    three = compare_binary([False] * 3, [True] * 3, "higher")
    assert three.outcome == INCONCLUSIVE and three.p_value == pytest.approx(1 / 8) and "impossible with 3 seeds" in three.note
    none = compare_binary([False] * 8, [False] * 8, "higher")
    assert none.outcome == INCONCLUSIVE and none.detectable == pytest.approx(5 / 8)
    against = compare_binary([True] * 6, [False] * 6, "higher")
    assert against.outcome == CONTRADICTED and against.p_value == pytest.approx(1 / 64)  # the opposite side's p


def test_holm_known_values_and_pooling():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    strong = compare_continuous(BASE, [b + 1 for b in BASE], "higher", margin=0.1)
    weak = compare_continuous([1.0, 2.0, 3.0], [2.5, 1.5, 4.0], "higher", margin=0.1)
    assert pool([strong, strong]).outcome == REPRODUCED
    assert pool([strong, weak]).outcome == INCONCLUSIVE and "Holm" in pool([strong, weak]).test


def test_no_event_in_enough_seeds_contradicts_a_claimed_failure_rate():
    """0 divergences in 5 seeds: the one-sided 95% upper bound of the rate is 1 - 0.05^(1/5) = 0.451 < 0.5."""
    verdict = compare_binary([False] * 5, [False] * 5, "higher", margin=0.5)
    assert verdict.outcome == CONTRADICTED and "upper bound 0.45" in verdict.note
    assert verdict.p_value == pytest.approx(1 / 32) and "binomial" in verdict.test  # P(0 of 5 | rate 0.5)
    two_of_twelve = compare_binary([False] * 12, [True] * 2 + [False] * 10, "higher", margin=0.5)
    assert two_of_twelve.outcome == CONTRADICTED and two_of_twelve.p_value == pytest.approx(79 / 4096)  # (1 + 12 + 66) / 2^12
    assert compare_binary([False] * 4, [False] * 4, "higher", margin=0.5).outcome == INCONCLUSIVE  # bound 0.53


def test_a_predicted_ratio_met_within_the_margin_is_reproduced():
    baseline = [0.01, 0.02, 0.015, 0.012, 0.018, 0.011]
    variant = [b * r for b, r in zip(baseline, [3.9, 4.1, 4.0, 3.8, 4.2, 4.0])]  # log ratios: mean ln 4.0, sd ~0.04
    verdict = compare_continuous(baseline, variant, "equal", margin=1.5, log_scale=True, expected=4.0)
    assert verdict.outcome == REPRODUCED and abs(verdict.effect - 4.0) < 0.05 and verdict.p_value < 1e-4
    assert verdict.note.startswith("equivalent to the prediction x4")


def test_a_ratio_of_one_contradicts_a_predicted_four():
    baseline = [0.01, 0.02, 0.015, 0.012, 0.018, 0.011]
    variant = [b * r for b, r in zip(baseline, [0.9, 1.1, 1.0, 1.2, 0.95, 1.05])]
    verdict = compare_continuous(baseline, variant, "equal", margin=1.5, log_scale=True, expected=4.0)
    assert verdict.outcome == CONTRADICTED and verdict.high < 4.0 / 1.5  # the whole 95% interval below the band


def test_a_noisy_ratio_near_the_prediction_is_inconclusive_with_its_detectable_departure():
    baseline = [1.0, 1.0, 1.0]
    variant = [1.0, 16.0, 4.0]  # log ratios 0, ln 16, ln 4: mean ln 4, sd ln 4
    verdict = compare_continuous(baseline, variant, "equal", margin=1.5, log_scale=True, expected=4.0)
    # se = ln 4 / sqrt 3 = 0.800; detectable = (t_.975,2 + t_.8,2) se = (4.303 + 1.061) * 0.800 = 4.292 -> x73.1
    assert verdict.outcome == INCONCLUSIVE and abs(verdict.effect - 4.0) < 1e-9
    assert abs(verdict.detectable - math.exp((4.3027 + 1.0607) * math.log(4) / math.sqrt(3))) / verdict.detectable < 1e-3


def test_equal_needs_a_prediction_and_only_equal_takes_one():
    with pytest.raises(ValueError, match="expected"):
        compare_continuous([1.0, 2.0], [2.0, 4.0], "equal", margin=1.5, log_scale=True)
    with pytest.raises(ValueError, match="expected"):
        compare_continuous([1.0, 2.0], [2.0, 4.0], "higher", margin=1.5, log_scale=True, expected=2.0)
