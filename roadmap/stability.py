"""Per-run stability statistics from a run's tick rows (issue 15; paper Section 2 / Figure 1 blow-ups).

Input: the rows of metrics.jsonl in tick order. Each row has kimg, loss_G, grad_norm_fake and
grad_norm_real (per-tick means) and may have loss_G_max, grad_norm_fake_max (per-tick peaks over
steps) and grad_ratio_max (per-tick peak of the per-step ratio fake/real gradient norm).

Rule (exact):
- Peaks. peak_loss_G = max over ticks of loss_G_max (loss_G where the peak is absent or None);
  peak_grad_norm_fake likewise from grad_norm_fake_max / grad_norm_fake; peak_grad_ratio from
  grad_ratio_max, else grad_norm_fake / max(grad_norm_real, 1e-12) per tick. None values are
  missing ticks and are skipped. A NaN or inf in a series means the run blew up: that peak is
  None and `nonfinite` is True.
- Spike. s[i] is the fake-gradient-norm peak series above. For each tick i with a finite s[i]
  and at least one finite earlier value, baseline[i] = median of the finite s[j], j < i, and
  factor[i] = s[i] / baseline[i] (ticks with baseline <= 0 are skipped). The spike is the tick
  with the largest factor (the first on ties): spike_kimg, spike_factor. A non-finite s[i]
  (first such tick) is the spike whatever the factors, with spike_factor None. With no tick
  that has a baseline, spike_kimg and spike_factor are None.
- spike is True when spike_factor >= SPIKE_FACTOR or the spike is non-finite.
- Recovery (only when spike is True and the spike tick has a baseline and a later tick):
  recovered is True when some later tick j has a finite s[j] <= RECOVERY_FACTOR * baseline,
  and recovery_kimg = kimg[j] - kimg[spike] for the first such j; otherwise recovered False
  and recovery_kimg None. recovered and recovery_kimg are None when there is no spike or the
  spike is the last tick (nothing to judge).
- No rows: every statistic is None.
"""
import math
import statistics

SPIKE_FACTOR = 5.0  # a tick at >= 5x the median of the earlier ticks counts as a spike
RECOVERY_FACTOR = 2.0  # recovered once a later tick is back within 2x that median
_RATIO_FLOOR = 1e-12  # as roadmap/step.py clamps the real norm for grad_ratio_max

KEYS = ("peak_loss_G", "peak_grad_norm_fake", "peak_grad_ratio", "nonfinite", "spike", "spike_kimg",
        "spike_factor", "recovered", "recovery_kimg")


def _value(row: dict, peak_key: str, mean_key: str):
    """The row's peak if recorded, else its mean; None when neither is (a missing tick)."""
    value = row.get(peak_key)
    return row.get(mean_key) if value is None else value


def _ratio(row: dict):
    if row.get("grad_ratio_max") is not None:
        return row["grad_ratio_max"]
    fake, real = row.get("grad_norm_fake"), row.get("grad_norm_real")
    if fake is None or real is None:
        return None
    return fake / max(real, _RATIO_FLOOR) if math.isfinite(real) else math.nan


def _peak(values: list):
    """(max of the non-None values or None, whether any is NaN/inf)."""
    present = [float(v) for v in values if v is not None]
    if any(not math.isfinite(v) for v in present):
        return None, True
    return (max(present) if present else None), False


