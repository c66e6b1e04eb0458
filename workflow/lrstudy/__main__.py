"""The `lrstudy` command (also `python -m lrstudy`): the package's stages, one subcommand each.

    lrstudy data --dataset '{"name": "digits"}' --out d.pt --manifest d.json
    lrstudy train --spec '<spec JSON>' --data d.pt --out results/runs/step/seed0
    lrstudy suggest results/runs/range_test/seed0 --out suggestion.json

(The benchmark is no stage: `make bench` runs workflow/benchmarks/bench.py.)

Each subcommand hands its arguments to the stage module's own `main(argv)` (what the Snakemake
rules run as `python -m lrstudy.<module>`); `lrstudy <command> --help` shows that module's options.
Modules are imported only when their command runs, so `lrstudy --help` is quick.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, arguments put before the user's, one-line help)
COMMANDS = {
    "data": ("data", [], "prepare a dataset: one tensor file and a manifest"),
    "train": ("train", [], "train one run and seed (the `train` rule)"),
    "suggest": ("rangetest", ["suggest"], "LR suggestions from one range-test run folder"),
    "combine": ("rangetest", ["combine"], "combine per-seed suggestion JSON files"),
    "select": ("tuning", [], "a schedule family's setting from its tuning runs"),
    "look": ("verdict", ["look"], "the verdict's decision at a look: who trains on"),
    "aggregate": ("aggregate", [], "aggregate run folders into the study's tables and verdict"),
    "plots": ("plots", [], "draw every figure of the report"),
    "report": ("report", [], "render the Markdown report"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        f"  {name:<{width}}  {text}  (python -m lrstudy.{module})"
        for name, (module, _, text) in COMMANDS.items()
    ]
    return (
        "usage: lrstudy [-h] [--version] COMMAND [ARGS...]\n\n"
        + __doc__.split("\n\n")[0]
        + "\n\ncommands:\n"
        + "\n".join(lines)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from lrstudy import __version__

        print(f"lrstudy {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(
            f"lrstudy: unknown command {command!r}; choose one of {', '.join(COMMANDS)}\n\n"
            f"{usage()}",
            file=sys.stderr,
        )
        return 2
    module, before, _ = COMMANDS[command]
    program, sys.argv[0] = (
        sys.argv[0],
        f"lrstudy {command}",
    )  # argparse names the program in usage lines
    try:
        result = importlib.import_module(f"lrstudy.{module}").main([*before, *rest])
    finally:
        sys.argv[0] = program
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
