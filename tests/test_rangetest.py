"""Tests of lrstudy.rangetest: the sweep, the smoothing, the four suggestion rules, bounds,
combine, CLI.

Expected values come from the curves' definitions (closed forms or a dense-grid evaluation of the
analytic function and its hand-written derivative), never from the code under test."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrstudy import rangetest as rt

# ---------------------------------------------------------------------------------------- curves
X = np.linspace(-5, 1, 301)  # log10 LR, 0.02 decades a step


def piecewise(x):
    """Flat 2.3 up to 1e-4, down 0.6 per decade to 0.5 at 1e-1, then up 3 per decade (diverges)."""
    return np.where(x < -4, 2.3, np.where(x < -1, 2.3 - 0.6 * (x + 4), 0.5 + 3.0 * (x + 1)))


def tanh_curve(x):
    return 2.3 - (1 + np.tanh((x + 3) / 0.5)) + 0.3 * np.exp(x / 0.3)


def tanh_slope(x):  # d tanh_curve / d x, by hand
    return -(1 / 0.5) / np.cosh((x + 3) / 0.5) ** 2 + np.exp(x / 0.3)


def clean(res):
    return {k: v for k, v in res.items() if k != "status"}


def close(value, expected, factor):
    return value is not None and 1 / factor <= value / expected <= factor


# ---------------------------------------------------------------------------------------- range_lr
def test_range_lr_exponential_endpoints_and_constant_ratio():
    n = 200
    lrs = np.array([rt.range_lr(i, n, 1e-5, 10) for i in range(n)])
    assert lrs[0] == 1e-5 and lrs[-1] == 10.0
    ratios = lrs[1:] / lrs[:-1]
    assert np.allclose(ratios, (10 / 1e-5) ** (1 / (n - 1)), rtol=1e-9)
    assert math.isclose(
        rt.range_lr(100, 201, 1e-5, 10), 10**-2, rel_tol=1e-9
    )  # half way: geometric mean


def test_range_lr_linear_and_edge_cases():
    n = 11
    lrs = np.array([rt.range_lr(i, n, 0.0, 1.0, mode="linear") for i in range(n)])
    assert lrs[0] == 0.0 and lrs[-1] == 1.0
    assert np.allclose(np.diff(lrs), 0.1)
    assert rt.range_lr(0, 1, 1e-3, 1.0) == 1e-3
    assert rt.range_lr(50, 10, 1e-3, 1.0) == 1.0  # past the end: clamped to end_lr
    with pytest.raises(ValueError):
        rt.range_lr(1, 10, 1e-3, 1.0, mode="cosine")


# ---------------------------------------------------------------------------------------- smoothing
def test_smoother_bias_correction():
    s = rt.Smoother(0.9)
    assert s.update(3.0) == pytest.approx(3.0)  # bias-corrected: first value is the first input
    # by hand: avg2 = 0.9*0.1*3 + 0.1*5 = 0.77; / (1 - 0.81)
    assert s.update(5.0) == pytest.approx(0.77 / 0.19)
    const = rt.smooth([2.0] * 50, beta=0.98)
    assert np.allclose(const, 2.0)


def test_smooth_nan_poisons_rest():
    out = rt.smooth([1.0, 2.0, float("nan"), 3.0, float("inf")], beta=0.5)
    assert np.isfinite(out[:2]).all() and np.isnan(out[2:]).all()
    assert np.isnan(rt.smooth([1.0, float("inf"), 1.0])[1:]).all()


# ---------------------------------------------------------------------------------------- rules
def test_piecewise_curve_known_answers():
    lr, loss = 10**X, piecewise(X)
    res = rt.suggest(lr, loss, smoothed=loss, skip_start=0, skip_end=0)
    assert res["status"]["reason"] is None and res["status"]["cut"] == "diverged"
    assert close(res["minimum"], 1e-2, 10**0.021)  # min at 1e-1, divided by 10
    assert close(res["valley"], 10**-2.5, 10**0.041)  # middle of the descent 1e-4..1e-1
    # slide: right point walks back to the kink at 1e-1, left point 1.2 decades before it
    assert -2.4 <= math.log10(res["slide"]) <= -2.15
    assert 10**-4 <= res["steep"] <= 10**-1  # constant slope: anywhere in the descent


def steeper_middle(x):
    """Flat 2.3 up to 1e-4; down 0.2 per decade to 1e-3, 1.5 per decade to 10**-2.5, 0.2 per
    decade to 1e-1; then up 3 per decade."""
    knots = [(-4, -0.2), (-3, -1.5), (-2.5, -0.2), (-1, 3.0)]
    y = np.full_like(x, 2.3)
    for (start, slope), (end, _) in zip(knots, knots[1:] + [(np.inf, None)]):
        y += slope * (np.clip(x, start, end) - start)
    return y


def test_steep_is_in_the_one_steepest_segment():
    """The slope is steepest (-1.5 per decade) only between 1e-3 and 10**-2.5; at a knot a central
    difference averages the two segments' slopes, so the pick lies strictly inside."""
    lr, loss = 10**X, steeper_middle(X)
    assert loss[np.searchsorted(X, -3.0)] == pytest.approx(2.1)  # the curve as written
    res = rt.suggest(lr, loss, smoothed=loss, skip_start=0, skip_end=0)
    assert -3.0 < math.log10(res["steep"]) < -2.5


