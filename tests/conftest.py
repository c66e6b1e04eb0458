"""Shared fixtures: the tiny test study, the prepared digits file, training jobs, workflow copies.

A test's own training jobs run as the `train` rule runs them (`python -m lrstudy.train
--spec ...`), in a subprocess; most of a job's ~7 s is importing ColossalAI. The uninterrupted
runs they are compared with (`trainer.reference(spec)`) are trained in the test process instead,
by the function the job calls (`lrstudy.train.train`), once per worker and spec: the import is
paid once.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .util import ROOT, RUNNING, job_env, slow_only, validated  # noqa: F401 (re-exported)

TINY = Path(__file__).resolve().parent / "configs" / "tiny.yaml"
DIGITS = {"name": "digits", "valid_fraction": 0.1, "test_fraction": 0.2, "split_seed": 0}
JOB_TIMEOUT = 300  # seconds; a training job of the tiny study takes ~10


# The longest work units first: with `--no-loadscope-reorder` (Makefile) pytest-xdist hands units
# out in collection order, and a unit that mostly waits on SLURM or runs a whole study must not be
# the last one started. The rest keep their order.
LONG_UNITS = (
    "test_slurm.py",
    "test_slurm_faults.py",
    "test_examples.py",
    "test_study.py",
    "test_slurm_factories.py",
    "test_bench.py",
    "test_resume.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_UNITS)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_UNITS)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """tests/util.py's RUNNING: the test's `slow` mark, set before any fixture of the test."""
    RUNNING["slow"] = item.get_closest_marker("slow") is not None
    try:
        return (yield)
    finally:
        RUNNING["slow"] = True


# ------------------------------------------------------------------------------------ config
def raw_config(path: Path = TINY, **overrides) -> dict:
    """The YAML as written (no defaults filled), with top-level keys replaced by `overrides`;
    `runs={name: run}` adds or replaces single runs."""
    config = yaml.safe_load(Path(path).read_text())
    runs = overrides.pop("runs", {})
    config.update(copy.deepcopy(overrides))
    config["runs"].update(copy.deepcopy(runs))
    return config


def study_config(path: Path = TINY, **overrides) -> dict:
    return validated(raw_config(path, **overrides))


LONG = {
    "epochs": 8,
    "eval_every": 20,
}  # 320 steps, ~3 s of training: time to kill a job between checkpoints


def long_config(**overrides) -> dict:
    """The tiny study run longer (LONG); the resume and determinism tests share its runs."""
    return study_config(**{**LONG, **overrides})


def spec_of(config: dict, run: str, seed: int = 0, **overrides):
    """The spec the `train` rule passes for (run, seed) (lrstudy.spec.run_spec), with
    `overrides` replacing its fields."""
    from lrstudy.spec import run_spec

    return run_spec(config, run, seed).replace(**overrides)


@pytest.fixture
def tiny_config() -> dict:
    """tests/configs/tiny.yaml, validated (a fresh copy per test)."""
    return study_config()


# ------------------------------------------------------------------------------ environment
@pytest.fixture(scope="session")
def digits_data(tmp_path_factory) -> Path:
    """The prepared digits file (`python -m lrstudy.data`), made once per session."""
    folder = tmp_path_factory.mktemp("data")
    out, manifest = folder / "digits.pt", folder / "digits.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lrstudy.data",
            "--dataset",
            json.dumps(DIGITS),
            "--out",
            str(out),
            "--manifest",
            str(manifest),
        ],
        check=True,
        env=job_env(),
        capture_output=True,
        timeout=JOB_TIMEOUT,
    )
    return out


# --------------------------------------------------------------------------------- training
class Job:
    """A running `python -m lrstudy.train`, its stderr in out/../<name>.stderr; `env` adds to
    its environment (job_env)."""

    def __init__(self, spec, out: Path, command: list[str], env=None, **popen):
        self.spec, self.out = spec, out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.log = out.parent / f"{out.name}.stderr"
        with open(self.log, "w") as handle:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=handle, env=job_env(env), **popen
            )

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    def wait(self, check: bool = True) -> Job:
        try:
            self.proc.wait(timeout=JOB_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        if check and self.proc.returncode != 0:
            raise AssertionError(
                f"training job for {self.out} exited {self.proc.returncode}:\n{self.stderr[-4000:]}"
            )
        return self


class Trainer:
    def __init__(self, data: Path, root: Path):
        self.data, self.root = data, root
        self._references: dict[str, Path] = {}

    def command(self, spec, out: Path, data: Path | None = None) -> list[str]:
        """The `train` rule's command line (without --suggestion), on the session's digits file."""
        from lrstudy.spec import train_argv

        slow_only("a training job")
        return train_argv(spec, data or self.data, out)

    def start(self, spec, out: Path, data: Path | None = None, **popen) -> Job:
        return Job(spec, Path(out), self.command(spec, Path(out), data), **popen)

    def run(self, spec, out: Path, data: Path | None = None) -> Job:
        return self.start(spec, out, data).wait()

    def reference(self, spec) -> Path:
        """The run folder of one uninterrupted run of `spec`, trained in this process as the job
        trains each seed, its finished-seed copies cleared as the job's end clears them (shared by
        the worker's tests: treat as read-only)."""
        from lrstudy import finished, train
        from lrstudy.spec import spec_hash

        slow_only("a training job")
        key = spec_hash(spec)
        if key not in self._references:
            out = self.root / "references" / f"{spec.run}-seed{spec.seed}-{key}"
            train.train(spec, self.data, out)
            finished.clear(out)
            self._references[key] = out
        return self._references[key]


