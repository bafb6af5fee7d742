"""`r3bench dirac`: DiracGAN/DiracRpGAN Jacobian eigenvalues and phase portraits (paper Appendix B)."""
import json
import math
from pathlib import Path

from roadmap.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser("dirac", help="DiracGAN/DiracRpGAN eigenvalues at the equilibrium (Appendix B)")
    parser.add_argument("--gamma", type=float, default=1.0, help="penalty weight gamma (>= 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", metavar="DIR", help="also write phase portraits (PNG) into DIR")
    parser.add_argument("--discrete", metavar="DIR", help="also run the discrete-time iteration the trainer runs (Adam, "
                        "alternating steps, lazy 1 and 8) over an lr x gamma grid; write dirac-discrete.json and its map "
                        "into DIR (~8 min on one core)")
    parser.set_defaults(handler=run_dirac)


def write_analysis(gamma: float, out_dir) -> dict:
    """dirac.json and the phase portraits (no penalty vs R1, for both losses) into out_dir."""
    import matplotlib.pyplot as plt

    from roadmap import files
    from toy2d.dirac import analyse, plot_phase_portrait

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = analyse(gamma)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    for ax, (loss, penalty) in zip(axes, [("gan", "none"), ("gan", "r1"), ("rpgan", "none"), ("rpgan", "r1+r2")]):
        plot_phase_portrait(max(gamma, 0.5) if penalty != "none" else gamma, loss, penalty, ax=ax, minimax=True)
    fig.tight_layout()
    for suffix in ("png", "pdf"):
        fig.savefig(out_dir / f"phase_portraits.{suffix}", dpi=120)
    plt.close(fig)
    files.write_json(out_dir / "dirac.json", result)
    return result


DISCRETE_LRS = (2e-4, 1e-3, 2e-3, 1e-2, 5e-2)  # the trainer's toy and Stacked MNIST learning rates and beyond
DISCRETE_GAMMAS = (0.1, 1.0, 10.0)
DISCRETE_STEPS = 4000


def write_discrete(out_dir) -> dict:
    """dirac-discrete.json (cycle size per lazy x gamma x lr) and dirac-discrete.png/pdf into out_dir."""
    import matplotlib.pyplot as plt

    from roadmap import files
    from toy2d.dirac_discrete import CYCLE_FRACTION, convergence_map, plot_cycle_maps

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from toy2d.dirac_discrete import steps_for

    result = dict(objective="rpgan", penalties=["r1", "r2"], optimizer="Adam(beta1=0, beta2=0.99)",
                  steps={f"{lr:g}": steps_for(lr, DISCRETE_STEPS) for lr in DISCRETE_LRS},
                  start=[1.0, 1.0], cycle_fraction=CYCLE_FRACTION, lrs=list(DISCRETE_LRS), gammas=list(DISCRETE_GAMMAS),
                  cycle_size={})
    from tqdm import tqdm

    # Minutes of work: a bar on stderr (stdout stays the --json output).
    with tqdm(total=2 * len(DISCRETE_LRS) * len(DISCRETE_GAMMAS), desc="discrete DiracRpGAN", unit="run", leave=False) as bar:
        for lazy in (1, 8):
            result["cycle_size"][str(lazy)] = convergence_map(DISCRETE_LRS, DISCRETE_GAMMAS, lazy, DISCRETE_STEPS,
                                                              done=bar.update).tolist()
    fig, _ = plot_cycle_maps(result)
    for suffix in ("png", "pdf"):
        fig.savefig(out_dir / f"dirac-discrete.{suffix}", dpi=130)
    plt.close(fig)
    files.write_json(out_dir / "dirac-discrete.json", result)
    return result


def run_dirac(args) -> int:
    from toy2d.dirac import analyse

    if not math.isfinite(args.gamma) or args.gamma < 0:
        raise ConfigError(f"--gamma: must be a finite number >= 0, got {args.gamma}")
    if args.plot and Path(args.plot).exists() and not Path(args.plot).is_dir():
        raise ConfigError(f"--plot: {args.plot!r} is a file; give a folder for the phase portraits")
    try:
        result = write_analysis(args.gamma, args.plot) if args.plot else analyse(args.gamma)
    except OSError as error:  # a read-only folder, or a file where a parent folder should be
        raise ConfigError(f"--plot: cannot write into {args.plot!r} ({error.strerror or error})") from None
    if args.discrete:
        try:
            discrete = write_discrete(args.discrete)
        except OSError as error:
            raise ConfigError(f"--discrete: cannot write into {args.discrete!r} ({error.strerror or error})") from None
        print(f"discrete-time DiracRpGAN map: {Path(args.discrete) / 'dirac-discrete.png'}", file=__import__("sys").stderr)
        result = dict(result, discrete=discrete)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"DiracGAN Jacobian eigenvalues at (theta, psi) = (0, 0), gamma = {args.gamma:g}")
    print(f"{'loss':<6} {'penalty':<7} {'measured (autograd)':<40} closed form")
    for row in result["results"]:
        fmt = lambda pairs: ", ".join(f"{re:+.4f}{im:+.4f}i" for re, im in pairs)  # noqa: E731
        print(f"{row['loss']:<6} {row['penalty']:<7} {fmt(row['eigenvalues']):<40} {fmt(row['closed_form'])}")
    return 0