def run_stability(rows: list) -> dict:
    """Stability statistics of one run (see the module docstring) from its tick rows [ticks]; flat JSON-ready dict."""
    if not rows:
        return dict.fromkeys(KEYS)
    kimg = [float(row["kimg"]) for row in rows]
    series = [_value(row, "grad_norm_fake_max", "grad_norm_fake") for row in rows]
    peak_loss_G, loss_bad = _peak([_value(row, "loss_G_max", "loss_G") for row in rows])
    peak_grad_norm_fake, grad_bad = _peak(series)
    peak_grad_ratio, ratio_bad = _peak([_ratio(row) for row in rows])
    out = dict.fromkeys(KEYS)
    out.update(peak_loss_G=peak_loss_G, peak_grad_norm_fake=peak_grad_norm_fake, peak_grad_ratio=peak_grad_ratio,
               nonfinite=loss_bad or grad_bad or ratio_bad)

    spike, spike_factor, baseline, earlier = None, None, None, []
    for i, value in enumerate(series):
        if value is None:
            continue
        value = float(value)
        if not math.isfinite(value):  # a blow-up outranks any finite spike
            spike, spike_factor = i, None
            baseline = statistics.median(earlier) if earlier else None
            break
        if earlier:
            median = statistics.median(earlier)
            if median > 0 and (spike_factor is None or value / median > spike_factor):
                spike, spike_factor, baseline = i, value / median, median
        earlier.append(value)
    if spike is None:
        return out
    out.update(spike_kimg=kimg[spike], spike_factor=spike_factor,
               spike=spike_factor is None or spike_factor >= SPIKE_FACTOR)
    later = [(kimg[j], series[j]) for j in range(spike + 1, len(rows)) if series[j] is not None]
    if not out["spike"] or baseline is None or not later:
        return out
    back = [k for k, value in later if math.isfinite(value) and value <= RECOVERY_FACTOR * baseline]
    out.update(recovered=bool(back), recovery_kimg=back[0] - kimg[spike] if back else None)
    return out


# Convergence as the theory defines it (paper Section 2, Appendix B; issue 25): at the regularized
# equilibrium D's input gradient on the data vanishes, and with both R1 and R2 it shrinks on real
# and on fake alike. Read over the final phase of a run, not at one tick.
FINAL_FRACTION = 0.25  # the final phase: the last quarter of the ticks (at least one)
CONVERGENCE_KEYS = ("final_grad_norm_real", "final_grad_norm_fake", "final_grad_ratio", "final_grad_trend", "final_drift",
                    "final_ticks")


def _mean(values: list):
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present and all(math.isfinite(v) for v in present) else None


def run_convergence(rows: list, fraction: float = FINAL_FRACTION) -> dict:
    """Final-phase statistics of one run from its tick rows [ticks]; flat JSON-ready dict.

    final_grad_norm_real / _fake: mean over the final phase of the per-tick mean ||grad_x D|| on
    real / fake samples; final_grad_ratio = fake / real of those means; final_grad_trend: least-
    squares slope of log10(grad_norm_fake) per 100 kimg over the final phase (negative: still
    shrinking; None with fewer than 3 ticks); final_drift: mean of `score_drift` (toys: mean
    distance between consecutive scores' samples from the same latents) over the final phase's
    ticks that have it; final_ticks: ticks in the final phase. None where the series is missing
    or non-finite.
    """
    out = dict.fromkeys(CONVERGENCE_KEYS)
    if not rows:
        return out
    count = max(1, int(round(len(rows) * fraction)))
    final = rows[-count:]
    real = _mean([row.get("grad_norm_real") for row in final])
    fake = _mean([row.get("grad_norm_fake") for row in final])
    out.update(final_grad_norm_real=real, final_grad_norm_fake=fake, final_ticks=count,
               final_grad_ratio=fake / real if real and fake is not None and real > 0 else None,
               final_drift=_mean([row.get("score_drift") for row in final if row.get("score_drift") is not None]))
    points = [(float(row["kimg"]), math.log10(float(row["grad_norm_fake"]))) for row in final
              if row.get("grad_norm_fake") is not None and math.isfinite(float(row["grad_norm_fake"])) and float(row["grad_norm_fake"]) > 0]
    if len(points) >= 3:
        xs, ys = zip(*points)
        x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - x_mean) ** 2 for x in xs)
        if spread > 0:
            out["final_grad_trend"] = 100 * sum((x - x_mean) * (y - y_mean) for x, y in points) / spread
    return out
