"""The model factory: a small MLP with one output per sample."""

from torch import nn


class Regressor(nn.Module):
    """An MLP whose output has the targets' shape: one number per sample, [batch]."""

    def __init__(self, features: int, hidden: list[int]):
        super().__init__()
        layers, width = [], features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).squeeze(-1)


def mlp(input_shape, hidden: list[int] = (32,)) -> nn.Module:
    """lrstudy passes `input_shape` (one sample's, here [10])."""
    return Regressor(input_shape[0], list(hidden))
