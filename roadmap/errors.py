"""User-facing configuration errors: one clear line naming the field (DESIGN.md, command-line contract)."""
import difflib


class ConfigError(ValueError):
    """A mistake in user input (name, key, value); the CLI prints it as one line and exits 2."""


def closest(name: str, choices) -> str:
    """Return ' (did you mean X?)' for the nearest valid choice, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown(kind: str, name, choices) -> ConfigError:
    """Build the error for an unknown name of some kind, listing the valid ones when few."""
    choices = sorted(str(c) for c in choices)
    listing = f"; valid: {', '.join(choices)}" if len(choices) <= 12 else ""
    return ConfigError(f"unknown {kind} {name!r}{closest(name, choices)}{listing}")


def check_int(field: str, value, minimum: int = 0, maximum=None) -> int:
    """Return `value` if it is an integer (not a bool) in [minimum, maximum], else raise ConfigError naming `field`.

    The one copy of the "must be an integer >= k" check (issue 13); `maximum` None means unbounded.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field}: must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{field}: must be an integer <= {maximum}, got {value!r}")
    return value


def check_number(field: str, value, minimum=None, strictly_positive: bool = False) -> float:
    """Return `value` if it is a finite real number (>= minimum, or > minimum when strictly_positive).

    NaN and infinity are refused: a NaN compares false with everything, so it would silently turn
    checks such as divergence detection off, and an infinite length never finishes.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field}: expected a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{field}: must be a finite number, got {value!r}")
    if minimum is not None and (value < minimum or (strictly_positive and value <= minimum)):
        raise ConfigError(f"{field}: must be {'>' if strictly_positive else '>='} {minimum}, got {value!r}")
    return value


def check_options(kind: str, options, allowed, suggest=()) -> None:
    """Reject a keyword not in `allowed`, naming the closest of `allowed` and `suggest` (e.g. a builder's named parameters)."""
    for key in options:
        if key not in allowed:
            raise unknown(kind, key, list(allowed) + [name for name in suggest if name not in allowed])
