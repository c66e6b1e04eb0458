rule train:
    input:
        data=get_prepared_data,
        suggestion=get_suggestion,
    output:
        steps=train_outputs("steps.csv"),
        evals=train_outputs("evals.csv"),
        run=train_outputs("run.json"),
    log:
        "results/logs/train/{run}.log"
        if config["train_jobs"] == "per_run"
        else "results/logs/train/{run}/seed{seed}.log",
    conda:
        "../../envs/lrstudy.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=config["mem_mb"],
        runtime=train_runtime,
    params:
        command=train_command,
    shell:
        TRAIN_COMMAND


# A family's grid points on the tuning seeds, one job (lrstudy.families).
rule tune:
    input:
        data=get_prepared_data,
        suggestion=lambda wc: get_suggestion(wc, "tune"),
    output:
        steps=tuning_outputs("steps.csv"),
        evals=tuning_outputs("evals.csv"),
        run=tuning_outputs("run.json"),
    log:
        "results/logs/tune/{family}.log",
    conda:
        "../../envs/lrstudy.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=config["mem_mb"],
        runtime=lambda wc, attempt: train_runtime(wc, attempt, "tune"),
    params:
        command=lambda wc, input, output: train_command(wc, input, output, "tune"),
    shell:
        TRAIN_COMMAND


# The family's setting chosen on its tuning runs' validation loss (lrstudy.verdict select).
rule select_setting:
    input:
        runs=get_tuning_records,
    output:
        selection="results/tuning/{family}.json",
    log:
        "results/logs/select_setting/{family}.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        metric=config["report"]["best_metric"],
    shell:
        logged(
            "python -m lrstudy.verdict select {input.runs} --family {wildcards.family}"
            " --metric {params.metric} --out {output.selection} > {log} 2>&1"
        )


# The chosen setting retrained on the confirmation seeds, one job.
rule confirm:
    input:
        data=get_prepared_data,
        suggestion=lambda wc: get_suggestion(wc, "confirm"),
        selection=rules.select_setting.output.selection,
    output:
        steps=confirmation_outputs("steps.csv"),
        evals=confirmation_outputs("evals.csv"),
        run=confirmation_outputs("run.json"),
    log:
        "results/logs/confirm/{family}.log",
    conda:
        "../../envs/lrstudy.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=config["mem_mb"],
        runtime=lambda wc, attempt: train_runtime(wc, attempt, "confirm"),
    params:
        command=lambda wc, input, output: train_command(wc, input, output, "confirm"),
    shell:
        TRAIN_COMMAND
