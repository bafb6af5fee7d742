"""`r3bench report [RESULTS_DIR] [--out DIR]`: tables and figures from whatever runs exist (DESIGN.md)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="build tables (md + tex), figures and report.md/html from run folders")
    parser.add_argument("results_dir", nargs="?", default="results", metavar="RESULTS_DIR",
                        help="folder holding run folders at any depth (default: results)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: RESULTS_DIR/report)")
    parser.add_argument("--readme", metavar="README", help="also splice the tables and key figures into README "
                        "(between its <!-- results:start/end --> markers)")
    parser.add_argument("--check", action="store_true", help="exit 1 when any table holds stale runs (their fingerprint "
                        "differs from what this code computes, or they have none)")
    parser.set_defaults(handler=run_report)


def run_report(args) -> int:
    from pathlib import Path

    from reports.build import build_report
    from roadmap.errors import ConfigError

    # Output paths are checked before any table is built, so a mistake costs nothing and reads as one line.
    if Path(args.results_dir).exists() and not Path(args.results_dir).is_dir():
        raise ConfigError(f"RESULTS_DIR: {args.results_dir!r} is a file, not a folder of run folders")
    out = Path(args.out) if args.out else Path(args.results_dir) / "report"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {str(out)!r} is a file; give a folder for the report")
    if args.readme and not Path(args.readme).is_file():
        raise ConfigError(f"--readme: {args.readme!r} is not an existing file (it must hold the <!-- results:start/end --> markers)")
    stale = []
    report = build_report(args.results_dir, args.out, stale_out=stale)
    print(f"report: {report} (and {report.with_suffix('.html').name} beside it)")
    if args.readme:
        from reports.readme import update_readme

        command = "r3bench report " + args.results_dir + (f" --out {args.out}" if args.out else "") + f" --readme {args.readme}"
        update_readme(report.parent, args.readme, command)
        print(f"README results section: {args.readme}")
    if stale:
        print(f"stale runs in {len(stale)} table(s): {', '.join(stale)} (fingerprints differ from this code's; see the report)")
        if args.check:
            return 1
    return 0
