"""The README's results section is spliced from a built report, between its markers."""
import pytest

from reports.readme import END, START, update_readme
from roadmap.errors import ConfigError


def test_section_replaces_only_the_marked_text(tmp_path):
    report = tmp_path / "docs" / "quick"
    (report / "tables").mkdir(parents=True)
    (report / "figures").mkdir()
    (report / "tables" / "toy-mixtures.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    (report / "tables" / "provenance.md").write_text("| hidden |\n")
    (report / "figures" / "toy-samples-x.png").write_bytes(b"png")
    (report / "figures" / "grad-norms.png").write_bytes(b"png")
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{START}\nold\n{END}\n\n## after\n")
    update_readme(report, readme, "r3bench report results/quick --out docs/quick --readme README.md")
    text = readme.read_text()
    assert text.startswith("# title\n\n" + START) and text.endswith(END + "\n\n## after\n")
    assert "| 1 | 2 |" in text and "hidden" not in text and "old" not in text
    assert "![toy-samples-x](docs/quick/figures/toy-samples-x.png)" in text and "grad-norms" not in text


def test_missing_markers_is_a_clear_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ConfigError, match="markers"):
        update_readme(tmp_path, readme, "cmd")
