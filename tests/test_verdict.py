"""The verdict on synthetic run folders and summaries with known answers (no training).

Each case is built so that its answer follows from the construction or is worked by hand here:
a family better on every seed, failed seeds, a raw p below alpha that the multiplicity does not
let through, an equivalence interval that is inside the margin only at the unadjusted level. The
statistics engine itself (signed-rank p, Hodges-Lehmann intervals, spending, sequential Holm,
MCB) is tests/test_decision.py's, and its error rates tests/test_decision_simulation.py's.
"""

import json

import numpy as np
import pandas as pd
import pytest

from lrstudy import aggregate, families, tuning, verdict

from .synthetic import CHANCE, selection, summary, verdict_settings, write_run

SEEDS = list(range(100, 110))
# a seed effect every family shares (the same seed: the same init and batches) and small noise
BASE = 0.10 + 0.01 * np.sin(np.arange(len(SEEDS)))
NOISE = np.random.default_rng(7).normal(0, 0.001, size=(5, len(SEEDS)))


def table(values: dict, tuning_means=None, failed=None, selections=None, **settings):
    """verdict_table of {family: [final test loss per confirmation seed]} (one look); the tuning
    means (default: the order given) decide the reference; `failed`: {family: [seed index]}."""
    tuning_means = tuning_means or {f: 0.1 + 0.01 * i for i, f in enumerate(values)}
    status = {
        (f"confirm-{f}", SEEDS[i]): "diverged" for f, idx in (failed or {}).items() for i in idx
    }
    frame = summary({f"confirm-{f}": dict(zip(SEEDS, v)) for f, v in values.items()}, 0.9, status)
    selections = selections or {f: selection(f, tuning_means[f]) for f in values}
    runs = {f: f"confirm-{f}" for f in values}
    settings = verdict_settings(SEEDS, **settings)
    return verdict.verdict_table(frame, selections, runs, settings, 1000, {}).set_index("family")


def words(frame: pd.DataFrame) -> dict:
    return frame["verdict"].to_dict()


def test_a_clearly_better_and_a_clearly_worse_family():
    frame = table({"ref": BASE, "good": BASE - 0.02 + NOISE[0], "bad": BASE + 0.02 + NOISE[1]})
    assert words(frame) == {"ref": "reference", "good": "better", "bad": "worse"}
    # with 10 pairs all of one sign the exact two-sided signed-rank p is 2 / 2^10
    assert frame.loc["good", "p"] == pytest.approx(2 / 2**10)
    assert frame.loc["bad", "diff"] == pytest.approx(np.mean(0.02 + NOISE[1]))


def test_the_word_comes_from_the_adjusted_level_not_the_raw_p():
    """Four comparisons with the reference, one look: the first Holm step tests at alpha / 4 =
    0.0125. A family below the reference on 7 of 10 seeds, whose positive differences are the
    three smallest (T+ = 1 + 2 + 3 = 6), has a raw p of 0.027: under 0.05, over 0.0125."""
    d = np.array([-10, -9, -8, -7, -6, -5, -4, 1, 2, 3], dtype=float) * 1e-3  # ranks = |d| order
    # T+ = 1 + 2 + 3 = 6: P(T+ <= 6) = 14 / 1024 for n = 10, two-sided p = 28 / 1024 = 0.0273
    values = {"ref": BASE, "x": BASE + d}
    values |= {f: BASE + 0.05 + NOISE[i] for i, f in enumerate(("y", "z", "w"))}
    frame = table(values)
    assert frame.loc["x", "p"] == pytest.approx(28 / 1024)
    assert frame.loc["x", "alpha_nominal"] == pytest.approx(0.05 / 4 * 4 / 1)  # y, z, w rejected
    assert frame.loc["x", "verdict"] == "better"
    # without the three clear rejections the weight stays at 1/4: the same p is not enough
    same = {f: BASE + NOISE[i] for i, f in enumerate("yzw")}
    frame = table({"ref": BASE, "x": BASE + d, **same}, margin=0.01)  # equivalence out of reach
    assert frame.loc["x", "verdict"] == "undecided" and frame.loc["x", "p_adjusted"] > 0.05


