"""Schedule families: a schedule and the keyword arguments that set its LR scale, tuned fairly.

A family (config `families.<name>`) is a scheduled run whose LR scale is not fixed: every family
of a study is trained on the same grid of LR multipliers (`tuning.multipliers`) around its anchor
on the tuning seeds (`tuning.seeds`), its best multiplier by validation data alone is chosen
(lrstudy.verdict.select), and that setting is retrained on the confirmation seeds
(`tuning.confirm_seeds`), on which the families are compared (lrstudy.verdict).

The scale is the schedule's own LR arguments where it has them (OneCycleLR's `max_lr`, CyclicLR's
`base_lr` and `max_lr`, moved together: `kinds.AUTO`), else the optimizer's `lr`. Its anchor is
the value the family gives, or `auto` (the range test's suggestion, lrstudy.auto.resolve_auto)
where it gives none. Each multiplier is one run, `tune-<family>-x<multiplier>`; the confirmation
run is `confirm-<family>`: both have the run folders `results/runs/<run>/seed<seed>/` of any run.

Torch-free: the Snakefile reads the run names from here.
"""

from __future__ import annotations

import copy

from lrstudy.layout import format_value

TUNE_PREFIX, CONFIRM_PREFIX = "tune-", "confirm-"
SELECTED = "selected"  # a confirmation run's multiplier, filled in from the tuning stage's choice
# A family's LR-scale arguments where its scheduler sets the LR itself; they are also the kwargs
# that `auto` may fill (lrstudy.kinds.AUTO is made from this).
SCHEDULER_SCALE = {"OneCycleLR": ("max_lr",), "CyclicLR": ("base_lr", "max_lr")}
OPTIMIZER_SCALE = ("lr",)


def scale_keys(scheduler: str) -> tuple[str, ...]:
    """The kwargs a multiplier scales: the scheduler's LR arguments, else the optimizer's `lr`."""
    return SCHEDULER_SCALE.get(scheduler, OPTIMIZER_SCALE)


def tuning_run(family: str, multiplier: float) -> str:
    return f"{TUNE_PREFIX}{family}-x{format_value(multiplier)}"


def confirmation_run(family: str) -> str:
    return f"{CONFIRM_PREFIX}{family}"


def tuning_runs(config: dict, family: str) -> list[str]:
    return [tuning_run(family, m) for m in config["tuning"]["multipliers"]]


def definition(config: dict, family: str, multiplier) -> dict:
    """The family as a run of the config (`runs.<name>`'s keys), at `multiplier` (a number, or
    SELECTED): scale keys it leaves out are `auto`; it trains with the study's optimizer, whose
    `lr` is the family's `lr` (default `auto`) where the optimizer's lr is the scale."""
    entry = config["families"][family]
    keys = scale_keys(entry["scheduler"])
    run = {k: copy.deepcopy(v) for k, v in entry.items() if k != "lr"}
    optimizer = copy.deepcopy(config["optimizer"])
    if keys == OPTIMIZER_SCALE:
        optimizer.setdefault("kwargs", {})["lr"] = entry.get("lr", "auto")
    else:
        run["kwargs"] = {**{key: "auto" for key in keys}, **run.get("kwargs", {})}
    run["optimizer"] = optimizer
    run["tuning"] = {"family": family, "multiplier": multiplier, "scale": list(keys)}
    return run


def family_run_names(config: dict) -> dict[str, tuple[str, float | str]]:
    """Every tuning and confirmation run's name -> (family, multiplier): names only, so that the
    DAG build's many lookups of one run do not build every run's definition."""
    names = {}
    for family in config.get("families", {}):
        for multiplier in config["tuning"]["multipliers"]:
            names[tuning_run(family, multiplier)] = (family, multiplier)
        names[confirmation_run(family)] = (family, SELECTED)
    return names


def family_runs(config: dict) -> dict[str, dict]:
    """Every tuning and confirmation run of the study's families, by run name."""
    return {name: definition(config, *found) for name, found in family_run_names(config).items()}


def run_definition(config: dict, name: str) -> dict:
    """A tuning or confirmation run's definition, from its name (KeyError for any other name)."""
    return definition(config, *family_run_names(config)[name])


def family_of(run: str, config: dict) -> str | None:
    """The family whose tuning or confirmation run `run` is (None for the config's own runs)."""
    found = family_run_names(config).get(run)
    return found[0] if found else None
