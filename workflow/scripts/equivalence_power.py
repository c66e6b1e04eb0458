"""What equivalence at the study's margin needs in seeds: the share of simulated studies in which
a family as good as the reference is called `equivalent` (lrstudy.decision, the verdict's own
procedure), with a fixed number of confirmation seeds and with the study's sequential looks.

    python workflow/scripts/equivalence_power.py results/tables/summary.csv \
        results/tables/verdict.csv --seeds 10 20 30

The noise is the study's own: the sd of the paired differences of the judging metric between each
family and the reference on their shared confirmation seeds (pooled over the families), the
margin the verdict's. Every family of the study is simulated equal to the reference (true
difference 0), normal paired differences; no seed fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the workflow's package

from lrstudy import decision  # noqa: E402
from lrstudy.verdict import JUDGING  # noqa: E402


def paired_sd(summary: pd.DataFrame, verdict: pd.DataFrame) -> float:
    """The pooled sd of (family - reference) on the judging metric over their shared seeds."""
    column = JUDGING[verdict["metric"].iloc[0]][0]
    runs = verdict.set_index("family")["run"]
    reference = verdict.loc[verdict["verdict"] == "reference", "family"].iloc[0]
    by_seed = summary.pivot_table(index="seed", columns="run", values=column)
    diffs = [by_seed[runs[f]] - by_seed[runs[reference]] for f in runs.index if f != reference]
    centred = [d.dropna() - d.dropna().mean() for d in diffs]
    pooled = np.concatenate([c.to_numpy() for c in centred])
    return float(np.sqrt((pooled**2).sum() / (len(pooled) - len(centred))))


def share_equivalent(sd, margin, families, sizes, alpha, studies, seed) -> float:
    """Share of studies whose first non-reference family is called `equivalent`."""
    rng = np.random.default_rng(seed)
    names = ["reference"] + [f"f{i}" for i in range(families - 1)]
    hits = 0
    for _ in range(studies):
        base = rng.normal(0.0, sd, sizes[-1])
        values = {n: base + (rng.normal(0.0, sd, sizes[-1]) if n[0] == "f" else 0.0) for n in names}
        failed = {n: np.zeros(sizes[-1], dtype=bool) for n in names}
        result = decision.decide(values, failed, "reference", margin, 1e9, alpha, sizes)
        hits += result["families"]["f0"]["word"] == "equivalent"
    return hits / studies


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", type=Path)
    parser.add_argument("verdict", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--looks", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument(
        "--margin-scale", type=float, default=1.0, help="the margin x this (another margin)"
    )
    args = parser.parse_args(argv)
    verdict = pd.read_csv(args.verdict)
    sd = paired_sd(pd.read_csv(args.summary), verdict)
    margin = float(verdict["margin"].iloc[0]) * args.margin_scale
    families = len(verdict)
    print(f"paired sd {sd:.4g}, margin {margin:.4g} ({margin / sd:.2f} sd), {families} families")
    for n in args.seeds:
        share = share_equivalent(sd, margin, families, [n], args.alpha, args.studies, n)
        print(f"{n} seeds, one look: P(equivalent | equal) = {share:.3f}")
    share = share_equivalent(sd, margin, families, args.looks, args.alpha, args.studies, 0)
    print(f"looks at {args.looks}: P(equivalent | equal) = {share:.3f}")


if __name__ == "__main__":
    main()
