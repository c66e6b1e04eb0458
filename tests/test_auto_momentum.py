"""`auto` values moved to the run's momentum, the momentum recorded per step, and runs that
never learned (`collapsed`)."""

import json
import math

import pandas as pd
import pytest

from lrstudy import aggregate, auto, evaluation, train, tuning
from lrstudy.config import ConfigError, check
from lrstudy.spec import run_spec

from .conftest import study_config

BOUNDS = {"lr": 0.2, "max_lr": 0.2, "base_lr": 0.05, "from": "valley"}
SGD0 = {"name": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.0}}
NESTEROV = {"momentum": 0.9, "nesterov": True}


def spec(scheduler=None, kwargs=None, optimizer=SGD0, test_optimizer=SGD0):
    out = {"optimizer": optimizer, "auto_from": {"run": "range_test", "optimizer": test_optimizer}}
    if scheduler:
        out["scheduler"] = {"class": scheduler, "kwargs": kwargs}
    return out


# The expected values are worked by hand from the documented relation
# value = bound * (1 - d_test)/(1 - m_test) / ((1 - d_run)/(1 - m_run)) (config/README.md, "auto").
@pytest.mark.parametrize(
    "case, expected",
    [
        # OneCycleLR cycles momentum by default: its peak LR meets base_momentum 0.85 -> 0.2 * 0.15
        (spec("OneCycleLR", {"max_lr": "auto"}), {"max_lr": 0.03}),
        # its own base_momentum 0.5 -> 0.2 * 0.5
        (spec("OneCycleLR", {"max_lr": "auto", "base_momentum": 0.5}), {"max_lr": 0.1}),
        # cycle_momentum off: the optimizer's momentum 0 is the range test's -> unchanged
        (spec("OneCycleLR", {"max_lr": "auto", "cycle_momentum": False}), {"max_lr": 0.2}),
        # CyclicLR: max_lr meets base_momentum 0.8, base_lr meets max_momentum 0.9
        (
            spec("CyclicLR", {"base_lr": "auto", "max_lr": "auto"}),
            {"max_lr": 0.04, "base_lr": 0.005},
        ),
        # range test at momentum 0.5, run at 0.9 with a constant schedule:
        # 0.2 * 0.5 / 0.1 ... = 0.04
        (
            spec(
                "StepLR",
                {"step_size": 10},
                optimizer={"name": "SGD", "kwargs": {"lr": "auto", "momentum": 0.9}},
                test_optimizer={"name": "SGD", "kwargs": {"momentum": 0.5}},
            ),
            {"lr": 0.04},
        ),
        # dampening 0.5 halves the run's step: twice the LR
        (
            spec(
                "StepLR",
                {"step_size": 10},
                optimizer={"name": "SGD", "kwargs": {"lr": "auto", "dampening": 0.5}},
            ),
            {"lr": 0.4},
        ),
        # Adam's moments are averages: beta1 does not scale its step, OneCycleLR's cycling neither
        (
            spec(
                "OneCycleLR",
                {"max_lr": "auto"},
                optimizer={"name": "Adam", "kwargs": {"betas": [0.5, 0.999]}},
                test_optimizer={"name": "Adam"},
            ),
            {"max_lr": 0.2},
        ),
        # Nesterov SGD: v = m*v + g, step g + m*v; settled v = g/(1-m), so the step is g/(1-m),
        # plain SGD's gain: 10 at m 0.9 -> 0.2 / 10
        (
            spec(optimizer={"name": "SGD", "kwargs": {**NESTEROV, "lr": "auto"}}),
            {"lr": 0.02},
        ),
        # ... and a Nesterov range test at 0.9 feeds a plain SGD run at 0.9 unchanged
        (
            spec(
                optimizer={"name": "SGD", "kwargs": {"lr": "auto", "momentum": 0.9}},
                test_optimizer={"name": "SGD", "kwargs": NESTEROV},
            ),
            {"lr": 0.2},
        ),
        # LARS: heavy-ball momentum on its trust-scaled step, no dampening: gain 1/(1-m) -> 0.02
        (
            spec(
                optimizer={"name": "LARS", "kwargs": {"lr": "auto", "momentum": 0.9}},
                test_optimizer={"name": "LARS"},
            ),
            {"lr": 0.02},
        ),
        # LARS's default momentum is 0 (gain 1), its range test's 0.5 (gain 2): 0.2 * 2
        (
            spec(
                optimizer={"name": "LARS", "kwargs": {"lr": "auto"}},
                test_optimizer={"name": "LARS", "kwargs": {"momentum": 0.5}},
            ),
            {"lr": 0.4},
        ),
        # schedule-free SGD's momentum counts as SGD's (config/README.md): gain 10 in the range
        # test at 0.9, 2 in the run at 0.5 -> 0.2 * 10 / 2
        (
            spec(
                optimizer={"name": "SGDScheduleFree", "kwargs": {"lr": "auto", "momentum": 0.5}},
                test_optimizer={"name": "SGDScheduleFree", "kwargs": {"momentum": 0.9}},
            ),
            {"lr": 1.0},
        ),
        # schedule-free AdamW: Adam-style moments, gain 1 whatever beta1 -> unchanged
        (
            spec(
                optimizer={
                    "name": "AdamWScheduleFree",
                    "kwargs": {"lr": "auto", "betas": [0.5, 0.999]},
                },
                test_optimizer={"name": "AdamWScheduleFree"},
            ),
            {"lr": 0.2},
        ),
    ],
)
def test_auto_value_moves_with_momentum_as_documented(case, expected):
    opt_kwargs, sched_kwargs, record = auto.resolve_auto(case, BOUNDS)
    got = {k: v for k, v in {**opt_kwargs, **sched_kwargs}.items() if k in expected}
    assert got == pytest.approx(expected, rel=1e-12)
    assert {c["key"]: c["value"] for c in record["conversions"]} == pytest.approx(
        expected, rel=1e-12
    )
    assert record["range_test"] == "range_test" and record["rule"] == "valley"


