"""lrstudy.decision on hand-worked numbers: spending, looks, the Walsh-average machinery, Holm's
re-weighting at a look, the failure rules, and the replay (no training, no simulation).

Hand values used below:
* alpha(t) = 0.05 ln(1 + (e - 1) t): alpha(1/3) = 0.05 ln 1.5727606 = 0.05 * 0.4528324253,
  alpha(2/3) = 0.05 ln 2.1455212 = 0.05 * 0.7633825152, alpha(1) = 0.05 ln e = 0.05.
* n = 4: the signed-rank statistic T takes 0..10 with counts 1,1,1,2,2,2,2,2,1,1,1 (of 16).
* n = 10: P(T <= 0) = 1/1024, P(T <= 5) = 10/1024, P(T <= 10) = 43/1024.
"""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from lrstudy import decision

REF = np.linspace(1.0, 1.9, 10)  # the reference's values on ten seeds
NO_FAIL = np.zeros(10, bool)


def run(values: dict, failed: dict | None = None, margin=1.0, sizes=(10,), chance=0.5):
    """decide() with "r" the reference, alpha 0.05; failed flags default to none."""
    failed = failed or {}
    flags = {f: failed.get(f, np.zeros(len(v), bool)) for f, v in values.items()}
    return decision.decide(values, flags, "r", margin, chance, 0.05, list(sizes))


def same(a: dict, b: dict) -> bool:
    """Records equal, NaN equal to NaN."""
    nan = lambda v: isinstance(v, float) and math.isnan(v)
    return a.keys() == b.keys() and all(a[k] == b[k] or (nan(a[k]) and nan(b[k])) for k in a)


def test_spending_by_hand():
    assert decision.spending(1 / 3, 0.05) == pytest.approx(0.0226416213, abs=1e-10)
    assert decision.spending(2 / 3, 0.05) == pytest.approx(0.0381691258, abs=1e-10)
    assert decision.spending(1.0, 0.05) == pytest.approx(0.05, abs=1e-15)
    g = decision.look_fractions([10, 20, 30])
    assert g == pytest.approx([0.4528324, 0.7633825 - 0.4528324, 1 - 0.7633825], abs=1e-7)
    assert decision.look_fractions([30]) == pytest.approx([1.0], abs=1e-15)


def test_look_sizes():
    assert decision.look_sizes(10, 10, 30) == [10, 20, 30]
    assert decision.look_sizes(10, 15, 30) == [10, 25, 30]
    assert decision.look_sizes(30, 10, 30) == [30]
    assert decision.look_sizes(40, 10, 30) == [40]
    with pytest.raises(ValueError):
        decision.look_sizes(10, 0, 30)


def test_hodges_lehmann_by_hand():
    """d = (-1, 2, 3, 5): Walsh averages -1, .5, 1, 2, 2, 2.5, 3, 3.5, 4, 5; HL = (2 + 2.5) / 2.
    T+ = 9 (only -1 is negative): p = 2 P(T >= 9) = 2 P(T <= 1) = 2 * 2/16 = 0.25. At a = 0.25
    the critical value is 1 (P(T <= 1) = 2/16 <= 0.125): [W_(2), W_(9)] = [0.5, 4], excluding 0
    as p <= a; at a = 0.2 it is 0 (P(T <= 0) = 1/16 <= 0.1): [W_(1), W_(10)] = [-1, 5]."""
    d = [-1.0, 2.0, 3.0, 5.0]
    assert list(decision.walsh_averages(d)) == [-1, 0.5, 1, 2, 2, 2.5, 3, 3.5, 4, 5]
    assert decision.hodges_lehmann(d, 0.25) == (2.25, 0.5, 4.0)
    assert decision.hodges_lehmann(d, 0.2) == (2.25, -1.0, 5.0)
    assert decision.signed_rank_p(d) == 0.25
    assert decision.signed_rank_p(d, "greater") == 0.125
    assert decision.signed_rank_p(d, "less") == 15 / 16  # P(T <= 9)
    assert decision.hodges_lehmann(d, 0.1)[1:] == (-math.inf, math.inf)  # no critical value


@pytest.mark.parametrize("n", [5, 8, 12, 20, 33, 60, 61, 75])
def test_interval_test_duality_and_scipy(n):
    """On random (tie-free) data: the interval at 1 - a excludes 0 exactly when p <= a, for many
    a, and p is scipy's exact signed-rank p (n <= 60; above, both use the normal approximation
    with continuity correction, so the duality still holds)."""
    rng = np.random.default_rng(n)
    levels = np.concatenate([np.geomspace(1e-4, 0.9, 60), [0.05, 0.01]])
    for _ in range(40):
        d = rng.normal(0.4, 1.0, n)
        p = decision.signed_rank_p(d)
        if n <= 60:
            assert p == pytest.approx(stats.wilcoxon(d, method="exact").pvalue, rel=1e-9)
        for a in levels:
            _, low, high = decision.hodges_lehmann(d, a)
            assert (low > 0 or high < 0) == (p <= a), (n, a, p, low, high)


