"""Optimizers and LR schedules from the config: torch's own classes, stepped once per batch.

A run is either a class of `torch.optim.lr_scheduler` with its keyword arguments, or the
built-in range test, which is torch's LambdaLR driven by `rangetest.range_lr`.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import torch
from torch.optim import lr_scheduler

TORCH_OPTIMIZERS = ("SGD", "Adam", "AdamW", "RAdam")
COLOSSAL_OPTIMIZERS = {"LAMB": ("colossalai.nn.optimizer.lamb", "Lamb"), "LARS": ("colossalai.nn.optimizer.lars", "Lars")}
# Filled in by the workflow from the data and the run length (OneCycleLR's own arguments).
FILLED = {"OneCycleLR": ("steps_per_epoch", "epochs")}
# Settable to `auto`: taken from the range test's bounds (rangetest.bounds).
AUTO = {"OneCycleLR": {"max_lr": "max_lr"}, "CyclicLR": {"base_lr": "base_lr", "max_lr": "max_lr"}}
# Classes that need Python objects (functions, other schedulers) or a metric: not expressible in YAML.
UNSUPPORTED = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau", "LRScheduler"}


class ScheduleError(ValueError):
    """A scheduler or optimizer entry of the config that torch would not accept."""


def scheduler_names() -> list[str]:
    return sorted(
        name
        for name, obj in vars(lr_scheduler).items()
        if inspect.isclass(obj) and issubclass(obj, lr_scheduler.LRScheduler)
        and not name.startswith("_") and name not in UNSUPPORTED
    )


def scheduler_class(name: str):
    if name not in scheduler_names():
        raise ScheduleError(f"unknown scheduler {name!r}; choose one of {', '.join(scheduler_names())}")
    return getattr(lr_scheduler, name)


def _signature_names(cls) -> tuple[set[str], set[str]]:
    """(all keyword names, required names) of a class's __init__, without `self` and the first arg."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return {p.name for p in params}, {p.name for p in params if p.default is inspect.Parameter.empty}


def _colossal_signature(module: str, cls: str) -> tuple[set[str], set[str]]:
    """Read the signature from the source: importing colossalai.nn.optimizer costs ~8 s."""
    # find_spec of a submodule would import its parent packages; locate the file from the top one.
    top, *rest = module.split(".")
    source = Path(importlib.util.find_spec(top).origin).parent.joinpath(*rest[:-1], rest[-1] + ".py")
    tree = ast.parse(source.read_text())
    init = next(
        f for node in tree.body if isinstance(node, ast.ClassDef) and node.name == cls
        for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"
    )
    args = init.args.args[2:]
    required = {a.arg for a in args[: len(args) - len(init.args.defaults)]}
    return {a.arg for a in args}, required


def optimizer_kwargs_names(name: str) -> tuple[set[str], set[str]]:
    if name in TORCH_OPTIMIZERS:
        return _signature_names(getattr(torch.optim, name))
    if name in COLOSSAL_OPTIMIZERS:
        return _colossal_signature(*COLOSSAL_OPTIMIZERS[name])
    raise ScheduleError(f"unknown optimizer {name!r}; choose one of {', '.join(TORCH_OPTIMIZERS + tuple(COLOSSAL_OPTIMIZERS))}")


