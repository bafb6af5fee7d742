"""Golden fingerprints: two training iterations of every Table 2 row, the small ResNet and the toy MLP are bitwise
what they were when these values were recorded (2026-12-02, commit c855f3e), on the default (CPU) operators and on
the plain ones. A restructuring (issue 21) must leave every value here as it is: a changed hash means a change to
what the committed evidence computed, and that evidence would go stale (roadmap/fingerprint.py)."""
import functools

import pytest

from roadmap.fingerprint import compute_fingerprint
from roadmap.networks.operators import PlainOperators
from runners.experiment import expand, load_experiment

# run -> (default operators, plain operators); x86-64, torch from pyproject.toml, one thread (the fingerprint's own).
GOLDEN = {
    "table2/A_seed0": ("510298fa54344a09", "bc1efb11cf56e62e"),
    "table2/B_seed0": ("314b3dc7e063856a", "19725a57cb57b82a"),
    "table2/C1_seed0": ("19a6c9b6a48a130b", "7008f1f8d5d23647"),
    "table2/C_seed0": ("37cc13635e815e2a", "9feb7f35243d55a7"),
    "table2/D1_seed0": ("c2b059840ef6e31e", "454ef70822b5d469"),
    "table2/D_seed0": ("3bea2f76b560a1d5", "52776c5a783e95ce"),
    "table2/E1_seed0": ("8536c84decc89767", "a57fd31ef23b784a"),
    "table2/E_seed0": ("dd2cd39fca64726b", "ca0763decbd3ee0c"),
    "table1/rpgan_r1+r2_seed0": ("e47b1ecc12e345b2", "5facfbcf3e24e1ea"),
    "table1/gan_r1_seed0": ("9f523ad5a5969c6d", "c52e5b9789d4354d"),
    "lazy-reg-stackedmnist/lazy8_seed0": ("e7a86c01baa10850", "6b9431b4b8b88c3a"),
    "lazy-reg-toys/circle_gamma1.0_lazy1_seed0": ("8c5be5bc1530fffd", "8c5be5bc1530fffd"),
    "lazy-reg-toys/circle_gamma1.0_lazy8_seed0": ("6c1c1a74a8a76049", "6c1c1a74a8a76049"),
}


@functools.lru_cache(maxsize=1)
def _configs(mnist_root: str) -> dict:
    """The bundled experiments' resolved configs by run (expanding checks that the data root holds MNIST)."""
    configs = {}
    for experiment in sorted({name.split("/")[0] for name in GOLDEN}):
        for spec in expand(load_experiment(experiment), "/nonexistent", overrides={"dataset_args.root": mnist_root}):
            configs[f"{experiment}/{spec.name}"] = spec.config
    return configs


@pytest.mark.parametrize("name", list(GOLDEN))
def test_two_iterations_are_bitwise_as_recorded(name, mnist_root):
    configs = _configs(str(mnist_root))
    default, plain = GOLDEN[name]
    assert compute_fingerprint(configs[name]) == default
    assert compute_fingerprint(configs[name], PlainOperators) == plain
