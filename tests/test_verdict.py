"""The verdict's statistics on synthetic numbers with known answers (no training).

Expected values are worked by hand here (Holm's step-down, a TOST boundary, a combined-variance
interval) or follow from the construction (identical families, a family better on every seed).
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lrstudy import verdict

from .synthetic import selection, summary, write_run

FAMILIES = ["a", "b", "c", "d", "e"]
SETTINGS = {
    "metric": "final_valid_loss",
    "margin": 0.1,
    "alpha": 0.05,
    "bootstraps": 200,
    "bootstrap_seed": 0,
}
SEEDS = list(range(100, 110))


def table(values: dict, tuning_means: dict | None = None, **settings) -> pd.DataFrame:
    """verdict_table of {family: [final valid loss per confirmation seed]}; the tuning means
    (default: the order given) decide the reference."""
    tuning_means = tuning_means or {f: i for i, f in enumerate(values)}
    frame = summary({f"confirm-{f}": dict(zip(SEEDS, v)) for f, v in values.items()})
    selections = {f: selection(f, tuning_means[f]) for f in values}
    runs = {f: f"confirm-{f}" for f in values}
    return verdict.verdict_table(frame, selections, runs, {**SETTINGS, **settings}, 1000)


def words(frame: pd.DataFrame) -> dict:
    return dict(zip(frame["family"], frame["verdict"]))


def test_identical_families_are_never_better_or_worse():
    base = np.linspace(0.08, 0.12, len(SEEDS))
    frame = table({f: base.copy() for f in FAMILIES})
    assert words(frame)["a"] == "reference"
    assert {words(frame)[f] for f in FAMILIES[1:]} <= {"equivalent", "undecided"}
    # the same numbers on every seed: zero difference, inside any margin
    assert set(frame.loc[frame["family"] != "a", "diff"]) == {0.0}


def test_equal_families_in_noise_rarely_differ(monkeypatch):
    """1,000 simulated studies of five equal families (a shared seed effect plus each family's own
    noise; the reference is whichever family separate tuning noise picks): the share of studies
    with any better/worse stays within 5 % plus sampling error (Holm controls the family-wise
    rate). verdict_table compares through compare_with_reference, called here directly."""
    import gc

    # statsmodels' Holm runs gc.collect() on each call: 0.15 s in a process this size, x 2,000
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    rng = np.random.default_rng(12345)
    flagged = 0
    for _ in range(1000):
        seed_effect = rng.normal(0.1, 0.01, len(SEEDS))
        values = pd.DataFrame({f: seed_effect + rng.normal(0, 0.01, len(SEEDS)) for f in FAMILIES})
        reference = FAMILIES[int(np.argmin(rng.normal(0.1, 0.01, len(FAMILIES))))]
        found = {
            r["verdict"]
            for r in verdict.compare_with_reference(values, reference, SETTINGS).values()
        }
        flagged += bool(found & {"better", "worse"})
    assert flagged / 1000 <= 0.065, flagged


def test_a_clearly_better_and_a_clearly_worse_family():
    base = np.linspace(0.08, 0.12, len(SEEDS))
    wobble = np.tile([0.002, -0.002], len(SEEDS) // 2)
    frame = table({"ref": base, "good": base - 0.05 + wobble, "bad": base + 0.05 + wobble})
    assert words(frame) == {"ref": "reference", "good": "better", "bad": "worse"}
    good = frame.set_index("family").loc["good"]
    assert good["diff"] == pytest.approx(-0.05) and good["dz"] < -10
    assert good["p_rank1"] == 1.0  # lowest mean on every resample of the seeds


@pytest.mark.parametrize("share, expected", [(0.8, "equivalent"), (1.2, "worse")])
def test_tost_inside_and_outside_the_margin(share, expected):
    """diff = share x margin with a small spread: inside the margin TOST passes, outside it does
    not and the t-test (very significant) calls it worse."""
    base = np.full(len(SEEDS), 0.1)
    margin = SETTINGS["margin"] * 0.1
    spread = np.tile([0.0005, -0.0005], len(SEEDS) // 2)
    frame = table({"ref": base, "other": base + share * margin + spread})
    other = frame.set_index("family").loc["other"]
    assert other["margin"] == pytest.approx(margin)
    assert other["verdict"] == expected
    assert (other["p_equivalence"] < 0.05) == (share < 1)


def test_tost_is_the_larger_one_sided_p():
    """p_equivalence by hand: the two one-sided paired t-tests against -margin and +margin."""
    rng = np.random.default_rng(3)
    ref = rng.normal(0.1, 0.01, len(SEEDS))
    other = ref + rng.normal(0.004, 0.006, len(SEEDS))
    frame = table({"ref": ref, "other": other})
    d, margin = other - ref, SETTINGS["margin"] * ref.mean()
    se = d.std(ddof=1) / math.sqrt(len(d))
    lower = stats.t.sf((d.mean() + margin) / se, len(d) - 1)  # H0: diff <= -margin
    upper = stats.t.cdf((d.mean() - margin) / se, len(d) - 1)  # H0: diff >= +margin
    row = frame.set_index("family").loc["other"]
    assert row["p_equivalence"] == pytest.approx(max(lower, upper), rel=1e-9)
    assert row["diff_ci_low"] == pytest.approx(
        d.mean() - stats.t.ppf(0.975, len(d) - 1) * se, rel=1e-9
    )


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert verdict.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = verdict.holm([0.2, math.nan, 0.01])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.02)


def test_the_verdict_adjusts_over_the_comparisons_with_the_reference():
    rng = np.random.default_rng(7)
    base = rng.normal(0.1, 0.01, len(SEEDS))
    values = {
        "ref": base,
        **{f: base + rng.normal(0.003 * i, 0.005, 10) for i, f in enumerate(["x", "y", "z"])},
    }
    frame = table(values).set_index("family")
    raw = frame.loc[["x", "y", "z"], "p"].to_numpy()
    order = np.argsort(raw)
    by_hand = np.empty(3)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, raw[index] * (3 - position)))
        by_hand[index] = running
    assert frame.loc[["x", "y", "z"], "p_holm"].to_numpy() == pytest.approx(by_hand)
    assert math.isnan(frame.loc["ref", "p_holm"])


def test_the_reference_is_the_tuning_pick_and_a_failed_replication_is_said():
    base = np.linspace(0.08, 0.12, len(SEEDS))
    # tuning chose "first"; on the confirmation seeds "second" is lower on every seed
    frame = table({"first": base, "second": base - 0.01}, {"first": 0.05, "second": 0.06})
    first = frame.set_index("family").loc["first"]
    assert first["rank"] == 1 and first["verdict"] == "reference"
    assert "did not replicate" in first["note"] and "second" in first["note"]


def test_rank1_chances_split_ties_and_sum_to_one():
    by_seed = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "c": [5.0, 5.0, 5.0]})
    chances = verdict.rank1_chances(by_seed, 300, 0)
    assert chances == {"a": 0.5, "b": 0.5, "c": 0.0}


def test_accuracy_interval_adds_the_test_images_sampling():
    """[0.90, 0.92] on N = 1000 images: seed variance of the mean 0.0002/2, image variance
    0.91 x 0.09 / 1000; Welch-Satterthwaite df = total^2 / ((0.0001)^2 / 1)."""
    mean, low, high = verdict.accuracy_interval([0.90, 0.92], 1000)
    total = 0.0001 + 0.91 * 0.09 / 1000
    half = stats.t.ppf(0.975, total**2 / 0.0001**2) * math.sqrt(total)
    assert mean == pytest.approx(0.91)
    assert (low, high) == pytest.approx((0.91 - half, 0.91 + half))
    # with no spread over seeds, the images' binomial error alone (a normal interval)
    _, low, high = verdict.accuracy_interval([0.9, 0.9, 0.9], 400)
    assert high - 0.9 == pytest.approx(1.959964 * math.sqrt(0.9 * 0.1 / 400), rel=1e-5)


def test_select_takes_the_lowest_eligible_mean():
    frame = summary(
        {
            "tune-f-x0.5": {0: 0.30, 1: 0.32},
            "tune-f-x1": {0: 0.20, 1: 0.22},
            "tune-f-x2": {0: 0.10, 1: 0.12},  # lowest, but one seed diverged: not eligible
        }
    )
    frame.loc[(frame["run"] == "tune-f-x2") & (frame["seed"] == 1), "status"] = "diverged"
    runs = {0.5: "tune-f-x0.5", 1.0: "tune-f-x1", 2.0: "tune-f-x2"}
    chosen = verdict.select(
        verdict.tuning_rows(frame, "f", runs, "final_valid_loss"), "final_valid_loss"
    )
    assert chosen["multiplier"] == 1.0 and chosen["eligible"] and not chosen["at_grid_edge"]
    assert [r["selected"] for r in chosen["rows"]] == [False, True, False]
    assert chosen["rows"][2]["eligible"] is False


# ------------------------------------------------------------------ the stages, on run folders
TUNE_SEEDS, CONFIRM = [0, 1, 2], [10, 13, 11, 12]
GRID = [0.5, 1.0, 2.0]
# final valid loss: family -> multiplier -> per tuning seed; the confirmation values per seed
TUNED = {
    "slow": {0.5: [0.40, 0.42, 0.41], 1.0: [0.30, 0.29, 0.33], 2.0: [0.35, 0.31, 0.36]},
    "fast": {0.5: [0.20, 0.22, 0.21], 1.0: [0.25, 0.24, 0.26], 2.0: [0.5, 0.6, 0.7]},
}
CONFIRMED = {"slow": [0.31, 0.30, 0.34, 0.32], "fast": [0.21, 0.23, 0.20, 0.22]}
# each family's confirmation seeds written in another order: pairs must be made by seed
WRITE_ORDER = {"slow": CONFIRM, "fast": CONFIRM[::-1]}


def stage_folders(root, test_accuracy=0.8):
    """Run folders of both families' tuning and confirmation runs (tests/synthetic.py)."""
    files = {"tune": {}, "confirm": []}
    for family, grid in TUNED.items():
        for multiplier, values in grid.items():
            run = f"tune-{family}-x{multiplier:g}"
            tuning = {"family": family, "multiplier": multiplier, "scale": ["lr"]}
            files["tune"].setdefault(family, []).extend(
                write_run(root, run, seed, value, (0.5, test_accuracy), tuning=tuning)
                for seed, value in zip(TUNE_SEEDS, values)
            )
        tuning = {"family": family, "multiplier": "selected", "scale": ["lr"]}
        values = dict(zip(CONFIRM, CONFIRMED[family]))
        files["confirm"] += [
            write_run(root, f"confirm-{family}", s, values[s], (0.5, test_accuracy), tuning=tuning)
            for s in WRITE_ORDER[family]
        ]
    return files


