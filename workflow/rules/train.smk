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


# A grid point beyond the grid's edge, where a family's pick sat at it (lrstudy.tuning).
rule tune_beyond:
    input:
        data=get_prepared_data,
        suggestion=lambda wc: get_suggestion(wc, "beyond"),
    output:
        steps=beyond_outputs("steps.csv"),
        evals=beyond_outputs("evals.csv"),
        run=beyond_outputs("run.json"),
    log:
        "results/logs/tune/{family}-x{multiplier}.log",
    conda:
        "../../envs/lrstudy.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=config["mem_mb"],
        runtime=lambda wc, attempt: train_runtime(wc, attempt, "beyond"),
    params:
        command=lambda wc, input, output: train_command(wc, input, output, "beyond"),
    shell:
        TRAIN_COMMAND


ruleorder: tune > tune_beyond


# The family's setting chosen on its tuning runs' validation loss, round by round: a round whose
# pick sits at the grid's edge names the point beyond (`extend`), trained before the next round.
checkpoint select_setting:
    input:
        runs=get_round_records,
    output:
        selection="results/tuning/{family}/round{round}.json",
    log:
        "results/logs/select_setting/{family}-round{round}.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        metric=config["report"]["best_metric"],
        left=lambda wc: TUNING["max_extensions"] - int(wc.round),
    shell:
        logged(
            "python -m lrstudy.tuning {input.runs} --family {wildcards.family}"
            " --metric {params.metric} --extensions-left {params.left}"
            " --out {output.selection} > {log} 2>&1"
        )


# The last round's choice: the family's setting.
rule settle_setting:
    input:
        get_last_round,
    output:
        selection="results/tuning/{family}.json",
    log:
        "results/logs/select_setting/{family}.log",
    conda:
        "../../envs/lrstudy.yaml"
    shell:
        logged("cp {input} {output.selection} > {log} 2>&1")


# The chosen setting retrained on the confirmation seeds, one job: the verdict's first look.
rule confirm:
    input:
        data=get_prepared_data,
        suggestion=lambda wc: get_suggestion(wc, "confirm"),
        selection=rules.settle_setting.output.selection,
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


# The decision after a look (lrstudy.verdict look): which families, with the reference, are
# retrained on the next look's seeds.
checkpoint judge_look:
    input:
        runs=get_look_records,
        selections=get_selections(),
    output:
        decision="results/verdict/look{look}.json",
    log:
        "results/logs/judge_look/look{look}.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        settings=verdict_settings_json(),
    shell:
        logged(
            "python -m lrstudy.verdict look {input.runs} --selections {input.selections}"
            " --settings-json {params.settings:q} --look {wildcards.look}"
            " --out {output.decision} > {log} 2>&1"
        )


# A further look's seeds for a family still undecided (and the reference), one job a family.
for look in range(2, len(LOOK_SEEDS) + 1):

    rule:
        name:
            f"confirm_look{look}"
        input:
            data=get_prepared_data,
            suggestion=lambda wc: get_suggestion(wc, "confirm"),
            selection=rules.settle_setting.output.selection,
        output:
            steps=confirmation_outputs("steps.csv", look),
            evals=confirmation_outputs("evals.csv", look),
            run=confirmation_outputs("run.json", look),
        log:
            f"results/logs/confirm/{{family}}-look{look}.log",
        conda:
            "../../envs/lrstudy.yaml"
        threads: train_threads
        resources:
            gpu=train_gpus,
            mem_mb=config["mem_mb"],
            runtime=lambda wc, attempt, look=look: train_runtime(wc, attempt, look),
        params:
            command=lambda wc, input, output, look=look: train_command(
                wc, input, output, look
            ),
        shell:
            TRAIN_COMMAND
