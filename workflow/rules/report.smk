# Figures and the Markdown report (the source report's layout), and the HTML report's captions.
# Their folders are those of their inputs and outputs (params), never typed in the command.
rule plot_figures:
    input:
        steps=rules.aggregate.output.steps,
        evals=rules.aggregate.output.evals,
        summary=rules.aggregate.output.summary,
        best=rules.aggregate.output.best,
        tuning=rules.aggregate.output.tuning,
        verdict=rules.aggregate.output.verdict,
        suggestions=get_report_suggestions(),
        runs=get_report_records(),
        code=PLOTS_CODE,
    output:
        figure_outputs(),
    log:
        "results/logs/plot_figures.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        config=report_config_json(("runs", "report", "loss")),
        tables=lambda wc, input: os.path.dirname(input.steps),
        runs=get_runs_folder,
        out=lambda wc, output: os.path.dirname(output[0]),
    shell:
        logged(
            "python -m lrstudy.plots --tables {params.tables} --runs {params.runs}"
            " --config-json {params.config:q} --out {params.out} > {log} 2>&1"
        )


rule render_report:
    input:
        figures=rules.plot_figures.output,
        summary=rules.aggregate.output.summary,
        best=rules.aggregate.output.best,
        verdict=rules.aggregate.output.verdict,
        runs=get_report_records(),
        suggestions=get_report_suggestions(),
        template=REPORT_TEMPLATE,
        code=REPORT_CODE,
    output:
        md=report(
            "results/report/report.md",
            caption="../report/report.rst",
            category="Report",
            labels={"file": "report.md"},
        ),
        images=expand("results/report/images/{name}.png", name=layout.FIGURES),
    log:
        "results/logs/render_report.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        config=report_config_json(),
        tables=lambda wc, input: os.path.dirname(input.summary),
        runs=get_runs_folder,
        figures=lambda wc, input: os.path.dirname(input.figures[0]),
    shell:
        logged(
            "python -m lrstudy.report --config-json {params.config:q} --tables {params.tables}"
            " --runs {params.runs} --figures {params.figures} --template {input.template:q}"
            " --out {output.md} > {log} 2>&1"
        )
