"""A killed training job resumes from its last checkpoint and ends with the bytes of an unbroken
run.

The kill is SIGKILL (an OOM kill, a preempted node): nothing of the job runs after it. A killed job
must leave no steps.csv/evals.csv/run.json (Snakemake would take the job as done), and its rerun
must write steps.csv and evals.csv byte for byte as a run that was never interrupted. The kills
and signals land while the job waits just after a checkpoint (tests/pause.py), so where they land
does not depend on the machine's load.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import (
    DIGITS,
    JOB_TIMEOUT,
    job_env,
    long_config,
    raw_config,
    snakemake_cmd,
    spec_of,
    validated,
)
from .pause import Pause

RUN = "onecycle"  # OneCycleLR cycles SGD's momentum too: scheduler and optimizer state both matter
STEPS_PER_EPOCH = 1293 // 32  # digits' 1293 training samples in full batches of 32
OUTPUTS = ("steps.csv", "evals.csv", "run.json")
CKPT_FILES = ("model.pt", "optimizer.pt", "scheduler.pt", "state.pt")


@pytest.fixture(scope="module")
def specs():
    config = long_config()
    seed0, seed1 = spec_of(config, RUN, 0), spec_of(config, RUN, 1)
    return seed0, seed1


def checkpoint_step(folder) -> int | None:
    """The step of the checkpoint LATEST names (None without one)."""
    try:
        name = (folder / "LATEST").read_text().strip()
    except FileNotFoundError:
        return None
    return int(name.removeprefix("ckpt-")) if name else None


def kill_at_checkpoint(
    proc: subprocess.Popen,
    pause: Pause,
    folder,
    at_least: int,
    group: bool = False,
    log: Path | None = None,
) -> int:
    """SIGKILL `proc` (its whole process group if `group`), started with `pause.env`, while its job
    waits at the first checkpoint in `folder` of step >= at_least; that checkpoint's step."""
    pause.hold(proc, lambda: (checkpoint_step(folder) or 0) >= at_least, log)
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait(timeout=30)
    if group:  # the job is gone too: no orphan finishes it behind the rerun's back
        deadline = time.monotonic() + 30
        while live_members(proc.pid):
            assert time.monotonic() < deadline, (
                f"still running after SIGKILL: {live_members(proc.pid)}"
            )
            time.sleep(0.05)
    return checkpoint_step(folder)


