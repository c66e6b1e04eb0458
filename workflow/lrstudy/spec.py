"""One training job's spec: what `run_spec` resolves from the config for a (run, seed).

The spec crosses the process boundary as JSON (`python -m lrstudy.train --spec`, built by
`train_argv`), is hashed (`spec_hash`) and recorded in run.json's "spec": `to_dict` gives the
same keys, in the same order, that the job's files have always held. Torch-free: the workflow
builds specs and command lines without importing torch.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

# The range test's defaults (the schema states the same values: tests/test_spec.py checks them).
SMOOTH_BETA = 0.98
STOP_FACTOR = 4
# What a job needs of a data factory (the config's `dataset` keys copied into the spec's `data`).
DATA_KEYS = ("factory", "kwargs", "task", "num_classes", "loader", "num_workers", "pin_memory")


@dataclass(frozen=True)
class RangeTest:
    """A range test's part of a spec: the LR sweep and when it stops."""

    start_lr: float = 1.0e-5
    end_lr: float = 10
    mode: str = "exponential"
    steps: int | None = None
    smooth_beta: float = SMOOTH_BETA
    stop_factor: float | None = STOP_FACTOR
    valid_every: int | None = None
    valid_subset: int = 256
    # the keys the config gave, in its order (to_dict writes those back, and only those)
    given: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, values: dict) -> RangeTest:
        return cls(**values, given=tuple(values))

    def to_dict(self) -> dict:
        names = self.given or [f.name for f in fields(self) if f.name != "given"]
        return {name: getattr(self, name) for name in names}


# Keys a spec holds only where they apply (absent from its dict when None).
OPTIONAL = ("python_path", "data", "code", "range_test", "scheduler", "tuning", "auto_from")


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Everything one training job needs (one seed of one run), in run.json's key order."""

    run: str
    seed: int
    dataset: str
    model: str | dict
    loss: str | dict = "auto"
    optimizer: dict
    batch_size: int
    epochs: int
    eval_every: int | None
    threads: int
    device: str
    gpus: int
    procs: int
    plugin: str
    precision: str
    checkpoint_every: int
    keep_checkpoints: bool
    tensorboard: bool
    python_path: list | None = None  # only with a factory (code_spec)
    data: dict | None = None
    code: dict | None = None
    range_test: RangeTest | None = None  # a range test, or else
    scheduler: dict | None = None  # {"class", "kwargs"}
    tuning: dict | None = None  # a family's run
    eval_splits: list = field(default_factory=lambda: ["valid", "test"])
    auto_from: dict | None = None  # {"run", "optimizer"} of the range test filling `auto`

    @classmethod
    def from_dict(cls, values: dict) -> Spec:
        values = dict(values)
        if values.get("range_test") is not None:
            values["range_test"] = RangeTest.from_dict(values["range_test"])
        return cls(**values)

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in OPTIONAL:
                continue
            out[f.name] = value.to_dict() if isinstance(value, RangeTest) else value
        return copy.deepcopy(out)

    def replace(self, **changes) -> Spec:
        return dataclasses.replace(self, **changes)

    def world(self, device: str) -> int:
        return world_size(device, self.gpus, self.procs)


def world_size(device: str, gpus: int, procs: int) -> int:
    """The number of ranks of a job: one per GPU on CUDA, else `procs` CPU processes."""
    return gpus if device.startswith("cuda") else procs


def device_plan(config, executor: str, local_gpus: int) -> str:
    """The device the DAG plans for: `cuda` when jobs should ask for GPUs, else `cpu`.

    Under SLURM the login node that builds the DAG may have no GPU: `auto` then plans GPUs for the
    compute nodes. Locally `auto` plans GPUs only where this machine has some. Each job still
    decides its own device when it starts (runtime.resolve_device).
    """
    if config["device"] != "auto":
        return config["device"]
    return "cuda" if executor == "slurm" or local_gpus > 0 else "cpu"


