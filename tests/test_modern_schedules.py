"""The schedules of config/modern.yaml: each kind's recorded LR sequence equals the library's own
class replayed with the same arguments; schedule-free runs evaluate their averaged weights; bf16
trains on the CPU and fp16 there is refused; the composition prints as a person writes it."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from lrstudy import schedules

from .conftest import spec_of, study_config
from .util import ROOT, job_env, snakemake, write_config

EPOCHS = 3  # 40 steps per epoch on the digits train split at batch 32: 120 steps per run
TOTAL = 40 * EPOCHS
LR = 0.1  # tests/configs/tiny.yaml's SGD lr

WARMUP_COSINE = {
    "scheduler": "SequentialLR",
    "milestones": [20],
    "schedulers": [
        {"scheduler": "LinearLR", "kwargs": {"start_factor": 0.01, "total_iters": 20}},
        {"scheduler": "CosineAnnealingLR", "kwargs": {"T_max": "auto"}},
    ],
}
WSD = {
    "scheduler": "SequentialLR",
    "milestones": [12, 96],
    "schedulers": [
        {"scheduler": "LinearLR", "kwargs": {"start_factor": 0.01, "total_iters": 12}},
        {"scheduler": "ConstantLR", "kwargs": {"factor": 1.0, "total_iters": "auto"}},
        {
            "scheduler": "LinearLR",
            "kwargs": {"start_factor": 1.0, "end_factor": 0.0, "total_iters": "auto"},
        },
    ],
}
COLOSSAL = {"scheduler": "colossalai.CosineAnnealingWarmupLR", "kwargs": {"warmup_steps": 20}}
SCHEDULE_FREE = {
    "scheduler": "none",
    "optimizer": {"name": "SGDScheduleFree", "kwargs": {"lr": 0.5, "momentum": 0.9}},
}


def modern_config(**overrides) -> dict:
    runs = {
        "warmup_cosine": WARMUP_COSINE,
        "wsd": WSD,
        "colossal": COLOSSAL,
        "schedule_free": SCHEDULE_FREE,
    }
    return study_config(runs=runs, epochs=EPOCHS, eval_every=40, **overrides)


def replay(make_scheduler, lr=LR, steps=TOTAL) -> list[float]:
    """The LR before each of `steps` optimizer steps, from the library's class on a dummy SGD."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


def recorded_lr(trainer, run, **spec_overrides) -> tuple[list[float], dict]:
    out = trainer.reference(spec_of(modern_config(), run, checkpoint_every=0, **spec_overrides))
    return pd.read_csv(out / "steps.csv")["lr"].tolist(), json.loads((out / "run.json").read_text())


@pytest.mark.slow
def test_warmup_cosine_is_torchs_sequential_lr(trainer):
    lrs, record = recorded_lr(trainer, "warmup_cosine")
    lr_scheduler = torch.optim.lr_scheduler
    want = replay(
        lambda opt: lr_scheduler.SequentialLR(
            opt,
            [
                lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=20),
                lr_scheduler.CosineAnnealingLR(opt, T_max=TOTAL - 20),
            ],
            milestones=[20],
        )
    )
    assert len(lrs) == TOTAL and lrs == pytest.approx(want, rel=1e-12, abs=0)
    assert record["scheduler"]["kwargs"]["schedulers"][1]["kwargs"] == {"T_max": 100}


