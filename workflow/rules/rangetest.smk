rule suggest_lr:
    input:
        run=get_seed_record,
    output:
        suggestion=layout.SEED_SUGGESTION,
    log:
        "results/logs/suggest_lr/{run}/seed{seed}.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        folder=lambda wc, input: os.path.dirname(input.run),
    shell:
        logged(
            "python -m lrstudy.rangetest suggest {params.folder} --out {output} > {log} 2>&1"
        )


rule combine_suggestions:
    input:
        get_seed_suggestions,
    output:
        combined=layout.SUGGESTION,
    log:
        "results/logs/combine_suggestions/{run}.log",
    conda:
        "../../envs/lrstudy.yaml"
    shell:
        logged(
            "python -m lrstudy.rangetest combine {input} --out {output} > {log} 2>&1"
        )
