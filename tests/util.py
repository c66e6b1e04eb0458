"""Helpers shared by the tests: the repo's paths and configs."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"  # reference files beside the repository (developers, CI)
SOURCE = SHARED / "reference" / "source-report.md"
# The tests that compare with the source report skip where it is absent, as in a user's clone;
# what else they check sits in tests of its own, which run there too.
needs_source = pytest.mark.skipif(
    not SOURCE.is_file(),
    reason=(
        f"source report not found at {SOURCE} "
        "(../shared/reference/source-report.md beside the repo root)"
    ),
)
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
VENV_BIN = Path(sys.executable).parent


# The running test's `slow` mark (tests/conftest.py sets it before the test's fixtures): the quick
# subset, `-m "not slow"`, is the tests that start neither Snakemake nor a training job.
RUNNING = {"slow": True}


def slow_only(what: str) -> None:
    """Fail a test without the `slow` mark that starts `what` (Snakemake, a training job): each
    costs seconds of imports, and pyproject.toml's marker says such a test is slow."""
    if not RUNNING["slow"]:
        pytest.fail(f"this test starts {what}: mark it @pytest.mark.slow", pytrace=False)


def validated(config: dict) -> dict:
    """A config as the workflow sees it: checked against the schema, defaults filled in, the
    range tests its families need added (lrstudy.families.add_range_tests); a copy."""
    from lrstudy import families

    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))
    families.add_range_tests(config)
    return config


def default_config() -> dict:
    """config/config.yaml, validated (a fresh copy per call)."""
    return validated(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))


def job_env(env=None) -> dict:
    """The environment of a job: this venv's python first on PATH (rules call plain `python`, as
    `make run` has it), this tree's package first on PYTHONPATH; then `env`."""
    environ = dict(os.environ)
    environ["PATH"] = f"{VENV_BIN}{os.pathsep}{environ.get('PATH', '')}"
    environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "workflow"), environ.get("PYTHONPATH")])
    )
    return {**environ, **(env or {})}


def snakemake(*args, cwd=ROOT, check=False, timeout=900, env=None):
    """Run the snakemake of this venv in the environment of a job (job_env)."""
    slow_only("Snakemake")
    proc = subprocess.run(
        [str(VENV_BIN / "snakemake"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=job_env(env),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(map(str, args))} failed:\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
