"""A builder's signature is the one list of what a configuration accepts; data-set kinds are declared once (issue 21, item 6)."""
import inspect

import pytest

from roadmap.errors import ConfigError
from roadmap.registry import builder_parameters, create_dataset, create_model, is_image_dataset, list_datasets, list_models, model_builder


@pytest.mark.parametrize("name", list_models())
def test_every_configuration_declares_its_options_keyword_only_and_annotated(name):
    parameters = inspect.signature(model_builder(name)).parameters.values()
    assert parameters and all(p.kind == p.KEYWORD_ONLY for p in parameters), name
    assert all(p.annotation is not p.empty for p in parameters), name


@pytest.mark.parametrize("name", list_datasets())
def test_every_data_set_declares_its_options_keyword_only_and_annotated(name):
    from roadmap import registry

    parameters = inspect.signature(registry._dataset_builders[name]).parameters.values()
    assert parameters and all(p.kind == p.KEYWORD_ONLY for p in parameters), name
    assert all(p.annotation is not p.empty for p in parameters), name
    assert set(builder_parameters("data set", name)) == {p.name for p in parameters}


def test_a_row_signature_holds_the_rows_own_defaults():
    e, d = (inspect.signature(model_builder(row)).parameters for row in ("E", "D"))
    assert (e["preset"].default, e["stem_ratio"].default, e["group_size"].default) == ("stackedmnist", 1.5, "preset")
    assert (d["preset"].default, d["output_skips"].default, d["group_size"].default) == ("ffhq256", False, None)
    assert set(e) == set(d)  # one private builder behind both, so one set of options


@pytest.mark.parametrize("name, bad, good", [("E", "stem_ratoi", "stem_ratio"), ("A", "z_dimm", "z_dim"),
                                             ("toy_mlp", "hiden", "hidden"), ("small_resnet", "blcoks", "blocks")])
def test_a_keyword_outside_the_signature_is_refused_naming_the_closest(name, bad, good):
    with pytest.raises(ConfigError, match=f"unknown option of configuration {name} '{bad}' \\(did you mean '{good}'\\?\\)"):
        create_model(name, **{bad: 1})


def test_a_data_set_refuses_a_keyword_outside_its_signature():
    with pytest.raises(ConfigError, match="unknown option of data set circle 'nosie' \\(did you mean 'noise'\\?\\)"):
        create_dataset("circle", nosie=0.1)


def test_image_kinds_come_from_the_kind_registry():
    assert is_image_dataset("stackedmnist") and is_image_dataset("cifar10") and is_image_dataset("imagefolder")
    assert not is_image_dataset("circle") and not is_image_dataset("25gaussians") and not is_image_dataset("no such set")
