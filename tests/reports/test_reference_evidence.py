"""The committed evidence (results/reference) is current and its scoreboard is the one committed (issues 24, 25).

Guards the issue-25 acceptance lines against later changes: a change to a network, loss or schedule that moves a
fingerprint makes the committed runs stale and fails here, not only at `r3bench report --check` by hand.
"""
from pathlib import Path

import pytest

from reports.collect import collect
from reports.scoreboard import load_claims, scoreboard
from reports.staleness import mark_stale
from reports.tables import render_markdown

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference():
    results = collect(REPO / "results" / "reference")
    results.runs = mark_stale(results.runs)
    return results


def test_every_committed_run_is_current_by_fingerprint(reference):
    stale = reference.runs.loc[reference.runs["stale"].notna(), "run_dir"].tolist()
    assert len(reference.runs) > 300 and stale == []


def test_the_committed_scoreboard_is_the_one_this_code_computes_and_every_cpu_claim_has_a_final_verdict(reference):
    board = scoreboard(reference.runs, reference.dirac, set())
    assert render_markdown(board) == (REPO / "docs" / "report" / "tables" / "scoreboard.md").read_text()
    verdicts = [row["Verdict"].text for _, row in board.cells.iterrows()]
    testable = [verdict for claim, verdict in zip(load_claims(), verdicts) if claim["kind"] != "not_tested"]
    assert len(testable) == 12  # Table 1 (3), Figure 1, gradient balance, lazy (4), Dirac (3)
    assert all(v.split(" (")[0] in ("reproduced", "contradicted", "inconclusive") and "provisional" not in v
               for v in testable), testable


def test_sample_grid_labels_fit_their_panels(reference):
    """Every column label of the committed Stacked MNIST sample grids fits its 2.4-inch panel at 8 pt: a line of at
    most 38 characters (lazy-reg's 'small_resnet: ... kimg 8.0' ran into its neighbour on one line of 45)."""
    from reports.gallery import stackedmnist_sample_grids

    grids = [item for item in stackedmnist_sample_grids(reference) if not isinstance(item, str)]
    labels = {label for grid in grids for _, label, _ in grid.draw.args[0]}
    assert len(grids) >= 5 and any("\n" in label for label in labels)
    assert max(len(line) for label in labels for line in label.splitlines()) <= 38
