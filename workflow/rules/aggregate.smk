rule aggregate:
    input:
        runs=get_run_records(),
        family_runs=get_family_records,
        selections=get_selections(),
        manifest=rules.prepare_data.output.manifest.format(dataset=DATASET),
    output:
        steps="results/tables/steps.csv",
        evals="results/tables/evals.csv",
        summary=report(
            "results/tables/summary.csv",
            caption=layout.caption_file("summary"),
            category="Summary",
            labels={"table": "summary", "rows": "run x seed"},
        ),
        tuning=report(
            "results/tables/tuning.csv",
            caption=layout.caption_file("tuning"),
            category=layout.VERDICT_CATEGORY,
            subcategory=layout.VERDICT_TABLES,
            labels={"table": "tuning", "rows": "family x multiplier"},
        ),
        verdict=report(
            "results/tables/verdict.csv",
            caption=layout.caption_file("verdict"),
            category=layout.VERDICT_CATEGORY,
            subcategory=layout.VERDICT_TABLES,
            labels={"table": "verdict", "rows": "family"},
        ),
        verdict_page=report(
            "results/tables/verdict.html",
            caption=layout.caption_file("verdict"),
            category=layout.VERDICT_CATEGORY,
            subcategory=layout.VERDICT_TABLES,
            labels={"table": "verdict and tuning (page)", "rows": "family"},
        ),
        best="results/tables/best.csv",
    log:
        "results/logs/aggregate.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        folder=lambda wc, output: os.path.dirname(output.summary),
        target=config["valid_loss_target"],
        verdict=verdict_settings_json(),
        best_count=config["report"]["best_count"],
        level=layout.LEVEL_TEXT,  # the tables' t-intervals, named in their captions
    shell:
        logged(
            "python -m lrstudy.aggregate {input.runs} {input.family_runs}"
            " --selections {input.selections}"
            " --data-manifest {input.manifest} --verdict-json {params.verdict:q}"
            " --out {params.folder} --target {params.target}"
            " --best-count {params.best_count} > {log} 2>&1"
        )
