"""Every scheduler's recorded LR sequence equals torch's own, and the range test hits its ends."""

import pandas as pd
import pytest
import torch

from lrstudy import auto, layout, schedules, train
from lrstudy.rangetest import range_lr
from lrstudy.spec import run_spec

from .util import default_config

BATCH, EPOCHS = 64, 8  # 20 steps per epoch on the digits train split: 160 steps per run


def torch_reference(name, kwargs, lr, total_steps, steps_per_epoch, epochs):
    """LRs straight from torch for the config's kwargs (OneCycleLR given the run's length)."""
    if name == "OneCycleLR":
        kwargs = {**kwargs, "steps_per_epoch": steps_per_epoch, "epochs": epochs}
    return torch_lrs(name, kwargs, lr, total_steps)


def torch_lrs(name, kwargs, lr, total_steps):
    """LRs straight from torch: a dummy SGD and the scheduler, stepped once per batch."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.0)
    scheduler = getattr(torch.optim.lr_scheduler, name)(optimizer, **kwargs)
    lrs = []
    for _ in range(total_steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(
    "run",
    [
        n
        for n, r in default_config()["runs"].items()
        if "scheduler" in r and "auto" not in r["kwargs"].values()
    ],
)
def test_recorded_lr_equals_torch(run, digits_data, tmp_path):
    """The LRs the run recorded are torch's, however far the loss let it go on this CPU (a
    OneCycle or Cyclic run at LR 1 may overflow and stop: `diverged`); and torch replaying
    run.json's record gives the config's schedule to the run's last step, whatever the loss did."""
    config = default_config()
    config.update(batch_size=BATCH, epochs=EPOCHS, eval_every=1000, checkpoint_every=0)
    result = train.train(run_spec(config, run, 0), digits_data, tmp_path)
    steps = pd.read_csv(tmp_path / "steps.csv")
    spe = result["steps_per_epoch"]
    total = spe * EPOCHS
    assert spe == 1293 // BATCH and 0 < len(steps) <= total
    assert len(steps) == total or result["status"] == "diverged"
    name, lr = config["runs"][run]["scheduler"], config["optimizer"]["kwargs"]["lr"]
    want = torch_reference(name, config["runs"][run]["kwargs"], lr, total, spe, EPOCHS)
    assert steps["lr"].tolist() == pytest.approx(want[: len(steps)], rel=1e-12, abs=0)
    assert result["scheduler"]["class"] == name
    followed = torch_lrs(name, result["scheduler"]["kwargs"], lr, total)
    assert followed == pytest.approx(want, rel=1e-12, abs=0)


def test_range_test_lr_is_geometric_from_start_to_end(digits_data, tmp_path):
    """The range test's LR at step i is 1e-5 * (10 / 1e-5) ** (i / (N - 1)): the recorded LRs (up to
    wherever the loss let the run go) and, whatever the loss does, the schedule up to its last
    step."""
    config = default_config()
    config.update(batch_size=BATCH, epochs=EPOCHS, eval_every=1000, checkpoint_every=0)
    config["runs"]["range_test"]["range_test"]["stop_factor"] = None
    spec = run_spec(config, "range_test", 0)
    result = train.train(spec, digits_data, tmp_path)
    total = result["total_steps"]
    assert total == (1293 // BATCH) * EPOCHS
    geometric = [1e-5 * (10 / 1e-5) ** (i / (total - 1)) for i in range(total)]
    lr = pd.read_csv(tmp_path / "steps.csv")["lr"].tolist()
    assert result["status"] in ("completed", "diverged") and 0 < len(lr) <= total
    assert lr == pytest.approx(geometric[: len(lr)], rel=1e-9)
    # The whole schedule the run follows (schedules.build_range_test), stepped to its end.
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = schedules.build_range_test(optimizer, spec.range_test.to_dict(), total)
    planned = []
    for _ in range(total):
        planned.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert planned[0] == pytest.approx(1e-5, rel=1e-12) and planned[-1] == pytest.approx(
        10, rel=1e-12
    )
    assert planned == pytest.approx(geometric, rel=1e-9)


def test_range_lr_linear_mode():
    assert range_lr(0, 11, 0.0, 1.0, "linear") == 0.0
    assert range_lr(5, 11, 0.0, 1.0, "linear") == pytest.approx(0.5)
    assert range_lr(10, 11, 0.0, 1.0, "linear") == 1.0


def test_onecycle_gets_the_run_length_filled_in():
    filled = schedules.fill_kwargs("OneCycleLR", {"max_lr": 1.1}, steps_per_epoch=40, epochs=15)
    assert filled == {"max_lr": 1.1, "steps_per_epoch": 40, "epochs": 15}
    assert schedules.fill_kwargs("OneCycleLR", {"max_lr": 1, "total_steps": 7}, 40, 15) == {
        "max_lr": 1,
        "total_steps": 7,
    }


@pytest.mark.parametrize(
    "value, text",
    [
        (1e-5, "1e-5"),
        (10, "10"),
        (10.0, "10"),
        (0.999, "0.999"),
        (1.1, "1.1"),
        (1.0, "1"),
        (2.5e-7, "2.5e-7"),
    ],
)
def test_numbers_print_as_a_person_writes_them(value, text):
    assert layout.format_value(value) == text


def test_auto_values_take_the_range_test_bounds_at_equal_momentum():
    """Range test and run at the same constant momentum: the bounds pass through unchanged (the
    momentum conversions are in test_auto_momentum.py)."""
    bounds = {"base_lr": 0.01, "max_lr": 0.04, "lr": 0.04, "from": "valley"}
    sgd = {"name": "SGD", "kwargs": {"lr": "auto", "momentum": 0.9}}
    spec = {
        "optimizer": sgd,
        "auto_from": {"run": "range_test", "optimizer": sgd},
        "scheduler": {
            "class": "CyclicLR",
            "kwargs": {
                "base_lr": "auto",
                "max_lr": "auto",
                "step_size_up": 5,
                "cycle_momentum": False,
            },
        },
    }
    opt_kwargs, sched_kwargs, _ = auto.resolve_auto(spec, bounds)
    assert sched_kwargs == {
        "base_lr": 0.01,
        "max_lr": 0.04,
        "step_size_up": 5,
        "cycle_momentum": False,
    }
    assert opt_kwargs == {"lr": 0.04, "momentum": 0.9}
