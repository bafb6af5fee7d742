"""results/reference/benchmarks/against_official.py builds the official networks as official train.py does (issue 22).

Needs a checkout of brownvc/R3GAN at $R3BENCH_OFFICIAL (and its `pkg_resources` import); skips otherwise.
"""
import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from roadmap.bench import parameter_counts

OFFICIAL = os.environ.get("R3BENCH_OFFICIAL")
pytestmark = pytest.mark.skipif(not OFFICIAL or importlib.util.find_spec("pkg_resources") is None,
                                reason="no official checkout at $R3BENCH_OFFICIAL, or no pkg_resources for it")


@pytest.mark.parametrize("preset, stages", [("ffhq64", 4), ("ffhq256", 4)])
def test_official_widths_parameter_counts_and_bf16_stages_match_official_training(preset, stages):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "results" / "reference" / "benchmarks"))
    import against_official

    G, D, _ = against_official.official_pair(OFFICIAL, preset, 1.0, stages, "cpu")
    ours = parameter_counts("E", preset)
    assert sum(p.numel() for p in G.parameters()) == ours["G"] and sum(p.numel() for p in D.parameters()) == ours["D"]
    bf16 = [[stage.DataType == torch.bfloat16 for stage in net.Model.MainLayers] for net in (G, D)]
    count = len(bf16[0])
    assert bf16[0] == [False] * (count - stages) + [True] * stages  # G: its highest-resolution (last) stages
    assert bf16[1] == [True] * stages + [False] * (count - stages)  # D: its highest-resolution (first) stages