@pytest.fixture(scope="session")
def trainer(digits_data, tmp_path_factory):
    return Trainer(digits_data, tmp_path_factory.mktemp("train"))


# ------------------------------------------------------------------------------ the workflow
def copy_workflow(config: dict, folder: Path) -> Path:
    """A folder holding Snakefile, workflow/, envs/, report_template/, slurm/ and
    config/config.yaml = `config` (a raw config dict, as written in YAML)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("workflow", "envs", "report_template", "slurm"):
        shutil.copytree(ROOT / name, folder / name, ignore=ignore)
    shutil.copy(ROOT / "Snakefile", folder / "Snakefile")
    (folder / "config").mkdir()
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


@pytest.fixture
def workflow_copy(tmp_path):
    """make(config) -> copy_workflow(config) in the test's folder, for running Snakemake on it with
    `snakemake_cmd`."""

    def make(config: dict, folder: Path | None = None) -> Path:
        return copy_workflow(config, folder or tmp_path / "study")

    return make


def snakemake_cmd(*args: str) -> list[str]:
    slow_only("Snakemake")
    return [sys.executable, "-m", "snakemake", *args]


def run_study(folder: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    """`snakemake --cores 2 ARGS` in `folder`; fails the test with the log's end if it fails."""
    proc = subprocess.run(
        snakemake_cmd("--cores", "2", *args),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return proc


# Beyond tiny.yaml's runs: a second gamma and a second max_lr, so that sections 3 and 4b compare
# two values as the source's do.
STUDY_RUNS = {
    "exp2": {"scheduler": "ExponentialLR", "kwargs": {"gamma": 0.98}},
    "onecycle2": {"scheduler": "OneCycleLR", "kwargs": {"max_lr": 0.05}},
}


def study_raw_config() -> dict:
    """The shared study's config: tiny.yaml on two seeds, with STUDY_RUNS in their sections."""
    config = raw_config(seeds=[0, 1], runs=STUDY_RUNS)
    config["report"]["sections"]["exponential"] = ["exp", "exp2"]
    config["report"]["sections"]["onecycle_max_lr"] = ["onecycle", "onecycle2"]
    return config


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """The whole workflow on study_raw_config(), both stages, run once per session: its folder.
    Its tests are in tests/test_study.py, which one pytest-xdist worker runs (`--dist loadscope`);
    treat it as read-only (copy it to change anything)."""
    folder = copy_workflow(study_raw_config(), tmp_path_factory.mktemp("shared") / "study")
    run_study(folder)
    return folder
