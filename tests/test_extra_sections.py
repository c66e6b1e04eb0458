"""`report.extra_sections`: more sections (config/modern.yaml's `modern`), an LR and a loss figure
each, for the HTML report only; the Markdown report keeps the source's layout."""

import pytest

from lrstudy import config as study
from lrstudy import layout, plots

from .test_plots import capture, read_tables, synthetic_study
from .util import default_config, validated


def test_an_extra_section_draws_its_runs_in_both_figures(tmp_path, monkeypatch):
    figures = capture(monkeypatch)
    config = synthetic_study(tmp_path / "results")
    runs = [r for r in config["runs"] if "range_test" not in config["runs"][r]][:3]
    config["report"]["extra_sections"] = {"newer": runs}
    tables = read_tables(tmp_path / "results")
    written = plots.draw_all(config, tables, tmp_path / "figures")
    lr_name, loss_name = layout.extra_figures("newer")
    assert [p.stem for p in written[-2:]] == [lr_name, loss_name]
    for name in (lr_name, loss_name):
        legend = [text for text, _ in figures[name][0]["legend"]]
        assert [text for text in legend if text in runs] == runs, (name, legend)
    assert lr_name not in layout.FIGURES and loss_name not in layout.FIGURES  # not in report.md


def test_an_extra_section_naming_an_unknown_run_is_refused():
    config = validated({**default_config(), "report": {**default_config()["report"]}})
    config["report"]["extra_sections"] = {"modern": ["step", "nosuchrun"]}
    with pytest.raises(study.ConfigError) as error:
        study.check_report(config)
    assert error.value.key == "report.extra_sections.modern" and "nosuchrun" in str(error.value)
