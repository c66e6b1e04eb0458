"""Schedule families: a schedule and the keyword arguments that set its LR scale, tuned fairly.

A family (config `families.<name>`) is a scheduled run whose LR scale is not fixed: every family
of a study is trained on the same grid of LR multipliers (`tuning.multipliers`) around its anchor
on the tuning seeds (`tuning.seeds`), its best multiplier by validation data alone is chosen
(lrstudy.tuning.select), and that setting is retrained on the confirmation seeds
(`tuning.confirm_seeds`), on which the families are compared (lrstudy.verdict).

The scale is the schedule's own LR arguments where it has them (OneCycleLR's `max_lr`, CyclicLR's
`base_lr` and `max_lr`, moved together: `kinds.AUTO`), else the optimizer's `lr`. Its anchor is
the value the family gives, or `auto` (the range test's suggestion, lrstudy.auto.resolve_auto)
where it gives none. Each multiplier is one run, `tune-<family>-x<multiplier>` (a grid point
added beyond the grid's edge too); the confirmation run is `confirm-<family>`: both have the run
folders `results/runs/<run>/seed<seed>/` of any run.

Families differ only in their schedule: every family trains with `tuning.optimizer` (SGD at
momentum 0.9 by default), OneCycleLR and CyclicLR with `cycle_momentum: false`, and takes `auto`
from a range test run with that optimizer (`anchor_test`; added to the study's runs where the
config has none). A family may set `cycle_momentum: true` or an `optimizer` of its own:
`differences` names each such change, and the tables carry it as `also_changes`.

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
CYCLED = "momentum cycled"  # differences' word for cycle_momentum: true (the range: aggregate)
FAMILIES_RANGE_TEST = "range_test-families"  # the range test added for tuning.optimizer


def scale_keys(scheduler: str) -> tuple[str, ...]:
    """The kwargs a multiplier scales: the scheduler's LR arguments, else the optimizer's `lr`."""
    return SCHEDULER_SCALE.get(scheduler, OPTIMIZER_SCALE)


def tuning_run(family: str, multiplier: float) -> str:
    return f"{TUNE_PREFIX}{family}-x{format_value(multiplier)}"


def confirmation_run(family: str) -> str:
    return f"{CONFIRM_PREFIX}{family}"


def tuning_runs(config: dict, family: str) -> list[str]:
    return [tuning_run(family, m) for m in config["tuning"]["multipliers"]]


def optimizer_of(config: dict, family: str) -> dict:
    """The optimizer entry a family trains with: its own, else `tuning.optimizer`."""
    return copy.deepcopy(
        config["families"][family].get("optimizer") or config["tuning"]["optimizer"]
    )


def definition(config: dict, family: str, multiplier) -> dict:
    """The family as a run of the config (`runs.<name>`'s keys), at `multiplier` (a number, or
    SELECTED): scale keys it leaves out are `auto`; it trains with optimizer_of, whose `lr` is
    the family's `lr` (default `auto`) where the optimizer's lr is the scale; OneCycleLR and
    CyclicLR keep the momentum constant unless the family says `cycle_momentum: true`."""
    entry = config["families"][family]
    keys = scale_keys(entry["scheduler"])
    run = {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("lr", "optimizer")}
    optimizer = optimizer_of(config, family)
    if keys == OPTIMIZER_SCALE:
        optimizer.setdefault("kwargs", {})["lr"] = entry.get("lr", "auto")
    else:
        run["kwargs"] = {**{key: "auto" for key in keys}, **run.get("kwargs", {})}
        run["kwargs"].setdefault("cycle_momentum", False)
    run["optimizer"] = optimizer
    run.setdefault("auto_from", anchor_test(config, family))
    run["tuning"] = {"family": family, "multiplier": multiplier, "scale": list(keys)}
    return run


def optimizer_key(config: dict, name: str) -> str | None:
    """Where a family run's optimizer is written: `families.<name>.optimizer`, or
    `tuning.optimizer` (None for any other run)."""
    family = family_of(name, config)
    if family is None:
        return None
    own = "optimizer" in config["families"][family]
    return f"families.{family}.optimizer" if own else "tuning.optimizer"


def same_optimizer(a: dict, b: dict) -> bool:
    """Two optimizer entries that train alike: the same class and kwargs but the LR (which the
    range test and a family's tuning set themselves)."""
    strip = lambda o: (o["name"], {k: v for k, v in o.get("kwargs", {}).items() if k != "lr"})  # noqa: E731
    return strip(a) == strip(b)


def anchor_test(config: dict, family: str) -> str | None:
    """The range test whose suggestion anchors a family's grid: the family's `auto_from`, else
    the first range test of the study run with the family's optimizer (add_range_tests made
    sure there is one)."""
    chosen = config["families"][family].get("auto_from")
    if chosen:
        return chosen
    ours = optimizer_of(config, family)
    tests = [(name, run) for name, run in config["runs"].items() if "range_test" in run]
    same = (
        n for n, run in tests if same_optimizer(run.get("optimizer", config["optimizer"]), ours)
    )
    return next(same, None)


def add_range_tests(config: dict) -> list[str]:
    """Add to `runs` a range test with each families' optimizer that no range test of the config
    uses: `range_test-families` for `tuning.optimizer`, `range_test-<family>` for a family's own
    (the settings of the config's first range test, else the schema's). Returns their names."""
    tests = [run for run in config["runs"].values() if "range_test" in run]
    settings = copy.deepcopy(tests[0]["range_test"]) if tests else {}
    added = []
    for family, entry in config.get("families", {}).items():
        if entry.get("auto_from") or anchor_test(config, family):
            continue
        name = f"range_test-{family}" if entry.get("optimizer") else FAMILIES_RANGE_TEST
        config["runs"][name] = {"optimizer": optimizer_of(config, family), "range_test": settings}
        added.append(name)
    return added


def differences(config: dict, family: str) -> list[str]:
    """How a family trains other than `tuning.optimizer` beyond its LR schedule: another
    optimizer class, other optimizer kwargs (`momentum 0`), momentum cycled by its scheduler.
    Empty for a family that differs from the others only in its schedule."""
    ours, base = optimizer_of(config, family), config["tuning"]["optimizer"]
    out = [] if ours["name"] == base["name"] else [f"optimizer {ours['name']}"]
    mine, theirs = ours.get("kwargs", {}), base.get("kwargs", {})
    for key in sorted((set(mine) | set(theirs)) - {"lr"}):
        if mine.get(key) != theirs.get(key):
            out.append(f"{key} {format_value(mine[key]) if key in mine else 'default'}")
    if config["families"][family].get("kwargs", {}).get("cycle_momentum"):
        out.append(CYCLED)
    return out


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
    found = family_run_names(config).get(name) or extension_of(config, name)
    if found is None:
        raise KeyError(name)
    return definition(config, *found)


def extension_of(config: dict, name: str) -> tuple[str, float] | None:
    """(family, multiplier) of a grid point added beyond the grid (`tune-<family>-x<m>` with m
    not in `tuning.multipliers`: lrstudy.tuning.extension), else None."""
    for family in config.get("families", {}):
        prefix = f"{TUNE_PREFIX}{family}-x"
        if name.startswith(prefix):
            try:
                return family, float(name[len(prefix) :])
            except ValueError:
                continue
    return None


def family_of(run: str, config: dict) -> str | None:
    """The family whose tuning or confirmation run `run` is (None for the config's own runs)."""
    found = family_run_names(config).get(run) or extension_of(config, run)
    return found[0] if found else None


def plan_problems(config: dict):
    """(config key, what is wrong) for each family setting the study cannot train as written."""
    first, most = len(config["tuning"]["confirm_seeds"]), config["verdict"]["max_seeds"]
    if most < first:
        yield (
            "verdict.max_seeds",
            f"{most} is fewer than the {first} tuning.confirm_seeds the first look trains",
        )
    for family, entry in config["families"].items():
        keys = scale_keys(entry["scheduler"])
        if "lr" in entry and keys != OPTIMIZER_SCALE:
            yield (
                f"families.{family}.lr",
                f"{entry['scheduler']} sets the LR itself: its scale is "
                f"{' and '.join(keys)} (in `kwargs`), not the optimizer's lr",
            )


def look_seeds(config: dict) -> list[list[int]]:
    """The confirmation seeds each look adds: `tuning.confirm_seeds`, then `verdict.seeds_step`
    more at a time (the integers after the largest seed so far that are not tuning seeds) until
    a family has `verdict.max_seeds`. A family still undecided at a look, and the reference,
    are trained on the next look's seeds (lrstudy.decision)."""
    first = list(config["tuning"]["confirm_seeds"])
    step, most = config["verdict"]["seeds_step"], config["verdict"]["max_seeds"]
    taken, looks, total = set(config["tuning"]["seeds"]) | set(first), [first], len(first)
    candidate = max(first) + 1
    while total < most:
        batch = []
        while len(batch) < min(step, most - total):
            if candidate not in taken:
                batch.append(candidate)
            candidate += 1
        looks.append(batch)
        total += len(batch)
    return looks


def verdict_settings(config: dict) -> dict:
    """What the verdict stages read of the config: `verdict`, the seeds of each look, and how
    each family trains other than the families' optimizer (differences)."""
    changes = {family: differences(config, family) for family in config["families"]}
    return {**config["verdict"], "looks": look_seeds(config), "differences": changes}
