"""The Markdown report: the source report's layout, filled from the config, run.json and the tables.

    python -m lrstudy.report --config-json JSON --tables results/tables --runs results/runs \
        --figures results/figures --template report_template/report.md.j2 \
        --out results/report/report.md

The layout (headings, code lines, images, widths) lives in report_template/report.md.j2; this module
computes the text that depends on the study: headings and code lines from the first run of each
section (config `report.sections`), the compared values, the repository link, and the optional
appendix (config `report.appendix`). The figures are copied to `images/` beside the report.

The figure names and the number formatting are lrstudy.layout's (shared with the figures and the
Snakefile); what a section compares is layout.differing, which the figure titles use too.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

from lrstudy import schedules
from lrstudy.io import atomic_path, write_text
from lrstudy.layout import (
    FIGURES,
    differing,
    format_kwargs,
    format_value,
    used_kwargs,
)

# First sentence of torch's docstring of each class: the section headings of the source report.
HEADINGS = {
    "StepLR": "Decays the learning rate of each parameter group by gamma={gamma} "
    "every {step_size} epochs.",
    "ExponentialLR": "Decays the learning rate of each parameter group by gamma every epoch.",
    "OneCycleLR": "Sets the learning rate of each parameter group according to the 1cycle "
    "learning rate policy.",
    "CyclicLR": "Sets the learning rate of each parameter group according to cyclical "
    "learning rate policy (CLR).",
    "MultiStepLR": "Decays the learning rate of each parameter group by gamma once the number "
    "of epoch reaches one of the milestones.",
    "CosineAnnealingLR": "Set the learning rate of each parameter group using a cosine "
    "annealing schedule.",
    "CosineAnnealingWarmRestarts": "Set the learning rate of each parameter group using a "
    "cosine annealing schedule with warm restarts.",
    "LinearLR": "Decays the learning rate of each parameter group by linearly changing small "
    "multiplicative factor.",
    "ConstantLR": "Multiply the learning rate of each parameter group by a small constant factor.",
    "PolynomialLR": "Decays the learning rate of each parameter group using a polynomial function.",
}
DEFAULTS = {"StepLR": {"gamma": 0.1}}
# How the source names a schedule it compares against ("vs Exponentially decrease Lr").
SHORT_NAMES = {
    "ExponentialLR": "Exponentially decrease Lr",
    "StepLR": "Step decrease Lr",
    "MultiStepLR": "Multi-step decrease Lr",
    "OneCycleLR": "1cycle Lr",
    "CyclicLR": "Cyclic Lr",
    "CosineAnnealingLR": "Cosine annealing Lr",
}
# What a compared keyword means ("comparing different gamma - decaying rate").
KWARG_MEANINGS = {"gamma": "decaying rate"}


# ------------------------------------------------------------------------------------ run records
def load_run(runs_dir: Path | None, run: str, seeds) -> dict | None:
    """run.json of the run's first seed that has one (None when none is there, e.g. in tests)."""
    if runs_dir is None:
        return None
    for seed in seeds:
        path = Path(runs_dir) / run / f"seed{seed}" / "run.json"
        if path.is_file():
            return json.loads(path.read_text())
    return None


def scheduler_code(config: dict, run: str, record: dict | None) -> list[str]:
    """The line that builds the run's scheduler, as its kind prints itself (lrstudy.schedules):
    a torch class as the source writes it (`lr_scheduler = torch.optim.lr_scheduler.Class(
    optimizer, ...)`), a SequentialLR composition, a ColossalAI scheduler or none as the job built
    it, from run.json's filled-in kwargs where it has them."""
    filled = ((record or {}).get("scheduler") or {}).get("kwargs")
    return schedules.code(config["runs"][run], filled)


def range_test_code(config: dict, run: str) -> list[str]:
    """The source's lrs(batch) function with the run's start and end LR."""
    return schedules.code(config["runs"][run], None)


def range_test_heading(config: dict, run: str) -> str:
    mode = (config["runs"][run].get("range_test") or {}).get("mode", "exponential")
    return (
        f"{'Linearly' if mode == 'linear' else 'Exponentially'} increase the Learning rate (base)"
    )


def heading(config: dict, run: str, record: dict | None) -> str:
    name = config["runs"][run]["scheduler"]
    kwargs = {**DEFAULTS.get(name, {}), **used_kwargs(config, run, record)}
    template = HEADINGS.get(name)
    if template is None:
        return (
            f"Sets the learning rate of each parameter group with {name}({format_kwargs(kwargs)})."
        )
    return template.format(**{k: format_value(v) for k, v in kwargs.items()})


