"""A user's clone has no ../shared beside it (only developers and CI lay it out there): the suite
collects in such a folder without an error, and the tests that compare with ../shared's files skip
those comparisons only, saying why (tests/util.py `needs_source`, tests/test_data.py
`needs_mnist`)."""

import os
import re
import shutil
import subprocess
import sys

from .util import ROOT

# what a clone lacks (.gitignore), or holds only once it has been used
LEFT_OUT = (".git", ".venv", ".snakemake", "results", "resources", ".gl", ".whl", "__pycache__")
LEFT_OUT += ("*.egg-info", ".pytest_cache", "report.html", "report.zip")


def test_the_suite_collects_in_a_clone_without_a_shared_folder(tmp_path):
    clone = tmp_path / "lrstudy"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(*LEFT_OUT))
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(clone / "workflow")  # the clone's package, as `make test` has it
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    said = "\n".join(line for line in out.splitlines() if "::" not in line)  # not the test ids
    collected = re.search(r"^(\d+) tests collected in ", out, re.MULTILINE)  # ", N errors" none
    assert proc.returncode == 0 and collected, said[-6000:]
    assert int(collected.group(1)) > 300, said[-6000:]
