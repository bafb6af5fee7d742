"""Report sections (reports/sections.py): one tree rendered to Markdown and HTML; a table with a figure plugs in from one module."""
import importlib
import re
import sys
import textwrap

import pytest

from reports import registry
from reports.build import build_report

# A table with a figure, in a section of its own: one module, registered like every table, nothing else edited.
MODULE = '''
    """Plug-in report section: the runs that feed `demo`, their mean modes (a table) and modes per seed (a figure)."""
    import functools

    import pandas as pd

    from reports.figures import figure_for
    from reports.registry import register_table
    from reports.sections import Figure, Section
    from reports.tables import Cell, Table, feeds_mask, metric_values


    def plot_modes(runs, ax=None):
        fig, ax = figure_for(ax, figsize=(3, 2))
        ax.bar(runs["seed"].astype(str), metric_values(runs, "modes"))
        return fig, ax


    @register_table("demo", order=35, name="test.demo-section")
    def demo_section(results):
        part = results.runs[feeds_mask(results.runs, "demo")]
        if not len(part):
            return []
        values = metric_values(part, "modes")
        header = ["Runs", "Mean modes"]
        table = Table("demo", "A plug-in table", header,
                      pd.DataFrame([[Cell(text=str(len(part))), Cell(text=f"{sum(values) / len(values):.1f}")]], columns=header))
        return [Section("Demo section", ["Mean modes of the `demo` runs.", table,
                                         Figure("demo-modes", "Modes per seed", functools.partial(plot_modes, part))])]
'''


@pytest.fixture
def demo_module(tmp_path, monkeypatch):
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "demo_report_section.py").write_text(textwrap.dedent(MODULE).lstrip())
    monkeypatch.syspath_prepend(str(folder))
    yield importlib.import_module("demo_report_section")
    registry.unregister_table("test.demo-section")
    del sys.modules["demo_report_section"]


def _markdown_headings(text: str) -> list:
    return [(len(hashes), title.replace("`", "")) for hashes, title in re.findall(r"^(#+) (.+)$", text, re.MULTILINE)]


def _html_headings(page: str) -> list:
    return [(int(level), re.sub(r"<[^>]+>", "", title).replace("&#x27;", "'"))
            for level, title in re.findall(r"<h([1-6])>(.*?)</h\1>", page)]


def test_a_table_with_a_figure_from_one_module_is_in_both_renderings_at_the_same_place(make_run, demo_module, tmp_path):
    for seed, modes in enumerate((10.0, 13.0)):
        make_run("demo", f"run-s{seed}", seed=seed, feeds="demo", metrics=dict(modes=modes, kl=1.0))
    for seed in range(2):
        make_run("lazy-reg", f"ring8_lazy1_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=1, seed=seed,
                 metrics=dict(modes=8, kl=0.05))
        make_run("lazy-reg", f"ring8_lazy8_seed{seed}", model="toy_mlp", dataset="ring8", lazy_interval=8, seed=seed,
                 metrics=dict(modes=8, kl=0.06))
    make_run("table1", "rpgan-r1r2-s0", metrics=dict(modes=5.0, kl=1.0))
    out = tmp_path / "report"
    text = build_report(make_run.root, out, portrait_steps=20).read_text()
    page = (out / "report.html").read_text()

    # One tree, two renderings: the same headings at the same levels in the same order.
    headings = _markdown_headings(text)
    assert headings == _html_headings(page)
    top = [title for level, title in headings if level == 2]
    assert top[:3] == ["Claims scoreboard", "Tables", "Figures"] and top[-1] == "Provenance"
    assert top.index("Demo section") == top.index("Negative results (paper Appendix E)") - 1  # order 35 before 60
    assert (2, "Table demo") not in headings and (3, "Table demo") not in headings  # shown in its section only

    section = text[text.index("## Demo section"):text.index("## Negative results")]
    assert "Mean modes of the `demo` runs." in section and "| 2 | 11.5 |" in section
    assert "![Modes per seed](figures/demo-modes.png)" in section and "*Modes per seed* ([PDF](figures/demo-modes.pdf))" in section
    html_section = page[page.index("<h2>Demo section</h2>"):page.index("<h2>Negative results")]
    assert "Mean modes of the <code>demo</code> runs." in html_section and '<table id="demo">' in html_section
    assert '<img alt="Modes per seed" src="data:image/png;base64,' in html_section
    assert (out / "figures" / "demo-modes.png").read_bytes()[:4] == b"\x89PNG" and (out / "figures" / "demo-modes.pdf").exists()
    assert (out / "tables" / "demo.md").exists() and (out / "tables" / "demo.tex").exists()
    assert "## Unclaimed runs" not in text


def test_plots_draw_into_a_given_axes(make_run):
    """rliable's convention: a plot given `ax` draws there and returns it, so panels of different plots compose."""
    from reports.collect import collect
    from reports.figures import new_figure, plot_generator_loss, plot_gradient_norms
    from reports.tables import table1_groups

    make_run("table1", "rpgan-r1r2-s0", metrics=dict(modes=5.0, kl=1.0))
    results = collect(make_run.root)
    groups = table1_groups(results.runs)
    fig, axes = new_figure(1, 2)
    assert plot_generator_loss(results.ticks, groups, ax=axes[0]) == (fig, axes[0])
    assert plot_gradient_norms(results.ticks, groups, ax=axes[1]) == (fig, axes[1])
    assert axes[0].get_yscale() == "log" and axes[1].get_ylabel() == r"mean $\|\nabla_x D\|$" and len(fig.axes) == 2
