"""Appendix E negative-result sections: verdict rules on synthetic results, tables, report wiring."""
import pytest

from reports.build import build_report
from reports.collect import collect
from reports.negative import SECTIONS, check_outcome, evaluate_section, section_runs
from reports.verdicts import CONTRADICTED, INCONCLUSIVE, NOT_TESTED, REPRODUCED
from reports.catalog import all_tables

LAZY = next(s for s in SECTIONS if s.name == "lazy-reg")
PRECISION = next(s for s in SECTIONS if s.name == "precision")


BASE = {str(seed): 0.10 + 0.01 * seed for seed in range(5)}


@pytest.mark.parametrize("variant, expect, outcome", [
    ({s: 3 * v * (1 + 0.02 * int(s)) for s, v in BASE.items()}, "worse", REPRODUCED),  # KL x3 on every seed
    ({s: v * (1 + 0.01 * (-1) ** int(s)) for s, v in BASE.items()}, "worse", CONTRADICTED),  # within x1.25: TOST
    ({s: v * (1 + 0.01 * (-1) ** int(s)) for s, v in BASE.items()}, "not_worse", REPRODUCED),  # bf16 "fixes it"
    ({s: v / 3 * (1 + 0.02 * int(s)) for s, v in BASE.items()}, "not_better", CONTRADICTED),  # a clear gain
    ({s: None for s in BASE}, "worse", REPRODUCED),  # 5 of 5 seeds diverge only in the variant: McNemar p = 1/32
    ({s: (None if int(s) < 3 else v) for s, v in BASE.items()}, "worse", INCONCLUSIVE),  # 3 discordant seeds: too few
    ({s: None for s in BASE}, "not_worse", CONTRADICTED),
])
def test_check_outcome(variant, expect, outcome):
    assert check_outcome(BASE, variant, expect).outcome == outcome


def test_noisy_three_seeds_are_inconclusive_with_the_detectable_effect():
    verdict = check_outcome({"0": 0.1, "1": 0.5, "2": 0.9}, {"0": 0.5, "1": 0.9, "2": 1.0}, "worse")
    assert verdict.outcome == INCONCLUSIVE and verdict.detectable > 1 and "could detect" in verdict.note


def _lazy_results(make_run, lazy8_fails: bool, learnt: bool = True):
    """Stacked MNIST's every-step runs learnt (1000 modes, KL <= 0.1: the criterion in reports/claims.yaml) or not
    (900 modes, KL 0.3: a smoke run); ring8 has no criterion."""
    for seed in range(3):
        make_run("lazy-reg", f"ring8_lazy1_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=1, seed=seed,
                 metrics=dict(modes=8, kl=0.05 + 0.01 * seed))
        make_run("lazy-reg/lazy-reg-small-resnet", f"lazy1_seed{seed}", lazy_interval=1, seed=seed,
                 metrics=dict(modes=1000, kl=0.09 + 0.003 * seed) if learnt else dict(modes=900, kl=0.3 + 0.01 * seed))
        if lazy8_fails:
            make_run("lazy-reg", f"ring8_lazy8_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=8, seed=seed,
                     status="diverged")
            make_run("lazy-reg/lazy-reg-small-resnet", f"lazy8_seed{seed}", lazy_interval=8, seed=seed,
                     metrics=dict(modes=200, kl=2.0 + 0.1 * seed))
        else:
            make_run("lazy-reg", f"ring8_lazy8_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=8, seed=seed,
                     metrics=dict(modes=8, kl=0.06 - 0.01 * seed))
            make_run("lazy-reg/lazy-reg-small-resnet", f"lazy8_seed{seed}", lazy_interval=8, seed=seed,
                     metrics=dict(modes=1000, kl=0.093 - 0.003 * seed))
    make_run("table1", "rpgan_r1+r2_seed0", metrics=dict(modes=1000, kl=0.08))  # not a negative-result run


