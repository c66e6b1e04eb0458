"""GPU leasing for local runs (lrstudy.gpus); no GPU needed."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

try:
    from lrstudy import gpus
except ImportError:  # package not installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
    from lrstudy import gpus

# Child processes import the very module under test.
PKG_ROOT = str(Path(gpus.__file__).resolve().parents[1])
IDS = ["0", "1"]


@pytest.fixture(autouse=True)
def watchdog():
    """Turn a hang (a lease that never times out) into a failure."""

    def hung(*_):
        raise TimeoutError("test hung for 20 s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def run_py(code, *args, **kw):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env, **kw
    )


def test_lease_takes_distinct_ids_and_releases(tmp_path):
    with gpus.lease(1, tmp_path, ids=IDS, timeout=0) as a:
        with gpus.lease(1, tmp_path, ids=IDS, timeout=0) as b:
            assert sorted(a + b) == IDS
            with pytest.raises(gpus.GpuLeaseTimeout):
                with gpus.lease(1, tmp_path, ids=IDS, timeout=0.1):
                    pass
        # b released: its id is free again, a's still held
        with gpus.lease(1, tmp_path, ids=IDS, timeout=0) as c:
            assert c == b
    with gpus.lease(2, tmp_path, ids=IDS, timeout=0) as both:
        assert sorted(both) == IDS
    # holder note for humans, cleared on release
    with gpus.lease(1, tmp_path, ids=["0"], timeout=0):
        note = (tmp_path / "gpu-0.lock").read_text()
        assert f"pid={os.getpid()}" in note
    assert (tmp_path / "gpu-0.lock").read_text() == ""


def test_released_on_exception(tmp_path):
    with pytest.raises(RuntimeError):
        with gpus.lease(2, tmp_path, ids=IDS, timeout=0):
            raise RuntimeError("boom")
    with gpus.lease(2, tmp_path, ids=IDS, timeout=0) as ids:
        assert sorted(ids) == IDS


def test_partial_set_not_kept_while_waiting(tmp_path):
    with gpus.lease(1, tmp_path, ids=["1"], timeout=0):
        with pytest.raises(gpus.GpuLeaseTimeout):
            with gpus.lease(2, tmp_path, ids=IDS, timeout=0.3, poll=0.05):
                pass
        # the failed 2-GPU attempt must not have kept "0"
        with gpus.lease(1, tmp_path, ids=["0"], timeout=0) as ids:
            assert ids == ["0"]


def test_count_zero_touches_nothing(tmp_path):
    lock_dir = tmp_path / "locks"
    with gpus.lease(0, lock_dir, ids=IDS) as ids:
        assert ids == []
    with gpus.assign(0, lock_dir, env={}) as ids:
        assert ids == []
    assert not lock_dir.exists()


def test_count_too_large(tmp_path):
    with pytest.raises(ValueError, match=r"3 .*2 visible"):
        with gpus.lease(3, tmp_path, ids=IDS):
            pass
    with pytest.raises(ValueError):
        with gpus.lease(-1, tmp_path, ids=IDS):
            pass
    with pytest.raises(ValueError, match=r"1 GPU.*has 0"):
        with gpus.assign(1, tmp_path, env={"SLURM_JOB_ID": "7"}):
            pass


def test_timeout_message_names_lock_dir_and_ids(tmp_path):
    with gpus.lease(1, tmp_path, ids=["0"], timeout=0):
        t0 = time.monotonic()
        with pytest.raises(gpus.GpuLeaseTimeout) as err:
            with gpus.lease(1, tmp_path, ids=["0"], timeout=0.3, poll=0.05):
                pass
        assert 0.25 <= time.monotonic() - t0 < 2
    msg = str(err.value)
    assert str(tmp_path) in msg and "['0']" in msg and f"pid={os.getpid()}" in msg


HOLDER = """
    import json, sys, time
    from lrstudy import gpus
    lock_dir, out, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with gpus.lease(1, lock_dir, ids=["0", "1"], timeout=30, poll=0.02) as ids:
        start = time.monotonic()
        time.sleep(hold)
        end = time.monotonic()
    with open(out, "w") as fh:
        json.dump({"id": ids[0], "start": start, "end": end}, fh)