def live_members(group: int) -> list[int]:
    """Processes of a process group that are not zombies (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def assert_same_bytes(folder, reference):
    for name in ("steps.csv", "evals.csv"):
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), (
            f"{name} differs from the uninterrupted run"
        )


def assert_no_checkpoints(folder):
    assert not list(folder.glob("ckpt-*")) and not (folder / "LATEST").exists(), sorted(
        p.name for p in folder.iterdir()
    )


@pytest.mark.slow
def test_killed_job_resumes_with_the_bytes_of_an_unbroken_run(trainer, specs, tmp_path):
    spec = specs[0]
    out = tmp_path / "run"
    pause = Pause(tmp_path)
    job = trainer.start(spec, out, env=pause.env)
    try:  # after the second checkpoint: LATEST has moved once and the first folder was replaced
        step = kill_at_checkpoint(job.proc, pause, out, 2 * STEPS_PER_EPOCH, log=job.log)
    finally:
        job.proc.kill()
    assert step == 2 * STEPS_PER_EPOCH, step

    # nothing Snakemake would take as a finished job, and a complete checkpoint to resume from
    assert not [name for name in OUTPUTS if (out / name).exists()]
    latest = out / f"ckpt-{step:07d}"
    assert all((latest / name).is_file() for name in CKPT_FILES)
    # a kill during the next save leaves a half-written folder that LATEST does not name yet
    partial = out / f"ckpt-{step + STEPS_PER_EPOCH:07d}"
    partial.mkdir(exist_ok=True)
    (partial / "model.pt").write_bytes(b"truncated")

    resumed = trainer.run(spec, out)
    assert f"resuming from checkpoint {latest}" in resumed.stderr
    assert_same_bytes(out, trainer.reference(spec))
    meta = json.loads((out / "run.json").read_text())
    assert (
        meta["status"] == "completed"
        and meta["steps"] == meta["total_steps"] == spec.epochs * STEPS_PER_EPOCH
    )
    assert_no_checkpoints(
        out
    )  # deleted at completion (keep_checkpoints: false), the partial one too


@pytest.mark.slow
def test_kept_checkpoints_and_a_checkpoint_of_another_spec(trainer, specs, tmp_path):
    spec, other = specs
    keep = spec.replace(keep_checkpoints=True)
    kept = trainer.reference(keep)
    last = (spec.epochs - 1) * STEPS_PER_EPOCH  # the last epoch saves none: the run is done
    assert [p.name for p in kept.glob("ckpt-*")] == [f"ckpt-{last:07d}"] and checkpoint_step(
        kept
    ) == last
    assert all((kept / f"ckpt-{last:07d}" / name).is_file() for name in CKPT_FILES)
    assert_same_bytes(kept, trainer.reference(spec))  # keeping them changes nothing else

    # seed 1 in a folder holding seed 0's checkpoint: not its own, so it starts afresh
    folder = tmp_path / "other"
    shutil.copytree(kept / f"ckpt-{last:07d}", folder / f"ckpt-{last:07d}")
    shutil.copy2(kept / "LATEST", folder / "LATEST")
    job = trainer.run(other, folder)
    assert "ignoring checkpoint" in job.stderr and "resuming from" not in job.stderr
    assert_same_bytes(folder, trainer.reference(other))
    assert_no_checkpoints(folder)


@pytest.mark.slow
def test_a_checkpoint_trained_on_other_data_is_ignored(trainer, specs, tmp_path):
    """The spec names the dataset, not its split: a kept checkpoint must not survive a new split
    (Snakemake re-prepares the data and reruns `train` in the same folder)."""
    from lrstudy.data import prepare

    keep = specs[0].replace(keep_checkpoints=True)
    kept = trainer.reference(keep)  # the previous test's run
    last = checkpoint_step(kept)
    other_split = tmp_path / "digits-split1.pt"
    prepare({**DIGITS, "split_seed": 1}, other_split, tmp_path / "digits-split1.json")
    folder = tmp_path / "run"
    shutil.copytree(kept / f"ckpt-{last:07d}", folder / f"ckpt-{last:07d}")
    shutil.copy2(kept / "LATEST", folder / "LATEST")
    job = trainer.run(keep, folder, data=other_split)
    assert "ignoring checkpoint" in job.stderr and "resuming from" not in job.stderr
    assert len((folder / "steps.csv").read_text().splitlines()) == 1 + keep.epochs * STEPS_PER_EPOCH
    first_valid = [(f / "evals.csv").read_text().splitlines()[1] for f in (folder, kept)]
    assert (
        first_valid[0].startswith("0,0,valid,") and first_valid[0] != first_valid[1]
    )  # another valid split


@pytest.mark.slow
def test_sigterm_checkpoints_mid_epoch_and_the_rerun_resumes_there(trainer, specs, tmp_path):
    """SIGTERM (SLURM's warning before a kill: scancel, preemption, time limit) while the job
    trains: it checkpoints at the next step boundary, mid-epoch, says so and exits 128 + 15; the
    rerun resumes at that step and ends with the bytes of an unbroken run."""
    spec = specs[0]
    out, pause = tmp_path / "run", Pause(tmp_path)
    job = trainer.start(spec, out, env=pause.env)
    try:  # while it waits after the first epoch's checkpoint; released, it trains epoch 1
        pause.hold(job.proc, lambda: checkpoint_step(out) is not None, job.log)
        job.proc.send_signal(signal.SIGTERM)
        assert pause.wait(job.proc) == 128 + signal.SIGTERM, job.stderr[-3000:]
    finally:
        job.proc.kill()
    step = checkpoint_step(out)
    folder = out / f"ckpt-{step:07d}"
    assert step % STEPS_PER_EPOCH != 0, f"the signal was handled at an epoch's end ({step})"
    assert f"caught SIGTERM: checkpoint {folder} written at step {step}" in job.stderr
    assert not [name for name in OUTPUTS if (out / name).exists()]
    assert [p.name for p in out.glob("ckpt-*")] == [folder.name]  # the epoch's one replaced

    resumed = trainer.run(spec, out)
    epoch = step // STEPS_PER_EPOCH
    assert f"resuming from checkpoint {folder} (step {step}, epoch {epoch})" in resumed.stderr
    assert_same_bytes(out, trainer.reference(spec))
    assert_no_checkpoints(out)


def test_an_interrupted_clear_leaves_no_checkpoint_to_resume(tmp_path, monkeypatch):
    """clear() at completion may be killed half-way: LATEST must never name a half-deleted folder
    (its state.pt still there, model.pt gone), or every rerun would crash loading it."""
    from lrstudy import checkpoints as module
    from lrstudy.checkpoints import Checkpoints

    folder = tmp_path / "ckpt-0000040"
    folder.mkdir()
    for name in CKPT_FILES:
        (folder / name).write_bytes(b"x")
    (tmp_path / "LATEST").write_text(folder.name)
    checkpoints = Checkpoints(tmp_path, booster=None, rank=0)
    assert checkpoints.folder() == folder

    def killed(path, *args, **kwargs):  # the kill lands after rmtree removed the first file
        (Path(path) / "model.pt").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(module.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.clear()
    assert checkpoints.folder() is None


def study_with_data(study: Path, digits_data: Path) -> Path:
    """A workflow copy with the prepared data in place, so that only training jobs run."""
    (study / "results" / "data").mkdir(parents=True)
    for suffix in (".pt", ".json"):
        shutil.copy2(
            digits_data.with_suffix(suffix), study / "results" / "data" / f"digits{suffix}"
        )
    return study


def launcher(study: Path, logs: Path):
    """snakemake(*args, env=None, **popen) -> (a `snakemake --cores 1` process in `study`, `env`
    added to its environment, and its log)."""

    def snakemake(*args, env=None, **popen):
        log = logs / f"snakemake-{len(list(logs.glob('snakemake-*')))}.log"
        with open(log, "w") as handle:
            command = snakemake_cmd("--cores", "1", *args)
            proc = subprocess.Popen(
                command,
                cwd=study,
                env=job_env(env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                **popen,
            )
        return proc, log

    return snakemake


def unlock_and_rerun(study: Path, snakemake, target: str) -> Path:
    """After a SIGKILL: `snakemake --unlock`, as the user would, then `--rerun-incomplete`."""
    subprocess.run(
        snakemake_cmd("--unlock", target), cwd=study, env=job_env(), check=True, capture_output=True
    )
    rerun, rerun_log = snakemake("--rerun-incomplete", target)
    assert rerun.wait(timeout=JOB_TIMEOUT) == 0, rerun_log.read_text()[-4000:]
    return rerun_log


@pytest.mark.slow
def test_snakemake_reruns_a_killed_job_from_its_checkpoint(
    trainer, workflow_copy, digits_data, tmp_path
):
    """The `train` rule through Snakemake: the whole `snakemake` process group is SIGKILLed
    (Snakemake itself included, as when a login session or node dies) after the job's first
    checkpoint; then `snakemake --rerun-incomplete` finishes the job from that checkpoint."""
    raw = raw_config()  # the tiny study as written; its range test runs 400 steps
    run = "range_test"  # resumes the smoother and the best loss too, which decide where it stops
    spec = spec_of(validated(raw), run, 0)
    study = study_with_data(workflow_copy(raw), digits_data)
    folder = study / "results" / "runs" / run / "seed0"
    target = f"results/runs/{run}/seed0/run.json"
    snakemake, pause = launcher(study, tmp_path), Pause(tmp_path)

    first, first_log = snakemake(target, env=pause.env, start_new_session=True)
    try:
        step = kill_at_checkpoint(first, pause, folder, 1, group=True, log=first_log)
    finally:
        if first.poll() is None:  # the test failed while it ran
            os.killpg(first.pid, signal.SIGKILL)
    assert step >= STEPS_PER_EPOCH, first_log.read_text()[-3000:]
    assert not [name for name in OUTPUTS if (folder / name).exists()]

    unlock_and_rerun(study, snakemake, target)  # SIGKILL leaves Snakemake's lock behind
    job_log = (study / "results" / "logs" / "train" / f"{run}.log").read_text()  # a job per run
    assert f"resuming from checkpoint results/runs/{run}/seed0/ckpt-{step:07d}" in job_log, job_log[
        -2000:
    ]

    assert (
        json.loads((folder / "run.json").read_text())["spec"] == spec.to_dict()
    )  # the same job as the reference
    assert_same_bytes(folder, trainer.reference(spec))
    assert_no_checkpoints(folder)


@pytest.mark.slow
def test_a_job_killed_in_its_third_seed_keeps_the_two_it_finished(
    trainer, workflow_copy, digits_data, tmp_path
):
    """A run's job trains seeds 0, 1, 2 in turn; the `snakemake` process group is SIGKILLed once
    seed 2 has a checkpoint. The rerun (which deletes every output of the job first) restores
    seeds 0 and 1 from their copies instead of training them, resumes seed 2 from its checkpoint,
    and every seed ends with the bytes of an uninterrupted run; no copy or checkpoint is left."""
    raw = raw_config(seeds=[0, 1, 2], runs={})
    run = "step"
    specs = [spec_of(validated(raw), run, seed) for seed in (0, 1, 2)]
    study = study_with_data(workflow_copy(raw), digits_data)
    folders = [study / "results" / "runs" / run / f"seed{seed}" for seed in (0, 1, 2)]
    target = f"results/runs/{run}/seed2/run.json"
    snakemake, pause = launcher(study, tmp_path), Pause(tmp_path)
    first, first_log = snakemake(target, env=pause.env, start_new_session=True)
    try:
        kill_at_checkpoint(first, pause, folders[2], 1, group=True, log=first_log)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert (folders[1] / "run.json").is_file() and not (folders[2] / "run.json").exists()

    unlock_and_rerun(study, snakemake, target)
    job_log = (study / "results" / "logs" / "train" / f"{run}.log").read_text()
    for seed in (0, 1):
        assert f"restored results/runs/{run}/seed{seed} from" in job_log, job_log[-3000:]
        assert f"{run} seed {seed}:" not in job_log, f"seed {seed} was trained again"
    assert f"resuming from checkpoint results/runs/{run}/seed2/ckpt-" in job_log, job_log[-3000:]
    for spec, folder in zip(specs, folders):
        assert_same_bytes(folder, trainer.reference(spec))
        assert_no_checkpoints(folder)
        assert not (folder / ".finished").exists()
