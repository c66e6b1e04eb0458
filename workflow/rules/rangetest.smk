rule suggest_lr:
    input:
        run="results/runs/{run}/seed{seed}/run.json",
    output:
        "results/runs/{run}/seed{seed}/suggestion.json",
    log:
        "results/logs/suggest_lr/{run}/seed{seed}.log",
    conda:
        "../../envs/lrstudy.yaml"
    params:
        folder=lambda wc, input: os.path.dirname(input.run),
    shell:
        "python -m lrstudy.rangetest suggest {params.folder} --out {output} > {log} 2>&1"


rule combine_suggestions:
    input:
        seed_suggestions,
    output:
        "results/runs/{run}/suggestion.json",
    log:
        "results/logs/combine_suggestions/{run}.log",
    conda:
        "../../envs/lrstudy.yaml"
    shell:
        "python -m lrstudy.rangetest combine {input} --out {output} > {log} 2>&1"
