"""Config E training iterations, r3bench against the official R3GAN code, alternated in one process (issue "Performance").

Usage (a checkout of https://github.com/brownvc/R3GAN at PATH; nothing of it is copied here):

    python results/benchmarks/against_official.py --official PATH [--width 0.125] [--batch 16]
        [--pairs 12] [--threads 1] [--json OUT]

One iteration on each side is what each training loop does per step at batch `--batch` on one
device: the D step (RpGAN + R1 + R2 on real and fake, Adam step), then the G step on a second
real batch (Adam step). The official side calls its own loss (training/loss.py R3GANLoss, with
its training_stats reports), toggles requires_grad per phase and flattens the gradients before
Adam as its training_loop.py does; on the CPU its bias_act and upfirdn2d ops run their reference
paths, as they do for anyone training it on a CPU. Both networks are the Stacked MNIST preset of
Table 9 (32 px, 4 stages, 2 blocks each, expansion 2, 16 channels per group) scaled by `--width`;
the script checks that their parameter counts agree before timing.

Timing: the two iterations alternate (A B A B ...) after two warm-up iterations each, so drifts in
machine load hit both sides alike; the reported speed-up is the median over pairs of the per-pair
ratio of images per second.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch


def official_pair(path: str, width: float, device):
    """G, D, loss and the phase function of the official code, at the Stacked MNIST preset scaled by `width`."""
    sys.path.insert(0, os.path.abspath(path))
    from training.loss import R3GANLoss  # noqa: E402  (the official package, from `path`)
    from training.networks import Discriminator, Generator

    stem = round(768 * width)
    cardinality = max(1, stem * 2 // 16)  # 16 channels per group in the expanded 3x3 conv (Table 9)
    common = dict(WidthPerStage=[stem] * 4, CardinalityPerStage=[cardinality] * 4, BlocksPerStage=[2] * 4,
                  ExpansionFactor=2, FP16Stages=[], c_dim=0, img_resolution=32)
    G = Generator(NoiseDimension=64, **common).train().requires_grad_(False).to(device)
    D = Discriminator(**common).train().requires_grad_(False).to(device)
    return G, D, R3GANLoss(G, D)


def official_iteration(G, D, loss, optimizers, real_D, real_G, z_D, z_G, gamma):
    """One iteration as the official training_loop.py runs it on one device (phases D then G)."""
    for name, module, optimizer, real, z in (("D", D, optimizers[1], real_D, z_D), ("G", G, optimizers[0], real_G, z_G)):
        optimizer.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        loss.accumulate_gradients(phase=name, real_img=real, real_c=None, gen_z=z, gamma=gamma, gain=1)
        module.requires_grad_(False)
        params = [param for param in module.parameters() if param.grad is not None]
        flat = torch.cat([param.grad.flatten() for param in params])
        for param, grad in zip(params, flat.split([param.numel() for param in params])):
            param.grad = grad.reshape(param.shape)
        optimizer.step()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, metavar="PATH", help="a checkout of brownvc/R3GAN")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=12, help="timed A/B pairs after warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--json", metavar="OUT", help="write the result here as JSON")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official, "R3GAN", "Networks.py")):
        print(f"against_official: {args.official!r} is not a checkout of brownvc/R3GAN (no R3GAN/Networks.py)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")

    from roadmap.registry import create_model
    from roadmap.step import Batch, Optimization, training_iteration

    torch.manual_seed(0)
    pair = create_model("E", preset="stackedmnist", width=args.width)
    G, D, loss = official_pair(args.official, args.width, device)
    counts = dict(ours=[sum(p.numel() for p in m.parameters()) for m in (pair.generator, pair.discriminator)],
                  official=[sum(p.numel() for p in m.parameters()) for m in (G, D)])
    if counts["ours"] != counts["official"]:
        print(f"against_official: parameter counts differ (G, D): {counts}", file=sys.stderr)
        return 1

    def adam(module):
        return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.0, 0.99), eps=1e-8)

    ours_opt = Optimization(adam(pair.generator), adam(pair.discriminator),
                            torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
    official_opt = (adam(G), adam(D))
    n = args.batch
    reals = [torch.rand(n, 3, 32, 32) * 2 - 1 for _ in range(2)]
    step = [0]

    def ours():
        training_iteration(pair, ours_opt, pair.loss_spec, step[0], args.gamma,
                           Batch(reals[0], None, torch.randn(n, 64)), Batch(reals[1], None, torch.randn(n, 64)))
        step[0] += 1

    def official():
        official_iteration(G, D, loss, official_opt, reals[0], reals[1], torch.randn(n, 64), torch.randn(n, 64), args.gamma)

    def timed(function):
        start = time.perf_counter()
        function()
        return time.perf_counter() - start

    for _ in range(2):
        ours()
        official()
    rows = []
    for index in range(args.pairs):
        a, b = timed(ours), timed(official)
        rows.append(dict(ours_img_per_s=n / a, official_img_per_s=n / b, ratio=b / a))
        print(f"pair {index + 1}/{args.pairs}: r3bench {n / a:.2f} img/s, official {n / b:.2f} img/s, ratio {b / a:.3f}",
              flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    official_commit = subprocess.run(["git", "-C", args.official, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip() or "unknown (not a git checkout)"
    result = dict(
        what="Config E training iteration (D step with R1+R2 + Adam, G step + Adam), Stacked MNIST preset",
        width=args.width, batch=n, threads=args.threads, pairs=args.pairs, parameters_G_D=counts["ours"],
        median_ratio=statistics.median(r["ratio"] for r in rows),
        ours_img_per_s_median=statistics.median(r["ours_img_per_s"] for r in rows),
        official_img_per_s_median=statistics.median(r["official_img_per_s"] for r in rows),
        r3bench_commit=commit, official_commit=official_commit, torch=torch.__version__,
        machine=f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        cpu_model=_cpu_model(), pairs_measured=rows)
    print(f"median ratio (official s / r3bench s per iteration): {result['median_ratio']:.3f}; "
          f"r3bench {result['ours_img_per_s_median']:.2f} img/s, official {result['official_img_per_s_median']:.2f} img/s")
    if args.json:
        with open(args.json + ".tmp", "w") as handle:
            json.dump(result, handle, indent=1)
        os.replace(args.json + ".tmp", args.json)
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
