"""Report tables plug in through reports/registry.py: a table registered from a test module alone claims its runs."""
import pandas as pd
import pytest

from reports import registry
from reports.build import build_report
from reports.catalog import all_tables, claimed_feeds, unclaimed_runs
from reports.collect import collect
from reports.tables import Cell, Table, feeds_mask, metric_values


@pytest.fixture
def extra_table():
    """A 'table9' builder registered here (no edit of any package list): the mean modes of its runs."""

    @registry.register_table("table9", order=35, name="test.table9")
    def table9(results):
        part = results.runs[feeds_mask(results.runs, "table9")]
        if not len(part):
            return []
        values = metric_values(part, "modes")
        header = ["Runs", "Mean modes"]
        return [Table("table9", "A plug-in table", header,
                      pd.DataFrame([[Cell(text=str(len(part))), Cell(text=f"{sum(values) / len(values):.1f}")]], columns=header))]

    yield table9
    registry.unregister_table("test.table9")


def test_builtin_registrations_claim_the_paper_tables():
    feeds = claimed_feeds()
    assert {"table1", "table2", "table3", "toy2d-ablation", "stability", "lazy-reg", "precision", "activations",
            "groupnorm", "beta2"} <= feeds
    names = [entry.name for entry in registry.table_entries()]
    assert names.index("reports.tables._table1") < names.index("reports.tables._table2") < names.index("negative") \
        < names.index("reports.stability.stability_tables")


def test_plugin_table_claims_its_runs(make_run, extra_table, tmp_path):
    for seed, modes in enumerate((10.0, 13.0)):
        make_run("mystery", f"run-s{seed}", seed=seed, feeds="table9", metrics=dict(modes=modes, kl=1.0))
    make_run("table1", "rpgan-r1r2-s0", metrics=dict(modes=5.0, kl=1.0))
    results = collect(make_run.root)
    assert "table9" in claimed_feeds() and len(unclaimed_runs(results.runs)) == 0
    names = [t.name for t in all_tables(results)]
    assert names.index("table1") < names.index("table9")  # order 35: after Table 1
    text = build_report(make_run.root, tmp_path / "report", portrait_steps=20).read_text()
    assert "### Table `table9`" in text and "| 2 | 11.5 |" in text and "## Unclaimed runs" not in text
    assert (tmp_path / "report" / "tables" / "table9.tex").exists()


def test_unregistered_feeds_are_unclaimed(make_run):
    make_run("mystery", "run-s0", feeds="table9", metrics=dict(modes=1.0, kl=1.0))
    assert list(unclaimed_runs(collect(make_run.root).runs)["run"]) == ["run-s0"]


def test_register_table_rejects_a_non_string_feeds_name():
    with pytest.raises(TypeError, match="feeds names"):
        registry.register_table(2)
