"""What a kind of LR schedule knows (Kind, the interface of lrstudy.schedules' entries), and the
names the kinds share. Importing it imports no torch.
"""

from __future__ import annotations

import copy

from lrstudy.families import SCHEDULER_SCALE
from lrstudy.layout import format_kwargs
from lrstudy.signatures import ScheduleError

NO_SCHEDULER = "none"  # a constant LR: torch's ConstantLR with factor 1
SEQUENTIAL = "SequentialLR"
COLOSSAL_PREFIX = "colossalai."
# A child of SequentialLR may set these to `auto`: the steps from its milestone to the run's end.
LENGTH_KWARGS = ("T_max", "total_iters")
# Filled in by the workflow from the data and the run length (OneCycleLR's own arguments), and
# written in the report's code line as the source's training script passes them.
FILLED = {"OneCycleLR": ("steps_per_epoch", "epochs")}
FILLED_CODE = {"steps_per_epoch": "len(train_dataloader)", "epochs": 'config["NUM_EPOCHS"]'}
# Settable to `auto`: {kwarg: the range test's bound (rangetest.bounds) it takes}; a scheduler's
# LR-scale arguments (lrstudy.families), each filled from the bound of its name.
AUTO = {name: {key: key for key in keys} for name, keys in SCHEDULER_SCALE.items()}
MOMENTUM_SCHEDULERS = ("OneCycleLR", "CyclicLR")  # cycle the momentum against the LR by default


def torch_schedulers():
    """torch.optim.lr_scheduler, imported where a schedule is built or checked, not on import."""
    from torch.optim import lr_scheduler

    return lr_scheduler


def call_args(kwargs: dict) -> str:
    return ", ".join(["optimizer"] + ([format_kwargs(kwargs)] if kwargs else []))


class Kind:
    """One kind of schedule. `name` is the run's `scheduler` entry, `run` its config entry,
    `kwargs` the config's kwargs (config_kwargs), `filled` those its class receives (fill)."""

    def owns(self, name: str) -> bool:
        raise NotImplementedError

    def owns_run(self, run: dict) -> bool:
        return "range_test" not in run and self.owns(run["scheduler"])

    def config_kwargs(self, run: dict) -> dict:
        return copy.deepcopy(run.get("kwargs", {}))

    def check(self, name: str, run: dict) -> None:
        """Raise ScheduleError (with the key below the run) unless the library would build it."""
        for part in ("schedulers", "milestones"):  # SequentialLR's alone
            if part in run:
                raise ScheduleError(
                    f"only a {SEQUENTIAL} run has `{part}`; this run's scheduler is {name}", part
                )
        self.check_kwargs(name, self.config_kwargs(run))

    def check_kwargs(self, name: str, kwargs: dict) -> None:
        raise NotImplementedError

    def fill(self, name: str, kwargs: dict, steps_per_epoch: int, epochs: int) -> dict:
        """The kwargs the class receives: the run's length where the workflow fills it in."""
        return dict(kwargs)

    def build(self, optimizer, name: str, filled: dict):
        raise NotImplementedError

    def momentum(self, name: str, kwargs: dict, key: str) -> float | None:
        """The momentum the scheduler sets where the LR takes the value of `key` (`lr`, `max_lr`,
        `base_lr`), or None where it leaves the optimizer's momentum alone."""
        return None

    def format(self, name: str, filled: dict) -> str:
        """The scheduler as a person writes it in Python: a line that runs where `optimizer`
        exists (with `import torch`, and `import colossalai.nn.lr_scheduler` for its own)."""
        raise NotImplementedError

    def code(self, name: str, kwargs: dict, filled: dict | None) -> list[str]:
        """The report's code lines, from the filled-in kwargs (run.json) where it has them."""
        return [f"lr_scheduler = {self.format(name, filled or kwargs)}"]