def test_auto_from_a_range_test_of_another_optimizer_is_refused():
    config = study_config(
        runs={
            "adam_auto": {
                "scheduler": "OneCycleLR",
                "kwargs": {"max_lr": "auto"},
                "optimizer": {"name": "Adam"},
            }
        }
    )
    with pytest.raises(ConfigError) as error:
        check(config)
    assert error.value.key == "runs.adam_auto.auto_from" and "Adam" in str(error.value)


def test_auto_run_takes_the_range_test_of_its_own_optimizer():
    config = study_config(
        runs={
            "range_adam": {
                "range_test": {"start_lr": 1e-5, "end_lr": 1},
                "optimizer": {"name": "Adam"},
            },
            "adam_auto": {
                "scheduler": "OneCycleLR",
                "kwargs": {"max_lr": "auto"},
                "optimizer": {"name": "Adam"},
            },
        }
    )
    check(config)
    assert run_spec(config, "adam_auto", 0).auto_from["run"] == "range_adam"
    # CyclicLR cycles the momentum 0.8-0.9, its first `auto` (base_lr) meeting 0.9: of the SGD
    # range tests (range_test at 0, the families' range_test-families at 0.9) the closer one
    assert run_spec(config, "cyclic_auto", 0).auto_from["run"] == "range_test-families"
    assert run_spec(config, "step", 0).auto_from is None


# Worked by hand from the configs below and the schedules' documented momentum policies (torch's
# defaults): tiny.yaml's 40 steps per epoch, 2 epochs.
TOTAL = 80


def onecycle_momentum(step: int, base: float = 0.85, peak: float = 0.95) -> float:
    """OneCycleLR(max_lr=0.1), pct_start 0.3, cosine: the momentum falls from 0.95 to 0.85 while
    the LR rises (steps 0 to 0.3 * 80 - 1 = 23), then climbs back to 0.95 at step 79."""
    turn = 0.3 * TOTAL - 1
    if step <= turn:
        start, end, pct = peak, base, step / turn
    else:
        start, end, pct = base, peak, (step - turn) / (TOTAL - 1 - turn)
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def cyclic_momentum(step: int, up: int = 20, down: int = 40) -> float:
    """CyclicLR triangular, 20 steps up and 40 down: the momentum moves against the LR, from
    max_momentum 0.9 to base_momentum 0.8 over the rise, back over the fall; a 60-step cycle."""
    x = step % (up + down)
    rise = x / up if x <= up else (up + down - x) / down
    return 0.9 - (0.9 - 0.8) * rise


