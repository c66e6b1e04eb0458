"""Bad configs stop at DAG build with a message naming the key (and the allowed values)."""

import copy
import re

import pytest
import yaml

from lrstudy import config as study
from lrstudy.spec import job_gpus, run_spec

from .util import ROOT, default_config, snakemake

RAW = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def edit(change):
    config = copy.deepcopy(RAW)
    change(config)
    return config


def setitem(path, value):
    def change(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


LINEAR = {"scheduler": "LinearLR", "kwargs": {"start_factor": 0.01, "total_iters": 20}}
SEQUENCE = {
    "scheduler": "SequentialLR",
    "milestones": [20],
    "schedulers": [LINEAR, {"scheduler": "CosineAnnealingLR", "kwargs": {"T_max": "auto"}}],
}
RAW["runs"]["seq"] = SEQUENCE  # a valid composition (warmup + cosine) the cases below break


def sequential(child, **replace):
    """Replace keys of the `seq` run's child number `child`."""
    return lambda config: config["runs"]["seq"]["schedulers"].__setitem__(
        child, {**SEQUENCE["schedulers"][child], **replace}
    )


# (kind, change to the default config, key the message must name, other words it must hold)
CASES = [
    ("wrong type", setitem(["batch_size"], "32"), "batch_size", "not of type 'integer'"),
    ("batch_size 0", setitem(["batch_size"], 0), "batch_size", "minimum of 1"),
    (
        "out of range",
        setitem(["dataset", "valid_fraction"], 0.9),
        "dataset.valid_fraction",
        "maximum",
    ),
    ("unknown key", setitem(["epoch"], 3), "(top level)", "'epoch' was unexpected"),
    (
        "unknown scheduler",
        setitem(["runs", "step", "scheduler"], "StepLr"),
        "runs.step.scheduler",
        "StepLR",
    ),
    ("unknown optimizer", setitem(["optimizer", "name"], "Adagrad"), "optimizer.name", "LAMB"),
    ("unknown dataset", setitem(["dataset", "name"], "imagenet"), "dataset.name", "fashion_mnist"),
    ("unknown model", setitem(["model"], "vgg16"), "model", "lenet5"),
    (
        "kwargs the scheduler does not take",
        setitem(["runs", "step", "kwargs", "steps"], 100),
        "runs.step.kwargs",
        "'steps'",
    ),
    (
        "missing scheduler kwarg",
        lambda c: c["runs"]["step"]["kwargs"].pop("step_size"),
        "runs.step.kwargs",
        "step_size",
    ),
    (
        "lr <= 0",
        setitem(["optimizer", "kwargs", "lr"], 0),
        "optimizer.kwargs",
        "lr must be a number > 0",
    ),
    (
        "negative lr in a run",
        setitem(["runs", "step", "optimizer"], {"name": "SGD", "kwargs": {"lr": -1}}),
        "runs.step.optimizer.kwargs",
        "> 0",
    ),
    (
        "optimizer kwarg unknown",
        setitem(["optimizer", "kwargs", "betas"], [0.9, 0.99]),
        "optimizer.kwargs",
        "'betas'",
    ),
    (
        "report names a missing run",
        setitem(["report", "sections", "step"], ["step", "exp_0.9"]),
        "report.sections.step",
        "'exp_0.9'",
    ),
    (
        "range test in a schedule section",
        setitem(["report", "sections", "cyclic"], ["range_test"]),
        "report.sections.cyclic",
        "scheduled runs",
    ),
    (
        "end_lr below start_lr",
        setitem(["runs", "range_test", "range_test", "end_lr"], 1e-6),
        "runs.range_test.range_test.end_lr",
        "must exceed",
    ),
    ("gpus on a machine without GPU", setitem(["device"], "cuda"), "device", "no GPU"),
    ("CUDA-only plugin on the CPU", setitem(["plugin"], "gemini"), "plugin", "needs CUDA"),
    (
        "auto where torch has no bound",
        setitem(["runs", "step", "kwargs", "gamma"], "auto"),
        "runs.step.kwargs",
        "cannot be 'auto'",
    ),
    (
        "bad run name",
        setitem(["runs", "bad name"], {"scheduler": "StepLR", "kwargs": {"step_size": 1}}),
        "runs",
        "does not match",
    ),
    (
        "missing data_dir",
        lambda c: c["dataset"].update(name="mnist", data_dir="/nonexistent/mnist"),
        "dataset.data_dir",
        "not a folder",
    ),
    ("seeds repeated", setitem(["seeds"], [0, 0]), "seeds", "non-unique"),
    ("fp16 on the CPU", setitem(["precision"], "fp16"), "precision", "fp16 needs CUDA"),
    ("unknown precision", setitem(["precision"], "fp8"), "precision", "'fp8' is not one of"),
    # compositions (SequentialLR), ColossalAI's schedulers, `none`, schedule-free optimizers
    (
        "unknown child",
        sequential(1, scheduler="CosineLR"),
        "runs.seq.schedulers.1.scheduler",
        "CosineAnnealingLR",
    ),
    (
        "colossalai child",
        sequential(1, scheduler="colossalai.LinearWarmupLR"),
        "runs.seq.schedulers.1.scheduler",
        "torch scheduler class",
    ),
    (
        "milestones count",
        setitem(["runs", "seq", "milestones"], [20, 40]),
        "runs.seq.milestones",
        "needs 1 milestones",
    ),
    (
        "milestones not increasing",
        lambda c: c["runs"]["seq"].update(milestones=[40, 20], schedulers=[LINEAR] * 3),
        "runs.seq.milestones",
        "must increase",
    ),
    (
        "auto in a non-length kwarg",
        sequential(1, kwargs={"T_max": "auto", "eta_min": "auto"}),
        "runs.seq.schedulers.1.kwargs",
        "'eta_min' cannot be 'auto'",
    ),
    (
        "wrong child kwarg",
        sequential(0, kwargs={"start_factor": 0.01, "iters": 20}),
        "runs.seq.schedulers.0.kwargs",
        "'iters'",
    ),
    (
        "child value torch rejects",
        sequential(0, kwargs={"start_factor": 2.0}),
        "runs.seq.schedulers.0.kwargs",
        "rejected by torch",
    ),
    (
        "sequential without milestones",
        lambda c: c["runs"]["seq"].pop("milestones"),
        "runs.seq.milestones",
        "needs `schedulers`",
    ),
    (
        "milestones on another scheduler",
        setitem(["runs", "step", "milestones"], [20]),
        "runs.step.milestones",
        "only a SequentialLR",
    ),
    (
        "auto length outside a composition",
        setitem(["runs", "step"], {"scheduler": "CosineAnnealingLR", "kwargs": {"T_max": "auto"}}),
        "runs.step.kwargs",
        "cannot be 'auto'",
    ),
    (
        "unknown colossalai class",
        setitem(["runs", "step"], {"scheduler": "colossalai.CosineWarmupLR"}),
        "runs.step.scheduler",
        "colossalai.CosineAnnealingWarmupLR",
    ),
    (
        "colossalai takes a function",
        setitem(["runs", "step"], {"scheduler": "colossalai.LambdaLR"}),
        "runs.step.scheduler",
        "unknown ColossalAI scheduler",
    ),
    (
        "wrong colossalai kwarg",
        setitem(
            ["runs", "step"],
            {"scheduler": "colossalai.CosineAnnealingWarmupLR", "kwargs": {"warmup": 20}},
        ),
        "runs.step.kwargs",
        "'warmup'",
    ),
    (
        "colossalai total_steps given",
        setitem(
            ["runs", "step"],
            {"scheduler": "colossalai.LinearWarmupLR", "kwargs": {"total_steps": 9}},
        ),
        "runs.step.kwargs",
        "filled in by the workflow",
    ),
    (
        "none with kwargs",
        setitem(["runs", "step"], {"scheduler": "none", "kwargs": {"gamma": 0.5}}),
        "runs.step.kwargs",
        "takes no kwargs",
    ),
    (
        "schedule-free momentum 0",
        setitem(
            ["runs", "step", "optimizer"],
            {"name": "SGDScheduleFree", "kwargs": {"lr": 1, "momentum": 0}},
        ),
        "runs.step.optimizer.kwargs",
        "Momentum",
    ),
    # kwarg types: torch's own errors from a dry build stepped on a dummy parameter, at DAG build
    (
        "gamma: half",
        setitem(["runs", "step", "kwargs", "gamma"], "half"),
        "runs.step.kwargs",
        "StepLR(step_size=100, gamma='half') is rejected by torch",
    ),
    (
        "string step_size",
        setitem(["runs", "step", "kwargs", "step_size"], "100"),
        "runs.step.kwargs",
        "rejected by torch: TypeError",
    ),
    (
        "list where a number belongs",
        setitem(["runs", "exp_0.99", "kwargs", "gamma"], [0.99]),
        "runs.exp_0.99.kwargs",
        "rejected by torch",
    ),
    (
        "OneCycleLR max_lr of two values",
        setitem(["runs", "onecycle_1", "kwargs", "max_lr"], [1.0, 2.0]),
        "runs.onecycle_1.kwargs",
        "rejected by torch",
    ),
    (
        "CyclicLR step_size_up text",
        setitem(["runs", "cyclic", "kwargs", "step_size_up"], "fifty"),
        "runs.cyclic.kwargs",
        "rejected by torch",
    ),
    (
        "optimizer momentum text",
        setitem(["optimizer", "kwargs", "momentum"], "high"),
        "optimizer.kwargs",
        "optimizer SGD(lr=0.1, momentum='high'",
    ),
    (
        "Adam betas not a pair",
        setitem(
            ["runs", "step", "optimizer"], {"name": "Adam", "kwargs": {"lr": 0.01, "betas": 0.9}}
        ),
        "runs.step.optimizer.kwargs",
        "optimizer Adam(lr=0.01, betas=0.9) is rejected by torch",
    ),
    (
        "LARS weight_decay text",
        setitem(
            ["runs", "step", "optimizer"],
            {"name": "LARS", "kwargs": {"lr": 1.0, "weight_decay": "none"}},
        ),
        "runs.step.optimizer.kwargs",
        "optimizer LARS(lr=1, weight_decay='none') is rejected by torch",
    ),
    (
        "LAMB eps text",
        setitem(
            ["runs", "step", "optimizer"], {"name": "LAMB", "kwargs": {"lr": 0.01, "eps": "tiny"}}
        ),
        "runs.step.optimizer.kwargs",
        "optimizer LAMB(lr=0.01, eps='tiny') is rejected by torch",
    ),
    (
        "lr a list",
        setitem(["optimizer", "kwargs", "lr"], [0.1]),
        "optimizer.kwargs",
        "lr must be a number > 0",
    ),
    # the verdict: the test split chooses nothing; the pick is confirmed on fresh seeds
    (
        "selection on the test split",
        setitem(["report", "best_metric"], "test_loss"),
        "report.best_metric",
        "would choose on the test split",
    ),
    (
        "confirmation seeds that tuned",
        setitem(["tuning", "confirm_seeds"], [2, 100, 101]),
        "tuning.confirm_seeds",
        "seeds 2 are also tuning seeds",
    ),
    (
        "lr on a family whose scheduler sets the LR",
        setitem(["families", "onecycle", "lr"], 0.1),
        "families.onecycle.lr",
        "OneCycleLR sets the LR itself",
    ),
    (
        "a run named as a family's run",
        setitem(["runs", "confirm-step"], {"scheduler": "StepLR", "kwargs": {"step_size": 9}}),
        "runs.confirm-step",
        "is the name of a family's run",
    ),
    (
        "a family kwarg torch rejects",
        setitem(["families", "step", "kwargs", "gamma"], "half"),
        "families.step.kwargs",
        "rejected by torch",
    ),
    (
        "fewer seeds at most than the first look has",
        setitem(["verdict", "max_seeds"], 5),
        "verdict.max_seeds",
        "5 is fewer than the 10 tuning.confirm_seeds",
    ),
    (
        "a verdict on the valid split",
        setitem(["verdict", "metric"], "final_valid_loss"),
        "verdict.metric",
        "is not one of",
    ),
    (
        "a family optimizer torch rejects",
        setitem(["families", "step", "optimizer"], {"name": "SGD", "kwargs": {"momentum": -1}}),
        "families.step.optimizer.kwargs",
        "rejected by torch",
    ),
    (
        "more best families than families",
        setitem(["report", "best_count"], 6),
        "report.best_count",
        "of only 5 families",
    ),
]


@pytest.mark.parametrize("kind, change, key, words", CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_the_key(kind, change, key, words):
    with pytest.raises(study.ConfigError) as caught:
        study.validate(edit(change), executor="local", local_gpus=0)
    assert caught.value.key == key
    assert f"`{key}`" in str(caught.value) and words in str(caught.value)


SHIPPED = sorted((ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_is_valid(path):
    """Every config/*.yaml as a user passes it with --configfile (new files are covered by the
    glob)."""
    config = yaml.safe_load(path.read_text())
    study.validate(config, [path], executor="local", local_gpus=0)
    # as the workflow sees it: the schema's defaults filled in, every section's run a run of the
    # config, tuning and confirmation seeds apart
    assert config["report"]["best_metric"] in study.SELECTION_METRICS
    sections = config["report"]["sections"]
    assert {run for runs in sections.values() for run in runs} <= set(config["runs"])
    tuning = config["tuning"]
    assert tuning["multipliers"] and not set(tuning["seeds"]) & set(tuning["confirm_seeds"])


def test_duplicate_run_names_are_caught(tmp_path):
    text = (
        (ROOT / "config" / "config.yaml").read_text().replace("  exp_0.995:\n", "  exp_0.999:\n", 1)
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(study.ConfigError, match="`exp_0.999`.*twice.*dup.yaml"):
        study.validate(yaml.safe_load(text), [path])


def test_slurm_plans_gpus_even_from_a_login_node_without_one():
    config = default_config()
    assert job_gpus(config, "local", 0) == 0
    assert job_gpus(config, "local", 2) == 1
    assert job_gpus(config, "slurm", 0) == 1
    config["device"] = "cpu"
    assert job_gpus(config, "slurm", 0) == 0


# Each stage of the check once (the schema; torch's own refusal): the rest of CASES goes through
# the same study.validate call, tested in this process above.
DAG_CASES = ["batch_size 0", "gamma: half"]


class TestDagBuildStops:
    """A class: a pytest-xdist work unit of its own (`--dist loadscope`)."""

    @pytest.mark.slow
    @pytest.mark.parametrize(
        "kind, change, key, words", [c for c in CASES if c[0] in DAG_CASES], ids=DAG_CASES
    )
    def test_snakemake_stops_at_dag_build(self, kind, change, key, words, workflow_copy):
        """In a copy of the workflow whose config/config.yaml is the bad config: not even a plan."""
        folder = workflow_copy(edit(change))
        proc = snakemake("-n", cwd=folder)
        assert proc.returncode != 0
        assert f"`{key}`" in proc.stdout + proc.stderr and words in proc.stdout + proc.stderr
        assert not (folder / "results").exists()  # no job started, nothing written


def test_numbers_in_command_line_lists_become_numbers():
    """What Snakemake hands over for
    `--config 'seeds=[0,1,2]' 'optimizer={name: Adam, kwargs: {betas: [0.9, 0.99], lr: 1e-3}}'`
    (YAML BaseLoader: every scalar a string) validates as the numbers; names stay names."""
    overrides = {
        "seeds": ["0", "1", "2"],
        "optimizer": {"name": "Adam", "kwargs": {"betas": ["0.9", "0.99"], "lr": "1e-3"}},
        "report": {**RAW["report"], "best_count": "2"},
    }
    config = {**copy.deepcopy(RAW), **copy.deepcopy(overrides)}
    study.validate(config, overrides=overrides)
    assert config["report"]["best_count"] == 2
    assert config["seeds"] == [0, 1, 2] and all(type(s) is int for s in config["seeds"])
    assert config["optimizer"]["kwargs"] == {"betas": [0.9, 0.99], "lr": 0.001}
    assert config["report"]["sections"]["step"] == ["step", "exp_0.999"]
    # without the overrides (a config file's own strings) nothing is converted: the schema says why
    config = {**copy.deepcopy(RAW), "seeds": ["0", "1"]}
    with pytest.raises(study.ConfigError, match="`seeds.0`.*not of type 'integer'"):
        study.validate(config)


def test_tuning_runs_evaluate_only_what_the_choice_reads(tiny_config):
    """Tuning runs: the valid split alone (never the test split), at the start and end unless the
    choice is the best valid loss over the run; confirmation runs as the config's runs."""
    tune, confirm = "tune-step-x1", "confirm-step"
    spec = run_spec(tiny_config, tune, 0)
    assert spec.eval_splits == ["valid"] and spec.eval_every is None
    assert run_spec(tiny_config, confirm, 10).eval_splits == ["valid", "test"]
    assert run_spec(tiny_config, confirm, 10).eval_every == tiny_config["eval_every"]
    assert run_spec(tiny_config, "step", 0).eval_splits == ["valid", "test"]
    tiny_config["report"]["best_metric"] = "best_valid_loss"
    assert run_spec(tiny_config, tune, 0).eval_every == tiny_config["eval_every"]


def schema_node(key: str):
    """The schema's node of a dotted config key (`<name>`: a mapping's entries); None if none."""
    from lrstudy.layout import schema

    node = schema()
    for part in key.split("."):
        if part == "<name>":
            node = node.get("additionalProperties")
        else:
            node = (node.get("properties") or {}).get(part) if node else None
        if node is None:
            return None
    return node


def test_config_readme_states_the_schemas_defaults():
    """Every default config/README.md's key table writes as a single value is the schema's (the
    values config/config.yaml sets are said as such in the meaning column)."""
    rows = re.findall(
        r"^\| `([\w.<>]+)` \| `([^`|]+)` \|", (ROOT / "config" / "README.md").read_text(), re.M
    )
    compared = []
    for key, written in rows:
        node = schema_node(key)
        if node is None or "default" not in node or "…" in written:
            continue
        value = yaml.safe_load(written)
        if isinstance(value, str) and re.fullmatch(r"[\d.]+e-?\d+", value):
            value = float(value)  # 1e-5: a number as people write it, a string to YAML 1.1
        assert value == node["default"], (key, written, node["default"])
        compared.append(key)
    assert len(compared) >= 30, compared  # the table's single-value defaults, not a few


def test_the_families_range_test_is_added_with_their_optimizer():
    config = default_config()
    study.validate(config, executor="local", local_gpus=0)
    added = config["runs"]["range_test-families"]
    assert added["optimizer"] == config["tuning"]["optimizer"]
    assert added["range_test"] == config["runs"]["range_test"]["range_test"]
    assert run_spec(config, "tune-onecycle-x1", 0).auto_from["run"] == "range_test-families"
    # a family with an optimizer of its own gets a range test with it
    config = default_config()
    config["families"]["step"]["optimizer"] = {"name": "Adam", "kwargs": {"lr": 0.001}}
    study.validate(config, executor="local", local_gpus=0)
    assert config["runs"]["range_test-step"]["optimizer"]["name"] == "Adam"
    assert run_spec(config, "confirm-step", 100).auto_from["run"] == "range_test-step"