def test_smooth_curve_known_minimum_and_steepest_point():
    lr, loss = 10**X, tanh_curve(X)
    res = rt.suggest(lr, loss, smoothed=loss, skip_start=0, skip_end=0)
    fine = np.linspace(-5, 1, 600001)
    x_min = fine[np.argmin(tanh_curve(fine))]
    d = tanh_slope(fine)
    x_steep = fine[np.argmin(np.where(fine < x_min, d, np.inf))]
    assert close(res["minimum"], 10**x_min / 10, 10**0.021)
    assert close(res["steep"], 10**x_steep, 10**0.05)
    assert abs(x_steep - (-3)) < 0.05  # sanity of the expectation itself: the tanh centre
    # valley: the descent between 5 % and 95 % of the drop, from the curve itself
    y = tanh_curve(fine)
    top, bottom = y[0], y.min()
    lo = fine[np.argmax(y <= bottom + 0.05 * (top - bottom))]
    hi = fine[np.nonzero((y >= top - 0.05 * (top - bottom)) & (fine < lo))[0][-1]]
    assert close(res["valley"], 10 ** ((lo + hi) / 2), 10**0.04)
    assert (
        res["valley"] < res["minimum"] * 10
    )  # before the minimum (symmetric tanh: valley = steep)


def test_flat_curve_gives_no_suggestion():
    rng = np.random.default_rng(0)
    for loss in (np.full(301, 2.3), 2.3 + rng.normal(0, 0.005, 301), 2.3 + 0.1 * (X + 5)):
        res = rt.suggest(10**X, loss)
        assert all(res[r] is None for r in rt.RULES)
        assert "no descent" in res["status"]["reason"]
        assert rt.bounds(res)["max_lr"] is None and rt.bounds(res)["reason"]


def test_too_few_points():
    res = rt.suggest(10 ** X[:12], piecewise(X[:12]))
    assert all(res[r] is None for r in rt.RULES) and "too few" in res["status"]["reason"]
    res = rt.suggest([1e-3, 1e-3] * 10, np.linspace(2, 1, 20), skip_start=0, skip_end=0)
    assert "strictly increasing" in res["status"]["reason"]


def test_never_diverging_curve():
    x = np.linspace(-5, -1, 201)
    loss = 2.3 - (1 + np.tanh((x + 3) / 0.5))  # keeps falling to the end of the sweep
    res = rt.suggest(10**x, loss, smoothed=loss, skip_start=0, skip_end=5)
    assert res["status"]["cut"] is None and res["status"]["min_at_end"] is True
    assert res["status"]["points_kept"] == 201 and res["status"]["points_used"] == 196
    assert res["minimum"] == pytest.approx(10 ** x[195] / 10)  # last analysed LR / 10
    assert close(res["steep"], 1e-3, 10**0.03)


@pytest.mark.parametrize("tail", [np.nan, np.inf, 1e4])
def test_curve_ending_in_nan_inf_or_blowup_is_trimmed(tail):
    lr, loss = 10**X, piecewise(X)
    keep = X < -0.7
    broken = np.where(keep, loss, tail)
    ref = rt.suggest(lr[keep], loss[keep], beta=0.0, skip_start=0, skip_end=0)
    res = rt.suggest(lr, broken, beta=0.0, skip_start=0, skip_end=0)
    assert res["status"]["cut"] == ("diverged" if tail == 1e4 else "non-finite")
    assert res["status"]["points_kept"] == keep.sum()
    assert clean(res) == clean(ref)
    assert close(res["valley"], 10**-2.5, 10**0.041) and close(res["minimum"], 1e-2, 10**0.021)


def test_noisy_curve_is_stable():
    lr, loss = 10 ** X[:300], tanh_curve(X[:300])
    ref = rt.suggest(lr, loss)
    assert all(ref[r] is not None for r in rt.RULES)
    for seed in range(6):
        noisy = loss + np.random.default_rng(seed).normal(0, 0.05, loss.size)
        res = rt.suggest(lr, noisy)
        for rule in rt.RULES:
            assert close(res[rule], ref[rule], 1.5), (seed, rule, res[rule], ref[rule])


def test_slope_is_taken_against_log_lr():
    # a curve linear in log LR has one slope per decade everywhere; against raw LR the steepest
    # point would be the lowest LR. Here the descent is steepest (2/decade) in 1e-3..1e-2 only.
    x = X
    loss = np.where(
        x < -3, 2.3 - 0.2 * (x + 5), np.where(x < -2, 1.9 - 2.0 * (x + 3), -0.1 + 3 * (x + 2))
    )
    res = rt.suggest(10**x, loss, smoothed=loss, skip_start=0, skip_end=0)
    assert 10**-3 <= res["steep"] <= 10**-2


