"""The training loss (config key `loss`): torch's built-ins or the user's function.

`auto` is cross-entropy for classification and the mean squared error for regression. A user's
loss is `loss(output, target)` returning the batch's mean as a scalar tensor; evaluation weighs
each batch's mean by its size, so a split's loss is the mean over its samples.
"""

from __future__ import annotations

BUILTIN = {
    "cross_entropy": "classification",
    "mse": "regression",
    "l1": "regression",
    "huber": "regression",
}
DEFAULT = {"classification": "cross_entropy", "regression": "mse"}
# What the figures, tables and report call the loss they show.
LABELS = {
    "cross_entropy": "cross-entropy loss",
    "mse": "mean squared error",
    "l1": "mean absolute error",
    "huber": "Huber loss",
}


def resolve(name: str, task: str) -> str:
    return DEFAULT[task] if name in (None, "auto") else name


def label(name: str | None) -> str:
    """The loss's name on an axis or in a caption."""
    if name in (None, "auto"):  # left `auto` by the built-in datasets only: classification
        return LABELS["cross_entropy"]
    return LABELS.get(name, f"loss ({name})")


def _builtin(name: str):
    import torch.nn.functional as F

    return {
        "cross_entropy": F.cross_entropy,
        "mse": F.mse_loss,
        "l1": F.l1_loss,
        "huber": F.huber_loss,
    }[name]


def function(name: str):
    """loss(output, target) -> the batch's mean loss."""
    if name in BUILTIN:
        return _builtin(name)
    from lrstudy import factories

    return factories.load(name, "loss")


def batch_sum(name: str):
    """loss_sum(output, target) -> the batch's loss summed over samples (a split's loss is the sum
    over its batches divided by its size)."""
    if name in BUILTIN:
        fn = _builtin(name)

        def summed(output, target):
            per_sample = max(1, target[0].numel()) if target.ndim > 1 else 1
            return fn(output, target, reduction="sum") / per_sample

        return summed
    fn = function(name)
    return lambda output, target: fn(output, target) * len(target)


def criterion(name: str):
    """The loss as an nn.Module (what the Booster wraps)."""
    import torch

    fn = function(name)

    class Loss(torch.nn.Module):
        def forward(self, output, target):
            return fn(output, target)

    return Loss()


def check(name: str, task: str, output, target) -> None:
    """The loss fits the task and returns a scalar on the model's output; raises FactoryError."""
    import torch

    from lrstudy.factories import FactoryError

    if name in BUILTIN and BUILTIN[name] != task:
        fits = ", ".join(n for n, t in BUILTIN.items() if t == task)
        raise FactoryError("loss", f"{name} is a {BUILTIN[name]} loss; this is {task}: use {fits}")
    try:
        value = function(name)(output, target)
    except FactoryError:
        raise
    except Exception as error:
        raise FactoryError(
            "loss", f"{name}(output, target) raised {type(error).__name__}: {error}"
        ) from None
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        raise FactoryError("loss", f"{name}(output, target) must return a scalar tensor")
