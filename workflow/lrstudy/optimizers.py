"""Optimizers from the config: torch's, ColossalAI's LAMB/LARS, and the schedule-free optimizers of
the `schedulefree` package; their check before any job starts, their build, the momentum they
hold, and the two sets of weights of a schedule-free optimizer (see evaluation_weights).
"""

from __future__ import annotations

import contextlib
import importlib

import torch

from lrstudy.layout import format_kwargs
from lrstudy.signatures import (
    ScheduleError,
    check_kwargs,
    colossal_class,
    colossal_signature,
    dry_steps,
    signature_names,
)

TORCH_OPTIMIZERS = ("SGD", "Adam", "AdamW", "RAdam")
COLOSSAL_OPTIMIZERS = {
    "LAMB": ("colossalai.nn.optimizer.lamb", "Lamb"),
    "LARS": ("colossalai.nn.optimizer.lars", "Lars"),
}
# Schedule-free optimizers train at one point and evaluate at another: see evaluation_weights.
SCHEDULE_FREE_OPTIMIZERS = ("SGDScheduleFree", "AdamWScheduleFree")


def optimizer_kwargs_names(name: str) -> tuple[set[str], set[str]]:
    if name in TORCH_OPTIMIZERS:
        return signature_names(getattr(torch.optim, name))
    if name in COLOSSAL_OPTIMIZERS:
        return colossal_signature(*COLOSSAL_OPTIMIZERS[name])
    if name in SCHEDULE_FREE_OPTIMIZERS:
        return signature_names(getattr(importlib.import_module("schedulefree"), name))
    names = TORCH_OPTIMIZERS + tuple(COLOSSAL_OPTIMIZERS) + SCHEDULE_FREE_OPTIMIZERS
    raise ScheduleError(f"unknown optimizer {name!r}; choose one of {', '.join(names)}")


def check_optimizer(name: str, kwargs: dict) -> None:
    allowed, required = optimizer_kwargs_names(name)
    check_kwargs("optimizer", name, kwargs, allowed, required)
    lr = kwargs.get("lr")
    if (
        lr != "auto"
        and lr is not None
        and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0)
    ):
        raise ScheduleError(f"optimizer lr must be a number > 0 or 'auto', not {lr!r}")
    for key, value in kwargs.items():
        if value == "auto" and key != "lr":
            raise ScheduleError(f"optimizer {key!r} cannot be 'auto' (only lr)")
    # A dry build on a dummy parameter, stepped a few times: torch's own errors for wrong
    # values/types.
    trial = {k: (0.1 if v == "auto" else float(v)) if k == "lr" else v for k, v in kwargs.items()}
    try:
        params = [torch.zeros(2, requires_grad=True)]
        if name in COLOSSAL_OPTIMIZERS:  # from its source file: no ~8 s colossalai import
            optimizer = colossal_class(*COLOSSAL_OPTIMIZERS[name])(params, **trial)
        else:
            optimizer = build_optimizer(params, name, trial)
        training_weights(optimizer)  # a schedule-free optimizer steps in train mode only
        dry_steps(optimizer)
    except Exception as error:  # whatever torch raises, reported before any job starts
        raise ScheduleError(
            f"optimizer {name}({format_kwargs(kwargs)}) is rejected by torch: "
            f"{type(error).__name__}: {error}"
        ) from None


def build_optimizer(params, name: str, kwargs: dict) -> torch.optim.Optimizer:
    kwargs = {
        k: float(v) if k == "lr" else v for k, v in kwargs.items()
    }  # LARS insists on a float lr
    if name in TORCH_OPTIMIZERS:
        return getattr(torch.optim, name)(params, **kwargs)
    if name in SCHEDULE_FREE_OPTIMIZERS:
        return getattr(importlib.import_module("schedulefree"), name)(params, **kwargs)
    module, cls = COLOSSAL_OPTIMIZERS[name]
    return getattr(importlib.import_module(module), cls)(params, **kwargs)


def momentum(optimizer) -> float | None:
    """The momentum of the first param group: SGD's `momentum`, the Adam family's beta1."""
    group = optimizer.param_groups[0]
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else None


# --------------------------------------------------------------- schedule-free: two sets of weights
def _schedule_free(optimizer):
    """The schedulefree optimizer inside ColossalAI's wrappers (`.optim`), or None."""
    while hasattr(optimizer, "optim"):
        optimizer = optimizer.optim
    return optimizer if type(optimizer).__name__ in SCHEDULE_FREE_OPTIMIZERS else None


@contextlib.contextmanager
def evaluation_weights(optimizer):
    """Inside: the model holds a schedule-free optimizer's evaluation weights (its average x), as
    evaluation and checkpoints need; on leaving, its training weights y again. Other optimizers
    have one set of weights: nothing changes. Enter it on every rank."""
    inner = _schedule_free(optimizer)
    if inner is None:
        yield
        return
    inner.eval()
    try:
        yield
    finally:
        inner.train()


def training_weights(optimizer) -> None:
    """Put a schedule-free optimizer in train mode (it starts, and is saved, in eval mode)."""
    inner = _schedule_free(optimizer)
    if inner is not None:
        inner.train()
