"""Two runs of one spec give byte-identical steps.csv and evals.csv on the CPU; another seed
differs.

The thread count is part of the spec (`threads`, default 1) and train.py fixes it with
torch.set_num_threads: CPU kernels split their reductions by thread, so a run with another thread
count sums in another order and is not bitwise identical (close, not equal). Reproducibility is
promised for the same spec, thread count included, never across thread counts.
"""

import json

import pytest

from .conftest import long_config, spec_of

RUN = "onecycle"  # OneCycleLR also cycles SGD's momentum: the most state of the tiny study's runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def specs():
    config = long_config()
    seed0, seed1 = spec_of(config, RUN, 0), spec_of(config, RUN, 1)
    return seed0, seed1


def test_same_spec_same_bytes(trainer, specs, tmp_path):
    spec = specs[0]
    again = trainer.start(spec, tmp_path / "again")  # runs beside the reference
    first = trainer.reference(spec)
    second = again.wait().out
    for name in ("steps.csv", "evals.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), (
            f"{name} differs between two runs of one spec"
        )
    meta = json.loads((second / "run.json").read_text())
    assert meta["status"] == "completed" and meta["steps"] == meta["total_steps"] == 8 * 40
    assert meta["threads"] == spec.threads == 1
    assert meta["spec"] == spec.to_dict()


def test_other_seed_differs(trainer, specs):
    first, other = (trainer.reference(spec) for spec in specs)
    for name in ("steps.csv", "evals.csv"):
        a, b = ((folder / name).read_text().splitlines() for folder in (first, other))
        assert a[0] == b[0] and len(a) == len(b), f"{name}: same header and length"
        assert a[1:] != b[1:], f"{name}: seed 1 repeats seed 0"
    # the seed reaches the initial weights (the valid loss before the first step), not only the
    # batch order
    step0 = [(folder / "evals.csv").read_text().splitlines()[1] for folder in (first, other)]
    assert step0[0].startswith("0,0,valid,") and step0[0] != step0[1]
