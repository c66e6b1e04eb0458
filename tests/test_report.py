"""Tests of the Markdown report (lrstudy.report + report_template/report.md.j2) against the source
report's layout, on synthetic tables (tests/test_plots.synthetic_study; seconds, no training), and
(marked slow) of the whole workflow with `snakemake` and `snakemake --report report.html`.

The source report is ../shared/reference/source-report.md beside the repository root (CI has it
there); tests that compare with it skip, saying so, when it is absent."""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from lrstudy import layout, plots, report, report_appendix

from .test_plots import (
    STUDY_LINE,
    hand_verdict,
    png_size,
    read_tables,
    study_files,
    synthetic_study,
)
from .util import ROOT, SOURCE, default_config, needs_source

TEMPLATE = ROOT / "report_template" / "report.md.j2"
# The source leaves these empty; the workflow fills them with the repository URL and commit.
FILLED = ("## source code:", "# github link:")
IMG = re.compile(r"<img\s+([^>]*?)\s*/?>", re.IGNORECASE)
ATTR = re.compile(r'([A-Za-z_:-]+)\s*=\s*"([^"]*)"')


# ------------------------------------------------------------------------------------ skeleton
def image_stem(src: str) -> str:
    """`.\\images\\StepDecLR.PNG` and `images/stepdeclr.png` -> `stepdeclr`."""
    name = src.replace("\\", "/").rstrip("/").split("/")[-1]
    return (name.rsplit(".", 1)[0] if "." in name else name).lower()


def skeleton(text: str) -> list[tuple]:
    """The layout of a Markdown report, in document order: headings (the FILLED ones up to their
    colon), code lines (indented 4 spaces), bullet lines ("* "), and each <img> tag as (stem, alt,
    width, align)."""
    items = []
    for line in text.splitlines():
        if line.startswith("#"):
            prefix = next((p for p in FILLED if line.startswith(p)), None)
            items.append(("heading", prefix or line.rstrip()))
        elif line.startswith("    "):
            items.append(("code", line[4:].rstrip()))
        elif line.startswith("* "):
            items.append(("bullet", line.rstrip()))
        for tag in IMG.finditer(line):
            attrs = {k.lower(): v for k, v in ATTR.findall(tag.group(1))}
            items.append(
                (
                    "img",
                    image_stem(attrs.get("src", "")),
                    attrs.get("alt"),
                    attrs.get("width"),
                    attrs.get("align"),
                )
            )
    return items


def image_sources(text: str) -> list[str]:
    return [dict(ATTR.findall(tag.group(1)))["src"] for tag in IMG.finditer(text)]


def as_source_style(text: str) -> str:
    """Our report with the source's Windows-style image paths and empty link lines."""
    text = re.sub(
        r'src="images/([^"]+)\.png"', lambda m: f'src=".\\images\\{m.group(1)}.PNG"', text
    )
    lines = [
        next((p + " " for p in FILLED if line.startswith(p)), line) for line in text.split("\n")
    ]
    return "\n".join(lines)


def render(
    tmp_path: Path, config: dict | None = None, figures: Path | None = None, **study
) -> tuple[str, dict, Path]:
    results = tmp_path / "results"
    config = synthetic_study(results, config=config, **study)
    out = results / "report" / "report.md"
    text = report.render(
        config, TEMPLATE, out, figures, repo_dir=tmp_path, **report_inputs(results)
    )
    return text, config, out


def report_inputs(results: Path) -> dict:
    """What the render_report rule passes of a synthetic study: the appendix's tables ({name:
    csv}), every run.json (`records`) and the combined suggestion.json files (`suggestions`)."""
    files = study_files(results)
    tables = {name: files["files"][name] for name in report.APPENDIX_TABLES}
    return {"tables": tables, "records": files["records"], "suggestions": files["suggestions"]}


