"""What the libraries accept, read before any job starts: the keyword names of a class, from its
signature or (for ColossalAI, whose import costs ~8 s) from its source; a dry build on a dummy
parameter that lets torch reject what it would reject in a job.

Importing this module imports no torch: the dry build imports it when it runs.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
from pathlib import Path

from lrstudy.layout import format_kwargs

DRY_STEPS = 3
COLOSSAL_SCHEDULERS = "colossalai.nn.lr_scheduler"
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


def check_signature(
    name: str,
    kwargs: dict,
    allowed: set[str],
    required: set[str],
    filled: set[str],
    auto_ok: set[str] | None = None,
    key: str = "kwargs",
) -> None:
    """Scheduler `name`'s kwargs against its class's (allowed, required) names: none of `filled`
    (the workflow fills them in), no unknown one, every required one, `auto` only where auto_ok
    has it (None: nowhere)."""
    for arg in filled & set(kwargs):
        raise ScheduleError(f"{name}: {arg!r} is filled in by the workflow; leave it out", key)
    try:
        check_kwargs("scheduler", name, kwargs, allowed, required - filled)
    except ScheduleError as error:
        raise ScheduleError(str(error), key) from None
    for arg, value in kwargs.items():
        if value == "auto" and arg not in (auto_ok or ()):
            only = "" if auto_ok is None else f" (only {sorted(auto_ok) or 'none'})"
            raise ScheduleError(f"{name}: {arg!r} cannot be 'auto'{only}", key)


def source(module: str) -> Path:
    """The source file of `module`, found without importing it (find_spec of a submodule would
    import its parent packages, and importing colossalai.nn costs ~8 s): from the top package."""
    top, *rest = module.split(".")
    return Path(importlib.util.find_spec(top).origin).parent.joinpath(*rest[:-1], rest[-1] + ".py")


def signature_names(cls) -> tuple[set[str], set[str]]:
    """(all keyword names, required names) of a class's __init__, less `self` and the first arg."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return {p.name for p in params}, {
        p.name for p in params if p.default is inspect.Parameter.empty
    }


def default(cls, key: str):
    """The default value of keyword `key` of a class's __init__."""
    return inspect.signature(cls.__init__).parameters[key].default


def colossal_signature(module: str, cls: str) -> tuple[set[str], set[str]]:
    """(keyword names, required names) read from the source: importing colossalai.nn costs ~8 s.
    A `**kwargs` catch-all is left out: a name it would swallow silently is an error here."""
    tree = ast.parse(source(module).read_text())
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


def colossal_class(module: str, cls: str):
    """The class from its source file alone (it imports only torch): no ~8 s colossalai import."""
    spec = importlib.util.spec_from_file_location(f"_lrstudy_dry_{cls.lower()}", source(module))
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return getattr(loaded, cls)


def dummy_optimizer():
    import torch

    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)


def dry_build(name: str, kwargs: dict, build, key: str = "kwargs") -> None:
    """`build(optimizer)` a scheduler on a dummy parameter and step it a few times: torch's own
    errors, including wrong types it only trips over when stepping (StepLR(gamma="half")),
    reported before any job starts."""
    dummy = dummy_optimizer()
    try:
        dry_steps(dummy, build(dummy))
    except Exception as error:  # whatever torch raises
        message = (
            f"{name}({format_kwargs(kwargs)}) is rejected by torch: {type(error).__name__}: {error}"
        )
        raise ScheduleError(message, key) from None


def dry_steps(optimizer, scheduler=None) -> None:
    """Step `optimizer` (zero gradients) and `scheduler` DRY_STEPS times, as training does per
    batch. Where the scheduler has one, also evaluate torch's closed form of its LR: it uses every
    kwarg at once (StepLR's gamma only enters the stepped LR after step_size steps)."""
    import torch

    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = torch.zeros_like(param)
    for _ in range(DRY_STEPS):
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
            if hasattr(scheduler, "_get_closed_form_lr"):
                scheduler._get_closed_form_lr()


# ---------------------------------------------------------------- the schedulers offered
def scheduler_names() -> list[str]:
    from torch.optim import lr_scheduler

    return sorted(
        name
        for name, obj in vars(lr_scheduler).items()
        if inspect.isclass(obj)
        and issubclass(obj, lr_scheduler.LRScheduler)
        and not name.startswith("_")
        and name not in UNSUPPORTED
    )


@functools.cache
def colossal_schedulers() -> dict[str, str]:
    """{class: module} of colossalai.nn.lr_scheduler whose length `total_steps` the workflow fills
    in, read from the package's __init__.py (LambdaLR, MultiplicativeLR take a function: out)."""
    tree = ast.parse(source(COLOSSAL_SCHEDULERS + ".__init__").read_text())
    found = {
        alias.name: f"{COLOSSAL_SCHEDULERS}.{node.module}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    found_signatures = {name: colossal_signature(module, name) for name, module in found.items()}
    return {
        name: found[name]
        for name, (allowed, required) in found_signatures.items()
        if required == {"total_steps"} and "lr_lambda" not in allowed
    }
