"""Appendix E negative-result sections: verdict rules on synthetic results, tables, report wiring."""
import pytest

from reports.build import build_report
from reports.collect import collect
from reports.negative import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    SECTIONS,
    Arm,
    check_verdict,
    combine,
    compare,
    evaluate_section,
    section_runs,
)
from reports.catalog import all_tables

LAZY = next(s for s in SECTIONS if s.name == "lazy-reg")
PRECISION = next(s for s in SECTIONS if s.name == "precision")


@pytest.mark.parametrize("baseline, variant, outcome", [
    (Arm([0.10, 0.12, 0.11]), Arm([], diverged=3), "worse"),  # every lazy seed diverged
    (Arm([0.10, 0.12, 0.11]), Arm([0.9, 1.1], diverged=1), "worse"),  # 2 far above the worst baseline + 1 divergence
    (Arm([0.10, 0.12, 0.11]), Arm([0.9, 0.11, 0.12]), "unclear"),  # one bad seed of three is not 2/3
    (Arm([0.10, 0.12, 0.11]), Arm([0.11, 0.10, 0.13]), "same"),  # within the CI
    (Arm([0.9, 1.0, 1.1]), Arm([0.1, 0.12, 0.11]), "better"),
    (Arm([0.10, 0.50, 0.90]), Arm([0.5, 0.9, 1.0]), "same"),  # noisy arms: no seed beyond the other's worst + margin, within the CI
    (Arm([0.1]), Arm([5.0, 5.0]), "unclear"),  # one baseline seed: too few
    (Arm([], diverged=3), Arm([], diverged=3), "unclear"),  # nothing converged to compare with
])
def test_compare(baseline, variant, outcome):
    assert compare(baseline, variant) == outcome


def test_same_needs_no_divergence_and_ci_overlap():
    assert compare(Arm([0.10, 0.12, 0.11]), Arm([0.30, 0.31, 0.32])) == "unclear"  # consistently worse, but < margin
    assert compare(Arm([0.10, 0.12]), Arm([0.11, 0.10], diverged=1)) == "unclear"


def test_check_verdict_and_combine():
    assert check_verdict("worse", "worse") == REPRODUCED
    assert check_verdict("same", "worse") == check_verdict("better", "worse") == NOT_REPRODUCED
    assert check_verdict("same", "not_worse") == REPRODUCED and check_verdict("worse", "not_worse") == NOT_REPRODUCED
    assert check_verdict("worse", "not_better") == REPRODUCED and check_verdict("better", "not_better") == NOT_REPRODUCED
    assert check_verdict("unclear", "worse") == INCONCLUSIVE
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert combine([NOT_REPRODUCED, INCONCLUSIVE]) == NOT_REPRODUCED
    assert combine([REPRODUCED, NOT_REPRODUCED]) == INCONCLUSIVE
    assert combine([]) == INCONCLUSIVE


def _lazy_results(make_run, lazy8_fails: bool):
    for seed in range(3):
        make_run("lazy-reg", f"ring8_lazy1_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=1, seed=seed,
                 metrics=dict(modes=8, kl=0.05 + 0.01 * seed))
        make_run("lazy-reg/lazy-reg-small-resnet", f"lazy1_seed{seed}", lazy_interval=1, seed=seed,
                 metrics=dict(modes=900, kl=0.3 + 0.01 * seed))
        if lazy8_fails:
            make_run("lazy-reg", f"ring8_lazy8_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=8, seed=seed,
                     status="diverged")
            make_run("lazy-reg/lazy-reg-small-resnet", f"lazy8_seed{seed}", lazy_interval=8, seed=seed,
                     metrics=dict(modes=200, kl=2.0 + 0.1 * seed))
        else:
            make_run("lazy-reg", f"ring8_lazy8_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=8, seed=seed,
                     metrics=dict(modes=8, kl=0.06 - 0.01 * seed))
            make_run("lazy-reg/lazy-reg-small-resnet", f"lazy8_seed{seed}", lazy_interval=8, seed=seed,
                     metrics=dict(modes=900, kl=0.31 - 0.01 * seed))
    make_run("table1", "rpgan_r1+r2_seed0", metrics=dict(modes=1000, kl=0.08))  # not a negative-result run