"""


def test_concurrent_processes_never_share_an_id(tmp_path):
    lock_dir, n, hold = tmp_path / "locks", 6, 0.3
    procs = [run_py(HOLDER, lock_dir, tmp_path / f"out{i}.json", hold) for i in range(n)]
    for p in procs:
        assert p.wait(timeout=25) == 0
    recs = [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(n)]
    assert len(recs) == n
    assert {r["id"] for r in recs} == set(IDS)  # both GPUs were used
    for i, a in enumerate(recs):
        for b in recs[i + 1 :]:
            if a["id"] == b["id"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)


def test_sigkilled_holder_frees_its_id(tmp_path):
    code = """
        import sys, time
        from lrstudy import gpus
        with gpus.lease(1, sys.argv[1], ids=["0"], timeout=10):
            print("held", flush=True)
            time.sleep(60)
    """
    p = run_py(code, tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(gpus.GpuLeaseTimeout):
            with gpus.lease(1, tmp_path, ids=["0"], timeout=0.2, poll=0.05):
                pass
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=5)
        assert (tmp_path / "gpu-0.lock").read_text().strip()  # stale note left behind
        with gpus.lease(1, tmp_path, ids=["0"], timeout=1.0, poll=0.05) as ids:
            assert ids == ["0"]
    finally:
        p.kill()
        p.wait()


def test_exec_child_does_not_keep_the_lock(tmp_path):
    code = "import time; print('up', flush=True); time.sleep(5)"
    with gpus.lease(1, tmp_path, ids=["0"], timeout=0):
        child = subprocess.Popen(
            [sys.executable, "-c", code], close_fds=False, stdout=subprocess.PIPE, text=True
        )
        # wait until it runs: the kernel may finish closing O_CLOEXEC fds
        # a moment after Popen returns
        assert child.stdout.readline().strip() == "up"
    try:
        with gpus.lease(1, tmp_path, ids=["0"], timeout=0) as ids:
            assert ids == ["0"]
    finally:
        child.kill()
        child.wait()


def test_assign_under_slurm_takes_no_lock(tmp_path):
    lock_dir = tmp_path / "locks"
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "2,3"}
    with gpus.lease(2, lock_dir, ids=["2", "3"], timeout=0):  # even if held locally
        with gpus.assign(2, lock_dir, env=env, timeout=0) as ids:
            assert ids == ["2", "3"]
    with gpus.assign(1, tmp_path / "other", env=env) as ids:
        assert ids == ["2"]
    assert not (tmp_path / "other").exists()
    assert gpus.cuda_visible(["2", "3"]) == {"CUDA_VISIBLE_DEVICES": "2,3"}


def test_assign_locally_leases_from_visible_ids(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "3,5"}
    with gpus.assign(1, tmp_path, env=env, timeout=0) as a:
        with gpus.assign(1, tmp_path, env=env, timeout=0) as b:
            assert sorted(a + b) == ["3", "5"]
            assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-3.lock", "gpu-5.lock"]
            with pytest.raises(gpus.GpuLeaseTimeout):
                with gpus.assign(1, tmp_path, env=env, timeout=0):
                    pass


@pytest.mark.parametrize(
    "raw, ids",
    [
        ("", []),
        ("0,1", ["0", "1"]),
        ("GPU-uuid-a,GPU-uuid-b", ["GPU-uuid-a", "GPU-uuid-b"]),
        (" 1 , 0 ", ["1", "0"]),
        ("-1", []),
        ("0,-1,1", ["0"]),
    ],
)
def test_visible_gpu_ids_parses_env(raw, ids):
    assert gpus.visible_gpu_ids({"CUDA_VISIBLE_DEVICES": raw}) == ids


def test_visible_gpu_ids_falls_back_to_torch(monkeypatch):
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(device_count=lambda: 3))
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert gpus.visible_gpu_ids({}) == ["0", "1", "2"]
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    assert gpus.visible_gpu_ids({}) == []


def test_lock_file_names_are_safe(tmp_path):
    mig = "MIG-GPU-abc/1/0"
    with gpus.lease(1, tmp_path, ids=[mig], timeout=0) as ids:
        assert ids == [mig]
        assert [p.name for p in tmp_path.iterdir()] == ["gpu-MIG-GPU-abc_1_0.lock"]
