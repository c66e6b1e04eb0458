"""lrstudy: the learning-rate schedule study's stages (data, models, schedules, train, rangetest,
aggregate, plots, report), called by the Snakemake rules and imported by the tests."""

__version__ = "0.1.0"
