"""Report sections (every part of report.md/html: paper Tables 1-3, figures, Appendix E): one tree of blocks, rendered to Markdown and to HTML.

A `Section` is a heading over an ordered list of blocks: a paragraph (a str, Markdown inline:
**bold**, `code`), `Bullets`, `Quote`, `Links` (a table's Markdown and LaTeX files), a
`tables.Table`, a `Figure`, or a `Section` one level down. The report is built as one such tree
(reports/build.py) and rendered twice by `to_markdown` and `to_html`, so both files hold the same
sections in the same order. A table builder (reports/registry.py) returns Tables, Figures and
Sections; a Figure is drawn only when the report is written.
"""
import base64
import dataclasses
import html
import re
from pathlib import Path
from typing import Callable, Optional

from reports.staleness import commits_note
from reports.tables import Table, render_html, render_markdown


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure written to figures/<name>.png and .pdf."""

    name: str
    title: str  # alt text, and the caption unless `caption` is given
    draw: Callable[[], tuple]  # () -> (fig, ax or axes), as the plot functions return; called once, when written
    caption: Optional[str] = None
    commits: tuple = ()  # the commits of the runs drawn (reports/staleness.commits_of); stated after the caption

    @property
    def shown_caption(self) -> str:
        caption, note = self.caption or self.title, commits_note(self.commits)
        return f"{caption.rstrip('.')}. {note}" if note else caption


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: tuple


@dataclasses.dataclass(frozen=True)
class Quote:
    text: str


@dataclasses.dataclass(frozen=True)
class Links:
    """Links to tables/<name>.md and .tex, the files every written table has."""

    name: str


@dataclasses.dataclass
class Section:
    title: str
    blocks: list = dataclasses.field(default_factory=list)

    def walk(self):
        """Every block of this section and of its sections, in report order."""
        for block in self.blocks:
            yield block
            if isinstance(block, Section):
                yield from block.walk()

    @property
    def tables(self) -> list:
        return [block for block in self.walk() if isinstance(block, Table)]

    @property
    def figures(self) -> list:
        return [block for block in self.walk() if isinstance(block, Figure)]


def tables_of(items: list) -> list:
    """The tables among a builder's items (reports/registry.py), those inside its sections included, in order."""
    return [table for item in items for table in (item.tables if isinstance(item, Section) else [item])
            if isinstance(table, Table)]


# ----------------------------------------------------------------------------------------------
# Markdown.

def _figure_markdown(figure: Figure, heading: str) -> list:
    # Under a heading that already says the caption (the Figures section) only the PDF link follows the image.
    caption = figure.shown_caption
    link = f"[PDF](figures/{figure.name}.pdf)"
    return [f"![{figure.title}](figures/{figure.name}.png)", "", link if caption == heading else f"*{caption}* ({link})", ""]


def _markdown(section: Section, level: int) -> list:
    lines = [f"{'#' * level} {section.title}", ""]
    for block in section.blocks:
        if isinstance(block, Section):
            lines += _markdown(block, level + 1)
        elif isinstance(block, Table):
            lines.append(render_markdown(block))  # ends with a newline: a blank line follows
        elif isinstance(block, Figure):
            lines += _figure_markdown(block, section.title)
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Quote):
            lines += [f"> {block.text}", ""]
        elif isinstance(block, Links):
            lines += [f"[Markdown](tables/{block.name}.md) · [LaTeX](tables/{block.name}.tex)", ""]
        else:
            lines += [block, ""]
    return lines


def to_markdown(report: Section) -> str:
    """report.md: the report section as level-1 heading, its sections below."""
    return "\n".join(_markdown(report, 1)).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# HTML (figures embedded, so the page is one self-contained file).

def inline_html(text: str) -> str:
    """Escape `text` and turn its Markdown **bold** and `code` into HTML."""
    escaped = html.escape(text, quote=False)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped))


def _figure_html(figure: Figure, heading: str, figure_dir: Path) -> str:
    data = base64.b64encode((figure_dir / f"{figure.name}.png").read_bytes()).decode()
    caption = figure.shown_caption
    return (f'<figure><img alt="{html.escape(figure.title)}" src="data:image/png;base64,{data}">'
            + ("" if caption == heading else f"<figcaption>{html.escape(caption)}</figcaption>") + "</figure>")


def _html(section: Section, level: int, figure_dir: Path) -> list:
    out = [f"<h{level}>{inline_html(section.title)}</h{level}>"]
    for block in section.blocks:
        if isinstance(block, Section):
            out += _html(block, level + 1, figure_dir)
        elif isinstance(block, Table):
            out.append(render_html(block))
        elif isinstance(block, Figure):
            out.append(_figure_html(block, section.title, figure_dir))
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Quote):
            out.append(f"<blockquote>{inline_html(block.text)}</blockquote>")
        elif isinstance(block, Links):
            out.append(f'<p><a href="tables/{html.escape(block.name)}.md">Markdown</a> · '
                       f'<a href="tables/{html.escape(block.name)}.tex">LaTeX</a></p>')
        else:
            out.append(f"<p>{inline_html(block)}</p>")
    return out


STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border-top:1px solid #ccc;padding:2px 8px;text-align:right}"
         "td:first-child,th:first-child{text-align:left}caption{font-weight:bold;text-align:left}"
         "img{max-width:100%}.note{font-size:85%;color:#444;margin:0.2em 0}")


def to_html(report: Section, figure_dir) -> str:
    """report.html: the same sections as to_markdown, each figure embedded from figure_dir/<name>.png."""
    body = "\n".join(_html(report, 1, Path(figure_dir)))
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")
