"""The claims scoreboard (issue 24): one row per claim of the paper with its verdict, effect, n, scale and commit.

Claims, their tests, directions and margins are data (reports/claims.yaml, written before the runs
that judge them); verdicts come from reports/verdicts.py. A claim whose baseline runs did not meet
the learning criterion, or that has no runs, is "not tested at this scale" with the reason.
Stale runs (reports/staleness.py) are counted in the row, so a verdict from old code shows it.
"""
import functools
import math
from pathlib import Path

import pandas as pd
import yaml

from reports.tables import Cell, Table, select_mask
from reports.verdicts import INCONCLUSIVE, NOT_TESTED, REPRODUCED, Verdict, compare_binary, compare_continuous, pool

CLAIMS = Path(__file__).with_name("claims.yaml")
DIRAC_TOLERANCE = 1e-6  # measured vs closed-form eigenvalues (autograd through the implemented losses)
HEADER = ["Claim", "Source", "Tested at", "Verdict", "Effect [95% CI]", "n", "Commit(s)", "Details"]


@functools.lru_cache(maxsize=1)
def _claims_file() -> dict:
    return yaml.safe_load(CLAIMS.read_text())


def load_claims() -> list:
    return _claims_file()["claims"]


def learning_criterion(dataset: str) -> dict:
    """What one run on `dataset` must reach to count as having learnt (column -> [op, bound]); {} when none is set."""
    return dict(_claims_file()["learning_criteria"].get(str(dataset)) or {})


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if not math.isnan(value) else None