def job_gpus(config, executor: str, local_gpus: int) -> int:
    return config["gpus"] if device_plan(config, executor, local_gpus) == "cuda" else 0


# Config keys a spec copies as they are.
COPIED = (
    "batch_size",
    "epochs",
    "eval_every",
    "threads",
    "device",
    "gpus",
    "procs",
    "plugin",
    "precision",
    "checkpoint_every",
    "keep_checkpoints",
    "tensorboard",
)


def run_spec(config, name: str, seed: int) -> Spec:
    """Everything one training job needs, resolved from the config (what run.json records)."""
    from lrstudy import config as study  # it imports this module
    from lrstudy import factories, families, schedules

    run = study.definition(config, name)
    tuning = copy.deepcopy(run.get("tuning"))
    # A tuning run never evaluates the test split: the choice it serves must not see it. It
    # evaluates only what the choice reads: the valid split at the end, or as often as the other
    # runs where the choice is the best valid loss over the run.
    tuning_run = (tuning or {}).get("multiplier", families.SELECTED) != families.SELECTED
    eval_every = config["eval_every"]
    if tuning_run and config["report"]["best_metric"] != "best_valid_loss":
        eval_every = None  # at step 0 and at the end
    auto_from = None
    if study.uses_auto(config, name):
        source = study.auto_source(config, name)
        optimizer = copy.deepcopy(study.run_optimizer(config, source))
        auto_from = {"run": source, "optimizer": optimizer}
    test = run.get("range_test")
    return Spec(
        run=name,
        seed=seed,
        dataset=factories.dataset_name(config["dataset"]),
        model=copy.deepcopy(config["model"]),
        loss=config.get("loss", Spec.loss),
        optimizer=copy.deepcopy(run.get("optimizer", config["optimizer"])),
        **{**{k: config[k] for k in COPIED}, "eval_every": eval_every},
        **code_spec(config),
        range_test=RangeTest.from_dict(copy.deepcopy(test)) if test is not None else None,
        scheduler=None
        if test is not None
        else {"class": run["scheduler"], "kwargs": schedules.scheduler_kwargs(run)},
        tuning=tuning,
        eval_splits=["valid"] if tuning_run else ["valid", "test"],
        auto_from=auto_from,
    )


def code_spec(config) -> dict:
    """What a job needs of the user's code: `python_path`, the data factory's keys (`data`) and
    the SHA-256 of each factory's module (`code`: a changed source is a changed run, rerun)."""
    from lrstudy import factories

    if not factories.targets(config):
        return {}
    spec = {"python_path": list(config.get("python_path") or [])}
    if factories.is_factory(config["dataset"]):
        spec["data"] = {k: copy.deepcopy(config["dataset"].get(k)) for k in DATA_KEYS}
    sources = factories.provenance(config, git=False)
    spec["code"] = {key: record["sha256"] for key, record in sources.items()}
    return spec


def spec_hash(spec: Spec | dict) -> str:
    """16 hex digits of the spec's JSON (keys sorted): what checkpoints and finished runs match."""
    values = spec.to_dict() if isinstance(spec, Spec) else spec
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def train_argv(
    specs: Spec | list[Spec],
    data: str | Path,
    outs,
    suggestion: str | Path | None = None,
    selection: str | Path | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command line of one training job (`python -m lrstudy.train`): every spec (as a JSON
    list), the prepared data, one run folder per spec, and the range-test suggestion and the
    family's selection where the job has them. The rule, the tests, bench and gpu_check run it."""
    specs = [specs] if isinstance(specs, Spec) else list(specs)
    outs = [outs] if isinstance(outs, (str, Path)) else list(outs)
    argv = [python, "-m", "lrstudy.train", "--spec", json.dumps([s.to_dict() for s in specs])]
    argv += ["--data", str(data), "--out", *map(str, outs)]
    if suggestion:
        argv += ["--suggestion", str(suggestion)]
    if selection:
        argv += ["--selection", str(selection)]
    return argv
