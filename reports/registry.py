"""Registry of report table builders keyed by the `feeds` name their runs declare (DESIGN.md: a report table, with its figures, is one new file).

A table builder takes the collected `Results` and returns a list of report items (empty without
data), each shown in its place (reports/sections.py): a `tables.Table` under "Tables", a
`sections.Figure` under "Figures", a `sections.Section` on its own with the tables and figures it
holds (Appendix E, the stability map), or a str, a note under "Figures" on a figure left out.
`@register_table("table2")` records a builder together with the `feeds` names whose runs it
claims; reports.catalog imports every module of the `reports` package once, so a new table is a
new module with a decorated builder and no list elsewhere to edit. Runs whose `feeds` no builder
claims are the report's "Unclaimed runs". This module imports nothing from the package, so every
report module can register without an import cycle.
"""
import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class TableEntry:
    name: str  # the builder's name (unique; a re-registration under the same name replaces it)
    feeds: tuple  # `feeds` names whose runs this builder claims; () for tables built from analyses (DiracGAN)
    builder: Callable  # results -> [Table, Figure, Section or str]
    order: float  # position in the report (Tables 1-3 first); ties keep registration order


_entries: dict = {}


def register_table(*feeds: str, order: float = 100.0, name: str = None):
    """Decorator: register `builder(results) -> [Table, Figure, Section or str]` as claiming the runs of `feeds` (zero or
    more names; none for a builder of figures that read runs other builders claim)."""
    for value in feeds:
        if not isinstance(value, str) or not value:
            raise TypeError(f"register_table: feeds names are non-empty strings, got {value!r}")

    def decorator(builder):
        key = name or f"{builder.__module__}.{builder.__qualname__}"
        _entries.pop(key, None)  # re-registration (a reloaded module) moves to the end instead of doubling
        _entries[key] = TableEntry(key, tuple(feeds), builder, float(order))
        return builder

    return decorator


def unregister_table(name: str) -> None:
    """Drop a registration (tests that register a table of their own clean up with this)."""
    _entries.pop(name, None)


def table_entries() -> list:
    """Registered entries in report order (order, then registration order)."""
    indexed = list(enumerate(_entries.values()))
    return [entry for _, entry in sorted(indexed, key=lambda item: (item[1].order, item[0]))]


def registered_feeds() -> set:
    """Every `feeds` name some registered table claims."""
    return {feed for entry in _entries.values() for feed in entry.feeds}