def run_stages(root, test_accuracy=0.8) -> dict:
    """select (per family) then aggregate, through their command lines; the tables read back."""
    from lrstudy import aggregate

    files = stage_folders(root / "runs", test_accuracy)
    selections = []
    for family, paths in files["tune"].items():
        selections.append(root / "tuning" / f"{family}.json")
        verdict.main(
            ["select", *map(str, paths), "--family", family]
            + ["--metric", "final_valid_loss", "--out", str(selections[-1])]
        )
    (root / "manifest.json").write_text(json.dumps({"sizes": {"test": 1000}}))
    all_runs = [p for paths in files["tune"].values() for p in paths] + files["confirm"]
    aggregate.main(
        [*map(str, all_runs), "--selections", *map(str, selections)]
        + ["--data-manifest", str(root / "manifest.json"), "--verdict-json", json.dumps(SETTINGS)]
        + ["--out", str(root / "tables"), "--target", "0.3", "--best-count", "1"]
    )
    return {n: pd.read_csv(root / "tables" / f"{n}.csv") for n in ("tuning", "verdict", "best")}


def test_stages_choose_on_validation_and_compare_on_the_confirmation_seeds(tmp_path):
    tables = run_stages(tmp_path)
    tuning = tables["tuning"]
    assert len(tuning) == len(GRID) * len(TUNED)  # the same grid for every family
    for family, grid in TUNED.items():
        rows = tuning[tuning["family"] == family].set_index("multiplier")
        means = {m: float(np.mean(v)) for m, v in grid.items()}
        assert rows["mean_final_valid_loss"].to_dict() == pytest.approx(means)
        assert rows.index[rows["selected"]].tolist() == [min(means, key=means.get)]
        assert set(rows["seeds"]) == {"0 1 2"}
    table = tables["verdict"].set_index("family")
    # "fast" chose x0.5 (tuning mean 0.21 < slow's 0.3067 at x1): it is #1, the reference
    assert table.loc["fast", "rank"] == 1 and table.loc["fast", "verdict"] == "reference"
    assert table.loc["fast", "multiplier"] == 0.5 and table.loc["slow", "multiplier"] == 1.0
    # paired by seed (each family's written in another order): slow - fast on seeds 10 ... 13
    by_seed = {f: dict(zip(CONFIRM, CONFIRMED[f])) for f in CONFIRMED}
    diffs = np.array([by_seed["slow"][s] - by_seed["fast"][s] for s in sorted(CONFIRM)])
    assert table.loc["slow", "diff"] == pytest.approx(diffs.mean())
    assert table.loc["slow", "dz"] == pytest.approx(diffs.mean() / diffs.std(ddof=1))
    half = stats.t.ppf(0.975, 3) * diffs.std(ddof=1) / 2
    assert (table.loc["slow", "diff_ci_low"], table.loc["slow", "diff_ci_high"]) == pytest.approx(
        (diffs.mean() - half, diffs.mean() + half)
    )
    assert table.loc["slow", "seeds"] == "10 11 12 13" and table.loc["slow", "n_seeds"] == 4
    assert table.loc["slow", "verdict"] == "worse" and table.loc["slow", "p_holm"] < 0.05
    assert tables["best"]["family"].tolist() == ["fast"]


def test_the_test_split_changes_no_choice_and_no_word(tmp_path):
    first = run_stages(tmp_path / "a", test_accuracy=0.8)
    second = run_stages(tmp_path / "b", test_accuracy=0.3)
    pd.testing.assert_frame_equal(first["tuning"], second["tuning"])
    test_columns = [c for c in first["verdict"] if c.startswith("test_")]
    assert (first["verdict"]["test_accuracy_mean"] != second["verdict"]["test_accuracy_mean"]).all()
    pd.testing.assert_frame_equal(
        first["verdict"].drop(columns=test_columns), second["verdict"].drop(columns=test_columns)
    )