def _values(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Per-run values of `metric`: a run-table column, `diverged` (status), or `grad_imbalance` (derived)."""
    if metric == "diverged":
        return runs["status"].eq("diverged")
    if metric == "grad_imbalance":
        column = runs.get("stability.final_grad_ratio", pd.Series(None, index=runs.index))
        return column.apply(lambda r: abs(math.log(r)) if _number(r) and _number(r) > 0 else None)
    if metric not in runs:
        return pd.Series(None, index=runs.index)
    return runs[metric].apply(_number)


def run_failures(run: pd.Series, criterion: dict) -> list:
    """Descriptions of the bounds of `criterion` (column -> [op, bound]) that one run row misses; [] when it meets all."""
    failures = []
    for column, (op, bound) in (criterion or {}).items():
        value = _number(run.get(column))
        if value is None or not (value >= bound if op == ">=" else value <= bound):
            failures.append(f"{run['run']}: {column.split('.')[-1]} {value if value is None else f'{value:.4g}'} (needs {op} {bound})")
    return failures


def _criterion_failures(runs: pd.DataFrame, criterion: dict) -> list:
    """Descriptions of baseline runs that did not learn (criterion: column -> [op, value]); [] when all did."""
    return [failure for _, run in runs.iterrows() for failure in run_failures(run, criterion)]


def _completed(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "completed"]  # a diverged run has no final metrics to meet a criterion with


def _bounds(criterion: dict) -> dict:
    return {column: bound for column, bound in criterion.items() if column != "runs"}


def shown_failures(failures: list, keep: int = 3) -> str:
    return "; ".join(failures[:keep]) + (f"; {len(failures) - keep} more" if len(failures) > keep else "")


def _paired(runs: pd.DataFrame, claim: dict, cell: dict, metric: str) -> tuple:
    """(baseline values, variant values, scale text) paired by seed, finished runs only."""
    finished = runs[runs["status"].isin(["completed", "diverged"])]
    arms = []
    for arm in ("baseline", "variant"):
        mask = select_mask(finished, dict(claim[arm], **cell))
        part = finished[mask]
        arms.append(dict(zip(part["seed"].astype(str), _values(part, metric))))
    seeds = sorted(set(arms[0]) & set(arms[1]), key=lambda s: (len(s), s))
    return [arms[0][s] for s in seeds], [arms[1][s] for s in seeds]


def _scale(runs: pd.DataFrame) -> str:
    if not len(runs):
        return "-"
    parts = []
    for column, fmt in (("model", "{}"), ("dataset", "{}"), ("dataset_args.resolution", "{:g} px"), ("kimg", "{:g} kimg")):
        if column in runs:
            numbers = column in ("kimg", "dataset_args.resolution")
            values = sorted({float(v) if numbers else str(v) for v in runs[column].dropna()})
            if not values:  # a column of unreadable summaries only
                continue
            if len(values) == 1:
                parts.append(fmt.format(values[0]))
            elif numbers:
                parts.append(f"{fmt.format(values[0])}-{fmt.format(values[-1])}")
            else:  # every name: a range of names misleads
                parts.append("/".join(values))
    return ", ".join(parts)


def judge(claim: dict, runs: pd.DataFrame, dirac: list = ()) -> tuple:
    """(Verdict, selected runs) of one claim from the run table (and the Dirac analyses)."""
    kind = claim["kind"]
    if kind == "not_tested":
        return Verdict(NOT_TESTED, note=claim.get("reason", "")), runs.iloc[0:0]
    if kind == "dirac":
        return _dirac_verdict(dirac), runs.iloc[0:0]  # analytic: no runs
    feeds = claim["feeds"] if isinstance(claim["feeds"], list) else [claim["feeds"]]  # a list: arms from two experiments
    selected = runs[runs["feeds"].astype(str).isin(feeds)] if len(runs) and "feeds" in runs else runs.iloc[0:0]
    if not len(selected):
        return Verdict(NOT_TESTED, note=f"no runs of {' or '.join(f'`{name}`' for name in feeds)}"), selected
    finished = selected[selected["status"].isin(["completed", "diverged"])]
    baseline_runs = finished[select_mask(finished, claim["baseline"])]
    criterion = dict(claim.get("criterion") or {})
    # The runs of the claim's arms in its cells: its row's scale, commits and staleness. (Cells since 2026-12-02,
    # session 5: 25-Gaussians runs feed lazy-reg-toys too, and the Dirac rows, judged on the circle and the line only,
    # listed them in "Tested at" and their commits.)
    in_cells = functools.reduce(lambda m, cell: m | select_mask(selected, cell), claim.get("cells") or [{}],
                                pd.Series(False, index=selected.index))
    claimed = selected[(select_mask(selected, claim["baseline"]) | select_mask(selected, claim["variant"])) & in_cells]
    # The learning gate. A named reference arm (`runs`: Table 1's RpGAN + R1 + R2) says whether the experiment's runs
    # are long enough: checked once, for the whole claim. Otherwise each cell's own runs must have learnt: the
    # baseline's, and for a predicted ratio ("equal") the variant's too, since a prediction about two arms says nothing
    # where one has not learnt. (Per cell and both arms since 2026-12-02, session 4: a review found the lr prediction
    # judged on lr-8e-4 line runs that had not learnt while the lazy prediction called the same runs untested.)
    failures = _criterion_failures(finished[select_mask(finished, criterion["runs"])].pipe(_completed), _bounds(criterion)) \
        if "runs" in criterion else []
    if failures or not len(baseline_runs):
        return Verdict(NOT_TESTED, n=len(baseline_runs), note=f"the baseline runs did not learn: {shown_failures(failures)}" if failures
                       else "no finished baseline run"), claimed
    if not select_mask(finished, claim["variant"]).any():
        return Verdict(NOT_TESTED, n=len(baseline_runs), note="no finished run of the variant yet"), claimed
    cells = claim.get("cells") or [{}]
    gated = ["baseline"] + (["variant"] if claim["direction"] == "equal" else [])
    verdicts = []
    for cell in cells:
        if not select_mask(finished, dict(claim["baseline"], **cell)).any():
            verdicts.append(Verdict(NOT_TESTED, note="no finished baseline run in this cell"))
            continue
        if criterion and "runs" not in criterion:
            mask = functools.reduce(lambda m, arm: m | select_mask(finished, dict(claim[arm], **cell)), gated,
                                    pd.Series(False, index=finished.index))
            cell_failures = _criterion_failures(finished[mask].pipe(_completed), criterion)
            if cell_failures:
                verdicts.append(Verdict(NOT_TESTED, n=int(mask.sum()),
                                        note=f"the {' and '.join(gated)} runs did not learn: {shown_failures(cell_failures)}"))
                continue
        a, b = _paired(selected, claim, cell, claim["metric"])
        if kind == "binary":
            verdicts.append(compare_binary(a, b, claim["direction"], claim.get("margin")))
        else:
            keep = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
            verdicts.append(compare_continuous([x for x, _ in keep], [y for _, y in keep], claim["direction"],
                                               claim.get("margin"), log_scale=claim.get("log_scale", False),
                                               expected=claim.get("expected")))
    selected = claimed  # the runs this claim reads (scale, commits and staleness of its row)
    tested = [v for v in verdicts if v.outcome != NOT_TESTED]
    if len(verdicts) == 1:
        return verdicts[0], selected
    if not tested:
        return Verdict(NOT_TESTED, n=len(baseline_runs), note="; ".join(
            f"{', '.join(f'{k} {v}' for k, v in cell.items())}: {verdict.note}" for cell, verdict in zip(cells, verdicts))), selected
    pooled = pool(tested)  # Holm over the cells whose runs learnt; the others are listed, not judged
    details = "; ".join(f"{', '.join(f'{k} {v}' for k, v in cell.items())}: {v.outcome}"
                        + (f" ({v.note})" if v.note else "") for cell, v in zip(cells, verdicts))
    pooled.note = f"{pooled.note}. {details}"
    if pooled.outcome == INCONCLUSIVE:
        detectable = [v.detectable for v in verdicts if v.detectable is not None]
        if detectable:
            pooled.detectable = max(detectable)
    return pooled, selected


def _dirac_verdict(dirac: list) -> Verdict:
    """Appendix B: every measured eigenvalue equals the closed form (within DIRAC_TOLERANCE) at every analysed gamma."""
    worst, count = 0.0, 0
    for entry in dirac:
        for result in entry.get("results", []):
            measured, closed = result.get("eigenvalues"), result.get("closed_form")
            if measured is None or closed is None:
                continue
            for m, c in zip(measured, closed):
                m, c = complex(*m) if isinstance(m, (list, tuple)) else complex(m), complex(*c) if isinstance(c, (list, tuple)) else complex(c)
                worst, count = max(worst, abs(m - c)), count + 1
    if not count:
        return Verdict(NOT_TESTED, note="no DiracGAN analysis (`r3bench dirac`) in the results")
    outcome = REPRODUCED if worst <= DIRAC_TOLERANCE else "contradicted"
    return Verdict(outcome, effect=worst, n=count, test="autograd Jacobian vs closed form",
                   note=f"largest |measured - closed form| over {count} eigenvalues: {worst:.1e}")


def planned_seeds(experiments) -> int:
    """The most seeds any of these bundled experiments plans (runners/experiments/NAME.yaml; an experiment path's last
    part names it); 0 when none is bundled (a user's own YAML)."""
    from runners.experiment import bundled_experiments, load_experiment

    names = {str(e).split("/")[-1] for e in experiments} & set(bundled_experiments())
    return max((len(load_experiment(name).seeds) for name in names), default=0)


def _provisional(claim: dict, verdict: Verdict, selected: pd.DataFrame) -> str:
    """' (provisional: k of n planned seeds)' for a verdict from fewer paired seeds (both arms finished, in its
    emptiest cell) than its experiments plan, else ''."""
    if claim["kind"] not in ("binary", "continuous") or verdict.outcome == NOT_TESTED or not len(selected):
        return ""
    finished = selected[selected["status"].isin(["completed", "diverged"])]
    def paired(cell: dict) -> int:  # seeds with both arms finished in this cell
        arms = [set(finished[select_mask(finished, dict(claim[arm], **cell))]["seed"].astype(str)) for arm in ("baseline", "variant")]
        return len(arms[0] & arms[1])

    planned, seen = planned_seeds(finished["experiment"].unique()), min(paired(cell) for cell in claim.get("cells") or [{}])
    return f" (provisional: {seen} of {planned} planned seeds)" if seen < planned else ""


def scoreboard(runs: pd.DataFrame, dirac: list = (), stale: set = frozenset()) -> Table:
    """The scoreboard table (HEADER) from the run table; `stale`: run_dir values whose fingerprint is stale."""
    rows = []
    for claim in load_claims():
        verdict, selected = judge(claim, runs, dirac)
        commits = sorted({str(c) for c in selected.get("git_commit", pd.Series(dtype=object)).dropna()})
        stale_count = int(selected["run_dir"].isin(stale).sum()) if len(selected) else 0
        outcome = verdict.outcome + _provisional(claim, verdict, selected) + (
            f" (stale: {stale_count} of {len(selected)} runs)" if stale_count else "")
        effect = verdict.effect_text(claim.get("log_scale", False)) if claim["kind"] in ("continuous",) else (
            f"{verdict.effect:+.2f} (rate difference)" if claim["kind"] == "binary" and verdict.effect is not None else
            ("-" if verdict.effect is None else f"{verdict.effect:.1e}"))
        details = verdict.note + (f" p = {verdict.p_value:.3g}." if verdict.p_value is not None and claim["kind"] != "dirac" else "")
        rows.append([claim["claim"], f"{claim['source']}", _scale(selected), outcome, effect,
                     str(verdict.n) if verdict.n else "-", ", ".join(commits) or "-", details.strip()])
    cells = pd.DataFrame([[Cell(text=str(v)) for v in row] for row in rows], columns=HEADER)
    notes = ("Verdicts: reports/verdicts.py (alpha 0.05; paired by seed; Holm over cells); claims, directions and "
             "equivalence margins: reports/claims.yaml (written before the runs they judge). 'Not tested at this scale': "
             "no runs, or the baseline did not meet the learning criterion.",)
    return Table("scoreboard", "Claims scoreboard: the paper's claims and what our runs say", HEADER, cells, notes,
                 align="l" * len(HEADER))


def summary_counts(table: Table) -> str:
    outcomes = [row["Verdict"].text.split(" (")[0] for _, row in table.cells.iterrows()]
    return ", ".join(f"{outcomes.count(o)} {o}" for o in dict.fromkeys(outcomes))


__all__ = ["scoreboard", "judge", "load_claims", "summary_counts"]
