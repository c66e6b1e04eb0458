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
        runtime=lambda wc, attempt: config["runtime"] * attempt * len(get_job_seeds(wc)),
    params:
        specs=get_train_specs,
        folders=get_train_folders,
        suggestion=get_suggestion_arg,
    shell:
        "python -m lrstudy.train --spec {params.specs:q} --data {input.data}"
        " --out {params.folders} {params.suggestion} > {log} 2>&1"