# ---------------------------------------------------------------------------------- bounds, combine
def test_bounds_relations():
    b = rt.bounds({"minimum": 0.05, "steep": 0.002, "valley": 0.01, "slide": 0.001})
    assert b["max_lr"] == 0.01 and b["lr"] == 0.01 and b["from"] == "valley"
    assert b["base_lr"] == pytest.approx(0.01 / 4) and b["onecycle_initial_lr"] == pytest.approx(
        0.01 / 25
    )
    assert b["base_lr"] < b["max_lr"] and "Smith 2017" in b["rule"]
    fb = rt.bounds(
        {"suggestions": {"minimum": 0.05, "steep": 0.002, "valley": None, "slide": None}}
    )
    assert fb["max_lr"] == 0.002 and fb["from"] == "steep"


def test_combine_geometric_mean():
    a = {
        "run": "rt",
        "seed": 0,
        "source": "train_loss",
        "suggestions": {"minimum": 1e-1, "steep": 1e-3, "valley": 1e-3, "slide": None},
    }
    b = {
        "run": "rt",
        "seed": 1,
        "source": "train_loss",
        "suggestions": {"minimum": 1e-3, "steep": 1e-3, "valley": 1e-1, "slide": 4e-4},
    }
    c = rt.combine([a, b])
    assert c["suggestions"]["valley"] == pytest.approx(1e-2) and c["suggestions"][
        "minimum"
    ] == pytest.approx(1e-2)
    assert c["suggestions"]["slide"] == pytest.approx(4e-4) and c["status"]["n_used"]["slide"] == 1
    assert c["spread"]["valley"] == [1e-3, 1e-1] and c["seeds"] == [0, 1] and c["run"] == "rt"
    assert c["bounds"]["max_lr"] == pytest.approx(1e-2)
    none = rt.combine([{"suggestions": {r: None for r in rt.RULES}}])
    assert none["suggestions"]["valley"] is None and none["status"]["reason"]


# ---------------------------------------------------------------------------------------- CLI
def _write_run(folder, valid_every=None, seed=0):
    import pandas as pd

    folder.mkdir(parents=True)
    n = len(X)
    train = (
        piecewise(X) if valid_every is None else np.full(n, 2.3)
    )  # valid mode: train loss is useless
    pd.DataFrame(
        {"step": range(n), "epoch": 0, "lr": 10**X, "train_loss": train, "smoothed_loss": train}
    ).to_csv(folder / "steps.csv", index=False)
    rows = [
        {"step": n - 1, "epoch": 0, "split": s, "loss": 0.5, "accuracy": 0.9}
        for s in ("valid", "test")
    ]
    if valid_every:
        rows += [
            {
                "step": i,
                "epoch": 0,
                "split": "range_valid",
                "loss": float(piecewise(X[i])),
                "accuracy": 0.5,
            }
            for i in range(0, n, valid_every)
        ]
    pd.DataFrame(rows).to_csv(folder / "evals.csv", index=False)
    rt_cfg = {
        "start_lr": 1e-5,
        "end_lr": 10,
        "mode": "exponential",
        "smooth_beta": 0.0,
        "stop_factor": 4,
        "valid_every": valid_every,
    }
    (folder / "run.json").write_text(
        json.dumps({"run": "range_test", "seed": seed, "status": "diverged", "range_test": rt_cfg})
    )


def _cli(*args, cwd):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(Path(rt.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    )
    subprocess.run([sys.executable, "-m", "lrstudy.rangetest", *args], cwd=cwd, env=env, check=True)


@pytest.mark.parametrize("valid_every", [None, 5])
def test_cli_suggest_and_combine(tmp_path, valid_every):
    outs = []
    for seed in (0, 1):
        run = tmp_path / "runs" / "range_test" / f"seed{seed}"
        _write_run(run, valid_every, seed)
        out = tmp_path / "out" / f"seed{seed}.json"
        _cli("suggest", str(run), "--out", str(out), cwd=tmp_path)
        res = json.loads(out.read_text())
        assert (
            res["source"] == ("valid_loss" if valid_every else "train_loss") and res["seed"] == seed
        )
        assert close(res["suggestions"]["valley"], 10**-2.5, 10**0.11)
        assert close(res["suggestions"]["minimum"], 1e-2, 10**0.11)
        assert res["bounds"]["max_lr"] == res["suggestions"]["valley"]
        outs.append(str(out))
    _cli("combine", *outs, "--out", str(tmp_path / "out" / "combined.json"), cwd=tmp_path)
    comb = json.loads((tmp_path / "out" / "combined.json").read_text())
    assert (
        close(comb["suggestions"]["valley"], 10**-2.5, 10**0.11) and comb["status"]["n_inputs"] == 2
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "combined.json",
        "seed0.json",
        "seed1.json",
    ]


def test_analyse_use_valid_override(tmp_path):
    run = tmp_path / "r"
    _write_run(run, valid_every=5)
    forced_train = rt.analyse(run, use_valid=False)  # the flat train loss: no suggestion
    assert forced_train["source"] == "train_loss" and forced_train["suggestions"]["valley"] is None
    assert "no descent" in forced_train["status"]["reason"]
    json.dumps(forced_train, allow_nan=False)
