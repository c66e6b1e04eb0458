"""The verdict's statistical engine: sequential, paired, rank-based comparisons of each family
with the reference family r and a verdict word per family (no torch, no pandas).

Data: per family one judging value per confirmation seed, in seed order, LOWER IS BETTER (callers
negate accuracies); seeds are paired across families (same seed = same init and batches). A failed
seed (flag True or a non-finite value) enters every test at W = max(chance, worst finite value in
use at that look over all families): a failure is at least as bad as anything seen. None dropped.

`decide`, K = number of families - 1 comparisons with r:
* Looks at n_1 < ... < n_L seeds, t_k = n_k / n_L. Each hypothesis spends its alpha over the looks
  by the Lan-DeMets (1983) Pocock-type function alpha(t) = alpha ln(1 + (e - 1) t): look k tests
  at the increment alpha(t_k) - alpha(t_{k-1}). The increments sum to alpha, so by Bonferroni over
  the looks one hypothesis is falsely rejected at some look with probability <= its alpha,
  whatever the looks' correlation (conservative, since that correlation is ignored; valid).
* Per comparison, D_f "no paired shift" (exact two-sided Wilcoxon signed-rank test on the Walsh
  averages of d = x_f - x_r) and E_f "|shift| >= margin", rejected at level a iff the
  Hodges-Lehmann (1963) interval at level 1 - 2a lies inside (-margin, margin) (two one-sided
  tests). The interval is the Walsh averages' order statistics at the exact critical value of
  the same null distribution: "interval at 1 - a excludes 0" <=> "p <= a" (exact when no Walsh
  average is 0; with zeros, e.g. a seed failed in both, zeros count 1/2 in T+ and the interval
  is the more conservative side).
* Multiplicity: a graphical weighted Bonferroni-Holm procedure per set (D and E, each alpha),
  start weights 1/K, h tested at alpha * w_h * g_k at look k (g_k the look's share of alpha). A
  rejection passes its weight to the set's non-rejected hypotheses, retested at the same look
  until nothing new is rejected. A family frozen by its stop holds its weights and is never
  tested again; only rejected hypotheses pass weight on. This is the group-sequential graphical
  procedure of Bretz et al. 2009 / Maurer & Bretz 2013 with Holm's graph and Bonferroni over
  looks; it controls each set's familywise error at alpha in the strong sense.
* Words: D_f rejected -> `better`/`worse` (sign of the HL estimate, whatever the margin); else E_f
  rejected -> `equivalent`; else `undecided`, and the family (with r) goes on to the next look.
  A family with more failed seeds than r is never `better`/`equivalent` (such a rejection does
  not count, passes nothing on). When no family continues, exact McNemar tests of the failure
  indicators, Holm-adjusted over the families: p < alpha with more failures than r -> `worse`
  (a further alpha-level family of tests beside D's).
Replaying the looks from the seeds given, one pure function serves interim looks and the final
table with identical decisions. `could_be_best`: Hsu's (1984, 1996) multiple comparisons with the
best, signed-rank tests and Bonferroni instead of Dunnett (conservative). Tests swap the hooks
`look_fractions`, `WEIGHTS`, `released_difference` to check that simulations see a broken rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from scipy.stats import norm
from statsmodels.stats.contingency_tables import mcnemar

EXACT_MAX_N = 60  # exact null distribution up to here, normal approximation above
KEYS = (
    "word look n_seeds n_failed diff dz hl diff_low diff_high diff_level equivalence_low"
    " equivalence_high equivalence_level equivalence_bound within_margin alpha_nominal p"
    " p_adjusted p_failure p_failure_holm"
).split()


# ----------------------------------------------------------------------------- looks, spending
def spending(t: float, alpha: float) -> float:
    """Lan-DeMets Pocock-type alpha spent by information fraction t in [0, 1]."""
    return alpha * math.log(1.0 + (math.e - 1.0) * t)


def look_sizes(first: int, step: int, max_seeds: int) -> list[int]:
    """Seeds at each look: first, first + step, ..., max_seeds; [first] when first >= max_seeds."""
    if first >= max_seeds:
        return [first]
    if step <= 0:
        raise ValueError(f"look step must be positive, got {step}")
    return list(range(first, max_seeds, step)) + [max_seeds]


def look_fractions(sizes: list[int]) -> list[float]:
    """g_k = (alpha(t_k) - alpha(t_{k-1})) / alpha per look; they sum to 1 (one look: [1.0])."""
    spent = [spending(n / sizes[-1], 1.0) for n in sizes]
    return [b - a for a, b in zip([0.0] + spent[:-1], spent)]


def holm_weight(n_hypotheses: int, n_released: int) -> float:
    """Holm's graph: each hypothesis not yet released holds 1 / (number not released)."""
    return 1.0 / max(1, n_hypotheses - n_released)


