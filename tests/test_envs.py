"""The conda environment for --use-conda carries exactly the pins of requirements.txt."""

import yaml

from .util import ROOT


def pins_from_requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def pins_from_conda():
    env = yaml.safe_load((ROOT / "envs" / "lrstudy.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return sorted(pip)


def test_conda_env_and_requirements_pin_the_same_versions():
    assert pins_from_conda() == pins_from_requirements()


def test_every_direct_dependency_is_pinned_exactly():
    pins = pins_from_requirements()
    assert all("==" in pin for pin in pins), pins
    names = {pin.split("==")[0].lower() for pin in pins}
    wanted = {
        "colossalai",
        "torch",
        "torchvision",
        "snakemake",
        "snakemake-executor-plugin-slurm",
        "pandas",
        "matplotlib",
        "scikit-learn",
        "jinja2",
        "tqdm",
        "pytest",
    }
    assert wanted <= names
    assert (
        "torch==2.5.1" in pins and "colossalai==0.5.0" in pins
    )  # colossalai 0.5.0 needs torch<=2.5.1
