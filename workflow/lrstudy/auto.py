"""`auto` values from the range test, moved to the run's momentum, and a family's LR multiplier.

SGD's velocity sums past gradients with weights (1-dampening)*m^k, so once it settles a step moves
the weights lr*(1-dampening)/(1-m): the effective learning rate lr/(1-m) of Smith, Kindermans,
Ying & Le, "Don't Decay the Learning Rate, Increase the Batch Size" (ICLR 2018), sec. 4. Adam's
moments are averages (weights (1-beta1)*beta1^k sum to 1), so its step does not grow with beta1.
The momentum in force where the LR takes a value is the scheduler kind's to say (it may cycle the
momentum: lrstudy.schedules), else the optimizer's.

Importing this module imports no torch.
"""

from __future__ import annotations

from lrstudy import schedules

NORMALISED_MOMENT = ("Adam", "AdamW", "RAdam", "LAMB")
RELATION = (
    "effective step = lr*(1-dampening)/(1-momentum) for SGD-style momentum "
    "(Smith et al. 2018, sec. 4); lr for Adam-style moments"
)


def constant_momentum(optimizer: dict) -> float:
    """The momentum an optimizer entry of the config trains with (beta1 for the Adam family)."""
    name, kwargs = optimizer["name"], optimizer.get("kwargs", {})
    if name in NORMALISED_MOMENT:
        return float(kwargs.get("betas", (0.9, 0.999))[0])
    return float(kwargs.get("momentum", 0.0))


def momentum_at(optimizer: dict, scheduler: str | None, kwargs: dict, key: str) -> float:
    """The momentum in force where the LR takes the value of `key` (`lr`, `max_lr`, `base_lr`):
    the scheduler's where it sets the momentum (schedules.Kind.momentum), else the optimizer's."""
    cycled = schedules.kind(scheduler).momentum(scheduler, kwargs, key) if scheduler else None
    return constant_momentum(optimizer) if cycled is None else cycled


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
            bound = schedules.AUTO[scheduler_name][key] if scheduler_name else "lr"
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