WEIGHTS = {"difference": holm_weight, "equivalence": holm_weight}


def released_difference(rejected: set, equivalent: set) -> set:
    """The difference hypotheses whose weight is passed on: only the rejected ones (a family
    stopped as `equivalent` holds its difference weight)."""
    return set(rejected)


# ------------------------------------------------------------------ signed rank, Walsh averages
@cache
def _null_cdf(n: int) -> np.ndarray:
    """P(T <= t), t = 0..n(n+1)/2, T the signed-rank statistic of n untied values under H0."""
    m = n * (n + 1) // 2
    if n > EXACT_MAX_N:
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
        return norm.cdf((np.arange(m + 1) + 0.5 - m / 2) / sd)
    counts = np.zeros(m + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k]
    return np.cumsum(counts) / 2.0**n


def _cdf(n: int, t: float) -> float:
    cdf = _null_cdf(n)
    return 0.0 if t < 0 else float(cdf[min(math.floor(t), len(cdf) - 1)])


@cache
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n)


def walsh_averages(d) -> np.ndarray:
    """(d_i + d_j) / 2 over i <= j, sorted."""
    d = np.asarray(d, dtype=float)
    i, j = _pairs(len(d))
    return np.sort((d[i] + d[j]) / 2.0)


def signed_rank_p(d, alternative: str = "two-sided", walsh=None) -> float:
    """Exact Wilcoxon signed-rank p: T+ = #(Walsh averages > 0) + 1/2 #(= 0) against the null
    distribution for n = len(d). `greater`: the shift is > 0; `less`: < 0."""
    w = walsh_averages(d) if walsh is None else walsh
    n, m = len(d), len(w)
    below, above = np.searchsorted(w, 0.0, "left"), np.searchsorted(w, 0.0, "right")
    t_plus = (m - above) + 0.5 * (above - below)
    lower, upper = _cdf(n, t_plus), _cdf(n, m - t_plus)  # P(T <= T+), P(T >= T+)
    one_sided = {"greater": upper, "less": lower}
    return one_sided.get(alternative, min(1.0, 2.0 * min(lower, upper)))


def _interval(walsh: np.ndarray, n: int, a: float) -> tuple[float, float]:
    """HL interval at two-sided level 1 - a: [W_(c+1), W_(M-c)], c the largest t with
    P(T <= t) <= a/2 (the test's critical value; the whole line when there is none)."""
    c = int(np.searchsorted(_null_cdf(n), a / 2.0, side="right")) - 1
    if c < 0:
        return -math.inf, math.inf
    return float(walsh[c]), float(walsh[len(walsh) - 1 - c])