# 3 seeds: 3 lazy seeds diverging alone is not significant (McNemar needs 5), so "fails" stays inconclusive although
# the small ResNet's KL is clearly worse; without failures the small ResNet's KLs agree within x1.25 (TOST): contradicted.
# A baseline that did not learn leaves its group untested, and the section's verdict comes from the others.
@pytest.mark.parametrize("fails, learnt, verdict, per_group", [
    (True, True, INCONCLUSIVE, [INCONCLUSIVE, REPRODUCED]),
    (False, True, CONTRADICTED, [INCONCLUSIVE, CONTRADICTED]),
    (True, False, INCONCLUSIVE, [INCONCLUSIVE, NOT_TESTED]),
])
def test_lazy_section_verdict_from_runs(make_run, fails, learnt, verdict, per_group):
    _lazy_results(make_run, fails, learnt)
    results = collect(make_run.root)
    assert len(section_runs(results.runs, LAZY)) == 12
    evaluation = evaluate_section(results.runs, LAZY)
    assert evaluation["verdict"].outcome == verdict
    assert [(group, v.outcome) for group, _, _, v, _ in evaluation["checks"]] == \
        list(zip(["ring8, toy_mlp", "stackedmnist, small_resnet"], per_group))


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
        for precision, kl in (("fp32", 0.05), ("bf16", 0.05), ("fp16", None)):  # fp32 learnt: KL <= 0.1, 1000 modes
            ticks = [dict(tick=1, kimg=1.0, loss_G=1.0, grad_norm_real=0.1, grad_norm_fake=0.1,
                          **{"prec.G.s16.act.overflow": 0.0 if precision != "fp16" else 3.0,
                             "prec.G.s16.act.nonfinite": 0.0, "prec.D.logits.nonfinite": 0.0 if precision != "fp16" else 2.0,
                             "prec.first_nonfinite.G.s16.act": -1.0 if precision != "fp16" else 5.001,
                             "prec.first_nonfinite.D.logits": -1.0 if precision != "fp16" else 5.002})]
            make_run("precision", f"precision{precision}_seed{seed}", model="E", seed=seed,
                     model_args=dict(precision=precision), status="completed" if kl else "diverged",
                     metrics=dict(modes=1000, kl=kl + 0.01 * seed) if kl else None, ticks=ticks)
    report = build_report(make_run.root, tmp_path / "out", portrait_steps=20)
    text = report.read_text()
    assert "## Negative results (paper Appendix E)" in text
    assert "IEEE FP16 mixed precision: cripples training; BFloat16 fixes it." in text
    # 2 seeds diverging only in fp16 cannot be significant (McNemar needs 5): inconclusive, saying so; bf16's KLs
    # equal fp32's on both seeds: equivalent within the margin, so "bf16 is not worse" is reproduced.
    assert "Verdict: **inconclusive** (stackedmnist, E: fp16 inconclusive, p = 0.25; 2 seed(s) one way, 0 the other; " \
           "detecting it needs >= 5 discordant seeds all one way: impossible with 2 seeds" in text
    assert "stackedmnist, E: bf16 reproduced, KL x1, p = 1; equivalent within the margin 1.25 (TOST) (secondary))" in text
    # these constructed runs carry no fingerprint, so every cell of runs is also marked stale ([a])
    fp16 = next(line for line in text.splitlines() if line.startswith("| stackedmnist, E, fp16 |"))
    assert fp16.startswith("| stackedmnist, E, fp16 | Fail (2/2) [a] | Fail (2/2) [a] |") and fp16.endswith("| 2/2 [a] | 6 | 0 | 4 | G.s16.act |")  # overflow, underflow, non-finite
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


def test_a_section_whose_only_baseline_did_not_learn_is_not_tested(make_run):
    for seed in range(3):
        for k in (1, 8):
            make_run("lazy-reg/lazy-reg-small-resnet", f"lazy{k}_seed{seed}", lazy_interval=k, seed=seed,
                     metrics=dict(modes=480, kl=2.5 + 0.1 * seed + 0.5 * (k == 8)))  # colour noise at 4 kimg
    evaluation = evaluate_section(collect(make_run.root).runs, LAZY)
    assert evaluation["verdict"].outcome == NOT_TESTED
    note = evaluation["checks"][0][3].note
    assert note.startswith("the baseline runs did not learn: lazy1_seed0: modes 480 (needs >= 990)")
