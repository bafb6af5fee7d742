"""Three-valued verdicts with stated power for the paper's claims (issue 24; the claims scoreboard).

Every claim ends as one of:
- reproduced: the effect in the paper's direction, significant at ALPHA; for a claimed difference with
  a margin, significantly beyond the margin (a minimum-effect test: the 95% interval wholly past it),
  since an effect the margin calls "the same" cannot reproduce a difference (rule tightened on
  2026-12-02, session 4, after a review found a x1.19 [1.06, 1.35] drift, inside the x1.25 margin,
  called "reproduced");
- contradicted: the opposite direction significant, or (for a claimed difference) an equivalence
  test (TOST, margin stated in advance in reports/claims.yaml) that shows the effect smaller than
  the margin;
- inconclusive: neither; it then states the smallest effect the data could have detected
  (two-sided test at ALPHA with POWER, at the run's n and spread).
A claim of "no difference" (GroupNorm gives no gain, bf16 is not worse) is reproduced by TOST or by
a significant effect on the claimed side, contradicted by a significant effect on the other side.
A quantitative prediction (direction "equal", with `expected`: the effect a theory predicts, e.g. the
discrete-time DiracGAN's x4) is reproduced when TOST puts the effect within the margin of the
prediction, contradicted when the effect's 95% interval lies wholly outside that band.

Pure functions of per-seed numbers. Continuous metrics: paired t-test on per-seed differences when
both arms ran the same seeds, Welch's t-test otherwise (on the log scale for log_scale metrics, so
effects are ratios). Binary outcomes (diverged or not): exact McNemar test paired by seed, one-sided
in the claimed direction. Pooled verdicts (several cells, e.g. three toys) correct the cells'
p-values with Holm's method and are reproduced when every cell is, contradicted when any cell is
contradicted and none reproduced, inconclusive otherwise.
"""
import dataclasses
import math
from typing import Optional

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.05  # significance level of every verdict (two-sided for continuous effects)
POWER = 0.8  # the power at which the detectable effect of an inconclusive verdict is stated
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
NOT_TESTED = "not tested at this scale"
DIRECTIONS = ("higher", "lower", "not_higher", "not_lower", "equal")  # the variant against the baseline, as the claim says


@dataclasses.dataclass
class Verdict:
    """A claim's outcome with its evidence; `effect` is variant - baseline (a ratio when log_scale)."""

    outcome: str
    effect: Optional[float] = None
    low: Optional[float] = None  # 95% interval of the effect
    high: Optional[float] = None
    p_value: Optional[float] = None  # of the test that decides: minimum-effect (a difference with a margin), TOST, t or McNemar
    detectable: Optional[float] = None  # smallest effect detectable at ALPHA with POWER (inconclusive only)
    n: int = 0  # seeds (pairs) or runs per arm
    test: str = ""
    note: str = ""

    def effect_text(self, log_scale: bool = False, digits: int = 3) -> str:
        if self.effect is None:
            return "-"
        unit = "x" if log_scale else ""
        interval = f" [{self.low:.{digits}g}, {self.high:.{digits}g}]" if self.low is not None else ""
        return f"{unit}{self.effect:.{digits}g}{interval}"


def _transform(values, log_scale: bool) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.log(values) if log_scale else values


def _back(value, log_scale: bool):
    return None if value is None else (float(math.exp(value)) if log_scale else float(value))


def _tost_p(departure: float, se: float, df: float, bound: float) -> float:
    """The TOST p-value of a departure from the centre within +-bound: the larger of the two one-sided tests'."""
    if se == 0:
        return 0.0 if abs(departure) < bound else 1.0
    return float(max(scipy_stats.t.sf((departure + bound) / se, df), scipy_stats.t.sf((bound - departure) / se, df)))


