"""The two worked examples (examples/*/): each runs end to end from a fresh copy of the repository,
with the range test, `auto` bounds, the verdict, report.md in the source's layout and the HTML
report; reruns give the same bytes; a killed training job resumed with `--rerun-incomplete` gives
the bytes of an unbroken run through the DataLoader."""

import json
import os
import shutil
import signal
import subprocess

import pytest
import yaml

from .conftest import snakemake_cmd
from .pause import Pause
from .test_resume import kill_at_checkpoint
from .util import ROOT, SOURCE, job_env, needs_source, snakemake

pytestmark = pytest.mark.slow

EXAMPLES = {"breast_cancer": "classification", "diabetes": "regression"}
REPO_PARTS = ("Snakefile", "workflow", "config", "envs", "report_template", "slurm")


def fresh_copy(folder, example):
    """The repository's files a clone has, with this example only."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    folder.mkdir(parents=True, exist_ok=True)
    for name in REPO_PARTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        else:
            shutil.copy(source, folder / name)
    shutil.copytree(ROOT / "examples" / example, folder / "examples" / example, ignore=ignore)
    return folder


def configfile(example):
    return f"examples/{example}/config.yaml"


@pytest.fixture(scope="session")
def example_studies(tmp_path_factory):
    """example -> its study folder, run once per session on first use (a module-scoped,
    parametrised fixture would be set up again whenever the test order switches examples)."""
    done = {}

    def get(example: str):
        if example not in done:
            work = fresh_copy(tmp_path_factory.mktemp(example), example)
            proc = snakemake(
                "--cores", "2", "--configfile", configfile(example), cwd=work, timeout=900
            )
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
            done[example] = work
        return done[example]

    return get


def headings(text: str) -> list[str]:
    return [line.split(" ", 1)[0] for line in text.splitlines() if line.startswith("#")]


class ExampleTests:
    """The tests of one example's study; a subclass per example (each class is one pytest-xdist
    work unit under `--dist loadscope`: its study is made once)."""

    example = ""
    rerun = ("range_test",)  # the runs the rerun test trains again, the last one its target

    @pytest.fixture
    def study(self, example_studies):
        return self.example, example_studies(self.example)

    def test_the_example_runs_end_to_end(self, study):
        example, work = study
        results = work / "results"
        report = (results / "report" / "report.md").read_text()
        assert len(headings(report)) > 10  # section for section the source's: the test below
        suggestion = json.loads((results / "runs" / "range_test" / "suggestion.json").read_text())
        assert suggestion["bounds"]["max_lr"] > 0
        onecycle = json.loads((results / "runs" / "onecycle" / "seed0" / "run.json").read_text())
        assert onecycle["auto"], "OneCycleLR's max_lr came from the range test"
        config = yaml.safe_load((work / configfile(example)).read_text())
        verdict = (results / "tables" / "verdict.csv").read_text().splitlines()
        assert len(verdict) == 1 + len(config["families"])
        assert sum(",reference," in row for row in verdict) == 1
        # the task and the code that made the numbers
        assert onecycle["task"] == EXAMPLES[example]
        model = onecycle["code"]["model.factory"]
        assert (
            model["module_file"]
            == str(work / "examples" / example / model["factory"].split(":")[0].replace(".", "/"))
            + ".py"
        )
        # the HTML report
        proc = snakemake(
            "--configfile", configfile(example), "--report", "report.html", cwd=work, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert (work / "report.html").stat().st_size > 100_000

    @needs_source
    def test_the_report_has_the_sources_layout(self, study):
        """Section for section (the rest of the example is checked without the source)."""
        _, work = study
        report = (work / "results" / "report" / "report.md").read_text()
        assert headings(report) == headings(SOURCE.read_text())

    def test_accuracy_only_where_the_task_is_classification(self, study):
        example, work = study
        summary = (work / "results" / "tables" / "summary.csv").read_text().splitlines()
        header = summary[0].split(",")
        column = header.index("final_valid_accuracy")
        scheduled = [row.split(",") for row in summary[1:] if ",scheduled," in row]
        accuracies = {row[column] for row in scheduled}
        if EXAMPLES[example] == "classification":
            assert "" not in accuracies
        else:
            assert accuracies == {""}
            record = json.loads(
                (work / "results" / "runs" / "step" / "seed0" / "run.json").read_text()
            )
            assert record["loss"] == "mse" and record["baseline_valid_loss"] > 0

    def test_a_rerun_gives_the_same_bytes(self, study, tmp_path):
        """The runs `rerun` names trained again in a second fresh copy (with what they need)."""
        example, work = study
        again = fresh_copy(tmp_path, example)
        targets = [f"results/runs/{self.rerun[-1]}/seed{s}/run.json" for s in (0, 1)]
        proc = snakemake(*targets, "--cores", "2", "--configfile", configfile(example), cwd=again)
        assert proc.returncode == 0, proc.stderr[-4000:]
        for run in self.rerun:
            for seed in (0, 1):
                for name in ("steps.csv", "evals.csv"):
                    path = f"results/runs/{run}/seed{seed}/{name}"
                    assert (again / path).read_bytes() == (work / path).read_bytes(), path


class TestBreastCancer(ExampleTests):
    example = "breast_cancer"
    rerun = ("range_test-families", "onecycle")  # and an `auto` run fed by that range test


class TestDiabetes(ExampleTests):
    example = "diabetes"


# ---------------------------------------------------------------------- kill and resume
LONG = ["epochs=60", "seeds=[0]", "checkpoint_every=1"]  # 1260 steps: time to kill in between


def test_a_killed_job_resumes_with_the_bytes_of_an_unbroken_run(tmp_path):
    """Through the DataLoader (tests/test_resume.py kills and resumes jobs that read the data in
    memory)."""
    example, loader = "breast_cancer", "dataloader"
    config = ["--config", *LONG, f"dataset={{loader: {loader}}}"]
    target = "results/runs/step/seed0/run.json"
    reference, killed = (fresh_copy(tmp_path / n, example) for n in ("reference", "killed"))
    command = snakemake_cmd(target, "--cores", "1", "--configfile", configfile(example), *config)
    unbroken = subprocess.Popen(
        command, cwd=reference, env=job_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log, pause = tmp_path / "first.log", Pause(tmp_path)
    with open(log, "w") as handle:
        first = subprocess.Popen(
            command, cwd=killed, env=job_env(pause.env), stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    folder = killed / "results" / "runs" / "step" / "seed0"
    try:
        step = kill_at_checkpoint(first, pause, folder, 21 * 3, group=True, log=log)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert not (folder / "run.json").exists()
    snakemake(target, "--unlock", "--configfile", configfile(example), *config, cwd=killed)
    proc = snakemake(
        target, "--cores", "1", "--rerun-incomplete", "--configfile", configfile(example),
        *config, cwd=killed,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    job_log = (killed / "results" / "logs" / "train" / "step.log").read_text()
    assert f"resuming from checkpoint results/runs/step/seed0/ckpt-{step:07d}" in job_log
    assert unbroken.wait(timeout=600) == 0
    unbroken_folder = reference / "results" / "runs" / "step" / "seed0"
    record = json.loads((folder / "run.json").read_text())
    assert record["spec"]["data"]["loader"] == loader
    meta = json.loads(next((killed / "results" / "data").glob("*.json")).read_text())
    assert meta["loader"] == loader
    for name in ("steps.csv", "evals.csv"):
        assert (folder / name).read_bytes() == (unbroken_folder / name).read_bytes(), name


def test_torchrun_ranks_import_the_users_package(tmp_path):
    """Two CPU ranks under torchrun, each calling the data factory (the DataLoader path)."""
    example = "breast_cancer"
    work = fresh_copy(tmp_path, example)
    target = "results/runs/step/seed0/run.json"
    proc = snakemake(
        target, "--cores", "2", "--configfile", configfile(example), "--config", "procs=2",
        "seeds=[0]", "epochs=1", "dataset={loader: dataloader}", cwd=work,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads((work / target).read_text())
    assert record["world_size"] == 2 and record["spec"]["data"]["loader"] == "dataloader"
    assert record["status"] == "completed"
