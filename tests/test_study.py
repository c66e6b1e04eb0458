"""The shared tiny study (tests/conftest.py `tiny_study`: tiny.yaml on two seeds, both stages,
run once): its tables, its verdict, its report and the HTML report a person clicks through.

These tests read one study, so they live in one file: `make test` gives each file (and each test
class) to one pytest-xdist worker (`--dist loadscope`), so the study is made once."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrstudy import families, layout, report
from lrstudy.layout import FIGURES, format_value

from . import report_browser
from .conftest import run_study, snakemake_cmd, study_raw_config
from .test_plots import png_size
from .test_report import caption_text, image_sources, skeleton
from .test_workflow import family_runs, final_valid_losses, report_images_are_the_figures
from .util import SOURCE, job_env, needs_source, validated


@pytest.mark.slow
def test_study_ends_with_the_tuning_and_verdict_tables(tiny_study, workflow_copy):
    """The tiny study, both stages: a summary row per run and seed; every family on the same grid
    and seeds; the selected grid point is the family's lowest mean final valid loss (recomputed
    from the runs' own evals.csv); confirmation seeds disjoint from the tuning seeds; a family's
    `auto` anchor is the range test's bound moved to its momentum, times the multiplier; the
    same run trained one seed per job has the bytes it has inside its run's job."""
    raw = study_raw_config()
    config = validated(raw)
    results = tiny_study / "results"
    summary = pd.read_csv(results / "tables" / "summary.csv")
    planned = {(r, str(s)) for r in config["runs"] for s in config["seeds"]}
    planned |= family_runs(config, results)  # the points beyond the grid, the later looks' seeds
    assert {(r, str(s)) for r, s in zip(summary["run"], summary["seed"])} == planned
    assert len(summary) == len(planned)
    tuning = pd.read_csv(results / "tables" / "tuning.csv")
    final = final_valid_losses(results / "runs")
    grid, seeds = config["tuning"]["multipliers"], config["tuning"]["seeds"]
    for family in config["families"]:
        rows = tuning[tuning["family"] == family]
        assert set(grid) <= set(rows["multiplier"])  # and the points beyond it that were asked for
        beyond = sorted(set(rows["multiplier"]) - set(grid))
        picks = [json.loads(p.read_text()) for p in sorted((results / "tuning" / family).glob("*"))]
        assert beyond == sorted(p["extend"] for p in picks if p["extend"] is not None)
        assert set(rows["seeds"]) == {" ".join(map(str, seeds))}
        means = {
            row.multiplier: np.mean([final[row.run, s] for s in seeds]) for row in rows.itertuples()
        }
        eligible = {m for m, ok in zip(rows["multiplier"], rows["eligible"]) if ok}
        assert rows.loc[rows["selected"], "multiplier"].tolist() == [
            min(eligible, key=lambda m: (means[m], m))
        ]
    # tuning evaluates what the choice reads, the final valid loss: never the test split, valid
    # at the start and the end; confirmation runs evaluate as the source's runs do
    for family in config["families"]:
        for m in grid:
            run_dir = results / "runs" / f"tune-{family}-x{m:g}" / "seed0"
            evals, steps = pd.read_csv(run_dir / "evals.csv"), pd.read_csv(run_dir / "steps.csv")
            assert set(evals["split"]) == {"valid"}
            assert sorted(evals["step"]) == [0, len(steps)]
        evals = pd.read_csv(results / "runs" / f"confirm-{family}" / "seed10" / "evals.csv")
        assert set(evals["split"]) == {"valid", "test"}
    verdict = pd.read_csv(results / "tables" / "verdict.csv", keep_default_na=False)
    confirm = set(config["tuning"]["confirm_seeds"])
    assert not confirm & set(seeds)
    looks = families.look_seeds(config)
    for row in verdict.itertuples():  # the seeds of every look up to the one that decided
        trained = list(map(int, row.seeds.split()))
        assert (
            set(trained) >= confirm
            and trained == [s for look in looks for s in look][: len(trained)]
        )
        assert row.n_seeds == sum(len(look) for look in looks[: int(row.look)])
    assert sorted(verdict["rank"]) == list(range(1, len(config["families"]) + 1))
    assert set(verdict["verdict"]) <= {"reference", "better", "worse", "equivalent", "undecided"}
    assert (verdict["verdict"] == "reference").sum() == 1
    # the onecycle family's `auto` max_lr: the bound of the range test run with the families'
    # optimizer (momentum 0.9, which the family keeps: factor 1), x the grid point's multiplier
    bounds = json.loads((results / "runs" / "range_test-families" / "suggestion.json").read_text())
    for m in grid:
        run = json.loads(
            (results / "runs" / f"tune-onecycle-x{m:g}" / "seed0" / "run.json").read_text()
        )
        assert run["scheduler"]["kwargs"]["max_lr"] == pytest.approx(
            bounds["bounds"]["max_lr"] * m, rel=1e-12
        )
        assert run["scheduler"]["kwargs"]["cycle_momentum"] is False
    # the report shows every figure the study drew for the source's layout
    shown = report_images_are_the_figures(results)
    assert {name.removesuffix(".png") for name in shown} == set(FIGURES)

    per_seed = workflow_copy({**raw, "train_jobs": "per_seed"})
    target = "results/runs/step/seed1/steps.csv"
    run_study(per_seed, target)
    assert (per_seed / target).read_bytes() == (tiny_study / target).read_bytes()
    assert (per_seed / "results" / "logs" / "train" / "step" / "seed1.log").is_file()


