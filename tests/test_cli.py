"""The `lrstudy` command that pyproject.toml declares: its subcommands are the stage modules'
mains."""

import json
import subprocess
import sys

import pytest
import tomllib

from lrstudy import __main__

from .conftest import DIGITS
from .util import ROOT, job_env


def lrstudy(*args, timeout=300):
    """`python -m lrstudy ARGS` (what the `lrstudy` script runs) in the environment of a job."""
    return subprocess.run(
        [sys.executable, "-m", "lrstudy", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=job_env(),
    )


def test_the_declared_script_points_at_a_main_that_shows_help():
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["lrstudy"]
    module, function = target.split(":")
    code = (
        f"import sys; from {module} import {function} as main; rc = main(['--help']); "
        "print('imported torch' if 'torch' in sys.modules else 'no torch'); raise SystemExit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=job_env()
    )
    assert proc.returncode == 0, proc.stderr
    for command in __main__.COMMANDS:
        assert f"\n  {command} " in proc.stdout, command
    assert proc.stdout.rstrip().endswith("no torch"), "--help imported the stages"


def test_unknown_command_exits_2_naming_it():
    proc = lrstudy("sugest", "x")
    assert (
        proc.returncode == 2
        and "unknown command 'sugest'" in proc.stderr
        and "suggest" in proc.stderr
    )


@pytest.mark.parametrize("command", list(__main__.COMMANDS))
def test_every_subcommand_shows_its_help(command, capsys):
    """`lrstudy <command> --help` exits 0 with the stage module's own usage: the script's `main`
    called in this process (a process each cost ~2 s, the tests below start the real one)."""
    with pytest.raises(SystemExit) as stopped:
        __main__.main([command, "--help"])
    out = capsys.readouterr().out
    assert stopped.value.code in (0, None) and out.startswith("usage: "), out


def test_subcommand_help_is_the_module_s():
    proc = lrstudy("suggest", "--help")
    assert proc.returncode == 0 and "run_dir" in proc.stdout and "--valid" in proc.stdout, (
        proc.stdout + proc.stderr
    )


def test_data_command_prepares_what_the_module_prepares(digits_data, tmp_path):
    """`lrstudy data` gives the manifest `python -m lrstudy.data` gave the session (same splits,
    same hash)."""
    out, manifest = tmp_path / "digits.pt", tmp_path / "digits.json"
    proc = lrstudy("data", "--dataset", json.dumps(DIGITS), "--out", out, "--manifest", manifest)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours, reference = (
        json.loads(manifest.read_text()),
        json.loads(digits_data.with_suffix(".json").read_text()),
    )
    assert ours == reference
