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
        python_path=json.dumps(config["python_path"]),
        # a data factory's source: an edit of it prepares the data again
        code=json.dumps(specs.code_spec(config).get("code", {})),
    shell:
        logged(
            "python -m lrstudy.data --dataset {params.dataset:q} --out {output.data}"
            " --manifest {output.manifest} --python-path {params.python_path:q} > {log} 2>&1"
        )