@pytest.mark.slow
def test_wsd_is_torchs_sequential_lr_and_trains_in_bf16(trainer):
    lrs, record = recorded_lr(trainer, "wsd", precision="bf16")
    lr_scheduler = torch.optim.lr_scheduler
    want = replay(
        lambda opt: lr_scheduler.SequentialLR(
            opt,
            [
                lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=12),
                lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=TOTAL - 12),
                lr_scheduler.LinearLR(
                    opt, start_factor=1.0, end_factor=0.0, total_iters=TOTAL - 96
                ),
            ],
            milestones=[12, 96],
        )
    )
    assert lrs == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert lrs[50] == pytest.approx(LR) and lrs[-1] == pytest.approx(
        LR / 24
    )  # stable at the LR; 1/24 of it before the end
    assert record["precision"]["name"] == "bf16" and "autocast" in record["precision"]["via"]
    assert record["status"] == "completed"
    evals = pd.read_csv(
        trainer.reference(spec_of(modern_config(), "wsd", checkpoint_every=0, precision="bf16"))
        / "evals.csv"
    )
    evals = evals.query("split == 'valid'")
    assert evals["loss"].iloc[-1] < evals["loss"].iloc[0] - 0.5  # it learns


@pytest.mark.slow
def test_bf16_changes_the_arithmetic(trainer):
    """The same run in fp32 and bf16: the same LRs, other losses (autocast really ran)."""
    fp32 = pd.read_csv(
        trainer.reference(spec_of(modern_config(), "wsd", checkpoint_every=0)) / "steps.csv"
    )
    bf16 = pd.read_csv(
        trainer.reference(spec_of(modern_config(), "wsd", checkpoint_every=0, precision="bf16"))
        / "steps.csv"
    )
    assert fp32["lr"].tolist() == bf16["lr"].tolist()
    assert (fp32["train_loss"] - bf16["train_loss"]).abs().max() > 1e-3


@pytest.mark.slow
def test_colossalai_scheduler_is_colossalais_class(trainer):
    lrs, record = recorded_lr(trainer, "colossal")
    from colossalai.nn.lr_scheduler import CosineAnnealingWarmupLR

    want = replay(lambda opt: CosineAnnealingWarmupLR(opt, total_steps=TOTAL, warmup_steps=20))
    assert lrs == pytest.approx(want, rel=1e-12, abs=0)
    assert record["scheduler"] == {
        "class": "colossalai.CosineAnnealingWarmupLR",
        "kwargs": {"warmup_steps": 20, "total_steps": TOTAL},
        "config_kwargs": {"warmup_steps": 20},
    }


@pytest.mark.slow
def test_schedule_free_evaluates_its_averaged_weights(trainer, digits_data):
    """A checkpoint holds what evaluation saw: its weights give the recorded valid loss; the
    optimizer switched to train mode (schedulefree's own .train()) gives the training weights,
    whose loss differs."""
    out = trainer.reference(spec_of(modern_config(), "schedule_free", keep_checkpoints=True))
    record = json.loads((out / "run.json").read_text())
    steps, evals = pd.read_csv(out / "steps.csv"), pd.read_csv(out / "evals.csv")
    assert record["optimizer"]["name"] == "SGDScheduleFree" and record["status"] == "completed"
    assert set(steps["lr"]) == {0.5}  # `none`: a constant LR

    from schedulefree import SGDScheduleFree

    from lrstudy import data, models

    folder = out / (out / "LATEST").read_text().strip()  # the checkpoint of epoch 2, step 80
    x, y = data.load_prepared(digits_data, "cpu")["valid"]
    model = models.build("lenet5", 1, 10)
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    model.eval()

    def valid_loss():
        with torch.no_grad():
            return F.cross_entropy(model(x), y).item()

    recorded = evals.query("split == 'valid' and step == 80")["loss"].item()
    assert valid_loss() == pytest.approx(recorded, rel=1e-5)
    optimizer = SGDScheduleFree(model.parameters(), lr=0.5, momentum=0.9)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    optimizer.train()
    assert abs(valid_loss() - recorded) > 1e-3
    assert (
        evals.query("split == 'valid'")["loss"].iloc[-1]
        < evals.query("split == 'valid'")["loss"].iloc[0] - 0.5
    )


