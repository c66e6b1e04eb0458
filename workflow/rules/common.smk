# Config validation and every input function of the workflow.
import csv
import functools
import json
import os
import re
import shlex
import signal
import sys

sys.path.insert(0, f"{workflow.basedir}/workflow")  # the package, installed or not

from lrstudy import config as study
from lrstudy import spec as specs
from lrstudy import factories, families
from lrstudy.gpus import visible_gpu_ids
from lrstudy import layout

# Rules run `python -m lrstudy...` from the workflow's own package: with --use-conda in its env's
# python, otherwise in the python of this Snakemake (the venv, even when it is not activated).
DEPLOYMENT = getattr(workflow.deployment_settings, "deployment_method", ()) or ()
USE_CONDA = any("conda" in str(method).lower() for method in DEPLOYMENT)
PYTHON_PATH = (
    "" if USE_CONDA else f"export PATH={os.path.dirname(sys.executable)}:$PATH; "
)


# The workflow's package, then the user's `python_path` (absolute once validated, below), then
# whatever PYTHONPATH was: for every local job, SLURM job and torchrun rank.
def set_shell_prefix(folders):
    path = ":".join([f"{workflow.basedir}/workflow", *folders])
    shell.prefix(
        f"set -euo pipefail; {PYTHON_PATH}"
        f"export PYTHONPATH={shlex.quote(path)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    )


# Every rule's command ends with SHOW_LOG (`logged`): a job that fails prints its log's last lines, so that
# its error (a corrupted file named, a failed download, a full disk) reaches the console.
SHOW_LOG = " || {{ status=$?; echo '--- tail of {log}:' >&2; tail -n 25 {log} >&2; exit $status; }}"


def logged(command):
    """A rule's `command` (which writes its output to {log}) with SHOW_LOG after it."""
    return command + SHOW_LOG


# Under SLURM the early warning (SIGUSR1, slurm/config.yaml) reaches every process of the job's
# step, Snakemake's own included, whose default action for it is to die, and the step would end
# before the training job finished its checkpoint. Snakemake ignores it; the training job
# (lrstudy.faults) catches it.
if "SLURM_JOB_ID" in os.environ:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)

LOCAL_GPUS = 0 if config.get("device") == "cpu" else len(visible_gpu_ids())
# Snakemake's validate() against workflow/schemas/config.schema.yaml, then the checks that need
# torch or the whole config; every error names its config key. The device checks wait for the
# DAG (`checked_executor` below): only then does Snakemake know its executor.
# `--config key=[...]` values arrive as strings: their numbers are read as numbers first.
study.validate(
    config,
    workflow.configfiles,
    executor=None,
    local_gpus=LOCAL_GPUS,
    overrides=workflow.config_settings.config,
)
set_shell_prefix(config["python_path"])

DATASET = factories.dataset_name(config["dataset"])
RUNS = list(config["runs"])
RANGE_RUNS = study.range_runs(config)
SEEDS = config["seeds"]
FAMILIES = list(config["families"])
TUNING = config["tuning"]
# The confirmation seeds each look of the verdict adds (lrstudy.families.look_seeds).
LOOK_SEEDS = families.look_seeds(config)


def one_of(names):
    """A wildcard that matches exactly these names (the config's runs, or its families)."""
    return "|".join(re.escape(name) for name in names)


wildcard_constraints:
    run=one_of(RUNS),
    family=one_of(FAMILIES),
    seed=r"\d+",
    round=r"\d+",
    look=r"\d+",
    multiplier=r"[0-9][0-9.e+-]*",
    dataset="[a-z_0-9]+",


def executor():
    """`slurm` under the SLURM executor (also inside its jobs), else `local`. Known once the DAG is
    built, which is when Snakemake evaluates the resource functions below."""
    name = getattr(workflow.executor_plugin, "name", None) or ""
    return "slurm" if "slurm" in name else "local"


