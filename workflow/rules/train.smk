rule train:
    input:
        data=prepared_data,
        suggestion=suggestion_input,
    output:
        steps="results/runs/{run}/seed{seed}/steps.csv",
        evals="results/runs/{run}/seed{seed}/evals.csv",
        run="results/runs/{run}/seed{seed}/run.json",
    log:
        "results/logs/train/{run}/seed{seed}.log",
    conda:
        "../../envs/lrstudy.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=config["mem_mb"],
        runtime=lambda wc, attempt: config["runtime"] * attempt,
    params:
        spec=run_spec_json,
        suggestion=suggestion_arg,
        out=lambda wc: run_dir(wc.run, wc.seed),
    shell:
        "python -m lrstudy.train --spec {params.spec:q} --data {input.data}"
        " --out {params.out} {params.suggestion} > {log} 2>&1"