def test_holm_adjust_is_statsmodels():
    p = np.random.default_rng(3).uniform(0, 0.2, (30, 4))
    for row in p:
        expected = multipletests(row, method="holm")[1]
        assert decision.holm_adjust(row) == pytest.approx(expected, abs=1e-15)


def test_holm_recycles_at_the_look():
    """K = 2, looks 10/20/30: first test at 0.05 * 1/2 * 0.4528324 = 0.0113208. a (better on every
    seed, p = 2/1024) is rejected there; b (only its rank-5 difference positive: T+ = 5,
    p = 2 * 10/1024 = 0.0195313) only at 0.05 * 1 * 0.4528324 = 0.0226416 once a's weight is its."""
    b = REF - 0.1 * np.arange(1, 11) * np.where(np.arange(10) == 4, -1, 1)
    out = run({"r": REF, "a": REF - 1, "b": b}, margin=0.05, sizes=(10, 20, 30))
    a_rec, b_rec = out["families"]["a"], out["families"]["b"]
    assert (a_rec["word"], b_rec["word"]) == ("better", "better")
    assert b_rec["p"] == pytest.approx(20 / 1024, abs=1e-15)
    assert a_rec["alpha_nominal"] == pytest.approx(0.0113208, abs=1e-7)
    assert b_rec["alpha_nominal"] == pytest.approx(0.0226416, abs=1e-7)
    assert b_rec["p_adjusted"] == pytest.approx(20 / 1024 * 0.05 / 0.0226416, rel=1e-5)
    assert b_rec["diff_level"] == pytest.approx(1 - 0.0226416, abs=1e-7)
    assert (a_rec["look"], b_rec["look"], out["look"], out["continuing"]) == (1, 1, 1, [])


def test_equivalent_family_passes_no_difference_weight_on():
    """a is equivalent at look 1 (|d| <= 0.005, margin 0.5); its difference weight stays with it,
    so b (p = 0.0195, as above) is tested at 0.0113 only, not rejected, and goes on."""
    b = REF - 0.1 * np.arange(1, 11) * np.where(np.arange(10) == 4, -1, 1)
    a = REF + 0.005 * np.array([1, -1] * 5) * np.arange(1, 11) / 10
    out = run({"r": REF, "a": a, "b": b}, margin=0.5, sizes=(10, 20, 30))
    assert out["families"]["a"]["word"] == "equivalent"
    assert out["families"]["b"]["word"] == "undecided"
    assert out["families"]["b"]["alpha_nominal"] == pytest.approx(0.0113208, abs=1e-7)
    assert out["continuing"] == ["r", "b"] and out["look"] == 1


def test_better_within_margin_and_equivalent_needs_no_difference():
    """a: 0.1 better on every seed (+-0.001): D rejected (p = 2/1024) and the interval inside
    +-1: `better`, within_margin. b: differences of both signs, |d| <= 0.05: `equivalent`."""
    a = REF - 0.1 + 0.001 * np.array([1, -1] * 5)
    b = REF + 0.01 * np.array([5, -4, 3, -2, 1, -1, 2, -3, 4, -5])
    fam = run({"r": REF, "a": a, "b": b}, margin=1.0)["families"]
    assert fam["a"]["word"] == "better" and fam["a"]["within_margin"] is True
    assert fam["a"]["p"] == pytest.approx(2 / 1024) and fam["a"]["hl"] < 0
    assert fam["b"]["word"] == "equivalent" and fam["b"]["p"] > fam["b"]["alpha_nominal"]
    for rec in fam["a"], fam["b"]:
        assert rec["equivalence_bound"] < 1.0
        assert rec["equivalence_level"] == pytest.approx(1 - 2 * 0.025)  # K = 2, one look
        assert rec["equivalence_bound"] == max(-rec["equivalence_low"], rec["equivalence_high"])


@pytest.mark.parametrize("shift", [0.01, 0.5])
def test_family_failing_more_is_never_better_or_equivalent(shift):
    """Failed on seeds 8-10 (where the reference is worst: W = 1.9, d = 0.2, 0.1, 0), better by
    `shift` on the other seven. Slightly better: the interval lies inside the margin, yet not
    `equivalent`; clearly better: T+ = 5.5, p = 2 * 10/1024 < 0.05, yet not `better`. McNemar:
    3 discordant seeds all against it, p = 2 / 2^3 = 0.25."""
    failed = np.arange(10) >= 7
    a = np.where(failed, np.nan, REF - shift)
    out = run({"r": REF, "a": a}, {"a": failed}, margin=1.0)
    rec = out["families"]["a"]
    assert rec["word"] == "undecided" and rec["n_failed"] == 3 and rec["within_margin"] is False
    assert out["failure_value"] == pytest.approx(1.9)
    assert rec["p_failure"] == pytest.approx(0.25) and rec["p_failure_holm"] == pytest.approx(0.25)
    assert any("more failed seeds" in note for note in rec["note"])
    if shift == 0.5:
        assert rec["p"] == pytest.approx(20 / 1024) and rec["hl"] < 0


