"""`make gpu-check`: what this workflow does on a CUDA machine, measured, into one JSON.

    python workflow/scripts/gpu_check.py [--cores 4] [--out results/gpu-check/gpu_check.json]

1. the default study with `--resources gpu=1` (every training job on CUDA, one at a time);
2. where two GPUs exist, its training jobs again with `--resources gpu=2`: two jobs at once, each
   leasing its own GPU (no two overlapping jobs share an id);
3. determinism on CUDA: one run trained twice gives byte-identical steps.csv and evals.csv;
4. the same run in bf16 (its fp32 twin's numbers beside it);
5. the bench (workflow/benchmarks/bench.py) on CUDA.
Without CUDA it says so and exits 0. Exits 1 when a check fails (the JSON says which).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))  # this checkout's lrstudy (its run-file layout)
from lrstudy.layout import RECORD_GLOB, RUNS_FOLDER  # noqa: E402


def environment() -> dict:
    """Jobs call plain `python` (this one) and import the package from this tree."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO / "workflow"), env.get("PYTHONPATH")])
    )
    return env


def run(command: list[str], timeout: int = 3600) -> float:
    """Run `command` in the repository, raise on failure; its wall time in seconds."""
    started = time.time()
    proc = subprocess.run(
        command, cwd=REPO, env=environment(), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{output}")
    return round(time.time() - started, 1)


def run_records() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((REPO / RUNS_FOLDER).glob(RECORD_GLOB))]


def overlapping_jobs(records: list[dict]) -> dict:
    """Pairs of training jobs whose loops overlapped in time; whether any two shared a GPU id."""
    spans = [
        (
            r["run"],
            r["loop_started_at"],
            r["loop_started_at"] + r["loop_seconds"],
            set(r["gpu_ids"]),
        )
        for r in records
    ]
    pairs = [
        (a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if a[1] < b[2] and b[1] < a[2]
    ]
    return {
        "overlapping_pairs": len(pairs),
        "shared_gpu_pairs": [[a[0], b[0]] for a, b in pairs if a[3] & b[3]],
        "gpu_ids_used": sorted({i for s in spans for i in s[3]}),
    }


def study(cores: int, gpus: int) -> dict:
    """The default study, its training jobs run again (earlier results may come from the CPU)."""
    seconds = run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            str(cores),
            "--resources",
            f"gpu={gpus}",
            "--forcerun",
            "train",
        ]
    )
    records = run_records()
    return {
        "wall_seconds": seconds,
        "jobs": len(records),
        "devices": sorted({r["device"] for r in records}),
        "statuses": sorted({r["status"] for r in records}),
        **overlapping_jobs(records),
    }


def train_twice_and_bf16() -> dict:
    import yaml

    from lrstudy import config as study_config
    from lrstudy.spec import run_spec, train_argv

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    study_config.validate(config, executor=None)
    run_name = next(
        name for name, run in config["runs"].items() if "scheduler" in run
    )  # the first scheduled run
    spec = run_spec(config, run_name, config["seeds"][0]).replace(device="cuda", checkpoint_every=0)
    data = REPO / "results" / "data" / f"{config['dataset']['name']}.pt"
    out = REPO / "results" / "gpu-check"
    folders = {name: out / name for name in ("fp32_a", "fp32_b", "bf16")}
    for name, folder in folders.items():
        job_spec = spec.replace(precision="bf16" if name == "bf16" else "fp32")
        run(train_argv(job_spec, data, folder))
    identical = {
        f: (folders["fp32_a"] / f).read_bytes() == (folders["fp32_b"] / f).read_bytes()
        for f in ("steps.csv", "evals.csv")
    }
    summary = {name: summarize(folder) for name, folder in folders.items()}
    return {
        "determinism": {"run": run_name, "identical": identical, "ok": all(identical.values())},
        "runs": summary,
        "bf16_ok": summary["bf16"]["status"] == "completed"
        and summary["bf16"]["precision"]["name"] == "bf16",
    }


def summarize(folder: Path) -> dict:
    import pandas as pd

    record = json.loads((folder / "run.json").read_text())
    evals = pd.read_csv(folder / "evals.csv").query("split == 'valid'")
    return {
        "status": record["status"],
        "device": record["device"],
        "precision": record["precision"],
        "loop_seconds": record["loop_seconds"],
        "ms_per_step": round(1000 * record["loop_seconds"] / record["steps"], 3),
        "final_valid_loss": evals["loss"].iloc[-1],
        "final_valid_accuracy": evals["accuracy"].iloc[-1],
    }


def bench() -> dict:
    out = REPO / "results" / "gpu-check" / "bench.json"
    script = REPO / "workflow" / "benchmarks" / "bench.py"
    seconds = run(
        [sys.executable, str(script), "--device", "cuda", "--no-study", "--out", str(out)]
    )
    return {"wall_seconds": seconds, "result": json.loads(out.read_text())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument(
        "--out", type=Path, default=REPO / "results" / "gpu-check" / "gpu_check.json"
    )
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no GPU here (torch.cuda.is_available() is False); nothing to check.")
        return 0
    count = torch.cuda.device_count()
    report = {
        "gpus": [torch.cuda.get_device_name(i) for i in range(count)],
        "versions": {"torch": torch.__version__},
    }
    checks = {
        "study_gpu1": lambda: study(args.cores, 1),
        "study_gpu2": (lambda: study(args.cores, 2)) if count >= 2 else None,
        "cuda_runs": train_twice_and_bf16,
        "bench": bench,
    }
    failed = []
    for name, check in checks.items():
        if check is None:
            report[name] = {"skipped": f"needs 2 GPUs, this machine has {count}"}
            continue
        print(f"gpu-check: {name} ...", flush=True)
        try:
            report[name] = check()
        except Exception as error:  # record it and go on: the other checks still say something
            report[name] = {"error": str(error)[-4000:]}
            failed.append(name)
    if (
        count >= 2
        and "error" not in report["study_gpu2"]
        and report["study_gpu2"]["shared_gpu_pairs"]
    ):
        failed.append("study_gpu2 (overlapping jobs shared a GPU)")
    if "error" not in report["cuda_runs"] and not (
        report["cuda_runs"]["determinism"]["ok"] and report["cuda_runs"]["bf16_ok"]
    ):
        failed.append("cuda_runs (determinism or bf16)")
    report["failed"] = failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    outcome = "failed: " + ", ".join(failed) if failed else "all checks passed"
    print(f"gpu-check: wrote {args.out}; {outcome}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