def figure_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.png"))


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The default study on synthetic tables: every figure drawn and the report rendered with its
    images."""
    tmp = tmp_path_factory.mktemp("drawn")
    config = synthetic_study(tmp / "results")
    tables = read_tables(tmp / "results")
    plots.draw_all(config, tables, tmp / "results" / "figures")
    (tmp / "results" / "config.json").write_text(json.dumps(config))
    out = tmp / "results" / "report" / "report.md"
    figures = figure_files(tmp / "results" / "figures")
    text = report.render(
        config, TEMPLATE, out, figures, repo_dir=tmp, **report_inputs(tmp / "results")
    )
    return text, out


# ------------------------------------------------------------------------------------ tests
def test_skeleton_helper():
    ours = (
        "# T\n## source code: https://x (commit 1)\n    code(a=1)\n* Compare to  X\n"
        '<img src="images/StepDecLR.png" alt="ExponentiallyDecLR" width="400"/>  \n'
    )
    theirs = (
        "# T\n## source code: \n    code(a=1)\n* Compare to  X\n"
        '<img src=".\\images\\StepDecLR.PNG" alt="ExponentiallyDecLR" width="400"/>\n'
    )
    assert (
        skeleton(ours)
        == skeleton(theirs)
        == [
            ("heading", "# T"),
            ("heading", "## source code:"),
            ("code", "code(a=1)"),
            ("bullet", "* Compare to  X"),
            ("img", "stepdeclr", "ExponentiallyDecLR", "400", None),
        ]
    )
    assert skeleton(
        '<img src="a/b.png" alt="b" width="150" align="left"/><img src="c.PNG" alt="c" width="9"/>'
    ) == [("img", "b", "b", "150", "left"), ("img", "c", "c", "9", None)]
    assert skeleton("    x")[0] != skeleton("    y")[0]


@needs_source
def test_skeleton_equals_the_source(tmp_path):
    text, _, _ = render(tmp_path)
    source = skeleton(SOURCE.read_text())
    assert len(source) > 40
    assert skeleton(text) == source


@needs_source
def test_text_equals_the_source_line_for_line(tmp_path):
    """Stricter than the skeleton: blank lines, trailing spaces and the text between the tags
    too."""
    text, _, _ = render(tmp_path)
    assert as_source_style(text).split("\n") == SOURCE.read_text().split("\n")


def test_default_lines(tmp_path):
    text, _, _ = render(tmp_path)
    lines = text.split("\n")
    for expected in [
        "## 2. Decays the learning rate of each parameter group by gamma=0.5 every 100 epochs.",
        "    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)",
        "    lr_scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.999)",
        (
            "    lr_scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.1, "
            'steps_per_epoch=len(train_dataloader), epochs=config["NUM_EPOCHS"])'
        ),
        (
            "    lr_scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.01, "
            "max_lr=1, step_size_up=50, step_size_down=100)"
        ),
        "        low = math.log2(1e-5)",
        "        high = math.log2(10)",
        "* Compare different max_lr (1 vs 1.1)",
        "* Compare to  Exponentially decrease Lr",
        "### Learning rate (vs Exponentially decrease Lr)",
        "### Learning rate (comparing different gamma - decaying rate)",
    ]:
        assert expected in lines
    assert "/images/" not in text and "\\" not in text
    assert all(src.startswith("images/") and src.endswith(".png") for src in image_sources(text))


def test_every_image_exists_and_is_a_plausible_png(drawn):
    text, out = drawn
    sources = image_sources(text)
    assert len(sources) == 23 and len(set(sources)) == 21  # 7_legend three times
    for tag in IMG.finditer(text):
        attrs = dict(ATTR.findall(tag.group(1)))
        path = out.parent / attrs["src"]
        assert path.is_file(), f"{attrs['src']} is missing beside the report"
        assert path.stat().st_size > 1000
        width, height = png_size(path)
        assert width == 2 * int(attrs["width"]), (
            f"{attrs['src']} is {width} px wide, shown at {attrs['width']}"
        )
        assert 50 <= height <= 1400
    assert sorted(p.stem for p in (out.parent / "images").iterdir()) == sorted(report.FIGURES)


def changed_config(**runs) -> dict:
    config = default_config()
    for name, kwargs in runs.items():
        config["runs"][name]["kwargs"] = kwargs
    return config


@pytest.fixture(scope="module")
def changed_step(tmp_path_factory) -> str:
    """The report of the default config with StepLR's kwargs changed (rendered once: two tests)."""
    config = changed_config(step={"step_size": 40, "gamma": 0.3})
    return render(tmp_path_factory.mktemp("changed-step"), config)[0]


