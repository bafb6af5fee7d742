"""Evaluation in blocks shared by the ranks of a run (paper Section 4's FID-50k and Tables 1, 3's 26k-sample scores, issue 22).

A data set's `evaluate` maps a function over blocks of the n samples it scores and reduces the
results. On W ranks, rank r generates and maps the blocks k = r, r + W, ... and rank 0 receives
every block's result in block order, so each rank computes about 1/W of the evaluation and none
waits long in a collective. A block holds the samples a single process generates at those
positions (`roadmap.trainer.Samples.blocks`), so the scores do not depend on the world size.
"""
import math

import torch.distributed as dist


def map_blocks(generate, n: int, size: int, fn):
    """fn over the blocks [<= size, ...] of the n samples of `generate`, in order: an iterator of the results on
    the collecting rank (0), None on the other ranks once they have computed and sent their share.

    `generate` with `blocks(n, size)`, `rank` and `world` (roadmap.trainer.Samples) streams: it makes the blocks
    this rank maps, one at a time. A plain function generate(n) is called once, for all n samples (tests, data
    held in memory already), and every block is mapped here. fn returns a tuple of tensors (sent through the host).
    """
    if not callable(getattr(generate, "blocks", None)):
        samples = generate(n)
        return (fn(samples[start:start + size]) for start in range(0, n, size))
    results = _gathered(generate, n, size, fn)
    if generate.rank == 0:
        return results
    for _ in results:  # drive this rank's share: it yields nothing, but takes part in every gather
        pass
    return None


def _gathered(generate, n: int, size: int, fn):
    """Rank 0's iterator over every block's fn result in order; blocks are dealt out round robin, gathered a round at a time
    (W blocks: rank 0 never holds more than one round, whatever n is)."""
    rank, world, count = generate.rank, generate.world, math.ceil(n / size)
    mine = generate.blocks(n, size)
    for first in range(0, count, world):
        result = fn(next(mine)) if first + rank < count else None
        if world == 1:
            yield result
            continue
        received = [None] * world if rank == 0 else None
        dist.gather_object(None if result is None else tuple(t.cpu() for t in result), received, dst=0)
        if rank == 0:
            yield result  # rank 0's own block stays where it was computed
            yield from received[1:count - first]
