"""The `r3bench` command line (DESIGN.md, command-line contract): one sub-command per task.

Each package contributes its sub-commands through a `register(subparsers)` function in its
`commands` module; user mistakes (ConfigError) print one line and exit 2, no traceback.
"""
import argparse
import importlib
import sys

from roadmap.errors import ConfigError

COMMAND_MODULES = (
    "runners.commands",
    "toy2d.commands",
    "roadmap.commands",
    "stackedmnist.commands",
    "reports.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r3bench", description="Reproduce the R3GAN roadmap, step by step.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    from runners.job import one_line_warnings

    one_line_warnings()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may come after options too (`run quick --out X loss=gan`)
    if extra and hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except ConfigError as error:
        print(f"r3bench {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk on any write path (experiment.json, summaries, reports): one line
        from roadmap.files import readable_write_error

        readable = readable_write_error(error, error.filename or "a results file")
        if readable is None:
            raise
        print(f"r3bench {args.command}: error: {readable}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM/SIGHUP turned into one by runners.launch
        message = getattr(interrupt, "message", None)
        print(f"r3bench {args.command}: interrupted" + (f" ({message})" if message else ""), file=sys.stderr)
        return 128 + int(getattr(interrupt, "signum", 2))


if __name__ == "__main__":
    sys.exit(main())