EXPECTED_MOMENTUM = {
    "onecycle": onecycle_momentum,
    "cyclic": cyclic_momentum,
    "constant": lambda step: 0.9,  # StepLR leaves the optimizer's momentum alone
}
# A few of those values, worked out in full: (step, momentum).
SPOT_VALUES = {
    "onecycle": [(0, 0.95), (23, 0.85), (51, 0.9), (79, 0.95)],
    "cyclic": [(0, 0.9), (10, 0.85), (20, 0.8), (40, 0.85), (60, 0.9), (79, 0.805)],
    "constant": [(0, 0.9), (79, 0.9)],
}


@pytest.mark.parametrize(
    "run, schedule",
    [
        ("onecycle", {"scheduler": "OneCycleLR", "kwargs": {"max_lr": 0.1}}),
        (
            "cyclic",
            {
                "scheduler": "CyclicLR",
                "kwargs": {
                    "base_lr": 0.01,
                    "max_lr": 0.1,
                    "step_size_up": 20,
                    "step_size_down": 40,
                },
            },
        ),
        ("constant", {"scheduler": "StepLR", "kwargs": {"step_size": 30}}),
    ],
)
def test_steps_csv_momentum_is_the_optimizers_own(run, schedule, digits_data, tmp_path):
    config = study_config(
        epochs=2,
        checkpoint_every=0,
        runs={run: schedule},
        optimizer={"name": "SGD", "kwargs": {"lr": 0.05, "momentum": 0.9}},
    )
    train.train(run_spec(config, run, 0), digits_data, tmp_path)
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert "momentum" in steps.columns
    recorded = steps["momentum"].tolist()
    assert len(recorded) == TOTAL
    expected = [EXPECTED_MOMENTUM[run](step) for step in range(TOTAL)]
    assert recorded == pytest.approx(expected, rel=1e-12)
    for step, value in SPOT_VALUES[run]:
        assert recorded[step] == pytest.approx(value, rel=1e-12), step


def test_a_run_that_cannot_learn_is_collapsed_and_never_chosen(digits_data, tmp_path):
    config = study_config(
        epochs=1,
        checkpoint_every=0,
        runs={"frozen": {"scheduler": "StepLR", "kwargs": {"step_size": 10}}},
        optimizer={"name": "SGD", "kwargs": {"lr": 1e-9}},
    )
    result = train.train(run_spec(config, "frozen", 0), digits_data, tmp_path / "frozen")
    assert result["status"] == "collapsed"
    assert json.loads((tmp_path / "frozen" / "run.json").read_text())["status"] == "collapsed"
    learner = train.train(
        run_spec(study_config(epochs=1, checkpoint_every=0), "step", 0),
        digits_data,
        tmp_path / "step",
    )
    assert learner["status"] == "completed"
    _, _, summary = aggregate.aggregate(
        [tmp_path / "frozen" / "run.json", tmp_path / "step" / "run.json"], target=1.0
    )
    frozen = summary.set_index("run").loc["frozen"]
    assert frozen["final_valid_loss"] < float("inf")
    # even when its loss would make it the tuning pick, a collapsed grid point is never chosen
    summary.loc[summary["run"] == "frozen", "final_valid_loss"] = 0.0
    rows = tuning.tuning_rows(summary, "f", {1.0: "frozen", 2.0: "step"}, "final_valid_loss")
    assert tuning.select(rows, "final_valid_loss")["run"] == "step"


@pytest.mark.parametrize(
    "accuracy, is_collapsed", [(0.10, True), (0.15, True), (0.151, False), (0.9, False)]
)
def test_collapsed_is_final_valid_accuracy_at_most_one_and_a_half_chance(accuracy, is_collapsed):
    evals = [
        {"split": "valid", "accuracy": 0.9},
        {"split": "test", "accuracy": 0.01},
        {"split": "valid", "accuracy": accuracy},
    ]
    assert evaluation.collapsed(evals, num_classes=10) is is_collapsed
