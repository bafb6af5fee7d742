"""Table 2's rows A -> E as registered configurations: every module of this package registers its own (paper Section 3).

A new configuration is one new file here (or in a plug-in package, see roadmap/registry.py):
the package imports each of its modules, so there is no list to edit.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):  # private helpers (_builders) register nothing
        importlib.import_module(f"{__name__}.{_module.name}")

ROWS = ("A", "B", "C1", "C", "D1", "D", "E1", "E")  # Table 2 order (data: the paper's row order)


def describe_models() -> list:
    """(row id, one-line description) for `r3bench list`, in Table 2 order."""
    from roadmap.registry import model_builder

    return [(row, (model_builder(row).__doc__ or "").strip().splitlines()[0]) for row in ROWS]