def short_name(config: dict, run: str) -> str:
    name = config["runs"][run]["scheduler"]
    return SHORT_NAMES.get(name, name)


def same_class(config: dict, runs: list[str]) -> bool:
    return len({config["runs"][r]["scheduler"] for r in runs}) == 1


def comparing_phrase(config: dict, runs: list[str], records: dict) -> str:
    """ "comparing different gamma - decaying rate" (one class, several values), else "vs ..."."""
    if len(runs) < 2:
        return ""
    if same_class(config, runs):
        keys, _ = differing(config, runs, records)
        if keys:
            meanings = [f"{k} - {KWARG_MEANINGS[k]}" if k in KWARG_MEANINGS else k for k in keys]
            return f" (comparing different {', '.join(meanings)})"
    return f" (vs {', '.join(dict.fromkeys(short_name(config, r) for r in runs[1:]))})"


def compare_values(config: dict, runs: list[str], records: dict) -> str:
    """ "max_lr (1 vs 1.1)": the differing keyword and its values, in the section's order."""
    if len(runs) < 2:
        return "runs"
    if same_class(config, runs):
        keys, kwargs = differing(config, runs, records)
        if keys:
            parts = []
            for key in keys:
                values = " vs ".join(
                    format_value(kwargs[r].get(key)) if key in kwargs[r] else "default"
                    for r in runs
                )
                parts.append(f"{key} ({values})")
            return ", ".join(parts)
    return "schedules (" + " vs ".join(config["runs"][r]["scheduler"] for r in runs) + ")"


def compare_to(config: dict, runs: list[str]) -> str | None:
    """ "Exponentially decrease Lr": the schedules the section's first run is compared to."""
    if len(runs) < 2:
        return None
    return ", ".join(dict.fromkeys(short_name(config, r) for r in runs[1:]))


# ------------------------------------------------------------------------------------ repository
def _git(repo_dir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo_dir), *args], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def web_url(url: str) -> str:
    """A remote as a person opens it: no credentials, git@host:owner/repo -> https://host/owner/repo."""
    url = re.sub(r"^(https?://)[^/@]+@", r"\1", url)
    scp = re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+)$", url)
    if scp:
        url = f"https://{scp.group(1)}/{scp.group(2)}"
    return url[:-4] if url.endswith(".git") else url


def repository(repo_dir: Path) -> dict:
    """{"url", "commit", "source_code", "github_link"}: "unknown" without git or a remote."""
    inside = _git(repo_dir, "rev-parse", "--is-inside-work-tree") == "true"
    remote = _git(repo_dir, "remote", "get-url", "origin") if inside else None
    commit = _git(repo_dir, "rev-parse", "HEAD") if inside else None
    url = web_url(remote) if remote else "unknown"
    commit = commit or "unknown"
    if url != "unknown" and commit != "unknown":
        link = f"{url}/tree/{commit}" if url.startswith("http") else f"{url} (commit {commit})"
    else:
        link = url
    source = f"{url} (commit {commit})" if url != "unknown" or commit != "unknown" else "unknown"
    return {"url": url, "commit": commit, "source_code": source, "github_link": link}


# ------------------------------------------------------------------------------------ appendix
def _number(value, digits=4) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if value != value:  # NaN
        return ""
    if value.is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.{digits}g}"


def markdown_table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                _number(row.get(c)) if not isinstance(row.get(c), str) else row[c] for c in columns
            )
            + " |"
        )
    return lines


# summary.csv's columns the appendix leaves out (the kind and optimizer the headings say, the
# best accuracy beside the final one, the wall time; family and multiplier: the source's runs have
# none)
SUMMARY_HIDDEN = (
    "family",
    "multiplier",
    "kind",
    "optimizer",
    "best_valid_accuracy",
    "wall_seconds",
)
# verdict.csv's columns the appendix leaves out: the raw p-values beside the adjusted ones
VERDICT_HIDDEN = ("p", "p_equivalence", "seeds")
RULES = ("minimum", "steep", "valley", "slide")