def test_mcnemar_failures_by_hand():
    """a fails on 6 of 10 seeds (where the reference is at W = 1.9: d = 0), the reference on
    none: exact McNemar p = 2 * (1/2)^6 = 0.03125 < 0.05 -> `worse`. With b failing once
    (p = 1) beside it, Holm gives a 2 * 0.03125 = 0.0625: no longer `worse`."""
    r = np.array([1.0] * 4 + [1.9] * 6)
    failed = np.arange(10) >= 4
    a = np.where(failed, np.nan, r - 0.1 * np.arange(1, 11))
    alone = run({"r": r, "a": a}, {"a": failed})["families"]["a"]
    assert alone["p_failure"] == pytest.approx(0.03125) and alone["n_failed"] == 6
    assert alone["word"] == "worse" and any("McNemar" in note for note in alone["note"])
    b_failed = np.arange(10) == 9
    b = np.where(b_failed, np.nan, r + 0.001 * np.array([1, -1] * 5))
    both = run({"r": r, "a": a, "b": b}, {"a": failed, "b": b_failed})["families"]
    assert both["a"]["p_failure_holm"] == pytest.approx(0.0625)
    assert both["b"]["p_failure"] == pytest.approx(1.0)
    assert both["a"]["word"] == "undecided"


def test_replay_stops_when_seeds_are_missing():
    """Looks at 10 and 20: a (better on every seed) stops at look 1; b (noise) needs the seeds of
    look 2, and so does the reference; with none of them yet, the replay says so."""
    rng = np.random.default_rng(0)
    r, b = rng.normal(size=20), rng.normal(size=20)
    out = run({"r": r[:10], "a": r[:10] - 1, "b": b[:10]}, sizes=(10, 20), margin=0.01)
    assert out["continuing"] == ["r", "b"] and out["look"] == 1
    assert out["families"]["a"]["word"] == "better" and out["families"]["b"]["word"] == "undecided"
    early = run({"r": r[:6], "a": r[:6] - 1, "b": b[:6]}, sizes=(10, 20), margin=0.01)
    assert early["continuing"] == ["r", "a", "b"] and early["look"] == 0
    assert early["families"]["a"]["word"] == "undecided"


def test_frozen_decisions_do_not_depend_on_later_seeds():
    """a stops at look 1. Its record is the same at the interim look (10 seeds each), in the final
    table given only its 10 seeds, and in the final table given 20 seeds of it; b's record (one
    failed seed at look 2) does not see a's seeds after a's stop either (W = chance = 3)."""
    rng = np.random.default_rng(0)
    r, b, a = rng.normal(size=20), rng.normal(size=20), rng.normal(size=20)
    a = r - 1 + 0.1 * a
    a[15] = 50.0  # after a's stop: must not become b's failure value W
    b_failed = np.arange(20) == 15
    b[15] = np.nan
    kw = dict(sizes=(10, 20), margin=0.01, chance=3.0)
    interim = run({"r": r[:10], "a": a[:10], "b": b[:10]}, {"b": b_failed[:10]}, **kw)
    final_short = run({"r": r, "a": a[:10], "b": b}, {"b": b_failed}, **kw)
    final_long = run({"r": r, "a": a, "b": b}, {"b": b_failed}, **kw)
    assert final_short["failure_value"] == final_long["failure_value"] == 3.0
    assert interim["continuing"] == ["r", "b"]
    assert final_short["continuing"] == final_long["continuing"] == []
    assert final_short["look"] == final_long["look"] == 2
    assert same(interim["families"]["a"], final_short["families"]["a"])
    assert same(interim["families"]["a"], final_long["families"]["a"])
    assert same(final_short["families"]["b"], final_long["families"]["b"])
    assert final_long["families"]["b"]["n_seeds"] == 20


def test_record_keys():
    out = run({"r": REF, "a": REF - 1})
    assert set(out) >= {"families", "continuing", "look", "failure_value"}
    for rec in out["families"].values():
        assert set(rec) == set(decision.KEYS) | {"note"}
    assert out["families"]["r"]["word"] == "reference" and out["families"]["r"]["n_seeds"] == 10


def test_could_be_best_and_rank():
    """Two families: b worse on every one of 10 seeds, one-sided p = 1/1024 <= 0.05/1: ruled out.
    Three: c (only 6 seeds) worse than a on each: p = 1/64 <= 0.025; b vs c over 6 seeds: b is
    worse on each, p = 1/64: ruled out too; a stays."""
    a = np.arange(10.0)
    assert decision.could_be_best({"a": a, "b": a + 1}, 0.05) == ["a"]
    three = {"a": a, "b": a + 2, "c": a[:6] + 1}
    assert decision.could_be_best(three, 0.05) == ["a"]
    assert decision.could_be_best({"a": a, "b": a + 1e-9 * (-1) ** a}, 0.05) == ["a", "b"]
    assert decision.could_be_best(np.array([a + 1, a]), 0.05) == [1]
    assert decision.rank(three) == ["a", "c", "b"]
    assert decision.rank(np.array([a + 1, a, a - 1])) == [2, 1, 0]
    values, w = decision.substitute_failures(
        {"a": [1.0, np.nan], "b": [2.0, 3.0]}, {"a": [False, True]}, chance=2.5
    )
    assert w == 3.0 and list(values["a"]) == [1.0, 3.0]
