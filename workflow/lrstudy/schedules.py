"""LR schedules from the config: a registry, one entry (a lrstudy.kinds.Kind) per kind.

The kinds, in KINDS: a class of `torch.optim.lr_scheduler` with its kwargs; torch's SequentialLR of
such classes (`schedulers` + `milestones`); a class of `colossalai.nn.lr_scheduler` (written
`colossalai.<Class>`); `none` (a constant LR); the range test (torch's LambdaLR driven by
`rangetest.range_lr`). Each checks a run's entry before any job starts, fills in what its class
receives once the run's length is known (run.json's record), builds the scheduler, says the
momentum it sets where the LR takes a value (lrstudy.auto), and prints the line a person writes
(the report's code line). A new kind is a new entry here. Importing this module imports no torch:
building a scheduler, and the dry build that checks one, import it.
"""

from __future__ import annotations

import copy
import importlib

from lrstudy.kinds import (
    AUTO,
    COLOSSAL_PREFIX,
    FILLED,
    FILLED_CODE,
    LENGTH_KWARGS,
    MOMENTUM_SCHEDULERS,
    NO_SCHEDULER,
    SEQUENTIAL,
    Kind,
    call_args,
    torch_schedulers,
)
from lrstudy.layout import RANGE_TEST_DEFAULTS, format_kwargs, format_value
from lrstudy.signatures import (
    COLOSSAL_SCHEDULERS,
    ScheduleError,
    check_signature,
    colossal_schedulers,
    colossal_signature,
    default,
    dry_build,
    scheduler_names,
    signature_names,
)


