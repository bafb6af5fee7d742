"""`r3bench eval-stackedmnist`: mode count and reverse KL of a run's generator or of real data (Tables 1, 3)."""
import json
import time
from pathlib import Path

import torch

from roadmap.errors import ConfigError, check_int
from stackedmnist.data import EVAL_SAMPLES, NATIVE_RESOLUTION
from stackedmnist.metrics import MIN_MODE_COUNT

REAL_SEED = 0  # the real-data ceiling row is drawn with a fixed seed, so it is the same number every time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval-stackedmnist", help="Stacked MNIST modes and reverse KL of a run (--run) or of real data (--real)",
        description="Classify each channel of N samples with the cached MNIST classifier (trained on first use) "
                    "and report the number of modes covered (of 1000) and KL(p_model || uniform).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--real", action="store_true", help="score real Stacked MNIST samples (the ceiling row)")
    source.add_argument("--run", metavar="RUN_DIR", help="score the EMA generator in RUN_DIR/checkpoint.pt")
    parser.add_argument("--n", type=int, default=EVAL_SAMPLES, help=f"number of samples (default {EVAL_SAMPLES})")
    parser.add_argument("--data-root", metavar="DIR", help="MNIST root holding MNIST/raw (default: $R3BENCH_DATA)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="with --real: sample resolution (default 32; a run uses its own)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=evaluate_command)


def _run_generator(run_dir: Path, data_root):
    """(data source, the EMA generator's samples: roadmap.trainer.Samples) rebuilt from a run folder's checkpoint."""
    from roadmap import files
    from roadmap.registry import create_dataset, create_model
    from roadmap.trainer import Samples

    if not run_dir.is_dir():
        raise ConfigError(f"--run: no run folder {str(run_dir)!r}")
    checkpoint = files.load_checkpoint(run_dir)
    if checkpoint is None:
        raise ConfigError(f"--run: no checkpoint.pt in {str(run_dir)!r}")
    config = checkpoint["config"]
    if config["dataset"] != "stackedmnist":
        raise ConfigError(f"--run: the run trained on {config['dataset']!r}, not stackedmnist")
    dataset_args = dict(config.get("dataset_args") or {})
    if data_root:
        dataset_args["root"] = data_root
    data = create_dataset("stackedmnist", **dataset_args)
    pair = create_model(config["model"], **(config.get("model_args") or {}))
    pair.generator.load_state_dict(checkpoint["generator_ema"])
    pair.generator.eval().requires_grad_(False)
    return data, Samples(pair.generator, pair.latent_dim, 0, torch.device("cpu"))  # streamed a block at a time


def score_real(n: int = EVAL_SAMPLES, resolution: int = NATIVE_RESOLUTION, data_root=None) -> dict:
    """Modes and KL of n real stacked samples (fixed seed): the ceiling row of every Stacked MNIST table."""
    from stackedmnist.data import RealSamples, StackedMNIST

    data = StackedMNIST(data_root, resolution)
    return data.evaluate(RealSamples(data, REAL_SEED), n=n)


def evaluate_command(args) -> int:
    from stackedmnist.classifier import load_classifier

    check_int("--n", args.n, 1)
    if args.run is not None and args.resolution is not None:
        raise ConfigError("--resolution: only with --real (a run is scored at its own resolution)")
    # The run folder is checked (and its generator rebuilt) before the classifier, whose first use
    # trains it for minutes: a mistyped --run must fail at once.
    run = _run_generator(Path(args.run), args.data_root) if args.run is not None else None
    start = time.time()
    load_classifier(args.data_root)  # train on first use, before the clock of the scoring itself matters
    if args.real:
        resolution = args.resolution or NATIVE_RESOLUTION
        result = dict(score_real(args.n, resolution, args.data_root), source="real", resolution=resolution)
    else:
        data, generate = run
        result = dict(data.evaluate(generate, n=args.n), source=str(args.run), resolution=data.resolution)
        from roadmap import files

        files.write_json(Path(args.run) / "eval-stackedmnist.json", result)  # read by reports (e.g. reports/official.py)
    result.update(min_count=MIN_MODE_COUNT, seconds=round(time.time() - start, 2))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['source']}: {result['modes']} modes of 1000 (>= {MIN_MODE_COUNT} samples: {result['modes_min_count']}), "
              f"KL {result['kl']:.4f} nats; recognisable (quality gate): {result['recognisable_modes']} modes, fraction "
              f"{result['recognisable_fraction']:.3f}; n = {result['n']}, classifier test accuracy "
              f"{result['classifier_accuracy']:.4f}, {result['seconds']} s")
    return 0