def test_changed_step_kwargs_change_heading_and_code_line(changed_step):
    lines = changed_step.split("\n")
    assert (
        "## 2. Decays the learning rate of each parameter group by gamma=0.3 every 40 epochs."
        in lines
    )
    assert (
        "    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=40, gamma=0.3)"
        in lines
    )


@needs_source
def test_changed_step_kwargs_change_only_those_two_lines_of_the_sources_layout(changed_step):
    ours, source = skeleton(changed_step), skeleton(SOURCE.read_text())
    changed = [(a, b) for a, b in zip(ours, source) if a != b]
    assert len(ours) == len(source) and len(changed) == 2
    assert changed[0][1] == (
        "heading",
        "## 2. Decays the learning rate of each parameter group by gamma=0.5 every 100 epochs.",
    )


def test_other_changed_values(tmp_path):
    config = changed_config(
        **{
            "exp_0.999": {"gamma": 0.98},
            "onecycle_1.1": {"max_lr": 0.8, "pct_start": 0.25},
            "onecycle_1": {"max_lr": 2.0},
            "cyclic": {"base_lr": 0.001, "max_lr": 0.5, "step_size_up": 20},
        }
    )
    config["runs"]["range_test"]["range_test"].update(start_lr=1e-6, end_lr=1.5)
    config["report"]["sections"]["onecycle_max_lr"] = ["onecycle_1", "onecycle_1.1"]
    text, _, _ = render(tmp_path, config)
    lines = text.split("\n")
    assert "        low = math.log2(1e-6)" in lines and "        high = math.log2(1.5)" in lines
    assert (
        "    lr_scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.98)" in lines
    )
    assert (
        "    lr_scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.8, "
        'pct_start=0.25, steps_per_epoch=len(train_dataloader), epochs=config["NUM_EPOCHS"])'
    ) in lines
    assert "* Compare different max_lr (2 vs 0.8), pct_start (default vs 0.25)" in lines
    assert (
        "    lr_scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.001, "
        "max_lr=0.5, step_size_up=20)"
    ) in lines


def test_auto_values_print_the_values_used(tmp_path):
    config = changed_config(cyclic={"base_lr": "auto", "max_lr": "auto", "step_size_up": 50})
    results = tmp_path / "results"
    config = synthetic_study(results, config=config)
    record = json.loads((results / "runs" / "cyclic" / "seed0" / "run.json").read_text())
    record["scheduler"]["kwargs"].update(base_lr=0.0053, max_lr=0.0212)
    record["bounds"] = {"base_lr": 0.0053, "max_lr": 0.0212}
    (results / "runs" / "cyclic" / "seed0" / "run.json").write_text(json.dumps(record))
    text = report.render(
        config, TEMPLATE, results / "report.md", repo_dir=tmp_path, **report_inputs(results)
    )
    assert (
        "    lr_scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.0053, "
        "max_lr=0.0212, step_size_up=50)"
    ) in text.split("\n")
    assert "auto" not in text


def test_a_one_run_section_has_no_comparison(tmp_path):
    config = default_config()
    config["report"]["sections"]["cyclic"] = ["cyclic"]
    config["report"]["sections"]["step"] = ["step"]
    text, _, _ = render(tmp_path, config)
    assert "### Learning rate\n    lr_scheduler = torch.optim.lr_scheduler.StepLR" in text
    assert text.count("* Compare to  Exponentially decrease Lr") == 1  # the onecycle section's only