# ------------------------------------------------------------------------------------ the kinds
class TorchClass(Kind):
    """A class of torch.optim.lr_scheduler with its kwargs (the entry that owns any other name:
    an unknown one is refused by its check)."""

    def owns(self, name: str) -> bool:
        return True

    def check_kwargs(self, name: str, kwargs: dict) -> None:
        self.check_class(name, kwargs, auto_ok=set(AUTO.get(name, {})))

    def check_class(self, name: str, kwargs: dict, auto_ok: set[str], key: str = "kwargs") -> None:
        """Against the class's signature, then a dry build (`auto` values as stand-ins)."""
        allowed, required = signature_names(scheduler_class(name))
        filled = set(FILLED.get(name, ()))
        if name == "OneCycleLR" and "total_steps" not in kwargs:
            required = required | filled
        check_signature(name, kwargs, allowed, required, filled, auto_ok, key)
        trial = {
            k: (10 if k in LENGTH_KWARGS else 0.1) if v == "auto" else v for k, v in kwargs.items()
        }
        dry_build(name, kwargs, lambda dummy: build_scheduler(dummy, name, trial, 10, 2), key)

    def fill(self, name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
        if name == "OneCycleLR" and "total_steps" not in kwargs:  # FILLED
            return {**kwargs, "steps_per_epoch": steps_per_epoch, "epochs": epochs}
        return dict(kwargs)

    def build(self, optimizer, name: str, filled: dict):
        return scheduler_class(name)(optimizer, **filled)

    def momentum(self, name: str, kwargs: dict, key: str) -> float | None:
        """OneCycleLR and CyclicLR move the momentum against the LR (cycle_momentum, on by
        default): the LR's peak (max_lr) meets base_momentum, its floor (base_lr) max_momentum."""
        if name not in MOMENTUM_SCHEDULERS:
            return None
        cls = getattr(torch_schedulers(), name)
        if not kwargs.get("cycle_momentum", default(cls, "cycle_momentum")):
            return None
        which = "max_momentum" if key == "base_lr" else "base_momentum"
        return float(kwargs.get(which, default(cls, which)))

    def format(self, name: str, filled: dict) -> str:
        return f"torch.optim.lr_scheduler.{name}({call_args(filled)})"

    def code(self, name: str, kwargs: dict, filled: dict | None) -> list[str]:
        """The source's line: the config's kwargs in its order, `auto` as the run used it, and
        OneCycleLR's filled-in length as the source's training script passes it (FILLED_CODE)."""
        used = {
            k: filled[k] if v == "auto" and (filled or {}).get(k) is not None else v
            for k, v in (kwargs or {}).items()
        }
        args = ["optimizer"] + ([format_kwargs(used)] if used else [])
        if FILLED.get(name) and "total_steps" not in used:
            args += [f"{key}={FILLED_CODE.get(key, key)}" for key in FILLED[name]]
        return [f"lr_scheduler = torch.optim.lr_scheduler.{name}({', '.join(args)})"]


class Sequential(Kind):
    """torch's SequentialLR of torch classes: `schedulers` (each {scheduler, kwargs}) and
    `milestones`, one between each two children, increasing; a child's length (T_max,
    total_iters) may be `auto`: the steps from its milestone to the run's end."""

    def owns(self, name: str) -> bool:
        return name == SEQUENTIAL

    def config_kwargs(self, run: dict) -> dict:
        return {
            "schedulers": copy.deepcopy(run["schedulers"]),
            "milestones": list(run["milestones"]),
        }

    def check(self, name: str, run: dict) -> None:
        for part in ("schedulers", "milestones"):
            if part not in run:
                raise ScheduleError(
                    f"a {SEQUENTIAL} run needs `schedulers` (its children) and `milestones`", part
                )
        if run.get("kwargs"):
            raise ScheduleError(
                f"a {SEQUENTIAL} run takes `schedulers` and `milestones`, not `kwargs`", "kwargs"
            )
        self.check_kwargs(name, self.config_kwargs(run))

    def check_kwargs(self, name: str, kwargs: dict) -> None:
        """Whether the milestones fall inside the run is known once the data is (fill)."""
        schedulers, milestones = kwargs["schedulers"], kwargs["milestones"]
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
            if not isinstance(kind(child["scheduler"]), TorchClass):
                raise ScheduleError(
                    f"a child of {SEQUENTIAL} is a torch scheduler class, "
                    f"not {child['scheduler']!r}",
                    f"schedulers.{i}.scheduler",
                )
            try:
                scheduler_class(child["scheduler"])
            except ScheduleError as error:
                raise ScheduleError(str(error), f"schedulers.{i}.scheduler") from None
            TORCH_CLASS.check_class(
                child["scheduler"],
                child.get("kwargs", {}),
                set(LENGTH_KWARGS),
                f"schedulers.{i}.kwargs",
            )

    def fill(self, name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
        total = steps_per_epoch * epochs
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

    def build(self, optimizer, name: str, filled: dict):
        children = [
            scheduler_class(c["scheduler"])(optimizer, **c["kwargs"]) for c in filled["schedulers"]
        ]
        return torch_schedulers().SequentialLR(optimizer, children, filled["milestones"])

    def format(self, name: str, filled: dict) -> str:
        children = ", ".join(
            TORCH_CLASS.format(c["scheduler"], c["kwargs"]) for c in filled["schedulers"]
        )
        milestones = format_value(filled["milestones"])
        return (
            f"torch.optim.lr_scheduler.{SEQUENTIAL}(optimizer, schedulers=[{children}], "
            f"milestones={milestones})"
        )


class Colossal(Kind):
    """A class of colossalai.nn.lr_scheduler (`colossalai.<Class>`); its length `total_steps` is
    filled in. Checked against the signature in ColossalAI's source, not importing it (~8 s)."""

    def owns(self, name: str) -> bool:
        return name.startswith(COLOSSAL_PREFIX)

    def check_kwargs(self, name: str, kwargs: dict) -> None:
        cls = name.removeprefix(COLOSSAL_PREFIX)
        if cls not in colossal_schedulers():
            choices = ", ".join(COLOSSAL_PREFIX + c for c in colossal_schedulers())
            raise ScheduleError(
                f"unknown ColossalAI scheduler {name!r}; choose one of {choices}", "scheduler"
            )
        allowed, required = colossal_signature(colossal_schedulers()[cls], cls)
        check_signature(name, kwargs, allowed, required, filled={"total_steps"})

    def fill(self, name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
        return {**kwargs, "total_steps": steps_per_epoch * epochs}

    def build(self, optimizer, name: str, filled: dict):
        cls = name.removeprefix(COLOSSAL_PREFIX)
        return getattr(importlib.import_module(colossal_schedulers()[cls]), cls)(
            optimizer, **filled
        )

    def format(self, name: str, filled: dict) -> str:
        return f"{COLOSSAL_SCHEDULERS}.{name.removeprefix(COLOSSAL_PREFIX)}({call_args(filled)})"


class Constant(Kind):
    """`none`: a constant LR, the optimizer's own (torch's ConstantLR with factor 1)."""

    def owns(self, name: str) -> bool:
        return name == NO_SCHEDULER

    def check_kwargs(self, name: str, kwargs: dict) -> None:
        if kwargs:
            raise ScheduleError(f"scheduler {NO_SCHEDULER} (a constant LR) takes no kwargs")

    def build(self, optimizer, name: str, filled: dict):
        return torch_schedulers().ConstantLR(optimizer, factor=1.0, total_iters=0)

    def format(self, name: str, filled: dict) -> str:
        return "None  # a constant learning rate"


class RangeTest(Kind):
    """The LR range test (a run's `range_test`, no `scheduler`): torch's LambdaLR scaled so that
    the LR is exactly `rangetest.range_lr(step)` from start_lr to end_lr over its steps."""

    def owns(self, name: str) -> bool:
        return False  # a run is a range test by its `range_test` entry (owns_run)

    def owns_run(self, run: dict) -> bool:
        return "range_test" in run

    def config_kwargs(self, run: dict) -> dict:
        return {**RANGE_TEST_DEFAULTS, **copy.deepcopy(run["range_test"] or {})}

    def check(self, name: str, run: dict) -> None:
        test = run["range_test"]
        if test["end_lr"] <= test["start_lr"]:
            raise ScheduleError(
                f"{test['end_lr']} must exceed start_lr {test['start_lr']}", "range_test.end_lr"
            )

    def fill(self, name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
        return {**kwargs, "total_steps": kwargs.get("steps") or steps_per_epoch * epochs}

    def build(self, optimizer, name: str, filled: dict):
        """The optimizer's lr is set to start_lr and the factor is range_lr / start_lr."""
        from lrstudy.rangetest import range_lr

        start, end, mode = filled["start_lr"], filled["end_lr"], filled["mode"]
        total = filled["total_steps"]
        for group in optimizer.param_groups:
            group["lr"] = start
        return torch_schedulers().LambdaLR(
            optimizer,
            lambda step: range_lr(min(step, total - 1), total, start, end, mode) / start,
        )

    def code(self, name: str, kwargs: dict, filled: dict | None) -> list[str]:
        """The source's lrs(batch) function with the run's start and end LR."""
        start, end = format_value(kwargs["start_lr"]), format_value(kwargs["end_lr"])
        steps = kwargs.get("steps") or "len(train_dataloader)/gpc.config.NUM_EPOCHS"
        span = f"batch/{steps}"
        if kwargs["mode"] == "linear":
            low, high, value = start, end, f"low+(high-low)*{span}"
        else:
            low, high = f"math.log2({start})", f"math.log2({end})"
            value = f"2**(low+(high-low)*{span})"
        return ["def lrs(batch):", f"    low = {low}", f"    high = {high}", f"    return {value}"]


TORCH_CLASS = TorchClass()
RANGE_TEST = RangeTest()
# In the order they are asked whether they own a run: the torch classes last (they own the rest).
KINDS = (RANGE_TEST, Constant(), Sequential(), Colossal(), TORCH_CLASS)


# ------------------------------------------------------------------------------ the registry
def kind(name: str) -> Kind:
    """The kind of the scheduler named `name` (a run's `scheduler` entry)."""
    return next(k for k in KINDS if k.owns(name))


def kind_of(run: dict) -> Kind:
    """The kind of a run's config entry (a range test, or the kind of its `scheduler`)."""
    return next(k for k in KINDS if k.owns_run(run))


def check_run(run: dict) -> None:
    """Raise ScheduleError (its `key` below the run's) unless the workflow would build the run's
    schedule: for SequentialLR, `schedulers` and `milestones` (no `kwargs`), for the others no
    `schedulers`/`milestones`; the kwargs against the library's signature and a dry build."""
    kind_of(run).check(run.get("scheduler"), run)


def scheduler_kwargs(run: dict) -> dict:
    """The scheduler's keyword arguments; SequentialLR's are its children and milestones."""
    return kind_of(run).config_kwargs(run)


def fill_kwargs(name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
    """The kwargs the class receives (run.json's `scheduler.kwargs`): the run's length where the
    workflow fills it in (OneCycleLR unless total_steps is given, ColossalAI's total_steps,
    SequentialLR children's `auto`)."""
    return kind(name).fill(name, kwargs, steps_per_epoch, epochs)


def build_scheduler(optimizer, name: str, kwargs: dict, steps_per_epoch: int, epochs: int):
    entry = kind(name)
    return entry.build(optimizer, name, entry.fill(name, kwargs, steps_per_epoch, epochs))


def build_range_test(optimizer, range_test: dict, total_steps: int):
    """torch's LambdaLR whose LR is exactly `range_lr(step)` over `total_steps` steps."""
    return RANGE_TEST.build(optimizer, "LambdaLR", {**range_test, "total_steps": total_steps})


def format_scheduler(name: str, filled: dict) -> str:
    """The scheduler as a person writes it in Python, from its filled-in kwargs (run.json's
    `scheduler.kwargs`): a line that runs where `optimizer` exists."""
    return kind(name).format(name, filled)


def code(run: dict, filled: dict | None) -> list[str]:
    """The report's code lines for a run's config entry; `filled`: run.json's scheduler kwargs."""
    entry = kind_of(run)
    return entry.code(run.get("scheduler"), entry.config_kwargs(run), filled)


def scheduler_class(name: str):
    if name not in scheduler_names():
        colossal = ", ".join(COLOSSAL_PREFIX + c for c in colossal_schedulers())
        raise ScheduleError(
            f"unknown scheduler {name!r}; choose one of {', '.join(scheduler_names())}, "
            f"{SEQUENTIAL} (with `schedulers` "
            f"and `milestones`), {colossal} or {NO_SCHEDULER}",
            key="scheduler",
        )
    return getattr(torch_schedulers(), name)
