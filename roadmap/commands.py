"""`r3bench params | fid | bench | import-official | generate | metric`: parameter counts (Table 2/9), Frechet distances, training throughput, official checkpoints, samples, precision/recall and KID."""
import json
import os
import sys
from pathlib import Path

from roadmap.errors import ConfigError, check_int

# `bench` refuses networks beyond this many parameters (G + D) before allocating anything: fp32
# weights, Adam moments and gradients of 2e9 parameters are already 32 GB.
MAX_BENCH_PARAMETERS = 2_000_000_000


def describe_models() -> list:
    """(row id, one-line description) of Table 2's configurations, for `r3bench list`."""
    from roadmap.configs import describe_models as describe

    return describe()


def register(subparsers) -> None:
    parser = subparsers.add_parser("params", help="G and D parameter counts of a configuration at a preset (Table 2/9)")
    parser.add_argument("--config", required=True, help="Table 2 row: A, B, C1, C, D1, D, E1, E")
    parser.add_argument("--preset", default="ffhq256", help="Table 9 preset (default ffhq256)")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default 1)")
    parser.add_argument("--json", action="store_true", help='print {"G": int, "D": int}')
    parser.set_defaults(handler=run_params)

    parser = subparsers.add_parser("fid", help="Frechet distance of a run's EMA generator against its data (clean-fid)")
    parser.add_argument("--run", required=True, help="run folder (with config.yaml and checkpoint.pt)")
    parser.add_argument("--features", default=None, help="local feature network instead of Inception (e.g. stackedmnist)")
    parser.add_argument("--n", type=int, default=None, help="samples (default: 50000 for Inception FID, 10000 otherwise)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(handler=run_fid)

    parser = subparsers.add_parser("bench", help="training throughput: D step (+ penalties) + G step after warm-up")
    parser.add_argument("--config", required=True, help="Table 2 row")
    parser.add_argument("--preset", default="stackedmnist", help="Table 9 preset")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--batch", type=int, default=8, help="minibatch")
    parser.add_argument("--steps", type=int, default=5, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 for the highest-resolution stages")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on CUDA (training's tf32: true); off by default, as training")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="cudnn.benchmark off (training's cudnn_benchmark: false)")
    parser.add_argument("--batch-gpu", type=int, default=None, help="micro-batch (training's batch_gpu); default: the whole batch")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run_bench)

    parser = subparsers.add_parser("import-official", help="official R3GAN network-snapshot.pkl -> run folder (no pickle code runs)")
    parser.add_argument("pkl", metavar="PKL", help="network-snapshot.pkl written by the official training loop")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="new run folder (must not exist or be empty)")
    parser.add_argument("--preset", default=None, help="Table 9 preset (default: inferred from the tensor shapes)")
    parser.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                        help="dataset_args of the run's data set, e.g. path=/data/ffhq-256x256.zip (repeatable)")
    parser.set_defaults(handler=lambda args: _lazy("roadmap.official", "run_import")(args))

    parser = subparsers.add_parser("generate", help="one PNG per seed and a grid from a run's EMA generator (gen_images.py)")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder (ours or import-official's)")
    parser.add_argument("--seeds", required=True, help="e.g. 0-63 or 1,5,10-12")
    parser.add_argument("--class", dest="class_index", type=int, default=None, help="class label (conditional runs)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--images", default="both", choices=("both", "png", "grid"), help="per-seed PNGs, a grid, or both")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(handler=lambda args: _lazy("roadmap.sampling", "run_generate")(args))

    parser = subparsers.add_parser("metric", help="precision/recall (pr50k3, VGG16) or KID (kid50k, Inception) of a run")
    parser.add_argument("--run", required=True, help="run folder")
    parser.add_argument("--metric", required=True, choices=("pr50k3", "kid50k"), help="pr50k3 or kid50k")
    parser.add_argument("--features", default=None, help="local feature network instead of VGG16/Inception (e.g. stackedmnist)")
    parser.add_argument("--n", type=int, default=None, help="generated samples (default 50000)")
    parser.add_argument("--n-real", type=int, default=None,
                        help="real images, each at most once (default: the data set, up to 200k for pr50k3, 1M for kid50k)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(handler=lambda args: _lazy("roadmap.sampling", "run_metric")(args))


def _lazy(module: str, name: str):
    """A handler imported on use, so that `r3bench --help` stays fast."""
    import importlib

    return getattr(importlib.import_module(module), name)


def _counts_on_meta(config: str, preset: str, width: float) -> dict:
    """parameter_counts, with a width so large that tensor sizes overflow turned into one line."""
    from roadmap.bench import parameter_counts

    try:
        return parameter_counts(config, preset, width)
    except RuntimeError as error:  # "Storage size calculation overflowed" even on the meta device
        raise ConfigError(f"--width: {width:g} makes tensors too large to describe ({str(error).splitlines()[0][:60]}...)") from None


def run_params(args) -> int:
    counts = _counts_on_meta(args.config, args.preset, args.width)
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"{args.config} @ {args.preset} (width {args.width:g}): G {counts['G']:,}  D {counts['D']:,}")
    return 0


def run_fid(args) -> int:
    import yaml

    from roadmap import files
    from roadmap.fid import FidUnavailable, frechet_distance, metric_name, real_samples
    from roadmap.registry import create_dataset, create_model, dataset_kind, is_image_dataset
    from roadmap.trainer import generate

    run_dir = Path(args.run)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"--run: {str(run_dir)!r} has no config.yaml (not a run folder)")
    metric = metric_name(args.features)
    if args.n is not None:  # `--n 0` is a mistake, not "the default"
        check_int("--n", args.n, 2)
    n = args.n if args.n is not None else (50_000 if args.features is None else 10_000)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    kind = dataset_kind(config.get("dataset"))
    if kind is not None and not is_image_dataset(config.get("dataset")):
        raise ConfigError(f"--run: FID needs an image data set; {str(run_dir)!r} trained on {config.get('dataset')!r} "
                          f"(a {kind.replace('_', ' ')}, scored in its summary.json)")
    checkpoint = files.load_checkpoint(run_dir)
    if checkpoint is None:
        raise ConfigError(f"--run: {str(run_dir)!r} has no readable checkpoint.pt")
    pair = create_model(config["model"], **config.get("model_args", {}))
    pair.generator.load_state_dict(checkpoint["generator_ema"])
    generator = pair.generator.to(args.device).eval()
    data = create_dataset(config["dataset"], **config.get("dataset_args", {}))
    fake = generate(generator, pair.latent_dim, data.num_classes, n, args.device)
    try:
        result = frechet_distance(fake, real_samples(data, n), args.features, args.device)
    except FidUnavailable as error:
        print(f"r3bench fid: {error}", file=sys.stderr)
        return 1
    result = dict(result, n=n)
    files.write_json(run_dir / f"{metric}.json", result)
    print(json.dumps(result))
    return 0


