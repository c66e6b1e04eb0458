"""Optimizers and LR schedules from the config: the libraries' own classes, stepped once per batch.

A run is a class of `torch.optim.lr_scheduler` with its keyword arguments; torch's SequentialLR of
such classes (`schedulers` + `milestones`); a class of `colossalai.nn.lr_scheduler` (prefix
`colossalai.`); `none` (a constant LR); or the built-in range test, which is torch's LambdaLR
driven by `rangetest.range_lr`. Optimizers: torch's, ColossalAI's LAMB/LARS, and the schedule-free
optimizers of the `schedulefree` package.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import inspect
from pathlib import Path

import torch
from torch.optim import lr_scheduler

from lrstudy.families import SCHEDULER_SCALE
from lrstudy.layout import format_kwargs, format_value  # the one number formatter

TORCH_OPTIMIZERS = ("SGD", "Adam", "AdamW", "RAdam")
COLOSSAL_OPTIMIZERS = {
    "LAMB": ("colossalai.nn.optimizer.lamb", "Lamb"),
    "LARS": ("colossalai.nn.optimizer.lars", "Lars"),
}
# Schedule-free optimizers train at one point and evaluate at another: see evaluation_weights.
SCHEDULE_FREE_OPTIMIZERS = ("SGDScheduleFree", "AdamWScheduleFree")
NO_SCHEDULER = "none"  # a constant LR: torch's ConstantLR with factor 1
SEQUENTIAL = "SequentialLR"
COLOSSAL_PREFIX = "colossalai."
COLOSSAL_SCHEDULERS = "colossalai.nn.lr_scheduler"
# A child of SequentialLR may set these to `auto`: the steps from its milestone to the run's end.
LENGTH_KWARGS = ("T_max", "total_iters")
# Filled in by the workflow from the data and the run length (OneCycleLR's own arguments).
FILLED = {"OneCycleLR": ("steps_per_epoch", "epochs")}
# Settable to `auto`: {kwarg: the range test's bound (rangetest.bounds) it takes}; a scheduler's
# LR-scale arguments (lrstudy.families), each filled from the bound of its name.
AUTO = {name: {key: key for key in keys} for name, keys in SCHEDULER_SCALE.items()}
# Classes that need Python objects (functions, other schedulers) or a metric: not in YAML.
# (SequentialLR is supported through `schedulers`/`milestones`, not as a plain class.)
UNSUPPORTED = {
    "LambdaLR",
    "MultiplicativeLR",
    "SequentialLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "LRScheduler",
}


class ScheduleError(ValueError):
    """A scheduler or optimizer entry of the config that the library would not accept; `key` is
    the config key below the run that is wrong (`scheduler`, `kwargs`, `schedulers.1.kwargs`...)."""

    def __init__(self, message: str, key: str = "kwargs"):
        super().__init__(message)
        self.key = key


def scheduler_names() -> list[str]:
    return sorted(
        name
        for name, obj in vars(lr_scheduler).items()
        if inspect.isclass(obj)
        and issubclass(obj, lr_scheduler.LRScheduler)
        and not name.startswith("_")
        and name not in UNSUPPORTED
    )


def scheduler_class(name: str):
    if name not in scheduler_names():
        colossal = ", ".join(COLOSSAL_PREFIX + c for c in colossal_schedulers())
        raise ScheduleError(
            f"unknown scheduler {name!r}; choose one of {', '.join(scheduler_names())}, "
            f"{SEQUENTIAL} (with `schedulers` "
            f"and `milestones`), {colossal} or {NO_SCHEDULER}",
            key="scheduler",
        )
    return getattr(lr_scheduler, name)


def _source(module: str) -> Path:
    """The source file of `module`, found without importing it (find_spec of a submodule would
    import its parent packages, and importing colossalai.nn costs ~8 s): from the top package."""
    top, *rest = module.split(".")
    return Path(importlib.util.find_spec(top).origin).parent.joinpath(*rest[:-1], rest[-1] + ".py")


@functools.cache
def colossal_schedulers() -> dict[str, str]:
    """{class: module} of colossalai.nn.lr_scheduler whose length `total_steps` the workflow fills
    in, read from the package's __init__.py (LambdaLR, MultiplicativeLR take a function: out)."""
    tree = ast.parse(_source(COLOSSAL_SCHEDULERS + ".__init__").read_text())
    found = {
        alias.name: f"{COLOSSAL_SCHEDULERS}.{node.module}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    signatures = {name: _colossal_signature(module, name) for name, module in found.items()}
    return {
        name: found[name]
        for name, (allowed, required) in signatures.items()
        if required == {"total_steps"} and "lr_lambda" not in allowed
    }


def _signature_names(cls) -> tuple[set[str], set[str]]:
    """(all keyword names, required names) of a class's __init__, less `self` and the first arg."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return {p.name for p in params}, {
        p.name for p in params if p.default is inspect.Parameter.empty
    }


def _colossal_signature(module: str, cls: str) -> tuple[set[str], set[str]]:
    """(keyword names, required names) read from the source: importing colossalai.nn costs ~8 s.
    A `**kwargs` catch-all is left out: a name it would swallow silently is an error here."""
    tree = ast.parse(_source(module).read_text())
    init = next(
        f
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == cls
        for f in node.body
        if isinstance(f, ast.FunctionDef) and f.name == "__init__"
    )
    args = init.args.args[2:]
    required = {a.arg for a in args[: len(args) - len(init.args.defaults)]}
    return {a.arg for a in args}, required


def optimizer_kwargs_names(name: str) -> tuple[set[str], set[str]]:
    if name in TORCH_OPTIMIZERS:
        return _signature_names(getattr(torch.optim, name))
    if name in COLOSSAL_OPTIMIZERS:
        return _colossal_signature(*COLOSSAL_OPTIMIZERS[name])
    if name in SCHEDULE_FREE_OPTIMIZERS:
        return _signature_names(getattr(importlib.import_module("schedulefree"), name))
    names = TORCH_OPTIMIZERS + tuple(COLOSSAL_OPTIMIZERS) + SCHEDULE_FREE_OPTIMIZERS
    raise ScheduleError(f"unknown optimizer {name!r}; choose one of {', '.join(names)}")


def check_kwargs(kind: str, name: str, kwargs: dict, allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ScheduleError(
            f"{kind} {name} takes no argument {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(kwargs))
    if missing:
        raise ScheduleError(f"{kind} {name} needs {', '.join(map(repr, missing))}")


def check_scheduler(name: str, kwargs: dict) -> None:
    """Raise ScheduleError unless the library would build the run's scheduler in the workflow.
    For SequentialLR, kwargs are {"schedulers": [{scheduler, kwargs}, ...], "milestones": [...]}."""
    if name == NO_SCHEDULER:
        if kwargs:
            raise ScheduleError(f"scheduler {NO_SCHEDULER} (a constant LR) takes no kwargs")
    elif name == SEQUENTIAL:
        check_sequential(kwargs["schedulers"], kwargs["milestones"])
    elif name.startswith(COLOSSAL_PREFIX):
        check_colossal(name.removeprefix(COLOSSAL_PREFIX), kwargs)
    else:
        check_torch_scheduler(name, kwargs, auto_ok=set(AUTO.get(name, {})))


def check_torch_scheduler(name: str, kwargs: dict, auto_ok: set[str], key: str = "kwargs") -> None:
    allowed, required = _signature_names(scheduler_class(name))
    filled = set(FILLED.get(name, ()))
    if name == "OneCycleLR" and "total_steps" not in kwargs:
        required = required | filled
    for name_ in filled & set(kwargs):
        raise ScheduleError(f"{name}: {name_!r} is filled in by the workflow; leave it out", key)
    try:
        check_kwargs("scheduler", name, kwargs, allowed, required - filled)
    except ScheduleError as error:
        raise ScheduleError(str(error), key) from None
    for arg, value in kwargs.items():
        if value == "auto" and arg not in auto_ok:
            raise ScheduleError(
                f"{name}: {arg!r} cannot be 'auto' (only {sorted(auto_ok) or 'none'})", key
            )
    # A dry build on a dummy parameter, stepped a few times, catches values torch itself rejects,
    # including wrong types it only trips over when stepping (StepLR(gamma="half")).
    trial = {
        k: (10 if k in LENGTH_KWARGS else 0.1) if v == "auto" else v for k, v in kwargs.items()
    }
    dummy = _dummy_optimizer()
    try:
        _dry_steps(dummy, build_scheduler(dummy, name, trial, steps_per_epoch=10, epochs=2))
    except Exception as error:  # whatever torch raises, reported before any job starts
        message = (
            f"{name}({format_kwargs(kwargs)}) is rejected by torch: {type(error).__name__}: {error}"
        )
        raise ScheduleError(message, key) from None


def check_sequential(schedulers: list[dict], milestones: list[int]) -> None:
    """torch's SequentialLR: one milestone (a step) between each two children, increasing; a
    child's length (T_max, total_iters) may be `auto`. Whether the milestones fall inside the run
    is known once the data is (fill_kwargs)."""
    if len(milestones) != len(schedulers) - 1:
        raise ScheduleError(
            f"{SEQUENTIAL} with {len(schedulers)} schedulers "
            f"needs {len(schedulers) - 1} milestones "
            f"(the step each next one starts), not {len(milestones)}",
            "milestones",
        )
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise ScheduleError(f"milestones {milestones} must increase", "milestones")
    for i, child in enumerate(schedulers):
        if child["scheduler"] in (SEQUENTIAL, NO_SCHEDULER) or child["scheduler"].startswith(
            COLOSSAL_PREFIX
        ):
            raise ScheduleError(
                f"a child of {SEQUENTIAL} is a torch scheduler class, not {child['scheduler']!r}",
                f"schedulers.{i}.scheduler",
            )
        try:
            scheduler_class(child["scheduler"])
        except ScheduleError as error:
            raise ScheduleError(str(error), f"schedulers.{i}.scheduler") from None
        check_torch_scheduler(
            child["scheduler"],
            child.get("kwargs", {}),
            set(LENGTH_KWARGS),
            f"schedulers.{i}.kwargs",
        )


def check_colossal(cls: str, kwargs: dict) -> None:
    """Against the signature in ColossalAI's source, not importing it; total_steps is filled in."""
    if cls not in colossal_schedulers():
        choices = ", ".join(COLOSSAL_PREFIX + c for c in colossal_schedulers())
        raise ScheduleError(
            f"unknown ColossalAI scheduler {COLOSSAL_PREFIX + cls!r}; choose one of {choices}",
            "scheduler",
        )
    if "total_steps" in kwargs:
        raise ScheduleError(
            f"{COLOSSAL_PREFIX + cls}: 'total_steps' is filled in by the workflow; leave it out"
        )
    allowed, required = _colossal_signature(colossal_schedulers()[cls], cls)
    check_kwargs("scheduler", COLOSSAL_PREFIX + cls, kwargs, allowed, required - {"total_steps"})
    for arg, value in kwargs.items():
        if value == "auto":
            raise ScheduleError(f"{COLOSSAL_PREFIX + cls}: {arg!r} cannot be 'auto'")


def _dummy_optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)