@functools.cache
def checked_executor():
    """executor(), once the device checks of the config passed for it (lrstudy.config.check_device)."""
    study.check_device(config, executor(), LOCAL_GPUS)
    return executor()


def train_gpus(wildcards):
    return specs.job_gpus(config, checked_executor(), LOCAL_GPUS)


def train_threads(wildcards):
    plan = specs.device_plan(config, checked_executor(), LOCAL_GPUS)
    return config["threads"] * specs.world_size(plan, config["gpus"], config["procs"])


# Where every file of a run lives (lrstudy.layout: the train rule's outputs, and the range-test
# suggestions beside them). Every other path of a run is a rule's output (`rules.X.output.Y`).
SEED_FOLDER = layout.SEED_FOLDER
# A training job trains every seed of its run (`train_jobs: per_run`, one start-up per run) or
# one seed (`per_seed`, a `{seed}` wildcard): its outputs are the seed folders it fills.
JOB_SEEDS = SEEDS if config["train_jobs"] == "per_run" else ["{seed}"]


def train_outputs(name):
    pattern = os.path.join(SEED_FOLDER.replace("{run}", "{{run}}"), name)
    return expand(pattern, seed=JOB_SEEDS)


def family_outputs(name, runs, seeds):
    """The files `name` of a family job's runs (their names hold `{family}`) and seeds."""
    folders = [SEED_FOLDER.replace("{run}", run) for run in runs]
    return [
        os.path.join(f.replace("{seed}", str(s)), name) for f in folders for s in seeds
    ]


# The tuning job of a family trains every grid point on the tuning seeds (a point beyond the grid
# is a job of its own); its confirmation jobs the chosen point on each look's seeds (lrstudy.families
# names their runs).
TUNING_RUNS = [families.tuning_run("{family}", m) for m in TUNING["multipliers"]]
BEYOND_RUN = f"{families.TUNE_PREFIX}{{family}}-x{{multiplier}}"
CONFIRMATION_RUN = families.confirmation_run("{family}")


def tuning_outputs(name):
    return family_outputs(name, TUNING_RUNS, TUNING["seeds"])


def beyond_outputs(name):
    return family_outputs(name, [BEYOND_RUN], TUNING["seeds"])


def confirmation_outputs(name, look=1):
    return family_outputs(name, [CONFIRMATION_RUN], LOOK_SEEDS[look - 1])


def job_runs(wildcards, stage="train"):
    """(run, seed) of every run folder a training job fills, in its outputs' order: a run's seeds
    (rule train), a family's grid points on the tuning seeds (tune), one point beyond the grid
    (beyond), its confirmation seeds (confirm: the first look's; a number: that look's).
    """
    if stage == "train":
        return [(wildcards.run, seed) for seed in get_job_seeds(wildcards)]
    family = wildcards.family
    if stage not in ("tune", "beyond"):
        look = 1 if stage == "confirm" else stage
        return [(families.confirmation_run(family), s) for s in LOOK_SEEDS[look - 1]]
    runs = families.tuning_runs(config, family)
    if stage == "beyond":
        runs = [BEYOND_RUN.format(family=family, multiplier=wildcards.multiplier)]
    return [(run, seed) for run in runs for seed in TUNING["seeds"]]


def train_runtime(wildcards, attempt, stage="train"):
    return config["runtime"] * attempt * len(job_runs(wildcards, stage))


def get_job_seeds(wildcards):
    return [int(wildcards.seed)] if "seed" in wildcards.keys() else SEEDS


def get_prepared_data(wildcards):
    return rules.prepare_data.output.data.format(dataset=DATASET)


def get_suggestion(wildcards, stage="train"):
    """A job whose runs have `auto` values waits for their range test's suggestion (across
    seeds); a family's runs share theirs."""
    run = job_runs(wildcards, stage)[0][0]
    if study.uses_auto(config, run):
        source = study.auto_source(config, run)
        return rules.combine_suggestions.output.combined.format(run=source)
    return []