@pytest.mark.slow
def test_diverging_range_test_and_auto_bounds_flow_into_the_report(tiny_study):
    """The tiny study's range test (up to LR 1e3, where LeNet5 blows up on any CPU) ends
    `diverged`; aggregation, figures and report still succeed, and the `auto` run's code line in
    the report shows the bounds it trained with."""
    results = tiny_study / "results"
    range_run = json.loads((results / "runs" / "range_test" / "seed0" / "run.json").read_text())
    assert range_run["status"] == "diverged"
    assert range_run["steps"] < range_run["total_steps"] == 400
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert set(summary.loc[summary["run"] == "range_test", "status"]) == {"diverged"}
    # cyclic_auto takes `auto` from the range test whose momentum is closest to its own where its
    # LR takes the value: CyclicLR's floor meets max_momentum 0.9, as range_test-families (the
    # families' optimizer, momentum 0.9) trains: factor 1; its peak meets base_momentum 0.8:
    # factor (1 - 0.8) / (1 - 0.9) = 2
    test = results / "runs" / "range_test-families" / "suggestion.json"
    bounds = json.loads(test.read_text())["bounds"]
    auto = json.loads((results / "runs" / "cyclic_auto" / "seed0" / "run.json").read_text())
    assert auto["auto"]["range_test"] == "range_test-families"
    used = auto["scheduler"]["kwargs"]
    assert used["base_lr"] == pytest.approx(bounds["base_lr"], rel=1e-12)
    assert used["max_lr"] == pytest.approx(bounds["max_lr"] * 2, rel=1e-12)
    text = (results / "report" / "report.md").read_text()
    assert (
        f"CyclicLR(optimizer, base_lr={format_value(used['base_lr'])}, "
        f"max_lr={format_value(used['max_lr'])}"
    ) in text
    assert "ExponentiallyIncLoss.png" in report_images_are_the_figures(results)


@pytest.mark.slow
@needs_source
def test_the_report_has_the_sources_layout(tiny_study):
    """Headings and code lines as the source's, holding the tiny study's numbers (step_size 40);
    the shared tiny study (tests/conftest.py), both stages: sections 3 and 4b compare two gammas
    and two max_lr, as the source's do."""
    text = (tiny_study / "results" / "report" / "report.md").read_text()

    def shape(items):
        numbers = r"\d+(\.\d+)?(e-?\d+)?"
        return [
            ("code",) if kind == "code" else (kind, re.sub(numbers, "N", rest[0]), *rest[1:])
            for kind, *rest in items
        ]

    assert shape(skeleton(text)) == shape(skeleton(SOURCE.read_text()))


