"""The run spec: typed, built once from the config, the same JSON bytes as the dict it replaced,
and carried to the training job by one command line, the one the rules run."""

import json
import shlex

import pytest
import yaml

from lrstudy import families
from lrstudy.spec import RangeTest, Spec, run_spec, spec_hash, train_argv, world_size

from .conftest import raw_config, study_config
from .util import SCHEMA, snakemake


def test_a_spec_round_trips_through_json_with_its_keys_in_order():
    """to_dict -> JSON -> from_dict gives the same spec, and the dict keeps the config's order of a
    range test's keys (run.json records it) and leaves out the parts a run does not have."""
    test = {"end_lr": 100.0, "start_lr": 1.0e-3, "steps": 50}  # not the schema's order
    config = study_config(runs={"sweep": {"range_test": test}})
    spec = run_spec(config, "sweep", 3)
    values = spec.to_dict()
    assert list(values["range_test"])[:3] == ["end_lr", "start_lr", "steps"]
    assert "scheduler" not in values and "tuning" not in values and "auto_from" not in values
    assert list(values)[:3] == ["run", "seed", "dataset"] and list(values)[-1] == "eval_splits"
    again = Spec.from_dict(json.loads(json.dumps(values)))
    assert again == spec and json.dumps(again.to_dict()) == json.dumps(values)
    assert spec_hash(again) == spec_hash(values)
    assert spec.range_test.end_lr == 100.0 and spec.range_test.smooth_beta == 0.98
    scheduled = run_spec(config, "step", 0)
    assert scheduled.range_test is None and scheduled.scheduler["class"] == "StepLR"


def test_the_range_test_defaults_are_the_schemas():
    schema = yaml.safe_load(SCHEMA.read_text())
    run = schema["properties"]["runs"]["additionalProperties"]
    properties = run["properties"]["range_test"]["properties"]
    defaults = {key: entry["default"] for key, entry in properties.items()}
    assert RangeTest().to_dict() == defaults
    assert [type(v) for v in RangeTest().to_dict().values()] == [type(v) for v in defaults.values()]


@pytest.mark.parametrize("device, world", [("cuda", 2), ("cuda:1", 2), ("cpu", 3)])
def test_the_world_is_the_gpus_on_cuda_and_the_procs_elsewhere(device, world):
    assert world_size(device, gpus=2, procs=3) == world
    assert run_spec(study_config(gpus=2, procs=3), "step", 0).world(device) == world


@pytest.mark.slow
def test_the_rules_run_the_command_line_train_argv_builds(workflow_copy):
    """`snakemake -n -p` for a confirmation run prints the jobs of its family's range test and
    tuning (the confirmation waits for the choice, a checkpoint): each command is train_argv's
    for the job's specs and folders."""
    folder = workflow_copy(raw_config())
    proc = snakemake("-n", "-p", "results/runs/confirm-step/seed10/run.json", cwd=folder)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config, tuning = study_config(), study_config()["tuning"]
    suggestion = "results/runs/range_test-families/suggestion.json"
    jobs = {
        "range_test-families": ([("range_test-families", 0)], None, None),
        "tune": (
            [(r, s) for r in families.tuning_runs(config, "step") for s in tuning["seeds"]],
            suggestion,
            None,
        ),
    }
    assert "checkpoint select_setting" in proc.stdout
    for name, (runs, suggestion, selection) in jobs.items():
        specs = [run_spec(config, run, seed) for run, seed in runs]
        folders = [f"results/runs/{run}/seed{seed}" for run, seed in runs]
        argv = train_argv(specs, "results/data/digits.pt", folders, suggestion, selection, "python")
        assert f"{shlex.join(argv)} > results/logs/" in proc.stdout, name
