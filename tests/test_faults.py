"""Corrupted files are refused by name; a failed download says why and where from.

Each file a stage reads that cannot be trusted (a prepared-data file whose tensors do not match
its manifest, a checkpoint that does not load or does not match what it wrote, a run folder
without run.json, a steps.csv or evals.csv that does not parse) stops that stage with a message
naming the file and what to do; nothing trains on it or aggregates it.
"""

import json
import shutil
import subprocess

import pytest
import torch

from lrstudy import aggregate, data, faults, io, rangetest
from lrstudy.checkpoints import Checkpoints

from . import synthetic
from .conftest import JOB_TIMEOUT, job_env, long_config, raw_config, snakemake_cmd, spec_of


@pytest.fixture
def prepared(digits_data, tmp_path):
    """A copy of the session's prepared digits file and its manifest."""
    for suffix in (".pt", ".json"):
        shutil.copy2(digits_data.with_suffix(suffix), tmp_path / f"digits{suffix}")
    return tmp_path / "digits.pt"


def tamper(path):
    """One pixel of the train split changed, the file otherwise as it was."""
    payload = torch.load(path, weights_only=True)
    payload["train"]["x"][0, 0, 16, 16] += 1
    torch.save(payload, path)


def test_prepared_data_that_does_not_match_its_manifest(prepared):
    data.load_prepared(prepared)  # the copy as made: accepted
    tamper(prepared)
    with pytest.raises(faults.Corrupted) as refused:
        data.load_prepared(prepared)
    message = str(refused.value)
    assert str(prepared) in message and "fingerprint" in message and "Delete" in message


def test_a_truncated_prepared_data_file(prepared):
    prepared.write_bytes(prepared.read_bytes()[:5000])
    with pytest.raises(faults.Corrupted, match="do not load") as refused:
        data.load_prepared(prepared)
    assert str(prepared) in str(refused.value)


def test_a_failed_download_says_why_and_where(tmp_path, monkeypatch):
    """Every mirror refuses (a port nothing listens on, on this machine): the error names the
    addresses tried, why they failed, and `dataset.data_dir`."""
    from torchvision import datasets

    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/mnist/"])
    with pytest.raises(data.DatasetError) as failed:
        data.fetch({"name": "mnist", "download": True}, tmp_path / "raw")
    message = str(failed.value)
    assert "download of train-images-idx3-ubyte.gz failed" in message
    assert "http://127.0.0.1:9/mnist/train-images-idx3-ubyte.gz" in message
    assert "refused" in message.lower() and "`dataset.data_dir`" in message


# ----------------------------------------------------------------------------------- run folders
@pytest.fixture
def runs(tmp_path):
    return [synthetic.write_run(tmp_path, "step", seed, valid=1.0) for seed in (0, 1)]


def test_run_folders_as_written_are_aggregated(runs):
    steps, evals, summary = aggregate.aggregate(runs, target=1.0)
    assert len(summary) == 2 and len(steps) == 2 * synthetic.STEPS


@pytest.mark.parametrize(
    "damage, named, why",
    [
        (lambda run: run.unlink(), "run.json", "missing"),
        (lambda run: run.write_text('{"run": "st'), "run.json", "does not parse as JSON"),
        (lambda run: cut_last_row(run.parent / "steps.csv"), "steps.csv", "does not parse"),
        (lambda run: append(run.parent / "evals.csv", "20,0,valid,0.5,0.9,7\n"), "evals.csv", ""),
        (lambda run: append(run.parent / "steps.csv", "21,0,0.1,x,1.0,1.0\n"), "steps.csv", ""),
    ],
    ids=["no-run.json", "run.json-cut", "steps-row-cut", "evals-extra-field", "steps-not-a-number"],
)
def test_a_damaged_run_folder_stops_the_aggregation_naming_the_file(runs, damage, named, why):
    damage(runs[1])
    with pytest.raises(faults.Corrupted) as refused:
        aggregate.aggregate(runs, target=1.0)
    message = str(refused.value)
    assert message.startswith(str(runs[1].parent / named)) and why in message
    assert f"Delete the run folder {runs[1].parent}" in message


def test_a_range_test_folder_without_run_json(runs):
    runs[0].unlink()
    with pytest.raises(faults.Corrupted, match="run.json: missing"):
        rangetest.analyse(runs[0].parent)


