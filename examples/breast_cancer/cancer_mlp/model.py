"""The model factory: a small MLP."""

from torch import nn


def mlp(input_shape, num_outputs: int, hidden: list[int] = (32,)) -> nn.Module:
    """Linear-ReLU layers of widths `hidden`, then one output per class. lrstudy passes
    `input_shape` (one sample's, here [30]) and `num_outputs` (the number of classes)."""
    layers, width = [], input_shape[0]
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)
