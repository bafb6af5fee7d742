"""Splice a built report's tables and key figures into README.md (the results of the README's main job)."""
import os
from pathlib import Path

from roadmap import files
from roadmap.errors import ConfigError

START, END = "<!-- results:start -->", "<!-- results:end -->"
BOARD_START, BOARD_END = "<!-- scoreboard:start -->", "<!-- scoreboard:end -->"  # near the top: the README opens with it
SKIPPED_TABLES = ("provenance", "negative-", "scoreboard")  # provenance stays in report.md; negative results have their own section
README_FIGURES = ("toy-samples", "dirac", "figure1", "stability-map")  # figure-name prefixes worth a place in the README


def readme_section(report_dir, readme_path, command: str) -> str:
    """Markdown for the README: every table of the report and the key figures, linked relative to the README."""
    report_dir, base = Path(report_dir), Path(readme_path).resolve().parent
    link = lambda path: os.path.relpath(Path(path).resolve(), base)  # noqa: E731
    lines = [START, "## Results at CPU scale", "",
             f"Spliced from the report of this machine's runs (`r3bench run quick`, `r3bench run table1`, ...) by "
             f"`{command}`; full report with every figure, LaTeX tables and provenance: "
             f"[{link(report_dir / 'report.md')}]({link(report_dir / 'report.md')}). Regenerate with the same command.", ""]
    for table in sorted((report_dir / "tables").glob("*.md")):
        if not table.stem.startswith(SKIPPED_TABLES):
            lines += [table.read_text().rstrip(), ""]
    for figure in sorted((report_dir / "figures").glob("*.png")):
        if figure.stem.startswith(README_FIGURES):
            lines += [f"![{figure.stem}]({link(figure)})", ""]
    return "\n".join(lines + [END])


def update_readme(report_dir, readme_path, command: str) -> None:
    """Replace the text between the results markers of README.md (atomically)."""
    readme_path = Path(readme_path)
    text = readme_path.read_text()
    if START not in text or END not in text:
        raise ConfigError(f"--readme: {readme_path} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    text = head + readme_section(report_dir, readme_path, command) + tail
    board = Path(report_dir) / "tables" / "scoreboard.md"
    if BOARD_START in text and BOARD_END in text and board.exists():
        before, rest = text.split(BOARD_START, 1)
        text = before + BOARD_START + "\n" + board.read_text().rstrip() + "\n" + BOARD_END + rest.split(BOARD_END, 1)[1]
    files.write_text(readme_path, text)