def test_equivalence_needs_the_adjusted_level():
    """Two comparisons, one look: each equivalence test is at alpha / 2 = 0.025, its interval at
    95 %. The differences 1/375 x (-8, -6, -4, -2, -1, 1, 2, 4, 6, 8) have Walsh averages whose
    exact signed-rank 90 % interval is +-3.5/375 = +-0.00933 and 95 % interval +-4/375 = +-0.0107
    (n = 10: the 9th and 11th smallest of the 55 averages): inside the margin 0.1 x 0.1 = 0.01
    only at the unadjusted level."""
    d = np.array([-8, -6, -4, -2, -1, 1, 2, 4, 6, 8], dtype=float) / 375
    frame = table({"ref": BASE, "x": BASE + d, "y": BASE + 0.05 + NOISE[0]})
    assert frame.loc["y", "verdict"] == "worse"  # its difference test: nothing recycled to x's E
    assert frame.loc["x", "equivalence_level"] == pytest.approx(0.95)
    assert frame.loc["x", ["equivalence_low", "equivalence_high"]].tolist() == pytest.approx(
        [-4 / 375, 4 / 375]
    )
    assert frame.loc["x", "verdict"] == "undecided" and not frame.loc["x", "within_margin"]
    assert frame.loc["x", "equivalence_share"] == pytest.approx(4 / 375 / 0.1)
    # with a margin over 4/375 the same interval is inside: equivalent
    wider = table({"ref": BASE, "x": BASE + d, "y": BASE + 0.05 + NOISE[0]}, margin=0.11)
    assert wider.loc["x", "verdict"] == "equivalent" and wider.loc["x", "within_margin"]


def test_significantly_better_within_the_margin_is_better():
    frame = table({"ref": BASE, "x": BASE - 0.003 + NOISE[0] / 10}, margin=0.5)
    assert frame.loc["x", "verdict"] == "better"
    assert frame.loc["x", "within_margin"]


def test_a_failed_seed_counts_at_the_failure_value_and_blocks_better():
    """Failing on 3 of 10 seeds and slightly better on the other 7: never better or equivalent;
    the failed seeds' recorded (low) losses are not used, W is (chance, worst seen)'s worse."""
    ours = BASE - 0.002 + NOISE[0] / 10
    ours[[1, 4, 7]] = 0.001  # what a diverged run may have recorded before it stopped
    frame = table({"ref": BASE, "x": ours}, failed={"x": [1, 4, 7]}, margin=0.5)
    assert frame.loc["x", "n_failed"] == 3
    assert frame.loc["x", "verdict"] not in ("better", "equivalent")
    expected = np.where(np.isin(np.arange(10), [1, 4, 7]), max(CHANCE[0], ours.max()), ours)
    assert frame.loc["x", "mean"] == pytest.approx(expected.mean())
    assert "3 failed seed(s)" in frame.loc["x", "note"]


def test_failed_seeds_keep_their_test_accuracy():
    frame = summary(
        {"confirm-a": dict(zip(SEEDS, BASE))}, 0.9, {("confirm-a", SEEDS[0]): "diverged"}
    )
    frame.loc[0, "test_accuracy"] = np.nan  # a run that stopped before its last evaluation
    picks = {"a": selection("a", 0.1)}
    row = verdict.verdict_table(frame, picks, {"a": "confirm-a"}, verdict_settings(SEEDS), 1000, {})
    assert row["test_accuracy_mean"].iloc[0] == pytest.approx((9 * 0.9 + CHANCE[1]) / 10)


def test_the_reference_is_the_eligible_tuning_pick_and_ranks_follow_confirmation():
    picks = {
        "a": selection("a", 0.05, eligible=False),  # lowest tuning mean, but no point completed
        "b": selection("b", 0.10),
        "c": selection("c", 0.20),
    }
    frame = table({"a": BASE, "b": BASE + 0.01, "c": BASE - 0.01}, selections=picks)
    assert frame.loc["b", "verdict"] == "reference"
    assert frame["rank"].sort_values().index.tolist() == ["c", "a", "b"]  # confirmation means
    assert "no grid point completed" in frame.loc["a", "note"]
    assert "was beaten by c" in frame.loc["b", "note"] and frame.loc["c", "could_be_best"]
    assert not frame.loc["b", "could_be_best"]