def compare_continuous(baseline, variant, direction: str, margin: float, log_scale: bool = False, paired: bool = True,
                       expected: Optional[float] = None) -> Verdict:
    """Verdict on a continuous metric: per-seed values of each arm [n] (same seed order when paired).

    `margin`: the equivalence margin on the effect (a ratio > 1 when log_scale, e.g. 1.25 = 25%);
    None: no equivalence test. Non-finite values are dropped (with their pair when paired).
    `expected` (direction "equal" only, and required there): the predicted effect (a ratio when
    log_scale); the margin is then around it.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if (direction == "equal") != (expected is not None) or (direction == "equal" and margin is None):
        raise ValueError("direction 'equal' needs `expected` and `margin`; the other directions take no `expected`")
    a, b = _transform(baseline, log_scale), _transform(variant, log_scale)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired arms need equal lengths, got {len(a)} and {len(b)}")
        keep = np.isfinite(a) & np.isfinite(b)
        diff = b[keep] - a[keep]
        n = len(diff)
        if n < 2:
            return Verdict(INCONCLUSIVE, effect=_back(diff.mean(), log_scale) if n else None, n=n,
                           test="paired t", note=f"{n} paired seed(s): no test possible (needs >= 2)")
        effect, se, df = float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(n)), n - 1
        test = "paired t"
    else:
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        n = min(len(a), len(b))
        if n < 2:
            return Verdict(INCONCLUSIVE, n=n, test="Welch t", note="fewer than 2 runs in an arm: no test possible")
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        effect, se = float(b.mean() - a.mean()), float(math.sqrt(va + vb))
        df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1) if len(a) > 1 else 0) + (vb ** 2 / (len(b) - 1) if len(b) > 1 else 0)) if se > 0 else n - 1
        test = "Welch t"
    t_crit = float(scipy_stats.t.ppf(1 - ALPHA / 2, df))
    low, high = effect - t_crit * se, effect + t_crit * se
    if se == 0:
        p_two = 0.0 if effect != 0 else 1.0
    else:
        p_two = float(2 * scipy_stats.t.sf(abs(effect) / se, df))
    detectable = (t_crit + float(scipy_stats.t.ppf(POWER, df))) * se
    claimed_up = direction in ("higher", "not_lower")
    significant_up, significant_down = p_two < ALPHA and effect > 0, p_two < ALPHA and effect < 0
    centre = 0.0 if expected is None else float(_transform([expected], log_scale)[0])  # where "no departure" lies
    equivalent = False
    if margin is not None and se > 0:
        bound = math.log(margin) if log_scale else margin
        # TOST: two one-sided tests at ALPHA, i.e. the 90% interval inside (centre - bound, centre + bound).
        t_one = float(scipy_stats.t.ppf(1 - ALPHA, df))
        equivalent = effect - t_one * se > centre - bound and effect + t_one * se < centre + bound
    elif margin is not None and se == 0:
        equivalent = abs(effect - centre) < (math.log(margin) if log_scale else margin)
    verdict = Verdict(INCONCLUSIVE, effect=_back(effect, log_scale), low=_back(low, log_scale), high=_back(high, log_scale),
                      p_value=p_two, n=n, test=test)
    if direction == "equal":  # the claim is a predicted effect
        bound = math.log(margin) if log_scale else margin
        shown = f"{'x' if log_scale else ''}{expected:g}"
        verdict.p_value = _tost_p(effect - centre, se, df, bound)  # what Holm corrects when cells are pooled
        if equivalent:
            verdict.outcome, verdict.note = REPRODUCED, f"equivalent to the prediction {shown} within the margin {margin:g} (TOST)"
        elif low > centre + bound or high < centre - bound:
            verdict.outcome, verdict.note = CONTRADICTED, f"the 95% interval lies outside the prediction {shown} +- the margin {margin:g}"
        else:
            detectable = (t_crit + float(scipy_stats.t.ppf(POWER, df))) * se
            verdict.detectable = _back(detectable, log_scale)
            unit = "x" if log_scale else ""
            verdict.note = (f"prediction {shown}: could detect a departure of {unit}{verdict.detectable:.3g} or larger from it "
                            f"(power {POWER:g}, alpha {ALPHA:g}, n = {n})")
        return verdict
    if direction in ("higher", "lower"):  # the claim is a difference
        claimed_side = (significant_up and claimed_up) or (significant_down and not claimed_up)
        if margin is not None:  # minimum-effect test: beyond the margin on the claimed side, two-sided at ALPHA like the t-test
            bound, sign = (math.log(margin) if log_scale else margin), (1.0 if claimed_up else -1.0)
            beyond = sign * effect - bound
            verdict.p_value = min(1.0, float(2 * scipy_stats.t.sf(beyond / se, df))) if se > 0 else (0.0 if beyond > 0 else 1.0)
            detectable = bound + detectable  # the smallest effect the test would show beyond the margin
        if claimed_side and (margin is None or (verdict.p_value < ALPHA and beyond > 0)):
            verdict.outcome = REPRODUCED
            if margin is not None:
                verdict.note = f"beyond the margin {margin:g} (minimum-effect test)"
        elif (significant_up or significant_down) and not claimed_side:
            verdict.outcome, verdict.note, verdict.p_value = CONTRADICTED, "significant in the opposite direction", p_two
        elif equivalent:
            verdict.outcome, verdict.note = CONTRADICTED, f"equivalent within the margin {margin:g} (TOST)"
            verdict.p_value = _tost_p(effect - centre, se, df, math.log(margin) if log_scale else margin)
    else:  # the claim is "no worse" / "no better"
        if equivalent or (significant_up and claimed_up) or (significant_down and not claimed_up):
            verdict.outcome = REPRODUCED
            verdict.note = f"equivalent within the margin {margin:g} (TOST)" if equivalent else "significant on the claimed side"
        elif significant_up or significant_down:
            verdict.outcome, verdict.note = CONTRADICTED, "significant on the side the claim rules out"
    if verdict.outcome == INCONCLUSIVE:
        verdict.detectable = _back(detectable, log_scale)
        unit = "x" if log_scale else ""
        verdict.note = f"could detect an effect of {unit}{verdict.detectable:.3g} or larger (power {POWER:g}, alpha {ALPHA:g}, n = {n})"
        if direction in ("higher", "lower") and claimed_side:
            verdict.note = (f"significant on the claimed side (t-test p = {p_two:.3g}) but not shown beyond the margin {margin:g}; "
                            + verdict.note)
    return verdict


def minimum_discordant(alpha: float = ALPHA) -> int:
    """Smallest number of discordant seeds, all one way, for a one-sided exact McNemar p < alpha (5 at 0.05)."""
    k = 1
    while 0.5 ** k >= alpha:
        k += 1
    return k


def compare_binary(baseline, variant, direction: str = "higher", margin: float = None) -> Verdict:
    """Verdict on a per-seed event (e.g. diverged): booleans of each arm [n], paired by seed.

    Exact McNemar test, one-sided in the claimed direction: under "no difference" the discordant
    seeds split as Binomial(d, 1/2). `margin` (direction "higher" only): the event rate the claim
    implies at least (e.g. 0.5 for "fails"); the claim is contradicted when the one-sided 95%
    Clopper-Pearson upper bound of the variant's event rate is below it (0 events in 5 seeds: 0.45).
    """
    if direction not in ("higher", "lower"):
        raise ValueError("binary claims are 'higher' or 'lower' (the variant's event rate)")
    if len(baseline) != len(variant):
        raise ValueError(f"paired arms need equal lengths, got {len(baseline)} and {len(variant)}")
    only_variant = sum(1 for x, y in zip(baseline, variant) if y and not x)
    only_baseline = sum(1 for x, y in zip(baseline, variant) if x and not y)
    n = len(baseline)
    up, down = (only_variant, only_baseline) if direction == "higher" else (only_baseline, only_variant)
    discordant = up + down
    p_claimed = float(scipy_stats.binomtest(up, discordant, 0.5, alternative="greater").pvalue) if discordant else 1.0
    p_opposite = float(scipy_stats.binomtest(down, discordant, 0.5, alternative="greater").pvalue) if discordant else 1.0
    effect = (sum(map(bool, variant)) - sum(map(bool, baseline))) / n if n else None
    verdict = Verdict(INCONCLUSIVE, effect=effect, p_value=p_claimed, n=n, test="exact McNemar (one-sided)")
    needed = minimum_discordant()
    events = sum(map(bool, variant))
    upper = float(scipy_stats.beta.ppf(1 - ALPHA, events + 1, n - events)) if n and events < n else 1.0
    if p_claimed < ALPHA:
        verdict.outcome = REPRODUCED
    elif p_opposite < ALPHA:
        verdict.outcome, verdict.note, verdict.p_value = CONTRADICTED, "significant in the opposite direction", p_opposite
    elif margin is not None and direction == "higher" and upper < margin:
        # The deciding test's p (since 2026-12-02, session 5; the McNemar p, 1 with no discordant seed, was shown beside
        # "contradicted"): P(this few events | rate = margin), below alpha exactly when the Clopper-Pearson bound is.
        verdict.outcome, verdict.test = CONTRADICTED, f"exact binomial (one-sided): rate below {margin:g}"
        verdict.p_value = float(scipy_stats.binom.cdf(events, n, margin))
        verdict.note = (f"{events} of {n} seeds had the event: its rate is below the claimed {margin:g} "
                        f"(one-sided 95% upper bound {upper:.2f})")
    else:
        verdict.detectable = needed / n if n else None
        verdict.note = (f"{up} seed(s) one way, {down} the other; detecting it needs >= {needed} discordant seeds all one way"
                        + (f" (a rate difference of {needed}/{n} = {needed / n:.2f} at this n)" if n >= needed else
                           f": impossible with {n} seeds"))
    return verdict


def holm(p_values) -> list:
    """Holm-adjusted p-values [k] for p_values [k] (step-down, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def pool(verdicts: list) -> Verdict:
    """One verdict over several cells' verdicts (Holm-corrected): reproduced when every cell is reproduced after
    correction, contradicted when some cell is contradicted and none reproduced, inconclusive otherwise."""
    if not verdicts:
        return Verdict(INCONCLUSIVE, note="no cell has data")
    corrected = holm([v.p_value if v.p_value is not None else 1.0 for v in verdicts])
    outcomes = []
    for verdict, p in zip(verdicts, corrected):
        outcome = verdict.outcome
        if outcome == REPRODUCED and verdict.note.startswith("equivalent") is False and p >= ALPHA:
            outcome = INCONCLUSIVE  # significant alone, not after Holm
        outcomes.append(outcome)
    n = sum(v.n for v in verdicts)
    if all(o == REPRODUCED for o in outcomes):
        outcome = REPRODUCED
    elif any(o == CONTRADICTED for o in outcomes) and not any(o == REPRODUCED for o in outcomes):
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    counts = ", ".join(f"{outcomes.count(o)} {o}" for o in (REPRODUCED, CONTRADICTED, INCONCLUSIVE) if outcomes.count(o))
    return Verdict(outcome, p_value=max(corrected) if outcome == REPRODUCED else min(corrected), n=n,
                   test=f"{len(verdicts)} cells, Holm-corrected", note=f"cells: {counts}")
