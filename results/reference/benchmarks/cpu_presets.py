"""kimg/s of each bundled experiment's CPU preset, before and after the CPU speed-ups, alternated in one process (issue "Performance").

Usage:  R3BENCH_DATA=... python results/reference/benchmarks/cpu_presets.py [--rounds 8] [--json OUT] [experiment ...]

For every distinct network of an experiment's `cpu` preset (model, model_args, batch, data set),
one training iteration, the trainer's own roadmap.step.training_iteration on a batch drawn from
the run's data set, is timed in two variants, interleaved round by round (A B A B ...) so that
drifts in machine load hit both alike:
- before: the operators as before the speed-ups (layers.plain_operators(), bitwise the old code);
- after:  the default operators (what a run does now).
Speed-up = median over rounds of the per-round ratio of seconds per iteration. One thread (the
presets' `threads: 1`). Data loading and the per-tick bookkeeping are not timed.
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

import torch

DEFAULT_EXPERIMENTS = ("table1", "table2", "table3", "stability", "toy2d-ablation")


def _variants(config, data):
    """{variant: one-iteration function} for one run's network, batch and data."""
    from roadmap.networks.layers import plain_operators
    from roadmap.losses import LossSpec
    from roadmap.registry import create_model
    from roadmap.schedules import cosine_ramp
    from roadmap.step import Batch, Optimization, training_iteration

    real, labels = data.sample(config.batch, torch.Generator().manual_seed(0))
    functions = {}
    for variant in ("before", "after"):
        torch.manual_seed(config.seed)
        pair = create_model(config.model, **config.model_args)
        spec = config.resolved_loss(pair.loss_spec)
        loss = LossSpec(**dict(spec, penalties=tuple(spec["penalties"])))
        lr = cosine_ramp(config.lr, 0, 1)
        optimization = Optimization(
            torch.optim.Adam(pair.generator.parameters(), lr=lr, betas=(0.0, 0.99)),
            torch.optim.Adam(pair.discriminator.parameters(), lr=lr, betas=(0.0, 0.99)),
            torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
        gamma = cosine_ramp(config.gamma, 0, 1)

        def iteration(pair=pair, optimization=optimization, loss=loss, plain=variant == "before", step=[0]):
            with plain_operators() if plain else contextlib.nullcontext():
                z = torch.randn(2, config.batch, pair.latent_dim)
                training_iteration(pair, optimization, loss, step[0], gamma, Batch(real, labels, z[0]),
                                   Batch(real, labels, z[1]))
            step[0] += 1
        functions[variant] = iteration
    return functions


def measure(experiment: str, rounds: int, overrides=None) -> list:
    from roadmap.registry import create_dataset
    from runners.experiment import expand, load_experiment

    specs = expand(load_experiment(experiment), "/nonexistent", preset="cpu", overrides=overrides)
    seen, rows = set(), []
    for spec in specs:
        config = spec.config
        key = json.dumps([config.model, config.model_args, config.batch, config.dataset, config.dataset_args, config.loss,
                          config.penalties, config.lazy_interval], sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        data = create_dataset(config.dataset, **config.dataset_args)
        functions = _variants(config, data)
        for function in functions.values():  # warm-up
            function()
        seconds = {name: [] for name in functions}
        for _ in range(rounds):
            for name, function in functions.items():
                start = time.perf_counter()
                function()
                seconds[name].append(time.perf_counter() - start)
        ratio = lambda a, b: statistics.median(x / y for x, y in zip(seconds[a], seconds[b]))  # noqa: E731
        before = statistics.median(seconds["before"])
        row = dict(experiment=experiment, run=spec.experiment + "/" + spec.name, model=config.model,
                   model_args=config.model_args, batch=config.batch, dataset=config.dataset,
                   kimg_per_s_before=config.batch / before / 1e3,
                   kimg_per_s_after=config.batch / statistics.median(seconds["after"]) / 1e3,
                   speedup=ratio("before", "after"))
        rows.append(row)
        print(f"{row['run']:<55} {config.model:<13} before {row['kimg_per_s_before']:.3f} kimg/s, after "
              f"{row['kimg_per_s_after']:.3f} kimg/s: x{row['speedup']:.2f}",
              flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", default=list(DEFAULT_EXPERIMENTS))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run, as for r3bench run")
    args = parser.parse_args(argv)
    from against_official import _cpu_model  # the script beside this one (its folder is on sys.path)
    from runners.experiment import parse_overrides

    torch.set_num_threads(1)
    from roadmap.errors import ConfigError

    rows = []
    try:
        for experiment in args.experiments:
            rows += measure(experiment, args.rounds, parse_overrides(args.set))
    except ConfigError as error:
        print(f"cpu_presets: {error}", file=sys.stderr)
        return 2
    result = dict(what=__doc__.splitlines()[0], rounds=args.rounds, threads=1, torch=torch.__version__,
                  machine=f"{platform.machine()}, {os.cpu_count()} cores, {_cpu_model()}",
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), rows=rows)
    if args.json:
        with open(args.json + ".tmp", "w") as handle:
            json.dump(result, handle, indent=1)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