def test_the_notes_say_a_grid_edge_and_a_failed_neighbour():
    picks = {
        "a": selection("a", 0.1),
        "b": selection("b", 0.2, at_grid_edge=True, next_to_failed=True),
    }
    frame = table({"a": BASE, "b": BASE + NOISE[0]}, selections=picks)
    assert (
        "grid's edge" in frame.loc["b", "note"]
        and "next to a grid point that failed" in (frame.loc["b", "note"])
    )
    assert "grid" not in frame.loc["a", "note"].split("Could be best")[0]


def test_accuracy_is_judged_in_points_with_its_direction():
    frame = summary({f"confirm-{f}": dict(zip(SEEDS, BASE)) for f in "ab"})
    frame.loc[frame["run"] == "confirm-b", "test_accuracy"] = 0.9 + 0.02 + NOISE[0]
    frame.loc[frame["run"] == "confirm-a", "test_accuracy"] = 0.9 + NOISE[1]
    picks = {"a": selection("a", 0.1), "b": selection("b", 0.2)}
    runs = {f: f"confirm-{f}" for f in "ab"}
    settings = verdict_settings(SEEDS, metric="final_test_accuracy")
    result = verdict.verdict_table(frame, picks, runs, settings, 1000, {}).set_index("family")
    assert result.loc["b", "verdict"] == "better" and result.loc["b", "rank"] == 1
    assert result.loc["b", "margin"] == 0.005 and result.loc["b", "mean"] > 0.91


# ------------------------------------------------------------------------------ tuning
METRIC = "final_valid_loss"


def rows_of(means: dict, failed=()) -> list[dict]:
    return [
        {"family": "f", "run": f"tune-f-x{m:g}", "multiplier": m, "mean_final_valid_loss": v}
        | {"eligible": m not in failed, "seeds": "0 1", "n_seeds": 2, "status": "completed"}
        for m, v in means.items()
    ]


def test_a_pick_at_the_grid_edge_extends_the_grid():
    top = tuning.select(rows_of({0.5: 0.3, 1.0: 0.2, 2.0: 0.1}), METRIC, 2)
    assert top["extend"] == 4.0 and top["at_grid_edge"]
    bottom = tuning.select(rows_of({0.25: 0.1, 0.5: 0.2, 1.0: 0.3}), METRIC, 1)
    assert bottom["extend"] == 0.125
    assert tuning.select(rows_of({0.5: 0.3, 1.0: 0.2, 2.0: 0.1}), METRIC, 0)["extend"] is None
    inside = tuning.select(rows_of({0.5: 0.3, 1.0: 0.1, 2.0: 0.4}, failed=[2.0]), METRIC, 2)
    assert inside["extend"] is None and inside["next_to_failed"] and inside["trials"] == 3


def test_select_takes_the_lowest_eligible_mean():
    chosen = tuning.select(rows_of({0.5: 0.3, 1.0: 0.2, 2.0: 0.1}, failed=[2.0]), METRIC, 2)
    assert chosen["multiplier"] == 1.0 and chosen["eligible"] and chosen["extend"] is None
    assert [r["selected"] for r in chosen["rows"]] == [False, True, False]


# ------------------------------------------------------------------ what a family changes
def test_a_changed_momentum_or_optimizer_shows_in_also_changes():
    config = {
        "optimizer": {"name": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.0}},
        "tuning": {"optimizer": {"name": "SGD", "kwargs": {"momentum": 0.9}}},
        "families": {
            "same": {"scheduler": "StepLR"},
            "cycled": {"scheduler": "OneCycleLR", "kwargs": {"cycle_momentum": True}},
            "adam": {"scheduler": "none", "optimizer": {"name": "Adam", "kwargs": {"lr": 1}}},
            "nomom": {"scheduler": "none", "optimizer": {"name": "SGD", "kwargs": {"momentum": 0}}},
        },
        "runs": {},
    }
    diffs = {f: families.differences(config, f) for f in config["families"]}
    assert diffs == {
        "same": [],
        "cycled": [families.CYCLED],
        "adam": ["optimizer Adam", "momentum default"],
        "nomom": ["momentum 0"],
    }
    momentum = {"confirm-cycled": "0.85-0.95"}
    assert aggregate.also_changes(diffs, momentum)["cycled"] == "momentum cycled 0.85-0.95"
    # OneCycleLR keeps the momentum constant unless the family says otherwise
    config["families"]["plain"] = {"scheduler": "OneCycleLR"}
    assert families.definition(config, "plain", 1.0)["kwargs"]["cycle_momentum"] is False
    assert families.definition(config, "plain", 1.0)["optimizer"]["kwargs"]["momentum"] == 0.9


