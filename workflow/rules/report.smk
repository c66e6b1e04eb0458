# Figures and the Markdown report (the source report's layout), and the HTML report's captions.
rule plot_figures:
    input:
        steps="results/tables/steps.csv",
        evals="results/tables/evals.csv",
        summary="results/tables/summary.csv",
        best="results/tables/best.csv",
        suggestions=report_suggestions(),
        code=PLOTS_CODE,
    output:
        figure_outputs(),
    log:
        "results/logs/plot_figures.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        config=report_config_json(("runs", "report")),
    shell:
        "python -m lrstudy.plots --tables results/tables --runs results/runs"
        " --config-json {params.config:q} --out results/figures > {log} 2>&1"


rule render_report:
    input:
        figures=expand("results/figures/{name}.png", name=layout.FIGURES),
        summary="results/tables/summary.csv",
        best="results/tables/best.csv",
        comparison=rules.aggregate.output.comparison,
        runs=get_run_records(report_runs()),
        suggestions=report_suggestions(),
        template=REPORT_TEMPLATE,
        code=REPORT_CODE,
    output:
        md=report(
            "results/report/report.md",
            caption="../report/report.rst",
            category="Report",
        ),
        images=expand("results/report/images/{name}.png", name=layout.FIGURES),
    log:
        "results/logs/render_report.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        config=report_config_json(),
    shell:
        "python -m lrstudy.report --config-json {params.config:q} --tables results/tables"
        " --runs results/runs --figures results/figures --template {input.template:q}"
        " --out {output.md} > {log} 2>&1"
