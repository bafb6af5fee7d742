"""Table 2's rows A -> E as registered configurations; importing this package registers all eight (paper Section 3)."""
from roadmap.configs import a, b, c, c1, d, d1, e, e1  # noqa: F401  (each module registers one row)

ROWS = ("A", "B", "C1", "C", "D1", "D", "E1", "E")  # Table 2 order


def describe_models() -> list:
    """(row id, one-line description) for `r3bench list`, in Table 2 order."""
    from roadmap.registry import model_builder

    return [(row, (model_builder(row).__doc__ or "").strip().splitlines()[0]) for row in ROWS]