def cut_last_row(path):
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind(",")] + "\n")  # the last field lost


def append(path, row):
    with open(path, "a") as handle:
        handle.write(row)


# ----------------------------------------------------------------------------------- checkpoints
class Payload:
    """What a tampered state.pt could hold: unpickled unsafely, it runs code (writes a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (shutil.copyfile, (__file__, str(self.marker)))


def test_a_tampered_state_pt_is_refused_and_runs_nothing(tmp_path):
    folder = tmp_path / "ckpt-0000045"
    folder.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"spec_hash": "x", "step": 45, "hook": Payload(marker)}, folder / "state.pt")
    (tmp_path / "LATEST").write_text(folder.name)
    checkpoints = Checkpoints(tmp_path, booster=None, rank=0)
    with pytest.raises(faults.Corrupted) as refused:
        checkpoints.load(None, None, None, "x")
    assert not marker.exists()  # the safe loader refused it before anything ran
    message = str(refused.value)
    assert message.startswith(f"{folder / 'state.pt'}: the checkpoint does not load")
    assert f"Delete {folder} and {tmp_path / 'LATEST'}" in message


def test_a_checkpoint_file_with_code_is_refused_although_its_hash_matches(tmp_path):
    """model.pt replaced and its SHA-256 in state.pt updated to match: the file is loaded with the
    safe loader before ColossalAI's Booster (whose loader runs code) ever sees it."""
    folder = tmp_path / "ckpt-0000045"
    folder.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"weight": Payload(marker)}, folder / "model.pt")
    for name in ("optimizer.pt", "scheduler.pt"):
        torch.save({"state": {}}, folder / name)
    sums = {name: io.file_hash(folder / name) for name in Checkpoints.FILES}
    torch.save({"spec_hash": "x", "step": 45, "sha256": sums}, folder / "state.pt")
    (tmp_path / "LATEST").write_text(folder.name)
    with pytest.raises(faults.Corrupted, match="model.pt: it does not load"):
        Checkpoints(tmp_path, booster=None, rank=0).load(None, None, None, "x")
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["model.pt", "state.pt"])
def test_a_damaged_checkpoint_stops_the_job_before_it_trains(trainer, damage, tmp_path):
    """A kept checkpoint with one file truncated (model.pt: it no longer matches the SHA-256 its
    state.pt recorded; state.pt: it does not load): the job stops naming it and writes nothing."""
    from .test_resume import checkpoint_step

    spec = spec_of(long_config(), "onecycle", 0, keep_checkpoints=True)
    kept = trainer.reference(spec)
    out = tmp_path / "run"
    name = f"ckpt-{checkpoint_step(kept):07d}"
    shutil.copytree(kept / name, out / name)
    shutil.copy2(kept / "LATEST", out / "LATEST")
    target = out / name / damage
    target.write_bytes(target.read_bytes()[:1000])
    job = trainer.start(spec, out).wait(check=False)
    assert job.proc.returncode == 1, job.stderr[-3000:]
    assert f"{target}: " in job.stderr and "nothing was trained on it" in job.stderr
    assert sorted(p.name for p in out.iterdir()) == ["LATEST", name]


@pytest.mark.slow
def test_a_stage_error_reaches_the_console(workflow_copy, prepared, tmp_path):
    """Through Snakemake: the train job refuses a prepared file that does not match its manifest,
    and the console (not only the job's log) says so."""
    raw = raw_config(seeds=[0])
    study = workflow_copy(raw)
    (study / "results" / "data").mkdir(parents=True)
    tamper(prepared)
    for suffix in (".pt", ".json"):
        shutil.copy2(prepared.with_suffix(suffix), study / "results" / "data" / f"digits{suffix}")
    proc = subprocess.run(
        snakemake_cmd("--cores", "1", "results/runs/onecycle/seed0/run.json"),
        cwd=study,
        env=job_env(),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT,
    )
    assert proc.returncode != 0
    console = proc.stdout + proc.stderr
    assert "results/data/digits.pt: its tensors' fingerprint" in console, console[-3000:]
    assert not (study / "results" / "runs" / "onecycle" / "seed0" / "steps.csv").exists()
    assert json.loads((study / "results" / "data" / "digits.json").read_text())["fingerprint"]
