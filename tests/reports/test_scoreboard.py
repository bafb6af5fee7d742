"""The claims scoreboard on constructed Table 1 runs (issue 24): the learning criterion, then the pre-registered tests."""
from reports.collect import collect
from reports.scoreboard import judge, load_claims, scoreboard
from reports.verdicts import CONTRADICTED, INCONCLUSIVE, NOT_TESTED, REPRODUCED

CLAIMS = {claim["id"]: claim for claim in load_claims()}


def _table1(make_run, seeds=5, rpgan_kl=0.05, r1_diverges=False):
    for seed in range(seeds):
        for loss in ("rpgan", "gan"):
            base_kl = rpgan_kl if loss == "rpgan" else 0.5 + 0.01 * seed  # GAN + R1 + R2 need not meet the criterion
            make_run("x", f"{loss}_r1+r2_seed{seed}", loss=loss, penalties=["r1", "r2"], seed=seed, feeds="table1",
                     metrics=dict(modes=1000, kl=base_kl + 0.001 * seed))
            make_run("x", f"{loss}_r1_seed{seed}", loss=loss, penalties=["r1"], seed=seed, feeds="table1",
                     status="diverged" if r1_diverges else "completed",
                     metrics=None if r1_diverges else dict(modes=990, kl=0.2 + 0.001 * seed))
    return collect(make_run.root).runs


def test_no_divergence_in_five_learnt_seeds_contradicts_fail_and_the_order_is_reproduced(make_run):
    runs = _table1(make_run)
    for loss in ("rpgan", "gan"):  # 0 of 5 diverged: the rate's upper bound 0.45 < the claimed 0.5
        assert judge(CLAIMS[f"table1-fail-{loss}"], runs)[0].outcome == CONTRADICTED
    order = judge(CLAIMS["table1-order"], runs)[0]
    assert order.outcome == REPRODUCED and order.effect > 5  # GAN + R1 + R2's KL ~10x RpGAN's


def test_five_seeds_failing_only_with_r1_reproduce_fail(make_run):
    runs = _table1(make_run, r1_diverges=True)
    for loss in ("rpgan", "gan"):  # 5 of 5 discordant seeds: p = 1/32
        verdict = judge(CLAIMS[f"table1-fail-{loss}"], runs)[0]
        assert verdict.outcome == REPRODUCED and abs(verdict.p_value - 1 / 32) < 1e-12


def test_a_reference_seed_that_did_not_learn_makes_every_table1_claim_untested(make_run):
    runs = _table1(make_run, rpgan_kl=0.2)
    for claim in ("table1-fail-rpgan", "table1-fail-gan", "table1-order", "figure1-blowup", "gradient-balance"):
        verdict = judge(CLAIMS[claim], runs)[0]
        assert verdict.outcome == NOT_TESTED and "did not learn" in verdict.note and "rpgan_r1+r2_seed0" in verdict.note


def test_three_seeds_leave_fail_inconclusive_and_the_table_shows_every_claim(make_run):
    runs = _table1(make_run, seeds=3)
    fail = judge(CLAIMS["table1-fail-gan"], runs)[0]
    assert fail.outcome == INCONCLUSIVE  # 0 of 3: the upper bound 0.63 is above 0.5, and McNemar needs 5 seeds
    table = scoreboard(runs)
    assert len(table.cells) == len(CLAIMS)
    verdicts = {row["Claim"].text: row["Verdict"].text for _, row in table.cells.iterrows()}
    assert verdicts[CLAIMS["table2-order"]["claim"]] == NOT_TESTED
