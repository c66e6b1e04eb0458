rule prepare_data:
    output:
        data="results/data/{dataset}.pt",
        manifest="results/data/{dataset}.json",
    log:
        "results/logs/prepare_data/{dataset}.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        dataset=json.dumps(config["dataset"]),
    shell:
        logged(
            "python -m lrstudy.data --dataset {params.dataset:q} --out {output.data}"
            " --manifest {output.manifest} > {log} 2>&1"
        )
