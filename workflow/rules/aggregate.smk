rule aggregate:
    input:
        get_run_records(),
    output:
        steps="results/tables/steps.csv",
        evals="results/tables/evals.csv",
        summary=report(
            "results/tables/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "summary", "rows": "run x seed"},
        ),
        best="results/tables/best.csv",
        comparison=report(
            "results/tables/comparison.csv",
            caption="../report/comparison.rst",
            category="Summary",
            labels={"table": "comparison", "rows": "run"},
        ),
    log:
        "results/logs/aggregate.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        folder=lambda wc, output: os.path.dirname(output.summary),
        target=config["valid_loss_target"],
        metric=config["report"]["best_metric"],
        best_count=config["report"]["best_count"],
    shell:
        "python -m lrstudy.aggregate {input} --out {params.folder} --target {params.target}"
        " --best-metric {params.metric} --best-count {params.best_count} > {log} 2>&1"