def run_bench(args) -> int:
    import torch

    from roadmap.bench import benchmark

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    check_int("--threads", args.threads, 0, cores)  # an oversized OpenMP pool kills the process (libgomp out of memory)
    counts = _counts_on_meta(args.config, args.preset, args.width)  # no memory: refuse absurd sizes before allocating
    if counts["G"] + counts["D"] > MAX_BENCH_PARAMETERS:
        raise ConfigError(f"--width: {args.width:g} gives {counts['G'] + counts['D']:,} parameters (G + D), "
                          f"beyond the {MAX_BENCH_PARAMETERS:,} a benchmark allocates")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = benchmark(args.config, args.preset, args.width, args.batch, args.steps, args.warmup, args.device,
                           args.precision, channels_last=args.channels_last, tf32=args.tf32,
                           cudnn_benchmark=not args.no_cudnn_benchmark, batch_gpu=args.batch_gpu)
    except (MemoryError, torch.OutOfMemoryError) as error:
        raise ConfigError(f"out of memory on {args.device} (width {args.width:g}, batch {args.batch}): "
                          f"{(str(error).splitlines() or ['MemoryError'])[0][:120]}") from None
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['config']} @ {result['preset']}: {result['img_per_s']:.1f} img/s, {result['sec_per_iter'] * 1e3:.1f} ms/iter, "
              f"G {result['G_params']:,} D {result['D_params']:,}, peak {result['peak_mem_mb']:.0f} MB "
              f"(estimate {result['estimated_peak_mb']:.0f} MB), micro-batch {result['micro_batch']}, "
              f"TF32 {'on' if result['tf32'] else 'off'}, cudnn.benchmark {'on' if result['cudnn_benchmark'] else 'off'} ({result['device']})")
    return 0