def test_links_unknown_outside_git(tmp_path):
    info = report.repository(tmp_path / "nowhere")
    assert info["source_code"] == info["github_link"] == "unknown"
    text, _, _ = render(tmp_path)  # tmp_path is no git checkout
    assert "## source code: unknown" in text.split("\n") and text.rstrip("\n").endswith(
        "# github link: unknown"
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_links_from_git_remote_and_commit(tmp_path):
    git = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.org",
        "-c",
        "init.defaultBranch=main",
        "-C",
        str(tmp_path),
    ]
    subprocess.run(git + ["init", "-q"], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(git + ["add", "f"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "c"], check=True)
    commit = subprocess.run(
        git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert report.repository(tmp_path) == {
        "url": "unknown",
        "commit": commit,
        "source_code": f"unknown (commit {commit})",
        "github_link": "unknown",
    }
    subprocess.run(
        git + ["remote", "add", "origin", "git@github.com:someone/lrstudy.git"], check=True
    )
    info = report.repository(tmp_path)
    assert info["source_code"] == f"https://github.com/someone/lrstudy (commit {commit})"
    assert info["github_link"] == f"https://github.com/someone/lrstudy/tree/{commit}"
    assert report.web_url("https://user:token@example.org/a/b.git") == "https://example.org/a/b"


@pytest.fixture(scope="module")
def with_appendix(tmp_path_factory) -> str:
    """The report of the default config with `report.appendix` (rendered once: two tests)."""
    config = default_config()
    config["report"]["appendix"] = True
    return render(tmp_path_factory.mktemp("appendix"), config)[0]


@needs_source
def test_appendix_only_after_the_source_layout(with_appendix):
    ours, source = skeleton(with_appendix), skeleton(SOURCE.read_text())
    assert ours[: len(source)] == source and len(ours) > len(source)
    assert ours[len(source)] == ("heading", "## Appendix")


def test_appendix_tables(with_appendix, tmp_path):
    text = with_appendix
    assert text.split("\n").count("## Appendix") == 1
    assert (
        "| run | seed | scheduler | status |" in text
        and "| family | run | multiplier | also_changes | seeds | n_seeds | mean_final_valid_loss |"
        in text
        and "| family | rank | multiplier | trials | also_changes |" in text
        and "| verdict | could_be_best |" in text
        and "| range_test | 0.001 | 0.004 | 0.005 |  |" in text
    )
    plain, _, _ = render(tmp_path / "plain")
    assert "Appendix" not in plain


def markdown_rows(lines: list[str], heading: str) -> list[dict]:
    """The rows of the Markdown table under `heading` (blank lines between), each {column: cell}."""
    start = lines.index(heading) + 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            if table or line:
                break
            continue
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    header, rows = table[0], table[2:]
    return [dict(zip(header, row)) for row in rows]


def test_appendix_gives_the_study_line_then_the_verdict(tmp_path):
    """The appendix's verdict, on a table written by hand (tests/test_plots.hand_verdict): its
    heading names the judging metric; the study's line (the reference row's note) comes before
    the table, whose reference row leaves that note out; the run, seeds, raw p-values and their
    levels are left out; also_changes, n_failed, could_be_best, look, both intervals with their
    levels, the equivalence bound and share, p_adjusted and p_failure_holm are in, an infinite
    end as inf and True/False as words."""
    tables = {name: tmp_path / f"{name}.csv" for name in report.APPENDIX_TABLES}
    hand_verdict().to_csv(tables["verdict"], index=False)
    pd.DataFrame({"run": ["a"], "seed": [0]}).to_csv(tables["summary"], index=False)
    pd.DataFrame({"family": ["step"], "selected": [True]}).to_csv(tables["tuning"], index=False)
    config = {"runs": {}, "report": {"sections": {"range_test": []}}}
    lines = report_appendix.appendix(config, tables, {})
    heading = next(i for i, line in enumerate(lines) if line.startswith("### Verdict"))
    assert "(final_test_loss on the test split, paired)" in lines[heading]
    assert lines[heading + 1 : heading + 4] == ["", f"**{STUDY_LINE}**", ""]
    rows = markdown_rows(lines, lines[heading + 2])
    assert [row["family"] for row in rows] == list(hand_verdict()["family"])
    assert not {"run", "seeds", "p", "alpha_nominal", "p_failure"} & set(rows[0])
    shown = ("also_changes", "n_failed", "could_be_best", "look", "diff_level", "p_adjusted")
    assert {*shown, "equivalence_level", "equivalence_share", "p_failure_holm"} <= set(rows[0])
    by_family = {row["family"]: row for row in rows}
    assert by_family["step"]["note"] == ""
    assert by_family["onecycle"]["also_changes"] == "momentum cycled 0.85-0.95"
    undecided = by_family["schedulefree"]
    assert [undecided[k] for k in ("diff_ci_low", "diff_ci_high", "diff_level")] == [
        "-inf",
        "inf",
        "0.9854",
    ]
    assert [undecided[k] for k in ("equivalence_low", "equivalence_high", "look")] == [
        "-inf",
        "0.05",
        "3",
    ]
    assert (by_family["constant"]["n_failed"], by_family["step"]["could_be_best"]) == ("2", "True")


def html_table(page: str, table_id: str) -> list[dict]:
    """The rows of an HTML table (pandas' to_html, as verdict.html has it), each {column: cell}."""
    table = page.split(f'id="{table_id}"')[1].split("</table>")[0]
    header = re.findall(r"<th>(.*?)</th>", table)
    rows = [
        re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    return [dict(zip(header, map(html.unescape, cells))) for cells in rows if cells]


def test_verdict_page_opens_with_the_study_line_then_the_decision(tmp_path):
    """verdict.html of a table written by hand: the study's line first, then the verdict table with
    also_changes, n_failed, could_be_best, look, both intervals the decision used at their levels
    (an infinite end as inf), the equivalence bound and share, p_adjusted, p_failure_holm, the
    word and the note (the reference's left empty: it is the study's line), then tuning."""
    from lrstudy import verdict_page

    tuning = pd.DataFrame({"family": ["step"], "multiplier": [0.5], "selected": [True]})
    page = verdict_page.html_page(hand_verdict(), tuning)
    body = page.split("<body>", 1)[1].lstrip()
    assert body.startswith(f"<p id='study-line'><b>{html.escape(STUDY_LINE)}</b></p>"), body[:300]
    assert page.index('id="verdict"') < page.index('id="tuning"')
    rows = {row["family"]: row for row in html_table(page, "verdict")}
    assert list(rows) == list(hand_verdict()["family"])
    wanted = {"also_changes", "n_failed", "could_be_best", "look", "diff_interval", "p_adjusted"}
    wanted |= {"equivalence_interval", "equivalence_bound", "equivalence_share", "verdict", "note"}
    assert wanted | {"p_failure_holm"} <= set(rows["step"]), set(rows["step"])
    level = layout.level_text
    assert rows["schedulefree"]["diff_interval"] == f"[-inf, inf] at {level(0.9854)}"
    assert rows["schedulefree"]["equivalence_interval"] == f"[-inf, 0.05] at {level(0.97)}"
    assert rows["constant"]["equivalence_interval"] == f"[0.035, 0.085] at {level(0.98)}"
    assert rows["constant"]["equivalence_bound"] == "0.085"
    assert (rows["constant"]["n_failed"], rows["constant"]["look"]) == ("2", "2")
    assert rows["onecycle"]["also_changes"] == "momentum cycled 0.85-0.95"
    assert (rows["onecycle"]["could_be_best"], rows["constant"]["could_be_best"]) == (
        "True",
        "False",
    )
    assert rows["step"]["note"] == "" and rows["step"]["diff_interval"] == ""
    assert rows["constant"]["note"] == "2 failed seed(s) counted at the failure value"


def test_cli(drawn, tmp_path):
    _, out = drawn
    results = out.parent.parent
    config = json.loads((results / "config.json").read_text())
    inputs = report_inputs(results)
    target = tmp_path / "report" / "report.md"
    report.main(
        [
            "--config-json",
            json.dumps(config),
            *[f"--{name}={path}" for name, path in inputs["tables"].items()],
            "--records",
            *map(str, inputs["records"]),
            "--suggestions",
            *map(str, inputs["suggestions"]),
            "--figures",
            *map(str, figure_files(results / "figures")),
            "--template",
            str(TEMPLATE),
            "--out",
            str(target),
        ]
    )
    text = target.read_text()
    assert text.startswith("# Colossalai and LR Range Test Report\n")
    assert sorted(p.stem for p in (target.parent / "images").glob("*.png")) == sorted(
        report.FIGURES
    )
    # --repo defaults to the checkout holding the template: this repository, at its commit (asked
    # of git here)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: {head.stderr.strip()}")
    source_line = next(line for line in text.splitlines() if line.startswith("## source code:"))
    assert f"(commit {head.stdout.strip()})" in source_line, source_line


# The params each caption's rule gives `snakemake.params` (workflow/rules/*.smk): the figures'
# (plot_figures) take what they say of the band from lrstudy.layout; the tables' (aggregate) the
# level of their t-intervals.
CAPTION_PARAMS = {"summary": {}, "tuning": {"level": layout.LEVEL_TEXT}, "report": {}}
CAPTION_PARAMS |= {"verdict": CAPTION_PARAMS["tuning"], "workflow": {}}


@pytest.mark.parametrize(
    "name",
    [
        *report.FIGURES,
        *layout.VERDICT_FIGURES,
        *CAPTION_PARAMS,
        "extra_loss",
        "extra_learning_rate",
    ],
)
def test_captions_render_without_rst_warnings(name):
    """Each figure's and table's caption (and the workflow description) as `snakemake --report`
    renders it: Jinja2 with trim_blocks and lstrip_blocks, `snakemake.config` and the params of
    the rule that made the file set, then docutils. Every t-interval a caption names is at the
    level lrstudy.layout states (the one the figures and tables are computed at)."""
    import jinja2
    from docutils.core import publish_parts

    class Snakemake:
        config = default_config()
        wildcards = {}
        params = CAPTION_PARAMS.get(name, layout.CAPTION_PARAMS)

    path = ROOT / "workflow" / "report" / f"{name}.rst"
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    text = env.from_string(path.read_text()).render(snakemake=Snakemake)
    html = publish_parts(
        text, writer="html", settings_overrides={"halt_level": 2, "report_level": 5}
    )["body"]
    assert "{{" not in html and "{%" not in html
    levels = re.findall(r"(\S+ %) t-interval", text)
    assert set(levels) <= {layout.LEVEL_TEXT}, levels
    assert "min-max" not in text
    if name in report.FIGURES:
        sections = [s for s, figs in layout.SECTION_FIGURES.items() if name in figs] or ["best"]
        if sections[0] != "best":
            for run in Snakemake.config["report"]["sections"][sections[0]]:
                assert run in html, f"{name}.rst does not name run {run}"


def caption_text(name: str) -> str:
    return (ROOT / "workflow" / "report" / f"{name}.rst").read_text()


# ------------------------------------------------------------------------------------ workflow
KIND_RUNS = {
    "warmup_cosine": {
        "scheduler": "SequentialLR",
        "milestones": [20],
        "schedulers": [
            {"scheduler": "LinearLR", "kwargs": {"start_factor": 0.01, "total_iters": 20}},
            {"scheduler": "CosineAnnealingLR", "kwargs": {"T_max": "auto"}},
        ],
    },
    "colossal": {"scheduler": "colossalai.CosineAnnealingWarmupLR", "kwargs": {"warmup_steps": 20}},
    "constant": {"scheduler": "none"},
}
# Each report section's first run: a composition, a ColossalAI scheduler, a constant LR and torch
# classes (OneCycleLR with its length filled in, CyclicLR with the `auto` values the run used).
FIRST_RUNS = [
    {
        "step": "warmup_cosine",
        "exponential": "colossal",
        "onecycle": "onecycle",
        "cyclic": "constant",
    },
    {"step": "step", "exponential": "exp", "onecycle": "cyclic_auto", "cyclic": "warmup_cosine"},
]
SECTION_NUMBER = {"step": 2, "exponential": 3, "onecycle": 4, "cyclic": 5}
STEPS_PER_EPOCH = 40  # the digits train split at batch 32 (tests/configs/tiny.yaml)
BOUNDS = {"lr": 0.2, "max_lr": 0.2, "base_lr": 0.05, "from": "valley"}


def trained_schedule(config: dict, run: str, optimizer):
    """The scheduler the training job builds for `run` and run.json's record of it, through the
    calls train.build_components makes (`auto` values from BOUNDS, as a range test gives them)."""
    from lrstudy import auto, schedules
    from lrstudy.spec import run_spec

    spec = run_spec(config, run, 0)
    name, kwargs = spec.scheduler["class"], spec.scheduler["kwargs"]
    if spec.auto_from:  # its job is given the range test's suggestion
        _, kwargs, _ = auto.resolve_auto(spec.to_dict(), BOUNDS)
    length = (STEPS_PER_EPOCH, config["epochs"])
    scheduler = schedules.build_scheduler(optimizer, name, kwargs, *length)
    return scheduler, {
        "scheduler": {"class": name, "kwargs": schedules.fill_kwargs(name, kwargs, *length)}
    }


def printed_schedule(line: str, optimizer, *, epochs: int):
    """The report's code line, run as printed where the source's training script runs it: with
    `import torch` (and `import colossalai.nn.lr_scheduler` for its own), an `optimizer`, its
    `train_dataloader` and `config["NUM_EPOCHS"]`."""
    import torch

    scope = {
        "torch": torch,
        "optimizer": optimizer,
        "train_dataloader": range(STEPS_PER_EPOCH),
        "config": {"NUM_EPOCHS": epochs},
    }
    if "colossalai" in line:
        import colossalai.nn.lr_scheduler

        scope["colossalai"] = colossalai
    exec(line, scope)
    return scope["lr_scheduler"]


def sgd():
    """A fresh optimizer as tiny.yaml's, on one parameter with a zero gradient."""
    import torch

    param = torch.zeros(1, requires_grad=True)
    param.grad = torch.zeros_like(param)
    return torch.optim.SGD([param], lr=0.1, momentum=0.0, weight_decay=0.0005)


def lr_sequence(make, steps: int) -> list[float]:
    """The LR before each of `steps` batches of a fresh sgd() stepped with the scheduler
    `make(optimizer)` builds (None: a constant LR)."""
    optimizer = sgd()
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return lrs


@pytest.mark.parametrize("firsts", FIRST_RUNS, ids=["composition-colossal-onecycle-none", "torch"])
def test_each_sections_code_line_runs_the_schedule_the_job_builds(tmp_path, firsts):
    """The rendered report's code line of each section, executed as printed, builds a scheduler
    whose LRs over the whole run equal those of the scheduler the job builds for that run."""
    from .conftest import study_config

    config = study_config(runs=KIND_RUNS)
    sections = config["report"]["sections"]
    for section, run in firsts.items():
        sections[section] = [run]
    sections["onecycle_max_lr"] = [firsts["onecycle"]]
    steps, epochs = STEPS_PER_EPOCH * config["epochs"], config["epochs"]
    records = []
    for run in firsts.values():
        _, record = trained_schedule(config, run, sgd())
        records.append(tmp_path / "runs" / run / "seed0" / "run.json")
        records[-1].parent.mkdir(parents=True)
        records[-1].write_text(json.dumps({"run": run, "seed": 0, **record}))
    text = report.render_text(TEMPLATE, report.context(config, None, records, (), tmp_path))
    chunks = re.split(r"^## (\d)\. ", text, flags=re.MULTILINE)
    code = {
        int(n): [ln[4:] for ln in body.splitlines() if ln.startswith("    ")]
        for n, body in zip(chunks[1::2], chunks[2::2])
    }
    for section, run in firsts.items():
        (line,) = code[SECTION_NUMBER[section]]
        assert line.startswith("lr_scheduler = ") and "auto" not in line, line
        printed = lr_sequence(functools.partial(printed_schedule, line, epochs=epochs), steps)
        trained = lr_sequence(lambda opt, run=run: trained_schedule(config, run, opt)[0], steps)
        assert printed == trained, (run, line)
        assert (len(set(trained)) == 1) == (run == "constant"), run  # the others move the LR