@pytest.mark.slow
def test_snakemake_report_and_html(tiny_study, tmp_path):
    # the shared tiny study (tests/conftest.py), both stages. The HTML report and zip go to
    # tmp_path.
    dst = tiny_study
    env = job_env()
    snakemake = snakemake_cmd("--cores", "2")
    md = dst / "results" / "report" / "report.md"
    text = md.read_text()
    # the study's own values: the config's kwargs, the compared values, and the `auto` values
    # of cyclic_auto as its job trained with them (its run.json), never `auto`
    cyclic = json.loads((dst / "results/runs/cyclic_auto/seed0/run.json").read_text())
    used = cyclic["scheduler"]["kwargs"]
    lines = text.split("\n")
    for expected in (
        "## 2. Decays the learning rate of each parameter group by gamma=0.5 every 40 epochs.",
        "    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=40, gamma=0.5)",
        "    lr_scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.99)",
        "### Learning rate (comparing different gamma - decaying rate)",
        "* Compare different max_lr (0.1 vs 0.05)",
        "        low = math.log2(0.001)",
        "        high = math.log2(1000)",
        "    lr_scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, "
        f"base_lr={layout.format_value(used['base_lr'])}, "
        f"max_lr={layout.format_value(used['max_lr'])}, step_size_up=20, step_size_down=40)",
    ):
        assert expected in lines, expected
    assert "auto" not in text
    for src in image_sources(text):
        assert png_size(md.parent / src)[0] > 200

    def make_report(name: str) -> Path:
        """`snakemake --report tmp_path/NAME` of the shared study."""
        done = subprocess.run(
            [*snakemake, "--report", str(tmp_path / name)],
            cwd=dst,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return tmp_path / name

    html = make_report("report.html").read_text()
    # Snakemake embeds each file as a data URI:
    # data:image/png;charset=utf8;filename=NAME.png;base64,...
    for name in report.FIGURES:
        found = re.search(rf"filename={re.escape(name)}\.png;base64,([A-Za-z0-9+/=]+)", html)
        assert found, f"{name}.png is not embedded in report.html"
        assert (
            base64.b64decode(found.group(1))
            == (dst / "results" / "figures" / f"{name}.png").read_bytes()
        )
    assert "report.md" in html
    # every caption of a figure with a band names the interval lrstudy.plots draws (the rule's
    # params, from lrstudy.layout), as Snakemake embeds the captions (JSON-escaped)
    band = json.dumps(layout.BAND_TEXT)[1:-1]
    with_band = [n for n in report.FIGURES if "{{ snakemake.params.band }}" in caption_text(n)]
    assert len(with_band) >= 15 and html.count(band) >= len(with_band), html.count(band)
    for caption in ("section 2 of the source report", "best schedule families"):
        assert caption in html
    # The same report as a zip (the catalog's `report: true`): report.html plus every figure, byte
    # for byte
    with zipfile.ZipFile(make_report("report.zip")) as archive:
        names = archive.namelist()
        assert any(n.endswith("/report.html") for n in names), names[:20]
        for name in report.FIGURES:
            member = next((n for n in names if n.endswith(f"/{name}.png")), None)
            assert member, f"{name}.png is not in report.zip"
            assert (
                archive.read(member) == (dst / "results" / "figures" / f"{name}.png").read_bytes()
            )
        assert any(n.endswith("/report.md") for n in names) and any(
            n.endswith("/summary.csv") for n in names
        )
    # each figure carries its labels (workflow/rules/common.smk: mark_for_report)
    for name in ("StepDecLR", "compare3bestTestLoss"):
        assert re.search(rf'"figure":\s*"{name}"', html), f"no label figure={name} in report.html"
    check_in_browser(tmp_path / "report.html", dst / "results" / "tables", tmp_path)


def check_in_browser(page: Path, tables: Path, work: Path) -> None:
    """The report in headless Chromium, clicked through as a person would: the front page opens
    with the study's line (verdict.csv's reference note); the verdict category shows the verdict
    page (the study's line first, one row per family with its word, also_changes, n_failed,
    could_be_best and the decision's two intervals at their levels) and both verdict figures."""
    if report_browser.chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    verdict = pd.read_csv(tables / "verdict.csv", keep_default_na=False)
    line = verdict.loc[verdict["verdict"] == "reference", "note"].item()
    assert line.startswith("Could be best (") and "tuning's pick" in line, line
    front = report_browser.click_through(page, [], work)
    assert "error" not in front, front["error"]
    title = "LR schedule study: LeNet5 trained with ColossalAI"  # workflow/report/workflow.rst
    assert title in front["text"], front["text"][:600]
    opening = front["text"].split(title, 1)[1].lstrip()
    assert opening.startswith(f"The answer. {line}"), opening[:600]
    category = layout.VERDICT_CATEGORY
    shown = report_browser.click_through(
        page,
        [category, layout.VERDICT_TABLES, {"row": "verdict and tuning (page)", "icon": "eye"}],
        work,
    )
    assert "error" not in shown, shown["error"]
    assert [frame.split(";")[2] for frame in shown["frames"]] == ["filename=verdict.html"]
    check_verdict_page(report_browser.open_data_uri(shown["frames"][0], work), verdict, line)
    for name, kind in layout.VERDICT_FIGURES.items():
        shown = report_browser.click_through(
            page, [category, kind, {"row": name, "icon": "eye"}], work
        )
        assert "error" not in shown, shown["error"]
        drawn = [width for src, width in shown["images"] if f"filename={name}.png;" in src]
        assert drawn and drawn[0] > 0, f"{name}.png is not shown: {shown['images']}"


def shown_interval(low: str, high: str, level: str) -> str:
    """An interval of verdict.csv as the page writes it: 4 digits, its level (layout)."""
    if "" in (low, high, level):
        return ""
    return f"[{float(low):.4g}, {float(high):.4g}] at {layout.level_text(float(level))}"


def check_verdict_page(dom: str, verdict: pd.DataFrame, line: str) -> None:
    """verdict.html as Chromium shows it: the study's line before anything else, then a row per
    family (verdict.csv's order) with its rank, word, also_changes, n_failed, could_be_best, look
    and the difference and equivalence tests' intervals at their levels."""
    body = html.unescape(re.sub(r"<[^>]+>", "", dom.split("<body>", 1)[1])).strip()
    assert body.startswith(line), body[:400]
    table = dom.split('id="verdict"')[1].split("</table>")[0]
    header = re.findall(r"<th>(.*?)</th>", table)
    rows = [
        re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    shown = [dict(zip(header, map(html.unescape, cells))) for cells in rows if cells]
    columns = ("rank", "family", "verdict", "also_changes", "n_failed", "could_be_best", "look")
    assert [tuple(row[c] for c in columns) for row in shown] == [
        tuple(str(row[c]) for c in columns) for row in verdict.to_dict("records")
    ]
    for row, csv in zip(shown, verdict.to_dict("records")):
        for name, ends in (
            ("diff_interval", ("diff_ci_low", "diff_ci_high", "diff_level")),
            ("equivalence_interval", ("equivalence_low", "equivalence_high", "equivalence_level")),
        ):
            assert row[name] == shown_interval(*(str(csv[e]) for e in ends)), (row, name)
    assert any(row["diff_interval"] for row in shown), "no family's interval is shown"


# --------------------------------------------------------------------- code lines that run