def train_command(wildcards, input, output, stage="train"):
    """A training job's command line (rules train, tune and confirm), built where the tests,
    bench and gpu_check build theirs (lrstudy.spec.train_argv): the job's specs, its prepared
    data, the folders of its run.json outputs, its suggestion and selection where it has them.
    """
    job = [
        specs.run_spec(config, run, seed) for run, seed in job_runs(wildcards, stage)
    ]
    folders = [os.path.dirname(path) for path in output.run]
    suggestion, selection = input.suggestion or None, input.get("selection")
    argv = specs.train_argv(
        job, input.data, folders, suggestion, selection, python="python"
    )
    return shlex.join(argv)


# The one command line of every training job (rules train, tune and confirm).
TRAIN_COMMAND = logged("{params.command} > {log} 2>&1")


def get_run_records(runs=None):
    """run.json of every seed of `runs` (default the config's), as the train rule writes them."""
    records = expand(rules.train.output.run, run=runs or RUNS, seed=SEEDS)
    return list(dict.fromkeys(records))


def get_family_records(wildcards):
    """run.json of every family's tuning runs (the grid and the points beyond it) and
    confirmation runs (every look's seeds): known as the tuning and look checkpoints finish.
    """
    records = []
    for family in FAMILIES:
        records += [path.format(family=family) for path in rules.tune.output.run]
        for multiplier in beyond_multipliers(family, last_round(family)):
            records += beyond_records(family, multiplier)
    return records + confirmation_records(last_look())


def get_selections():
    return expand(rules.settle_setting.output.selection, family=FAMILIES)


def round_selection(family, number):
    """A family's selection of round `number` (a checkpoint: the DAG waits for it)."""
    path = checkpoints.select_setting.get(family=family, round=number).output.selection
    with open(path) as handle:
        return json.load(handle)


def beyond_multipliers(family, rounds):
    """The points beyond the grid that a family's first `rounds` rounds asked for."""
    return [round_selection(family, number)["extend"] for number in range(rounds)]


def beyond_records(family, multiplier):
    point = layout.format_value(multiplier)
    return [
        p.format(family=family, multiplier=point) for p in rules.tune_beyond.output.run
    ]


def last_round(family):
    """The number of a family's last round: the first that asks for no point beyond."""
    number = 0
    while round_selection(family, number)["extend"] is not None:
        number += 1
    return number


def get_round_records(wildcards):
    """run.json of a family's grid and of the points beyond it before this round."""
    family, rounds = wildcards.family, int(wildcards.round)
    records = [path.format(family=family) for path in rules.tune.output.run]
    for multiplier in beyond_multipliers(family, rounds):
        records += beyond_records(family, multiplier)
    return records


def get_last_round(wildcards):
    family = wildcards.family
    return checkpoints.select_setting.get(
        family=family, round=last_round(family)
    ).output.selection


def look_rule(look):
    return rules.confirm if look == 1 else getattr(rules, f"confirm_look{look}")


def continuing(look):
    """The families (the reference among them) the decision at `look` retrains at the next."""
    path = checkpoints.judge_look.get(look=look).output.decision
    with open(path) as handle:
        return json.load(handle)["continuing"]


def confirmation_records(look):
    """run.json of the confirmation seeds through `look`: the first look's of every family, each
    later look's of the families the decision before it retrained."""
    records = [p.format(family=f) for f in FAMILIES for p in rules.confirm.output.run]
    for number in range(2, look + 1):
        outputs = look_rule(number).output.run
        records += [p.format(family=f) for f in continuing(number - 1) for p in outputs]
    return records


def last_look():
    """The verdict's last look: the first after which no family trains on, or the last of all."""
    look = 1
    while look < len(LOOK_SEEDS) and continuing(look):
        look += 1
    return look


def get_look_records(wildcards):
    return confirmation_records(int(wildcards.look))


def get_seed_record(wildcards):
    """The run.json a range test's seed left (the train rule's output for that seed)."""
    return layout.SEED_RECORD.format(**wildcards)


