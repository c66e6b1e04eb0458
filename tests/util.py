"""Helpers shared by the tests: the repo's paths and configs."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
VENV_BIN = Path(sys.executable).parent


def load_config(path=ROOT / "config" / "config.yaml") -> dict:
    """A config as the workflow sees it: parsed, validated, defaults filled in from the schema."""
    config = yaml.safe_load(Path(path).read_text())
    validate(config, str(SCHEMA))
    return config


def default_config() -> dict:
    return copy.deepcopy(load_config())


def snakemake(*args, cwd=ROOT, check=False, timeout=900, env=None):
    """Run the snakemake of this venv, with the venv's python first on PATH, as `make run` does."""
    environ = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    proc = subprocess.run(
        [str(VENV_BIN / "snakemake"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environ
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(map(str, args))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path