def appendix(config: dict, tables: Path, runs_dir: Path | None) -> list[str]:
    """The source runs' summary, the tuning table, the verdict and the range-test suggestions:
    after the source layout, on request."""
    import pandas as pd

    lines = ["", "## Appendix", "### Summary of the source's runs (one row per run and seed)"]
    summary = pd.read_csv(Path(tables) / "summary.csv")
    summary = summary[summary["run"].isin(list(config["runs"]))]
    lines += markdown_table(
        summary.to_dict("records"), [c for c in summary if c not in SUMMARY_HIDDEN]
    )
    metric = config["report"].get("best_metric", "final_valid_loss")
    tuning = pd.read_csv(Path(tables) / "tuning.csv", keep_default_na=False)
    lines += ["", f"### Tuning: every family's LR multipliers, mean {metric} over the tuning seeds"]
    lines += markdown_table(tuning.to_dict("records"), list(tuning.columns))
    verdict = pd.read_csv(Path(tables) / "verdict.csv", keep_default_na=False)
    lines += [
        "",
        f"### Verdict: every family against #1 on the confirmation seeds ({metric}, paired)",
    ]
    lines += markdown_table(
        verdict.to_dict("records"), [c for c in verdict if c not in VERDICT_HIDDEN]
    )
    lines += ["", "### Range-test suggestions (combined across seeds)"]
    rows = []
    for run in config["report"]["sections"]["range_test"]:
        path = Path(runs_dir) / run / "suggestion.json" if runs_dir else None
        found = json.loads(path.read_text()) if path and path.is_file() else {}
        sugg, bounds = found.get("suggestions") or {}, found.get("bounds") or {}
        rows.append(
            {
                "run": run,
                **{r: sugg.get(r) for r in RULES},
                "base_lr": bounds.get("base_lr"),
                "max_lr": bounds.get("max_lr"),
            }
        )
    lines += markdown_table(rows, ["run", *RULES, "base_lr", "max_lr"])
    return lines


# ------------------------------------------------------------------------------------ render
def context(
    config: dict,
    tables: Path | None = None,
    runs_dir: Path | None = None,
    repo_dir: Path = Path("."),
) -> dict:
    """Everything the template fills in."""
    sections = config["report"]["sections"]
    seeds = config.get("seeds", [0])
    records = {run: load_run(runs_dir, run, seeds) for names in sections.values() for run in names}
    out = {"repository": repository(repo_dir), "images": "images"}
    first = sections["range_test"][0]
    out["range_test"] = {
        "heading": range_test_heading(config, first),
        "code": range_test_code(config, first),
    }
    for key in ("step", "exponential", "onecycle", "onecycle_max_lr", "cyclic"):
        runs = sections[key]
        out[key] = {
            "runs": runs,
            "heading": heading(config, runs[0], records[runs[0]]),
            "code": scheduler_code(config, runs[0], records[runs[0]]),
            "comparing": comparing_phrase(config, runs, records),
            "compare_to": compare_to(config, runs),
            "compare_values": compare_values(config, runs, records),
        }
    out["appendix"] = (
        appendix(config, tables, runs_dir) if config["report"].get("appendix") and tables else []
    )
    return out


def render_text(template_path: Path, ctx: dict) -> str:
    import jinja2

    env = jinja2.Environment(
        keep_trailing_newline=True,
        trim_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    return env.from_string(Path(template_path).read_text()).render(**ctx)


def render(
    config: dict,
    template: Path,
    out: Path,
    figures: Path | None = None,
    tables: Path | None = None,
    runs_dir: Path | None = None,
    repo_dir: Path = Path("."),
) -> str:
    """Write the report to `out`, copy the figures to `out`'s images/ folder; return the text."""
    text = render_text(template, context(config, tables, runs_dir, repo_dir))
    out = Path(out)
    if figures is not None:
        for name in FIGURES:
            with atomic_path(out.parent / "images" / f"{name}.png") as tmp:
                shutil.copyfile(Path(figures) / f"{name}.png", tmp)
    write_text(out, text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Render the Markdown report in the source report's layout."
    )
    parser.add_argument("--config-json", required=True, help="the workflow config as JSON")
    parser.add_argument(
        "--tables", type=Path, required=True, help="folder of summary.csv and best.csv"
    )
    parser.add_argument(
        "--runs",
        type=Path,
        required=True,
        help="folder of the run folders (run.json, suggestion.json)",
    )
    parser.add_argument(
        "--figures", type=Path, required=True, help="folder of the figures (lrstudy.plots)"
    )
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument(
        "--out", type=Path, required=True, help="the Markdown report; images go beside it"
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="the workflow's git checkout, for the links (default: the one holding the template)",
    )
    args = parser.parse_args(argv)
    repo = args.repo or Path(args.template).resolve().parent
    render(
        json.loads(args.config_json),
        args.template,
        args.out,
        args.figures,
        args.tables,
        args.runs,
        repo,
    )
    print(f"wrote {args.out} and {len(FIGURES)} images")


if __name__ == "__main__":
    main()