@pytest.mark.slow
def test_schedule_free_resumes_to_the_same_bytes(trainer, tmp_path):
    """Restarted from its last checkpoint (saved in eval mode), it ends as the unbroken run."""
    spec = spec_of(modern_config(), "schedule_free", keep_checkpoints=True)
    unbroken = trainer.reference(spec)
    checkpoint = (unbroken / "LATEST").read_text().strip()
    restarted = tmp_path / "restarted"
    shutil.copytree(unbroken / checkpoint, restarted / checkpoint)
    shutil.copy(unbroken / "LATEST", restarted / "LATEST")
    job = trainer.run(spec, restarted)
    assert "resuming from checkpoint" in job.stderr
    for name in ("steps.csv", "evals.csv"):
        assert (restarted / name).read_bytes() == (unbroken / name).read_bytes(), name


def test_composition_prints_as_a_person_writes_it():
    filled = schedules.fill_kwargs(
        "SequentialLR", schedules.scheduler_kwargs({**WARMUP_COSINE, "milestones": [20]}), 40, 15
    )
    assert schedules.format_scheduler("SequentialLR", filled) == (
        "torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers=["
        "torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=20), "
        "torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=580)], milestones=[20])"
    )
    assert schedules.format_scheduler(
        "colossalai.LinearWarmupLR", {"warmup_steps": 20, "total_steps": 600}
    ) == ("colossalai.nn.lr_scheduler.LinearWarmupLR(optimizer, warmup_steps=20, total_steps=600)")


def test_colossalai_schedulers_are_offered():
    named = {
        "CosineAnnealingWarmupLR",
        "FlatAnnealingWarmupLR",
        "LinearWarmupLR",
        "PolynomialWarmupLR",
        "MultiStepWarmupLR",
    }
    assert named <= set(schedules.colossal_schedulers())
    assert not {"LambdaLR", "MultiplicativeLR"} & set(
        schedules.colossal_schedulers()
    )  # they take a function


def test_a_milestone_past_the_run_is_refused_when_the_length_is_known():
    with pytest.raises(
        schedules.ScheduleError, match="milestone 20 is not inside the run's 10 steps"
    ):
        schedules.fill_kwargs("SequentialLR", schedules.scheduler_kwargs(WARMUP_COSINE), 5, 2)


def test_modern_config_checks_without_importing_colossalai():
    code = (
        "import sys, yaml; from lrstudy import config; "
        "config.validate(yaml.safe_load(open('config/modern.yaml')), ['config/modern.yaml']); "
        "assert 'colossalai' not in sys.modules, 'DAG build imported colossalai'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=job_env(), check=True, timeout=120)


@pytest.mark.slow
def test_fp16_on_the_cpu_stops_the_dag_build(tmp_path):
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    proc = snakemake(
        "-n", "--configfile", write_config(tmp_path / "fp16.yaml", {**raw, "precision": "fp16"})
    )
    assert proc.returncode != 0
    assert (
        "`precision`" in proc.stdout + proc.stderr
        and "fp16 needs CUDA" in proc.stdout + proc.stderr
    )


@pytest.mark.slow
@pytest.mark.parametrize("run", ["warmup_cosine", "colossal", "wsd"])
def test_the_report_prints_a_line_that_runs_the_schedule_the_job_trained(trainer, run):
    """A section whose first run is a SequentialLR composition or a ColossalAI scheduler: the
    report's code line, run as printed, replays the LR the job recorded in steps.csv."""
    import colossalai.nn.lr_scheduler  # noqa: F401  (the printed line names it)

    from lrstudy import report

    recorded, record = recorded_lr(trainer, run)
    (line,) = report.scheduler_code(modern_config(), run, record)
    assert line.startswith("lr_scheduler = ") and "auto" not in line, line

    def printed(optimizer):
        scope = {"torch": torch, "colossalai": colossalai, "optimizer": optimizer}
        exec(line, scope)
        return scope["lr_scheduler"]

    import colossalai

    assert replay(printed) == pytest.approx(recorded, rel=1e-12, abs=1e-15)
