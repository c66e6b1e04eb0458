# LR schedule study: LeNet5 with ColossalAI under an LR range test and torch's schedulers.
# Stages: prepare data -> one training job per run (its seeds), range-test suggestions -> per
# schedule family a tuning job (the LR grid; points beyond its edge where the pick sits there),
# the chosen setting, a confirmation job per look (more seeds while a family is undecided) -> the
# tables and the verdict -> figures -> the Markdown report (and `snakemake --report report.html`).
from snakemake.utils import min_version

min_version("9.0")


# The embedded default; `--configfile X` replaces it (config/mnist.yaml is a whole study).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/rangetest.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"


# Under a cluster executor only training goes to the compute nodes.
localrules:
    all,
    prepare_data,
    select_setting,
    settle_setting,
    judge_look,
    suggest_lr,
    combine_suggestions,
    aggregate,
    plot_figures,
    render_report,


rule all:
    default_target: True
    input:
        get_final_outputs(),
