"""Bundled Stacked MNIST experiments: table1's grid, and paper presets equal to Table 9's Stacked MNIST column."""
import pytest

from runners.experiment import expand, load_experiment

@pytest.fixture(autouse=True)
def mnist_folder(tmp_path_factory, monkeypatch):
    """Expansion only checks that the MNIST files exist (no data is read): a stand-in folder, so
    these preset tests run on machines without MNIST too."""
    root = tmp_path_factory.mktemp("mnist")
    (root / "MNIST" / "raw").mkdir(parents=True)
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"")
    monkeypatch.setenv("R3BENCH_DATA", str(root))


TABLE_9_STACKED_MNIST = dict(batch=512, duration_kimg=10_000, burn_in_kimg=2_000, lr=2e-4, gamma=[1.0, 0.1],
                             beta2=[0.9, 0.99], ema_half_life_kimg=[0, 500], xflip=False, device="cuda")


@pytest.mark.parametrize("name", ["table1", "table3"])
def test_paper_preset_is_table_9(name, tmp_path):
    specs = expand(load_experiment(name), tmp_path, scale="paper")
    assert len(specs) >= 3
    for spec in specs:
        for field, value in TABLE_9_STACKED_MNIST.items():
            assert getattr(spec.config, field) == value, (spec.name, field)
        assert spec.config.dataset == "stackedmnist"
        assert spec.config.dataset_args.get("resolution", 32) == 32


def test_table1_grid_is_two_losses_by_two_penalty_sets_by_three_seeds(tmp_path):
    for preset in ("cpu", "paper"):
        specs = expand(load_experiment("table1"), tmp_path, scale=preset)
        cells = {(s.config.loss, tuple(s.config.penalties)) for s in specs}
        assert cells == {("rpgan", ("r1", "r2")), ("gan", ("r1", "r2")), ("rpgan", ("r1",)), ("gan", ("r1",))}
        assert len(specs) == 4 * len({s.config.seed for s in specs}) and len({s.config.seed for s in specs}) >= 3
        assert all(s.config.model == "small_resnet" for s in specs)


def test_cpu_presets_match_model_and_data_resolution(tmp_path):
    for name in ("table1", "table3"):
        for spec in expand(load_experiment(name), tmp_path, scale="cpu"):
            assert spec.config.device == "cpu"
            if spec.config.model == "small_resnet":
                assert spec.config.model_args["resolution"] == spec.config.dataset_args["resolution"]