def get_seed_suggestions(wildcards):
    pattern = rules.suggest_lr.output.suggestion
    return expand(pattern, run=wildcards.run, seed=SEEDS)


def get_range_suggestions(runs=None):
    """The combined suggestion.json of the range tests `runs` (default all)."""
    pattern = rules.combine_suggestions.output.combined
    return expand(pattern, run=RANGE_RUNS if runs is None else runs)


def get_final_outputs():
    return [
        rules.aggregate.output.summary,
        rules.aggregate.output.verdict,
        rules.aggregate.output.best,
        *get_range_suggestions(),
        rules.render_report.output.md,
    ]


# ------------------------------------------------------------------ figures and the report
REPORT_TEMPLATE = os.path.join(workflow.basedir, "report_template", "report.md.j2")
# The modules as inputs too: an edit of the drawing or layout code redraws and re-renders.
PACKAGE = os.path.join(workflow.basedir, "workflow", "lrstudy")
PLOTS_MODULES = (
    "plots",
    "plot_base",
    "plot_lr",
    "plot_loss",
    "plot_range",
    "verdict_plots",
    "verdict",
)
PLOTS_CODE = [
    os.path.join(PACKAGE, f"{name}.py") for name in (*PLOTS_MODULES, "layout")
]
REPORT_MODULES = ("report", "report_appendix", "verdict_page", "verdict", "layout")
REPORT_CODE = [os.path.join(PACKAGE, f"{name}.py") for name in REPORT_MODULES]


def figure_outputs():
    """Every figure, marked for the HTML report with its caption (lrstudy.layout.caption_for),
    its section's category and its kind (lrstudy.layout.figure_kinds); then the figures of
    `report.extra_sections`, each section a category of its own (captions extra_*.rst).
    """
    outputs = [
        # (`report(` may not begin a line in a Snakefile: the parser takes it for the directive)
        mark_for_report(
            name,
            layout.caption_for(name, kind),
            layout.REPORT_CATEGORIES[section],
            kind,
        )
        for section, name, kind in layout.figure_kinds()
    ]
    for name, kind in layout.VERDICT_FIGURES.items():
        caption = layout.caption_file(name)
        outputs.append(mark_for_report(name, caption, layout.VERDICT_CATEGORY, kind))
    extra = config["report"]["extra_sections"]
    for number, section in enumerate(extra, start=layout.EXTRA_FIRST_CATEGORY):
        for name, kind in zip(layout.extra_figures(section), layout.EXTRA_KINDS):
            caption = layout.caption_file(f"extra_{kind.replace(' ', '_')}")
            outputs.append(mark_for_report(name, caption, f"{number} {section}", kind))
    return outputs


def mark_for_report(name, caption, category, kind):
    return report(
        f"results/figures/{name}.png",
        caption=caption,
        category=category,
        subcategory=kind,
        labels={"figure": name, "shows": kind},
    )


def report_runs():
    """The runs the report's sections name (their run.json give the code lines)."""
    return list(
        dict.fromkeys(r for runs in config["report"]["sections"].values() for r in runs)
    )


def get_report_records():
    return get_run_records(report_runs())


def get_report_suggestions():
    return get_range_suggestions(config["report"]["sections"]["range_test"])


def report_config_json(keys=("runs", "report", "seeds")):
    return json.dumps({key: config[key] for key in keys})


def study_answer(verdict_csv):
    """The study's answer (the reference row's note of verdict.csv: lrstudy.verdict.study_line)
    once a run has written it, else "": the HTML report's front page opens with it
    (workflow/report/workflow.rst reads it as config `_answer`, which no rule reads)."""
    if not os.path.exists(verdict_csv):
        return ""
    with open(verdict_csv, newline="") as handle:
        rows = csv.DictReader(handle)
        return next((r["note"] for r in rows if r["verdict"] == layout.REFERENCE), "")


def verdict_settings_json():
    """What the verdict stages read of the config (lrstudy.families.verdict_settings)."""
    return json.dumps(families.verdict_settings(config))
