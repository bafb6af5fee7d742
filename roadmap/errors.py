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
