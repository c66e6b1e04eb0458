# Figures and the Markdown report (the source report's layout), and the HTML report's captions.
# Each command names the exact files it reads (its inputs); the figures' folder is their outputs'.
# The captions take what they say of the figures from lrstudy.layout through the params of the
# rule that draws them (`{{ snakemake.params.band }}`: the band the figures shade).
config["_answer"] = study_answer(rules.aggregate.output.verdict)


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
        **layout.CAPTION_PARAMS,
        config=report_config_json(("runs", "report", "loss")),
        out=lambda wc, output: os.path.dirname(output[0]),
    shell:
        logged(
            "python -m lrstudy.plots --steps {input.steps} --evals {input.evals}"
            " --summary {input.summary} --best {input.best} --tuning {input.tuning}"
            " --verdict {input.verdict} --records {input.runs}"
            " --suggestions {input.suggestions} --config-json {params.config:q}"
            " --out {params.out} > {log} 2>&1"
        )


rule render_report:
    input:
        figures=rules.plot_figures.output,
        summary=rules.aggregate.output.summary,
        tuning=rules.aggregate.output.tuning,
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
    shell:
        logged(
            "python -m lrstudy.report --config-json {params.config:q}"
            " --summary {input.summary} --tuning {input.tuning} --verdict {input.verdict}"
            " --records {input.runs} --suggestions {input.suggestions}"
            " --figures {input.figures} --template {input.template:q}"
            " --out {output.md} > {log} 2>&1"
        )