DRY_STEPS = 3


def _dry_steps(optimizer, scheduler=None) -> None:
    """Step `optimizer` (zero gradients) and `scheduler` DRY_STEPS times, as training does per
    batch. Where the scheduler has one, also evaluate torch's closed form of its LR: it uses every
    kwarg at once (StepLR's gamma only enters the stepped LR after step_size steps)."""
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
    source = Path(importlib.util.find_spec(top).origin).parent.joinpath(
        *rest[:-1], rest[-1] + ".py"
    )
    spec = importlib.util.spec_from_file_location(f"_lrstudy_dry_{cls.lower()}", source)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return getattr(loaded, cls)


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
            optimizer = _colossal_class(*COLOSSAL_OPTIMIZERS[name])(params, **trial)
        else:
            optimizer = build_optimizer(params, name, trial)
        training_weights(optimizer)  # a schedule-free optimizer steps in train mode only
        _dry_steps(optimizer)
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


def fill_kwargs(name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
    """The kwargs the class receives: the run's length where the workflow fills it in (OneCycleLR
    unless total_steps is given, ColossalAI's total_steps, SequentialLR children's `auto`)."""
    total = steps_per_epoch * epochs
    if name == "OneCycleLR" and "total_steps" not in kwargs:
        return {**kwargs, "steps_per_epoch": steps_per_epoch, "epochs": epochs}
    if name.startswith(COLOSSAL_PREFIX):
        return {**kwargs, "total_steps": total}
    if name == SEQUENTIAL:
        milestones = kwargs["milestones"]
        if milestones and milestones[-1] >= total:
            raise ScheduleError(
                f"milestone {milestones[-1]} is not inside the run's {total} steps", "milestones"
            )
        starts = [0, *milestones]
        children = [
            {
                "scheduler": c["scheduler"],
                "kwargs": {
                    k: (total - start if v == "auto" and k in LENGTH_KWARGS else v)
                    for k, v in c.get("kwargs", {}).items()
                },
            }
            for c, start in zip(kwargs["schedulers"], starts)
        ]
        return {"schedulers": children, "milestones": list(milestones)}
    return dict(kwargs)


def build_scheduler(optimizer, name: str, kwargs: dict, steps_per_epoch: int, epochs: int):
    filled = fill_kwargs(name, kwargs, steps_per_epoch, epochs)
    if name == NO_SCHEDULER:
        return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if name == SEQUENTIAL:
        children = [
            scheduler_class(c["scheduler"])(optimizer, **c["kwargs"]) for c in filled["schedulers"]
        ]
        return lr_scheduler.SequentialLR(optimizer, children, filled["milestones"])
    if name.startswith(COLOSSAL_PREFIX):
        cls = name.removeprefix(COLOSSAL_PREFIX)
        return getattr(importlib.import_module(colossal_schedulers()[cls]), cls)(
            optimizer, **filled
        )
    return scheduler_class(name)(optimizer, **filled)


def build_range_test(optimizer, range_test: dict, total_steps: int) -> lr_scheduler.LambdaLR:
    """torch's LambdaLR scaled so that the LR is exactly `range_lr(step)`: the optimizer's lr is set
    to start_lr and the factor is range_lr / start_lr."""
    from lrstudy.rangetest import range_lr

    start, end, mode = range_test["start_lr"], range_test["end_lr"], range_test["mode"]
    for group in optimizer.param_groups:
        group["lr"] = start
    return lr_scheduler.LambdaLR(
        optimizer,
        lambda step: range_lr(min(step, total_steps - 1), total_steps, start, end, mode) / start,
    )


# ------------------------------------------------------------------- `auto` values and momentum
# SGD's velocity sums past gradients with weights (1-dampening)*m^k, so once it settles a step moves
# the weights lr*(1-dampening)/(1-m): the effective learning rate lr/(1-m) of Smith, Kindermans,
# Ying & Le, "Don't Decay the Learning Rate, Increase the Batch Size" (ICLR 2018), sec. 4. Adam's
# moments are averages (weights (1-beta1)*beta1^k sum to 1), so its step does not grow with beta1.
NORMALISED_MOMENT = ("Adam", "AdamW", "RAdam", "LAMB")
MOMENTUM_SCHEDULERS = ("OneCycleLR", "CyclicLR")  # cycle the momentum against the LR by default
RELATION = (
    "effective step = lr*(1-dampening)/(1-momentum) for SGD-style momentum "
    "(Smith et al. 2018, sec. 4); lr for Adam-style moments"
)


def momentum(optimizer) -> float | None:
    """The momentum of the first param group: SGD's `momentum`, the Adam family's beta1."""
    group = optimizer.param_groups[0]
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else None


def _default(cls, key: str):
    return inspect.signature(cls.__init__).parameters[key].default


def constant_momentum(optimizer: dict) -> float:
    """The momentum an optimizer entry of the config trains with (beta1 for the Adam family)."""
    name, kwargs = optimizer["name"], optimizer.get("kwargs", {})
    if name in NORMALISED_MOMENT:
        return float(kwargs.get("betas", (0.9, 0.999))[0])
    return float(kwargs.get("momentum", 0.0))


def momentum_at(optimizer: dict, scheduler: str | None, kwargs: dict, key: str) -> float:
    """The momentum in force where the LR takes the value of `key` (`lr`, `max_lr`, `base_lr`).

    OneCycleLR and CyclicLR move the momentum against the LR (cycle_momentum, on by default):
    the LR's peak (max_lr) meets base_momentum, its floor (base_lr) max_momentum."""
    if scheduler in MOMENTUM_SCHEDULERS:
        cls = getattr(lr_scheduler, scheduler)
        if kwargs.get("cycle_momentum", _default(cls, "cycle_momentum")):
            which = "max_momentum" if key == "base_lr" else "base_momentum"
            return float(kwargs.get(which, _default(cls, which)))
    return constant_momentum(optimizer)


def step_gain(optimizer: dict, momentum_value: float) -> float:
    """How far one step moves the weights per unit of LR, once the momentum has settled."""
    if optimizer["name"] in NORMALISED_MOMENT:
        return 1.0
    dampening = float(optimizer.get("kwargs", {}).get("dampening", 0.0))
    return (1.0 - dampening) / (1.0 - momentum_value)


def resolve_auto(spec: dict, bounds: dict) -> tuple[dict, dict, dict]:
    """(optimizer kwargs, scheduler kwargs, record) with every `auto` value filled in.

    A bound measured by the range test (at its optimizer's momentum) is moved to the run's own
    momentum at that point of its schedule so that the effective step is the same:
    value = bound * step_gain(range test) / step_gain(run). The record lists each conversion."""
    source = spec["auto_from"]
    test_momentum = constant_momentum(source["optimizer"])
    test_gain = step_gain(source["optimizer"], test_momentum)
    scheduler = spec.get("scheduler") or {}
    name, sched_kwargs = scheduler.get("class"), scheduler.get("kwargs", {})
    record = {
        "range_test": source["run"],
        "rule": bounds.get("from"),
        "relation": RELATION,
        "range_test_momentum": test_momentum,
        "conversions": [],
    }

    def fill(kwargs: dict, scheduler_name: str | None) -> dict:
        filled = dict(kwargs)
        for key, value in kwargs.items():
            if value != "auto":
                continue
            bound = AUTO[scheduler_name][key] if scheduler_name else "lr"
            run_momentum = momentum_at(spec["optimizer"], name, sched_kwargs, key)
            factor = test_gain / step_gain(spec["optimizer"], run_momentum)
            filled[key] = bounds[bound] * factor
            record["conversions"].append(
                {
                    "key": key,
                    "bound": bound,
                    "suggested": bounds[bound],
                    "run_momentum": run_momentum,
                    "factor": factor,
                    "value": filled[key],
                }
            )
        return filled

    return fill(spec["optimizer"].get("kwargs", {}), None), fill(sched_kwargs, name), record


def apply_multiplier(tuning: dict, opt_kwargs: dict, sched_kwargs: dict):
    """(optimizer kwargs, scheduler kwargs, record) with a family's LR scale (`tuning["scale"]`:
    `lr` is the optimizer's, the others the scheduler's) times its multiplier, `auto` values
    already filled in; the record keeps each anchor and value."""
    scaled = {"optimizer": dict(opt_kwargs), "scheduler": dict(sched_kwargs)}
    record = {**tuning, "anchor": {}, "value": {}}
    for key in tuning["scale"]:
        kwargs = scaled["optimizer" if key == "lr" else "scheduler"]
        record["anchor"][key] = float(kwargs[key])
        kwargs[key] = float(kwargs[key]) * float(tuning["multiplier"])
        record["value"][key] = kwargs[key]
    return scaled["optimizer"], scaled["scheduler"], record


def format_scheduler(name: str, filled: dict) -> str:
    """The scheduler as a person writes it in Python, from its filled-in kwargs (run.json's
    `scheduler.kwargs`), e.g. `torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers=[
    torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=20),
    torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=580)], milestones=[20])`: a line
    that runs where `optimizer` exists (and `import colossalai.nn.lr_scheduler` for its own)."""
    if name == NO_SCHEDULER:
        return "None  # a constant learning rate"
    if name.startswith(COLOSSAL_PREFIX):
        return f"{COLOSSAL_SCHEDULERS}.{name.removeprefix(COLOSSAL_PREFIX)}({_call_args(filled)})"
    if name == SEQUENTIAL:
        children = ", ".join(
            f"torch.optim.lr_scheduler.{c['scheduler']}({_call_args(c['kwargs'])})"
            for c in filled["schedulers"]
        )
        milestones = format_value(filled["milestones"])
        return (
            f"torch.optim.lr_scheduler.{SEQUENTIAL}(optimizer, schedulers=[{children}], "
            f"milestones={milestones})"
        )
    return f"torch.optim.lr_scheduler.{name}({_call_args(filled)})"


def _call_args(kwargs: dict) -> str:
    return ", ".join(["optimizer"] + ([format_kwargs(kwargs)] if kwargs else []))