def _median(walsh: np.ndarray) -> float:
    m = len(walsh)
    return math.nan if m == 0 else float(walsh[(m - 1) // 2] + walsh[m // 2]) / 2.0


def hodges_lehmann(d, a: float) -> tuple[float, float, float]:
    """(estimate, low, high): median of the Walsh averages and its interval at level 1 - a."""
    w = walsh_averages(d)
    return (_median(w), *_interval(w, len(d), a))


# --------------------------------------------------------------------------------- failures
def _prepare(values: dict, failed: dict) -> tuple[dict, dict]:
    vals = {f: np.asarray(v, dtype=float) for f, v in values.items()}
    fails = {}
    for f, v in vals.items():
        flag = np.asarray(failed.get(f, np.zeros(len(v), bool)), dtype=bool)
        if len(flag) != len(v):
            raise ValueError(f"{f}: {len(v)} values but {len(flag)} failure flags")
        fails[f] = flag | ~np.isfinite(v)
    return vals, fails


def _failure_value(vals: dict, fails: dict, used: dict, chance: float) -> float:
    finite = [vals[f][: used[f]][~fails[f][: used[f]]] for f in vals]
    worst = max((float(v.max()) for v in finite if len(v)), default=-math.inf)
    return max(chance, worst)


def substitute_failures(values: dict, failed: dict, chance: float) -> tuple[dict, float]:
    """Values with every failed seed at W = max(chance, worst finite value of all), and W."""
    vals, fails = _prepare(values, failed)
    w = _failure_value(vals, fails, {f: len(v) for f, v in vals.items()}, chance)
    return {f: np.where(fails[f], w, vals[f]) for f in vals}, w


def holm_adjust(p) -> np.ndarray:
    """Holm-adjusted p-values, as statsmodels' multipletests(p, method="holm")[1] (a test checks
    that); own code because that call runs gc.collect() every time (~17 ms in a test process)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    steps = p[order] * (len(p) - np.arange(len(p)))
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted


@cache
def _mcnemar_discordant(only_f: int, only_r: int) -> float:
    """Exact McNemar p; it depends on the discordant counts alone (cached for simulations)."""
    return float(mcnemar([[0, only_f], [only_r, 0]], exact=True).pvalue)


def _mcnemar_p(fail_f: np.ndarray, fail_r: np.ndarray) -> float:
    return _mcnemar_discordant(int(np.sum(fail_f & ~fail_r)), int(np.sum(~fail_f & fail_r)))


# -------------------------------------------------------------------------------- procedure
@dataclass
class _Study:
    names: list
    alpha: float
    margin: float
    g: list
    rej_d: set = field(default_factory=set)  # counted difference rejections
    equivalent: set = field(default_factory=set)  # counted equivalence rejections (D not)
    frozen: dict = field(default_factory=dict)  # family -> seeds at its stop
    records: dict = field(default_factory=dict)  # family -> its latest look's record

    def level(self, kind: str, k: int) -> float:
        passed_on = released_difference(self.rej_d, self.equivalent)
        released = passed_on if kind == "difference" else self.equivalent
        return self.alpha * WEIGHTS[kind](len(self.names), len(released)) * self.g[k]


def _pair_stats(vals, fails, f, r, n, w) -> dict:
    d = np.where(fails[f][:n], w, vals[f][:n]) - np.where(fails[r][:n], w, vals[r][:n])
    walsh = walsh_averages(d)
    hl, mean = _median(walsh), float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    n_failed, n_failed_ref = int(fails[f][:n].sum()), int(fails[r][:n].sum())
    stats = dict(f=f, n=n, walsh=walsh, p=signed_rank_p(d, walsh=walsh), hl=hl, diff=mean)
    stats.update(dz=mean / sd if sd > 0 else math.nan, better=hl < 0 or (hl == 0 and mean < 0))
    return {**stats, "n_failed": n_failed, "more_failures": n_failed > n_failed_ref}


def _holm_pass(st: _Study, kind: str, k: int, candidates: list, rejects, levels: dict) -> list:
    """Test the candidates of one set at this look, re-weighting after each round of rejections,
    until no new rejection; returns the rejected (`rejects` records what counts)."""
    hits_all, todo = [], list(candidates)
    while todo:
        level = st.level(kind, k)
        levels.update(dict.fromkeys(todo, level))
        hits = [f for f in todo if rejects(f, level)]
        if not hits:
            break
        hits_all += hits
        todo = [f for f in todo if f not in hits]
    return hits_all


def _run_look(st: _Study, k: int, stats: dict) -> None:
    """One look: the difference set to its fixed point, then the equivalence set; again while
    either passed weight on (with the correct rule the second round changes nothing)."""
    level_d, level_e, within = {}, {}, set()

    def rejects_d(f, a):
        s = stats[f]
        counted = s["p"] <= a and not (s["better"] and s["more_failures"])
        if counted:
            st.rej_d.add(f)
        return counted

    def rejects_e(f, a):
        s = stats[f]
        low, high = _interval(s["walsh"], s["n"], 2.0 * a)
        counted = -st.margin < low and high < st.margin and not s["more_failures"]
        if counted:
            within.add(f)
            if f not in st.rej_d:
                st.equivalent.add(f)
        return counted

    while True:
        open_d = [f for f in stats if f not in st.rej_d and f not in st.equivalent]
        new = _holm_pass(st, "difference", k, open_d, rejects_d, level_d)
        open_e = [f for f in stats if f not in within]
        new += _holm_pass(st, "equivalence", k, open_e, rejects_e, level_e)
        if not new:
            break
    for f, s in stats.items():
        st.records[f] = _record(st, s, k, level_d[f], level_e[f], f in within)
        if f in st.rej_d or f in st.equivalent:
            st.frozen[f] = s["n"]


def _record(st: _Study, s: dict, k: int, a_d: float, a_e: float, within: bool) -> dict:
    low, high = _interval(s["walsh"], s["n"], a_d)
    e_low, e_high = _interval(s["walsh"], s["n"], 2.0 * a_e)
    note = ["more failed seeds than the reference: never better/equivalent"] * s["more_failures"]
    word = "equivalent" if s["f"] in st.equivalent else "undecided"
    if s["f"] in st.rej_d:
        word = "better" if s["better"] else "worse"
    rec = {"word": word, "look": k + 1, "n_seeds": s["n"], "n_failed": s["n_failed"]}
    rec.update(diff=s["diff"], dz=s["dz"], hl=s["hl"], diff_low=low, diff_high=high)
    rec.update(diff_level=1.0 - a_d, equivalence_low=e_low, equivalence_high=e_high)
    rec.update(equivalence_level=1.0 - 2.0 * a_e, equivalence_bound=max(abs(e_low), abs(e_high)))
    rec.update(within_margin=within, alpha_nominal=a_d, p=s["p"], note=note)
    rec.update(p_adjusted=min(1.0, s["p"] * st.alpha / a_d), p_failure=math.nan)
    return {**rec, "p_failure_holm": math.nan}


def _failure_tests(st: _Study, fails: dict, reference: str, final: bool) -> None:
    """Exact McNemar on the paired failure indicators at each family's last look, Holm-adjusted
    over the families; at the end a family failing significantly more often than r is `worse`."""
    names = [f for f in st.names if f in st.records]
    for f in names:
        n = st.records[f]["n_seeds"]
        st.records[f]["p_failure"] = _mcnemar_p(fails[f][:n], fails[reference][:n])
    if not names:
        return
    holm = holm_adjust([st.records[f]["p_failure"] for f in names])
    for f, p in zip(names, holm):
        rec = st.records[f]
        rec["p_failure_holm"] = float(p)
        if final and p < st.alpha and rec["n_failed"] > fails[reference][: rec["n_seeds"]].sum():
            rec["note"].append(f"fails more often than the reference (McNemar, Holm p = {p:.3g})")
            rec["word"] = "worse"


def _blank(word: str, n_seeds: int = 0, n_failed: int = 0) -> dict:
    rec = {key: math.nan for key in KEYS}
    rec.update(word=word, look=0, n_seeds=n_seeds, n_failed=n_failed, within_margin=False)
    return {**rec, "note": []}


def decide(
    values: dict[str, np.ndarray],
    failed: dict[str, np.ndarray],
    reference: str,
    margin: float,
    chance: float,
    alpha: float,
    sizes: list[int],
) -> dict:
    """Replay the looks over the seeds given (module docstring; W at a look uses a stopped
    family's seeds only through its stop). Returns {"families": {name: record (KEYS + note; the
    reference's word "reference")}, "continuing": the families (reference included) that need the
    next look's seeds, [] when done, "look": looks done, "failure_value": W at the last one}."""
    vals, fails = _prepare(values, failed)
    names = [f for f in vals if f != reference]
    st = _Study(names, alpha, margin, look_fractions(sizes))
    look, continuing, w, n_ref = 0, [], math.nan, 0
    for k, n in enumerate(sizes):
        active = [f for f in names if f not in st.frozen]
        need = [f for f in vals if f in active or f == reference]
        if not active:
            break
        if any(len(vals[f]) < n for f in need):
            continuing = need
            break
        used = {f: min(n, st.frozen.get(f, n)) for f in vals}
        w = _failure_value(vals, fails, used, chance)
        _run_look(st, k, {f: _pair_stats(vals, fails, f, reference, n, w) for f in active})
        look, n_ref = k + 1, n
    _failure_tests(st, fails, reference, final=not continuing)
    families = {f: st.records.get(f) or _blank("undecided") for f in vals}
    families[reference] = _blank("reference", n_ref, int(fails[reference][:n_ref].sum()))
    out = {"families": families, "continuing": continuing, "look": look, "failure_value": w}
    return {**out, "reference": reference, "sizes": list(sizes)}


# ------------------------------------------------------------------------ best, ranking
def _rows(values) -> tuple[list, list]:
    if isinstance(values, dict):
        return list(values), [np.asarray(v, dtype=float) for v in values.values()]
    rows = np.asarray(values, dtype=float)
    return list(range(len(rows))), list(rows)


def could_be_best(values, alpha: float) -> list:
    """Hsu's multiple comparisons with the best, smaller is better, Bonferroni instead of
    Dunnett: family i is ruled out iff for some j != i the one-sided signed-rank test of
    "x_i - x_j > 0" rejects at alpha / (k - 1), each pair over the seeds both have (the first
    min(n_i, n_j), finite in both). `values`: {name: values} or a 2-D array (rows = families),
    failed seeds already at W (`substitute_failures`). Returns the names (row indices) not ruled
    out, in input order; it contains a truly best family with probability >= 1 - alpha."""
    names, rows = _rows(values)
    if len(rows) < 2:
        return names
    level = alpha / (len(rows) - 1)
    ruled_out = [
        any(_greater_p(x, y) <= level for j, y in enumerate(rows) if j != i)
        for i, x in enumerate(rows)
    ]
    return [name for name, out in zip(names, ruled_out) if not out]


def _greater_p(x: np.ndarray, y: np.ndarray) -> float:
    """One-sided signed-rank p of "x - y > 0" over the first seeds both have, finite in both."""
    n = min(len(x), len(y))
    ok = np.isfinite(x[:n]) & np.isfinite(y[:n])
    return signed_rank_p(x[:n][ok] - y[:n][ok], "greater")


def rank(values) -> list:
    """Names (row indices) by their mean over the seeds every family has (the first min length,
    finite in all; failed seeds already at W), best (lowest) first; ties keep input order."""
    names, rows = _rows(values)
    n = min(len(r) for r in rows)
    ok = np.all([np.isfinite(r[:n]) for r in rows], axis=0)
    means = [float(r[:n][ok].mean()) for r in rows]
    return [names[i] for i in sorted(range(len(rows)), key=lambda i: means[i])]
