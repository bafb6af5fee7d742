"""Host reads per training step (roadmap/host_sync.py), counted on the CPU for the networks a GPU run trains (issue 22).

Usage:  python results/benchmarks/host_sync.py [--json OUT]

One training_iteration (after one warm-up iteration) of each network at the Stacked MNIST preset's
32 px, width 1/32 (the counts do not depend on the width), batch 4, augmentation p = 0.5; each host
read (.item, bool, float, int, index, tolist, cpu, numpy) is recorded with the line that made it.
The optimizers' reads of their CPU step counters are not counted. `E bf16 + precision_events`
is the bf16 default before issue 22 (the monitor was on in every non-fp32 run).
"""
import argparse
import functools
import json
import platform
from collections import Counter

import torch

from roadmap import augment as augment_module
from roadmap.host_sync import count_host_reads
from roadmap.registry import create_model
from roadmap.step import Batch, Optimization, training_iteration

NETWORKS = {
    "E fp32": ("E", dict(preset="stackedmnist", width=0.03125)),
    "E bf16": ("E", dict(preset="stackedmnist", width=0.03125, precision="bf16")),
    "E bf16 + precision_events": ("E", dict(preset="stackedmnist", width=0.03125, precision="bf16", precision_events=True)),
    "small_resnet fp32": ("small_resnet", dict(width=8, resolution=32)),
    "A fp32": ("A", dict(preset="stackedmnist", width=0.03125)),
}


def count(row: str, model_args: dict) -> dict:
    torch.manual_seed(0)
    pair = create_model(row, **model_args)
    optimization = Optimization(torch.optim.Adam(pair.generator.parameters()), torch.optim.Adam(pair.discriminator.parameters()),
                                torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
    augment = functools.partial(augment_module.augment, p=0.5, generator=torch.Generator().manual_seed(3))

    def batch():
        return Batch(torch.rand(4, 3, 32, 32) * 2 - 1, None, torch.randn(4, pair.latent_dim))

    training_iteration(pair, optimization, pair.loss_spec, 0, 1.0, batch(), batch(), augment)
    with count_host_reads() as reads:
        training_iteration(pair, optimization, pair.loss_spec, 0, 1.0, batch(), batch(), augment)
    return dict(host_reads=len(reads), sites={f"{read.kind} at {read.where}": n for read, n in Counter(reads).most_common()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args()
    result = dict(torch=torch.__version__, machine=platform.machine(), steps={name: count(*spec) for name, spec in NETWORKS.items()})
    for name, entry in result["steps"].items():
        print(f"{name:28s} {entry['host_reads']:4d} host reads per step  {list(entry['sites'])[:3]}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(result, stream, indent=1)
            stream.write("\n")


if __name__ == "__main__":
    main()