@pytest.mark.parametrize("fails, verdict", [(True, REPRODUCED), (False, NOT_REPRODUCED)])
def test_lazy_section_verdict_from_runs(make_run, fails, verdict):
    _lazy_results(make_run, fails)
    results = collect(make_run.root)
    assert len(section_runs(results.runs, LAZY)) == 12
    evaluation = evaluate_section(results.runs, LAZY)
    assert evaluation["verdict"] == verdict
    assert [(group, outcome) for group, _, _, outcome, _, _ in evaluation["checks"]] == \
        [("ring8, toy_mlp", "worse" if fails else "same"), ("stackedmnist, small_resnet", "worse" if fails else "same")]


def test_tables_keep_negative_runs_apart(make_run):
    _lazy_results(make_run, True)
    tables = {t.name: t for t in all_tables(collect(make_run.root))}
    assert "negative-lazy-reg" in tables and "negative-precision" not in tables
    lazy = tables["negative-lazy-reg"].cells
    labels = list(lazy.iloc[:, 0].apply(lambda c: c.text))
    assert labels == ["ring8, toy_mlp, every step", "ring8, toy_mlp, every 8th step x 8",
                      "stackedmnist, small_resnet, every step", "stackedmnist, small_resnet, every 8th step x 8"]
    assert lazy.iloc[1]["Diverged/total"].text == "3/3"
    assert lazy.iloc[3]["KL"].mean == pytest.approx(2.1)
    table1 = tables["table1"].cells  # only the table1 run: the lazy-1 small-ResNet runs stay out of Table 1
    assert table1.iloc[0]["Modes (ours)"].n == 1
    assert not any(name.startswith("toy-") for name in tables)


def test_precision_events_and_report_section(make_run, tmp_path):
    for seed in range(2):
        for precision, kl in (("fp32", 0.5), ("bf16", 0.5), ("fp16", None)):
            ticks = [dict(tick=1, kimg=1.0, loss_G=1.0, grad_norm_real=0.1, grad_norm_fake=0.1,
                          **{"prec.G.s16.act.overflow": 0.0 if precision != "fp16" else 3.0,
                             "prec.G.s16.act.nonfinite": 0.0, "prec.D.logits.nonfinite": 0.0 if precision != "fp16" else 2.0,
                             "prec.first_nonfinite.G.s16.act": -1.0 if precision != "fp16" else 5.001,
                             "prec.first_nonfinite.D.logits": -1.0 if precision != "fp16" else 5.002})]
            make_run("precision", f"precision{precision}_seed{seed}", model="E", seed=seed,
                     model_args=dict(precision=precision), status="completed" if kl else "diverged",
                     metrics=dict(modes=500, kl=kl + 0.01 * seed) if kl else None, ticks=ticks)
    report = build_report(make_run.root, tmp_path / "out", portrait_steps=20)
    text = report.read_text()
    assert "## Negative results (paper Appendix E)" in text
    assert "IEEE FP16 mixed precision: cripples training; BFloat16 fixes it." in text
    assert "Verdict: **reproduced** (stackedmnist, E: fp16 worse -> reproduced; stackedmnist, E: bf16 same -> reproduced (secondary))" in text
    # these constructed runs carry no fingerprint, so every cell of runs is also marked stale ([a])
    assert "| stackedmnist, E, fp16 | Fail (2/2) [a] | Fail (2/2) [a] | 2/2 [a] | 10 | G.s16.act |" in text
    for name in ("negative-precision-kl", "negative-precision-grad-norms", "negative-precision-events"):
        assert (tmp_path / "out" / "figures" / f"{name}.png").exists()
    assert (tmp_path / "out" / "tables" / "negative-precision.tex").exists()
    assert "### Table `negative-precision`" not in text  # shown once, in its own section
    assert "Negative results" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize("fails", [True, False])
def test_final_kl_legend_names_the_diverged_marker_only_when_a_run_diverged(make_run, fails):
    from reports.negative import plot_final_kl

    _lazy_results(make_run, fails)
    _, ax = plot_final_kl(collect(make_run.root).runs, LAZY)
    labels = ax.get_legend_handles_labels()[1]
    assert ("diverged (at top)" in labels) is fails and len(labels) == 2 + fails
