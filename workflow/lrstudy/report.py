"""The Markdown report: the source report's layout, filled from the config, run.json and the tables.

    python -m lrstudy.report --config-json JSON --summary results/tables/summary.csv \
        --tuning results/tables/tuning.csv --verdict results/tables/verdict.csv \
        --records results/runs/RUN/seedS/run.json ... \
        --suggestions results/runs/RUN/suggestion.json \
        --figures results/figures/NAME.png ... --template report_template/report.md.j2 \
        --out results/report/report.md

The layout (headings, code lines, images, widths) lives in report_template/report.md.j2; this module
computes the text that depends on the study: headings and code lines from the first run of each
section (config `report.sections`), the compared values, the repository link, and the optional
appendix (config `report.appendix`, lrstudy.report_appendix). The figures are copied to `images/`
beside the report.

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
    first_records,
    format_kwargs,
    format_value,
    suggestions_by_run,
    used_kwargs,
)
from lrstudy.report_appendix import appendix

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


# ------------------------------------------------------------------------------------ render
# The tables the appendix reads (results/tables/NAME.csv, each passed by the rule).
APPENDIX_TABLES = ("summary", "tuning", "verdict")


def context(
    config: dict,
    tables: dict | None = None,
    records=(),
    suggestions=(),
    repo_dir: Path = Path("."),
) -> dict:
    """Everything the template fills in. `records`: run.json files of the sections' runs (a run's
    first seed's is its record), `suggestions`: the range tests' combined suggestion.json files,
    `tables`: {name: csv file} of APPENDIX_TABLES (the appendix, where the config asks for it)."""
    sections = config["report"]["sections"]
    records = first_records(records)
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
            "heading": heading(config, runs[0], records.get(runs[0])),
            "code": scheduler_code(config, runs[0], records.get(runs[0])),
            "comparing": comparing_phrase(config, runs, records),
            "compare_to": compare_to(config, runs),
            "compare_values": compare_values(config, runs, records),
        }
    wanted = config["report"].get("appendix") and tables
    out["appendix"] = appendix(config, tables, suggestions_by_run(suggestions)) if wanted else []
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


def copy_figures(figures, images: Path) -> None:
    """The report's figures (FIGURES, found by name among the files `figures`) into `images`."""
    by_name = {Path(path).stem: Path(path) for path in figures}
    missing = [name for name in FIGURES if name not in by_name]
    if missing:
        raise FileNotFoundError(f"no figure file given for {', '.join(missing)}")
    for name in FIGURES:
        with atomic_path(images / f"{name}.png") as tmp:
            shutil.copyfile(by_name[name], tmp)


def render(
    config: dict,
    template: Path,
    out: Path,
    figures=(),
    tables: dict | None = None,
    records=(),
    suggestions=(),
    repo_dir: Path = Path("."),
) -> str:
    """Write the report to `out`, copy the figures (files; none: no images) to `out`'s images/
    folder; return the text."""
    text = render_text(template, context(config, tables, records, suggestions, repo_dir))
    out = Path(out)
    if figures:
        copy_figures(figures, out.parent / "images")
    write_text(out, text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Render the Markdown report in the source report's layout."
    )
    parser.add_argument("--config-json", required=True, help="the workflow config as JSON")
    for name in APPENDIX_TABLES:
        parser.add_argument(f"--{name}", type=Path, required=True, help=f"{name}.csv (appendix)")
    parser.add_argument(
        "--records", type=Path, nargs="*", default=[], help="run.json of the sections' runs"
    )
    parser.add_argument(
        "--suggestions",
        type=Path,
        nargs="*",
        default=[],
        help="the range tests' combined suggestion.json",
    )
    parser.add_argument(
        "--figures", type=Path, nargs="+", required=True, help="the figures (lrstudy.plots)"
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
    tables = {name: getattr(args, name) for name in APPENDIX_TABLES}
    config = json.loads(args.config_json)
    render(
        config, args.template, args.out, args.figures, tables, args.records, args.suggestions, repo
    )
    print(f"wrote {args.out} and {len(FIGURES)} images")


if __name__ == "__main__":
    main()
