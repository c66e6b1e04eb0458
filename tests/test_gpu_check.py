"""`make gpu-check` (workflow/scripts/gpu_check.py): without CUDA it says so and succeeds; the
overlap analysis of its two-GPU study finds jobs that shared a GPU."""

import importlib.util
import subprocess
import sys

from .util import ROOT, job_env

SCRIPT = ROOT / "workflow" / "scripts" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=job_env({"CUDA_VISIBLE_DEVICES": ""}),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no GPU here" in proc.stdout and not out.exists()


def test_overlapping_jobs_on_one_gpu_are_found():
    def job(run, start, seconds, ids):
        return {"run": run, "loop_started_at": start, "loop_seconds": seconds, "gpu_ids": ids}

    two_gpus = [
        job("a", 0, 10, ["0"]),
        job("b", 5, 10, ["1"]),
        job("c", 12, 5, ["0"]),
    ]  # a-b and b-c overlap
    assert load_script().overlapping_jobs(two_gpus) == {
        "overlapping_pairs": 2,
        "shared_gpu_pairs": [],
        "gpu_ids_used": ["0", "1"],
    }
    clash = [job("a", 0, 10, ["0"]), job("b", 5, 10, ["0"])]
    assert load_script().overlapping_jobs(clash)["shared_gpu_pairs"] == [["a", "b"]]
