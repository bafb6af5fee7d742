"""MLP generator and discriminator for the 2-D toys, registered like any configuration (Appendix E)."""
from torch import nn

from roadmap.errors import check_int
from roadmap.networks.layers import ACTIVATIONS, Activation, check_choice
from roadmap.registry import ModelPair, register_model


def _activation(name: str) -> nn.Module:
    """nn.LeakyReLU(0.2) for the default "lrelu" (paper principle e), else layers.Activation (Appendix E ablation)."""
    check_choice("activation", name, ACTIVATIONS)
    return nn.LeakyReLU(0.2) if name == "lrelu" else Activation(name)


class MLP(nn.Module):
    """Linear -> activation (LeakyReLU(0.2) by default), `depth` times, then Linear to the output; no normalization."""

    def __init__(self, in_features: int, hidden: int, depth: int, out_features: int, activation: str = "lrelu"):
        super().__init__()
        layers, width = [], in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), _activation(activation)]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)


class ToyGenerator(MLP):
    """z [N, latent_dim] -> x [N, 2]; no output nonlinearity (paper principle e: no tanh)."""

    def __init__(self, latent_dim: int, hidden: int, depth: int, data_dim: int, activation: str = "lrelu"):
        super().__init__(latent_dim, hidden, depth, data_dim, activation)

    def forward(self, z, labels=None):
        return self.net(z)


class ToyDiscriminator(MLP):
    """x [N, 2] -> logits [N]."""

    # roadmap/networks/operators.py: the toy MLP keeps torch's own layers (2-D samples: little for the fast operators to save)
    fold_exception = "torch's own nn.Linear layers, not the operators that fold"

    def __init__(self, hidden: int, depth: int, data_dim: int, activation: str = "lrelu"):
        super().__init__(data_dim, hidden, depth, 1, activation)

    def forward(self, x, labels=None):
        return self.net(x).squeeze(1)


def _toy_mlp(latent_dim: int, hidden: int, depth: int, data_dim: int, loss: dict, activation: str) -> ModelPair:
    # hidden 0 would build (and train) a network without hidden units; depth 0 is a linear map, allowed
    for field, value, minimum in (("latent_dim", latent_dim, 1), ("hidden", hidden, 1), ("depth", depth, 0), ("data_dim", data_dim, 1)):
        check_int(f"model_args.{field}", value, minimum)
    return ModelPair(
        generator=ToyGenerator(latent_dim, hidden, depth, data_dim, activation),
        discriminator=ToyDiscriminator(hidden, depth, data_dim, activation),
        latent_dim=latent_dim,
        loss_spec=loss,
        description=f"MLP G/D for 2-D toys ({depth} x {hidden}, {'leaky ReLU' if activation == 'lrelu' else activation}, no normalization)",
    )


RPGAN_R1_R2 = dict(loss="rpgan", penalties=["r1", "r2"], lazy_interval=1)  # read, never mutated (ModelPair copies it into a LossSpec)


@register_model
def toy_mlp(*, latent_dim: int = 16, hidden: int = 128, depth: int = 3, data_dim: int = 2, activation: str = "lrelu",
            loss: dict = RPGAN_R1_R2) -> ModelPair:
    """The 2-D toy test bed: MLP G and D, RpGAN + R1 + R2 by default; `activation` in lrelu | gelu | silu | smu."""
    return _toy_mlp(latent_dim, hidden, depth, data_dim, loss, activation)