# ------------------------------------------------------------------ the stages, on run folders
TUNE_SEEDS, CONFIRM = [0, 1, 2], [10, 13, 11, 12]
TUNED = {
    "slow": {0.5: [0.40, 0.42, 0.41], 1.0: [0.30, 0.29, 0.33], 2.0: [0.35, 0.31, 0.36]},
    "fast": {0.5: [0.20, 0.22, 0.21], 1.0: [0.25, 0.24, 0.26], 2.0: [0.5, 0.6, 0.7]},
}
# final test loss per confirmation seed (the valid loss is another number: it must not judge)
CONFIRMED = {"slow": [0.31, 0.30, 0.34, 0.32], "fast": [0.21, 0.23, 0.20, 0.22]}
WRITE_ORDER = {"slow": CONFIRM, "fast": CONFIRM[::-1]}  # pairs must be made by seed


def run_stages(root, valid_loss=0.5) -> dict:
    """tuning (per family) then aggregate, through their command lines; the tables read back."""
    runs, selections = [], []
    for family, grid in TUNED.items():
        paths = []
        for multiplier, values in grid.items():
            spec = {"family": family, "multiplier": multiplier, "scale": ["lr"]}
            paths += [
                write_run(root / "runs", f"tune-{family}-x{multiplier:g}", s, v, tuning=spec)
                for s, v in zip(TUNE_SEEDS, values)
            ]
        selections.append(root / "tuning" / f"{family}.json")
        tuning.main(
            [*map(str, paths), "--family", family, "--metric", "final_valid_loss"]
            + ["--out", str(selections[-1])]
        )
        values = dict(zip(CONFIRM, CONFIRMED[family]))
        spec = {"family": family, "multiplier": "selected", "scale": ["lr"]}
        runs += paths + [
            write_run(
                root / "runs", f"confirm-{family}", s, valid_loss, (values[s], 0.8), tuning=spec
            )
            for s in WRITE_ORDER[family]
        ]
    (root / "manifest.json").write_text(json.dumps({"sizes": {"test": 1000}}))
    settings = verdict_settings(sorted(CONFIRM), margin=0.1)
    aggregate.main(
        [*map(str, runs), "--selections", *map(str, selections)]
        + ["--data-manifest", str(root / "manifest.json"), "--verdict-json", json.dumps(settings)]
        + ["--out", str(root / "tables"), "--target", "0.3", "--best-count", "1"]
    )
    return {n: pd.read_csv(root / "tables" / f"{n}.csv") for n in ("tuning", "verdict", "best")}


def test_stages_choose_on_validation_and_judge_on_the_test_split(tmp_path):
    tables = run_stages(tmp_path / "a")
    rows = tables["tuning"].set_index(["family", "multiplier"])
    for family, grid in TUNED.items():
        for multiplier, values in grid.items():
            mean = rows.loc[(family, multiplier), "mean_final_valid_loss"]
            assert mean == pytest.approx(np.mean(values))
    table = tables["verdict"].set_index("family")
    # fast chose x0.5 (tuning mean 0.21 < slow's 0.3067 at x1): the reference
    assert table.loc["fast", "verdict"] == "reference" and table.loc["fast", "multiplier"] == 0.5
    by_seed = {f: dict(zip(CONFIRM, CONFIRMED[f])) for f in CONFIRMED}
    diffs = [by_seed["slow"][s] - by_seed["fast"][s] for s in sorted(CONFIRM)]
    assert table.loc["slow", "diff"] == pytest.approx(np.mean(diffs))
    assert table.loc["slow", "seeds"] == "10 11 12 13" and table.loc["slow", "n_seeds"] == 4
    # four pairs, all of one sign: the smallest two-sided signed-rank p, 2/16, cannot reject
    assert table.loc["slow", "p"] == pytest.approx(2 / 16)
    assert table.loc["slow", "verdict"] == "undecided"
    assert tables["best"]["family"].tolist() == ["fast"]
    # the confirmation runs' valid loss judges nothing: another value, the same verdict
    other = run_stages(tmp_path / "b", valid_loss=0.1)
    pd.testing.assert_frame_equal(tables["verdict"], other["verdict"])
