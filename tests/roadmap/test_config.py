"""RunConfig resolution and validation: presets, overrides, unknown keys, impossible values."""
import pytest

from roadmap.config import merge, resolve
from roadmap.errors import ConfigError


def test_preset_fills_training_fields_and_overrides_win():
    config = resolve({"preset": "stackedmnist", "batch": 32, "model_args.width": 0.125})
    assert config.gamma == [1.0, 0.1] and config.lr == 2e-4 and config.duration_kimg == 10_000
    assert config.batch == 32 and config.model_args == {"width": 0.125}


@pytest.mark.parametrize("values, message", [
    ({"gama": 1.0}, "unknown key 'gama' (did you mean 'gamma'?)"),
    ({"gamma": -1.0}, "gamma: must be >= 0"),
    ({"lr": 0.0}, "lr: must be > 0"),
    ({"lr": [1e-3]}, "lr: a ramp is [start, end]"),
    ({"beta2": 1.0}, "beta2: must be < 1"),
    ({"batch": 0}, "batch: must be an integer >= 1"),
    ({"preset": "ffhq512"}, "unknown preset 'ffhq512'"),
    ({"loss": "wgan"}, "unknown loss 'wgan'"),
    ({"penalties": ["r1", "r3"]}, "unknown penalty 'r3'"),
    ({"lazy_interval": 0}, "lazy_interval: must be an integer >= 1"),
    ({"gamma": "big"}, "gamma: expected a number"),
])
def test_bad_values_name_the_field(values, message):
    with pytest.raises(ConfigError) as error:
        resolve(values)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_merge_expands_dotted_keys_and_keeps_siblings():
    merged = merge({"model_args": {"width": 1.0, "preset": "cifar10"}}, {"model_args.width": 0.5})
    assert merged == {"model_args": {"width": 0.5, "preset": "cifar10"}}


def test_builders_and_data_sets_inherit_the_runs_preset_unless_their_arguments_name_one():
    config = resolve({"model": "E", "dataset": "imagefolder", "preset": "ffhq64"})
    assert config.model_args == {"preset": "ffhq64"} and config.dataset_args == {"preset": "ffhq64"}
    assert resolve(dict(vars(config))) == config  # the worker resolves the stored values again: nothing moves
    own = resolve({"model": "E", "preset": "cifar10", "model_args": {"preset": "stackedmnist", "width": 0.5}})
    assert own.model_args == {"preset": "stackedmnist", "width": 0.5}
    # builders without a Table 9 column (the toy MLP, the Stacked MNIST data) get nothing
    assert resolve({"model": "toy_mlp", "dataset": "stackedmnist", "preset": "stackedmnist"}).model_args == {}
    assert resolve({"model": "toy_mlp", "dataset": "stackedmnist", "preset": "stackedmnist"}).dataset_args == {}
    # no run preset: the row's own default column, as every committed run was built
    assert resolve({"model": "E"}).model_args == {}
