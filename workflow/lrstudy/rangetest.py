"""LR range test: the LR sweep, loss smoothing, and (below) the analysis."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from lrstudy import faults
from lrstudy.io import write_json
from lrstudy.layout import RANGE_TEST_DEFAULTS

# The schema's defaults (lrstudy.layout reads them): the smoothing and the divergence stop.
BETA = RANGE_TEST_DEFAULTS["smooth_beta"]
STOP_FACTOR = RANGE_TEST_DEFAULTS["stop_factor"]


def range_lr(
    step: int, total_steps: int, start_lr: float, end_lr: float, mode: str = "exponential"
) -> float:
    """LR of the range test at `step` (0-based): start_lr at step 0, end_lr at step total_steps-1,
    geometric in between for mode "exponential" (the source's lrs(batch): 2**(low+(high-low)*t)),
    linear for "linear"."""
    if total_steps < 1:
        raise ValueError("total_steps must be >= 1")
    if total_steps == 1 or step <= 0:
        return float(start_lr)
    if step >= total_steps - 1:
        return float(end_lr)
    t = step / (total_steps - 1)
    if mode == "exponential":
        if start_lr <= 0 or end_lr <= 0:
            raise ValueError("exponential mode needs positive start_lr and end_lr")
        low, high = math.log2(start_lr), math.log2(end_lr)
        return float(2.0 ** (low + (high - low) * t))
    if mode == "linear":
        return float(start_lr + (end_lr - start_lr) * t)
    raise ValueError(f"unknown range-test mode {mode!r} (expected 'exponential' or 'linear')")


class Smoother:
    """Bias-corrected exponential moving average (fastai style): avg = beta*avg + (1-beta)*x;
    smoothed = avg / (1 - beta**n).

    A non-finite input (NaN/inf) poisons the average: every smoothed value from then on is NaN.
    """

    def __init__(self, beta: float = BETA):
        if not 0.0 <= beta < 1.0:
            raise ValueError("beta must be in [0, 1)")
        self.beta = float(beta)
        self.avg = 0.0
        self.n = 0

    def update(self, x: float) -> float:
        """Add `x`; return the smoothed value after adding it."""
        x = float(x)
        self.n += 1
        if not math.isfinite(x) or not math.isfinite(self.avg):
            self.avg = math.nan
            return math.nan
        self.avg = self.beta * self.avg + (1.0 - self.beta) * x
        return self.avg / (1.0 - self.beta**self.n)


def smooth(values, beta: float = BETA) -> np.ndarray:
    """Bias-corrected EMA of `values` (see Smoother). Once a NaN/inf appears, it and all later
    outputs are NaN (a diverged loss must not be averaged back into a finite-looking curve)."""
    s = Smoother(beta)
    return np.array([s.update(v) for v in values], dtype=float)


# ----------------------------------------------------------------------------------------------
# Analysis of a recorded sweep: the four suggestion rules, the schedule bounds, seeds combined.
# Every slope is taken against log10(LR) (loss change per decade), never against raw LR: d loss / d
# LR = (d loss / d log LR) / (LR ln 10) is inflated by 1/LR and drags the steepest-descent pick to
# the lowest LRs of a geometric sweep (Lightning's regression since 2.5.3).
RULES = ("minimum", "steep", "valley", "slide")
SLOPE_SPAN = 0.3  # decades spanned by the central difference of a slope (see slopes())
MIN_POINTS = 10  # fewer analysable points than this: no suggestion
VALLEY_TOL = 0.05  # valley: the descent runs from 5 % to 95 % of the drop into the minimum
FLAT_TOL = 0.02  # no descent: the drop before the minimum is < 2 % of the loss level
SLIDE_WINDOW = (
    1.2  # slide rule: decades between the two compared points (fastai: 15 of 100 its over 1e-7..10)
)
SLIDE_TOL = (
    0.0625  # slide rule: |slope difference| tolerance, loss per decade (fastai: thresh 0.005 per
)
#                        iteration at 0.08 decades per iteration)
ONECYCLE_DIV = (
    25.0  # fastai fit_one_cycle / torch OneCycleLR div_factor: the cycle starts at max_lr/25
)
CYCLIC_DIV = 4.0  # Smith 2017, sec. 3.3: base_lr = 1/3 to 1/4 of max_lr; we take 1/4


def trim(lrs, losses, smoothed, stop_factor=STOP_FACTOR):
    """Cut the sweep at its first non-finite value (LR, loss or smoothed loss) and at the first
    point where the smoothed loss exceeds `stop_factor` times its best so far (divergence; None =
    never). Returns the kept prefix (lrs, smoothed) and a note on what was cut."""
    lrs, losses, smoothed = (np.asarray(a, dtype=float) for a in (lrs, losses, smoothed))
    bad = ~(np.isfinite(lrs) & np.isfinite(losses) & np.isfinite(smoothed))
    n = int(np.argmax(bad)) if bad.any() else len(lrs)
    cut = "non-finite" if n < len(lrs) else None
    if stop_factor is not None and n > 0:
        over = smoothed[:n] > stop_factor * np.minimum.accumulate(smoothed[:n])
        if over.any():
            n, cut = int(np.argmax(over)), "diverged"
    return lrs[:n], smoothed[:n], cut


def _valley_stretch(s, imin, drop):
    """Indices (a, b) of the final descent into the minimum: b is the first point with the loss
    within VALLEY_TOL*drop of the minimum, a the last point before b still within VALLEY_TOL*drop of
    the highest loss before b."""
    b = int(np.argmax(s[: imin + 1] <= s[imin] + VALLEY_TOL * drop))
    if b == 0:
        return 0, 0
    a = int(np.nonzero(s[:b] >= s[:b].max() - VALLEY_TOL * drop)[0][-1])
    return a, b


def slopes(x, s):
    """d s / d x by central differences over +-k points, k = the points in SLOPE_SPAN/2 decades of x
    (k = 1 is np.gradient; a wider stencil cuts a per-step slope's noise without shifting it)."""
    n = len(s)
    k = max(1, int(round(SLOPE_SPAN / 2 / float(np.median(np.diff(x))))))
    hi, lo = np.minimum(np.arange(n) + k, n - 1), np.maximum(np.arange(n) - k, 0)
    return (s[hi] - s[lo]) / (x[hi] - x[lo])


def _slide(x, g):
    """fastai's interval slide rule on slopes g (per decade) at log10 LRs x: a right point walks
    back from the end with a left point SLIDE_WINDOW decades before it; while their slopes differ by
    more than SLIDE_TOL the left point's LR is the candidate. Returns the index of the last
    candidate."""
    step = float(np.median(np.diff(x)))
    w = max(1, int(round(SLIDE_WINDOW / step)))
    r, cand = len(x) - 1, max(len(x) - 1 - w, 0)
    while r - w >= 0 and abs(g[r] - g[r - w]) > SLIDE_TOL:
        cand, r = r - w, r - 1
    return cand


def suggest(
    lrs, losses, beta=BETA, smoothed=None, skip_start=0.1, skip_end=5, stop_factor=STOP_FACTOR
):
    """Suggested LRs from a range-test sweep (`lrs` increasing, `losses` the raw per-step losses).

    The curve analysed is `smoothed` if given, else smooth(losses, beta); it is trimmed (trim()),
    then the first `skip_start` points (a fraction if < 1, else a count; fastai: num_it//10) and the
    last `skip_end` points (fastai: 5) are dropped. On the points up to the minimum smoothed loss:
      minimum: LR at the minimum smoothed loss / 10 (fastai `minimum`);
      steep:   LR of the most negative slope d loss / d log10 LR (slopes(); fastai `steep`);
      valley:  middle (in log LR) of the descent into the minimum (the idea of fastai's `valley`;
               its longest-decreasing-subsequence length moved 2-3x under noise, so the stretch
               here runs from 5 % to 95 % of the drop, see _valley_stretch; VALLEY_TOL);
      slide:   fastai's interval slide rule on the whole kept curve (see _slide; SLIDE_TOL,
               SLIDE_WINDOW).
    Returns {rule: LR or None, ..., "status": {...}}; all None with a "reason" when too few points
    remain, the LRs are not strictly increasing and positive, or the curve has no descent."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    smoothed = smooth(losses, beta) if smoothed is None else np.asarray(smoothed, dtype=float)
    if not len(lrs) == len(losses) == len(smoothed):
        raise ValueError("lrs, losses and smoothed must have the same length")
    out = {rule: None for rule in RULES}
    lr, s, cut = trim(lrs, losses, smoothed, stop_factor)
    status = {"points_total": len(lrs), "points_kept": len(lr), "cut": cut, "reason": None}
    out["status"] = status
    start = int(skip_start * len(lr)) if skip_start < 1 else int(skip_start)
    lr, s = lr[start : len(lr) - int(skip_end)], s[start : len(s) - int(skip_end)]
    status["points_used"] = len(lr)
    if len(lr) < MIN_POINTS:
        status["reason"] = f"too few points ({len(lr)} < {MIN_POINTS}) after trimming and skipping"
        return out
    if np.any(lr <= 0) or np.any(np.diff(lr) <= 0):
        status["reason"] = "LRs are not positive and strictly increasing"
        return out
    x = np.log10(lr)
    imin = int(np.argmin(s))
    drop = float(s[: imin + 1].max() - s[imin])
    status.update(
        lr_range=[float(lr[0]), float(lr[-1])],
        lr_at_min=float(lr[imin]),
        min_loss=float(s[imin]),
        drop=drop,
        min_at_end=bool(imin == len(s) - 1),
    )
    if imin == 0 or drop < FLAT_TOL * max(abs(float(s[: imin + 1].max())), 1e-12):
        status["reason"] = (
            f"no descent: smoothed loss drops by {drop:.3g} (< {FLAT_TOL:.0%} of its level)"
        )
        return out
    g = slopes(x, s)
    out["minimum"] = float(lr[imin] / 10)
    out["steep"] = float(lr[int(np.argmin(g[: imin + 1]))])
    a, b = _valley_stretch(s, imin, drop)
    out["valley"] = float(10 ** ((x[a] + x[b]) / 2))
    out["slide"] = float(lr[_slide(x, g)])
    return out


def bounds(suggestion) -> dict:
    """Schedule bounds from a suggest()/analyse()/combine() result (or its "suggestions" dict).

    max_lr = the `valley` suggestion (fallback `steep`, then `minimum`): fastai's default pick,
    between the steepest descent and the minimum/10. It feeds OneCycleLR(max_lr=...),
    CyclicLR(max_lr=...) and the optimizer's `auto` lr (`lr`, the LR that constant and decaying
    schedules start from). base_lr = max_lr / 4 feeds CyclicLR(base_lr=...): Smith 2017, "Cyclical
    Learning Rates for Training Neural Networks" (WACV), sec. 3.3, sets base_lr to 1/3 or 1/4 of
    max_lr. onecycle_initial_lr = max_lr / 25 is informational: OneCycleLR's div_factor=25 (fastai's
    1cycle default; torch's too) makes the cycle start there. All None with a "reason" when no rule
    gave one."""
    sugg = suggestion.get("suggestions", suggestion)
    rule = next((r for r in ("valley", "steep", "minimum") if sugg.get(r) is not None), None)
    out = {
        "base_lr": None,
        "max_lr": None,
        "lr": None,
        "onecycle_initial_lr": None,
        "from": rule,
        "rule": "max_lr = lr = valley suggestion (fallback steep, minimum); "
        f"base_lr = max_lr/{CYCLIC_DIV:g} (Smith 2017, CLR sec. 3.3: 1/3 to 1/4); "
        f"OneCycleLR starts at max_lr/{ONECYCLE_DIV:g} "
        "(fastai 1cycle div_factor)",
    }
    if rule is None:
        out["reason"] = "no suggestion to derive bounds from"
        return out
    max_lr = float(sugg[rule])
    out.update(
        max_lr=max_lr,
        lr=max_lr,
        base_lr=max_lr / CYCLIC_DIV,
        onecycle_initial_lr=max_lr / ONECYCLE_DIV,
    )
    return out


def analyse(run_dir, use_valid=None) -> dict:
    """Suggestions and bounds of one range-test run folder (run.json, steps.csv, evals.csv).

    The training loss (steps.csv) is re-smoothed with the run's smooth_beta (the logged
    smoothed_loss is the same Smoother, but recomputing keeps the analysis independent of the
    logger). Validation-loss mode (use_valid=True, or None with range_test.valid_every set): the
    `range_valid` rows of evals.csv against the LR of their step, smoothed with beta**valid_every
    (the same time constant in steps) and skip_end = ceil(5 / valid_every) points."""

    run_dir = Path(run_dir)
    meta = faults.read_record(run_dir / "run.json")  # a missing or mangled file stops, named
    rt = meta.get("range_test") or {}
    beta, stop = float(rt.get("smooth_beta", BETA)), rt.get("stop_factor", STOP_FACTOR)
    every = int(rt.get("valid_every") or 0)
    use_valid = bool(every) if use_valid is None else bool(use_valid)
    steps = faults.read_table(run_dir / "steps.csv").sort_values("step")
    if use_valid:
        ev = faults.read_table(run_dir / "evals.csv")
        ev = ev[ev["split"] == "range_valid"].sort_values("step")
        ev = ev.merge(steps[["step", "lr"]], on="step", how="inner")
        every = every or (int(np.median(np.diff(ev["step"]))) if len(ev) > 1 else 1)
        res = suggest(
            ev["lr"].to_numpy(),
            ev["loss"].to_numpy(),
            beta=beta**every,
            skip_end=math.ceil(5 / every),
            stop_factor=stop,
        )
    else:
        res = suggest(
            steps["lr"].to_numpy(), steps["train_loss"].to_numpy(), beta=beta, stop_factor=stop
        )
    status = dict(res.pop("status"), run_status=meta.get("status"))
    return {
        "run": meta.get("run"),
        "seed": meta.get("seed"),
        "source": "valid_loss" if use_valid else "train_loss",
        "suggestions": res,
        "bounds": bounds(res),
        "status": status,
        "range_test": rt,
    }


def combine(dicts) -> dict:
    """One suggestion across seeds: for each rule the geometric mean of the seeds' non-None values
    (LRs are scale parameters, so they are averaged in log space), with their [min, max] spread."""
    dicts = list(dicts)
    sugg, spread, used = {}, {}, {}
    for rule in RULES:
        vals = [d["suggestions"][rule] for d in dicts if d["suggestions"].get(rule) is not None]
        used[rule] = len(vals)
        sugg[rule] = float(np.exp(np.mean(np.log(vals)))) if vals else None
        spread[rule] = [float(min(vals)), float(max(vals))] if vals else None
    status = {
        "n_inputs": len(dicts),
        "n_used": used,
        "method": "geometric_mean",
        "reason": None if any(used.values()) else "no input had a suggestion",
    }
    runs = sorted({str(d.get("run")) for d in dicts})
    return {
        "run": runs[0] if len(runs) == 1 else runs,
        "seeds": [d.get("seed") for d in dicts],
        "source": sorted({d.get("source") for d in dicts if d.get("source")}),
        "suggestions": sugg,
        "spread": spread,
        "bounds": bounds(sugg),
        "status": status,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lrstudy.rangetest", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("suggest", help="analyse one range-test run folder")
    s.add_argument("run_dir")
    s.add_argument("--out", required=True)
    v = s.add_mutually_exclusive_group()
    v.add_argument(
        "--valid", dest="use_valid", action="store_true", default=None, help="use range_valid loss"
    )
    v.add_argument("--train", dest="use_valid", action="store_false", help="use the training loss")
    c = sub.add_parser("combine", help="combine per-seed suggestion JSONs")
    c.add_argument("inputs", nargs="+")
    c.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.cmd == "suggest":
        write_json(a.out, analyse(a.run_dir, a.use_valid), allow_nan=False)
    else:
        combined = combine(json.loads(Path(f).read_text()) for f in a.inputs)
        write_json(a.out, combined, allow_nan=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
