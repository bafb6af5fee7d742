"""Host reads per training step (roadmap/host_sync.py), counted on the CPU for the networks a GPU run trains (issue 22).

Usage:  python results/reference/benchmarks/host_sync.py [--device cpu|cuda] [--json OUT]

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
    "small_resnet fp32": ("small_resnet", dict(width=8, resolution=32, blocks=2)),
    "A fp32": ("A", dict(preset="stackedmnist", width=0.03125)),
}


def _quick(row: str, model_args: dict) -> dict:
    """16 px and one block per stage where the row has blocks (A has none)."""
    return dict(model_args, resolution=16, **({} if row == "A" else dict(blocks=1)))


def count(row: str, model_args: dict, device: str = "cpu", resolution: int = 32) -> dict:
    torch.manual_seed(0)
    pair = create_model(row, **model_args)
    pair.generator.to(device)
    pair.discriminator.to(device)
    optimization = Optimization(torch.optim.Adam(pair.generator.parameters()), torch.optim.Adam(pair.discriminator.parameters()),
                                torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
    augment = functools.partial(augment_module.augment, p=0.5, generator=torch.Generator(device).manual_seed(3))

    def batch():
        return Batch(torch.rand(4, 3, resolution, resolution, device=device) * 2 - 1, None, torch.randn(4, pair.latent_dim, device=device))

    training_iteration(pair, optimization, pair.loss_spec, 0, 1.0, batch(), batch(), augment)
    with count_host_reads() as reads:
        training_iteration(pair, optimization, pair.loss_spec, 0, 1.0, batch(), batch(), augment)
    return dict(host_reads=len(reads), sites={f"{read.kind} at {read.where}": n for read, n in Counter(reads).most_common()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="16 px, one block per stage (the same sites, for the CPU dry run)")
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args()
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.machine()
    result = dict(torch=torch.__version__, device=args.device, device_name=device_name,
                  steps={name: count(row, _quick(row, model_args) if args.quick else model_args, args.device, 16 if args.quick else 32)
                         for name, (row, model_args) in NETWORKS.items()})
    for name, entry in result["steps"].items():
        print(f"{name:28s} {entry['host_reads']:4d} host reads per step  {list(entry['sites'])[:3]}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(result, stream, indent=1)
            stream.write("\n")


if __name__ == "__main__":
    main()