def check_kwargs(kind: str, name: str, kwargs: dict, allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ScheduleError(f"{kind} {name} takes no argument {', '.join(map(repr, unknown))}; it takes {', '.join(sorted(allowed))}")
    missing = sorted(required - set(kwargs))
    if missing:
        raise ScheduleError(f"{kind} {name} needs {', '.join(map(repr, missing))}")


def check_scheduler(name: str, kwargs: dict) -> None:
    """Raise ScheduleError unless torch would build `name(optimizer, **kwargs)` in the workflow."""
    allowed, required = _signature_names(scheduler_class(name))
    filled = set(FILLED.get(name, ()))
    if name == "OneCycleLR" and "total_steps" not in kwargs:
        required = required | filled
    for key in filled & set(kwargs):
        raise ScheduleError(f"{name}: {key!r} is filled in by the workflow; leave it out")
    check_kwargs("scheduler", name, kwargs, allowed, required - filled)
    for key, value in kwargs.items():
        if value == "auto" and key not in AUTO.get(name, {}):
            raise ScheduleError(f"{name}: {key!r} cannot be 'auto' (only {sorted(AUTO.get(name, {})) or 'none'})")
    # A dry build on a dummy parameter, stepped a few times, catches values torch itself rejects,
    # including wrong types it only trips over when stepping (StepLR(gamma="half")).
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    trial = {k: (0.1 if v == "auto" else v) for k, v in kwargs.items()}
    try:
        _dry_steps(dummy, build_scheduler(dummy, name, trial, steps_per_epoch=10, epochs=2))
    except Exception as error:  # whatever torch raises, reported before any job starts
        raise ScheduleError(f"{name}({format_kwargs(kwargs)}) is rejected by torch: {type(error).__name__}: {error}") from None


DRY_STEPS = 3


def _dry_steps(optimizer, scheduler=None) -> None:
    """Step `optimizer` (zero gradients) and `scheduler` DRY_STEPS times, as training does per batch.
    Where the scheduler has one, also evaluate torch's closed form of its LR: it uses every kwarg at
    once (StepLR's gamma only enters the stepped LR after step_size steps)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = torch.zeros_like(param)
    for _ in range(DRY_STEPS):
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
            if hasattr(scheduler, "_get_closed_form_lr"):
                scheduler._get_closed_form_lr()


def _colossal_class(module: str, cls: str):
    """The class from its source file alone (it imports only torch): no ~8 s colossalai import."""
    top, *rest = module.split(".")
    source = Path(importlib.util.find_spec(top).origin).parent.joinpath(*rest[:-1], rest[-1] + ".py")
    spec = importlib.util.spec_from_file_location(f"_lrstudy_dry_{cls.lower()}", source)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return getattr(loaded, cls)


def check_optimizer(name: str, kwargs: dict) -> None:
    allowed, required = optimizer_kwargs_names(name)
    check_kwargs("optimizer", name, kwargs, allowed, required)
    lr = kwargs.get("lr")
    if lr != "auto" and lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
        raise ScheduleError(f"optimizer lr must be a number > 0 or 'auto', not {lr!r}")
    for key, value in kwargs.items():
        if value == "auto" and key != "lr":
            raise ScheduleError(f"optimizer {key!r} cannot be 'auto' (only lr)")
    # A dry build on a dummy parameter, stepped a few times: torch's own errors for wrong values/types.
    cls = getattr(torch.optim, name) if name in TORCH_OPTIMIZERS else _colossal_class(*COLOSSAL_OPTIMIZERS[name])
    try:
        trial = {k: (0.1 if v == "auto" else float(v)) if k == "lr" else v for k, v in kwargs.items()}
        _dry_steps(cls([torch.zeros(2, requires_grad=True)], **trial))
    except Exception as error:  # whatever torch raises, reported before any job starts
        raise ScheduleError(f"optimizer {name}({format_kwargs(kwargs)}) is rejected by torch: {type(error).__name__}: {error}") from None


def build_optimizer(params, name: str, kwargs: dict) -> torch.optim.Optimizer:
    kwargs = {k: float(v) if k == "lr" else v for k, v in kwargs.items()}  # LARS insists on a float lr
    if name in TORCH_OPTIMIZERS:
        return getattr(torch.optim, name)(params, **kwargs)
    module, cls = COLOSSAL_OPTIMIZERS[name]
    return getattr(importlib.import_module(module), cls)(params, **kwargs)


def fill_kwargs(name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
    """The kwargs torch receives: OneCycleLR gets the run's length unless total_steps is given."""
    if name == "OneCycleLR" and "total_steps" not in kwargs:
        return {**kwargs, "steps_per_epoch": steps_per_epoch, "epochs": epochs}
    return dict(kwargs)


def build_scheduler(optimizer, name: str, kwargs: dict, steps_per_epoch: int, epochs: int):
    return scheduler_class(name)(optimizer, **fill_kwargs(name, kwargs, steps_per_epoch, epochs))


def build_range_test(optimizer, range_test: dict, total_steps: int) -> lr_scheduler.LambdaLR:
    """torch's LambdaLR scaled so that the LR is exactly `range_lr(step)`: the optimizer's lr is set
    to start_lr and the factor is range_lr / start_lr."""
    from lrstudy.rangetest import range_lr

    start, end, mode = range_test["start_lr"], range_test["end_lr"], range_test["mode"]
    for group in optimizer.param_groups:
        group["lr"] = start
    return lr_scheduler.LambdaLR(optimizer, lambda step: range_lr(min(step, total_steps - 1), total_steps, start, end, mode) / start)


def resolve_auto(name: str | None, kwargs: dict, bounds: dict) -> dict:
    """Replace `auto` values by the range test's bounds (rangetest.bounds keys)."""
    mapping = AUTO.get(name, {}) if name else {"lr": "lr"}
    return {k: (bounds[mapping[k]] if v == "auto" else v) for k, v in kwargs.items()}


def format_value(value) -> str:
    """Numbers as a person writes them: 1e-5 (not 1e-05), 10, 0.999, 1.1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def format_kwargs(kwargs: dict) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in kwargs.items())
