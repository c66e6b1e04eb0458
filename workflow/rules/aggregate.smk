rule aggregate:
    input:
        run_files(),
    output:
        steps="results/tables/steps.csv",
        evals="results/tables/evals.csv",
        summary=report(
            "results/tables/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "summary.csv"},
        ),
        best="results/tables/best.csv",
    log:
        "results/logs/aggregate.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        target=config["valid_loss_target"],
        metric=config["report"]["best_metric"],
        best_count=config["report"]["best_count"],
    shell:
        "python -m lrstudy.aggregate {input} --out results/tables --target {params.target}"
        " --best-metric {params.metric} --best-count {params.best_count} > {log} 2>&1"
