"""The three Snakemake internals the workflow reads (Snakefile and workflow/rules/common.smk) are
not public API: these tests fail when one of them disappears or changes meaning.

- `workflow.overwrite_configfiles`: the `--configfile` files, empty without one (the Snakefile
  embeds config/config.yaml only then);
- `workflow.deployment_settings.deployment_method`: holds conda under `--sdm conda` (the rules
  then run in the conda env's python, not this venv's);
- `workflow.executor_plugin.name`: the executor's name once the DAG is built ("local" for a plain
  run; common.smk's executor() looks for "slurm" in it).
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json

PARSED = {
    "configfiles": [str(f) for f in (workflow.overwrite_configfiles or [])],
    "deployment": [str(m) for m in workflow.deployment_settings.deployment_method],
}


def executor(wildcards):
    with open("executor.json", "w") as handle:
        json.dump({"name": workflow.executor_plugin.name, **PARSED}, handle)
    return 1


rule probe:
    output:
        "probe.txt",
    resources:
        probe=executor,
    shell:
        "touch {output}"
"""


def probe(tmp_path, *args) -> dict:
    (tmp_path / "Snakefile").write_text(PROBE)
    (tmp_path / "extra.yaml").write_text("key: 1\n")
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--nolock", *args]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp_path / "executor.json").read_text())


def test_plain_run_local_executor_no_configfile_no_conda(tmp_path):
    seen = probe(tmp_path)
    assert seen["name"] == "local"
    assert seen["configfiles"] == []
    assert not any("conda" in m.lower() for m in seen["deployment"])


def test_configfile_and_conda_are_seen(tmp_path):
    seen = probe(tmp_path, "--configfile", "extra.yaml", "--sdm", "conda", "--dry-run")
    assert [f.rsplit("/", 1)[-1] for f in seen["configfiles"]] == ["extra.yaml"]
    assert any("conda" in m.lower() for m in seen["deployment"])
    assert "slurm" not in seen["name"]
