"""`r3bench report [RESULTS_DIR] [--out DIR]`: tables and figures from whatever runs exist (DESIGN.md)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="build tables (md + tex), figures and report.md/html from run folders")
    parser.add_argument("results_dir", nargs="?", default="results", metavar="RESULTS_DIR",
                        help="folder holding run folders at any depth (default: results)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: RESULTS_DIR/report)")
    parser.add_argument("--readme", metavar="README", help="also splice the tables and key figures into README "
                        "(between its <!-- results:start/end --> markers)")
    parser.set_defaults(handler=run_report)


def run_report(args) -> int:
    from reports.build import build_report

    report = build_report(args.results_dir, args.out)
    print(f"report: {report} (and {report.with_suffix('.html').name} beside it)")
    if args.readme:
        from reports.readme import update_readme

        command = "r3bench report " + args.results_dir + (f" --out {args.out}" if args.out else "") + f" --readme {args.readme}"
        update_readme(report.parent, args.readme, command)
        print(f"README results section: {args.readme}")
    return 0
