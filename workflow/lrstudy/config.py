"""Config checks beyond the JSON schema (the resolved spec of each job is lrstudy.spec.run_spec).

The schema (workflow/schemas/config.schema.yaml, applied by Snakemake's `validate`) checks types,
ranges and names; `check` here checks what needs torch or the whole config: scheduler and
optimizer kwargs against the torch signatures, report sections against the runs, devices
against the machine. Every error names the config key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from lrstudy import auto, factories, families, optimizers, schedules
from lrstudy.spec import device_plan, world_size

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
CUDA_PLUGINS = ("low_level_zero", "gemini")
MODELS = ("lenet5", "resnet18")  # lrstudy.models (not imported here: it needs torch)


class ConfigError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(f"config key `{key}`: {message}")
        self.key = key


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a duplicated run name must be an error."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                str(key), f"appears twice in the same mapping (line {key_node.start_mark.line + 1})"
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def check_duplicate_keys(paths) -> None:
    for path in paths:
        try:
            yaml.load(Path(path).read_text(), Loader=_StrictLoader)
        except ConfigError as error:
            raise ConfigError(error.key, f"{error} in {path}") from None


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_INTEGER = re.compile(r"[-+]?\d+")


def _leaves(value, path=()):
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def command_line_numbers(config, overrides) -> None:
    """Numbers inside lists and mappings given with `--config key=[...]`: Snakemake reads those with
    YAML's BaseLoader, so `seeds=[0,1,2]` arrives as ['0', '1', '2']. Each such string that is a
    number literal (`3`, `0.5`, `1e-5`) becomes the number, in place; top-level values Snakemake
    already reads as numbers, and values from config files are left as they are."""
    for key, value in (overrides or {}).items():
        if not isinstance(value, (Mapping, list, tuple)) or key not in config:
            continue
        for path, leaf in _leaves(value):
            if isinstance(leaf, str) and _NUMBER.fullmatch(leaf.strip()):
                node = config[key]
                for step in path[:-1]:
                    node = node[step]
                text = leaf.strip()
                node[path[-1]] = int(text) if _INTEGER.fullmatch(text) else float(text)


def validate(
    config, configfiles=(), executor: str | None = "local", local_gpus: int = 0, overrides=None
) -> None:
    """All the checks the DAG build runs: numbers in `--config` lists (`overrides`, see
    command_line_numbers), Snakemake's schema validation (filling in defaults), duplicate keys in
    the config files, then `check`. Raises ConfigError naming the key."""
    from snakemake.utils import validate as schema_validate
    from snakemake_interface_common.exceptions import WorkflowError

    command_line_numbers(config, overrides)
    check_selection_metric(config)
    check_model_name(config)
    try:
        schema_validate(config, str(SCHEMA))
    except WorkflowError as error:
        cause = error.__context__  # the jsonschema ValidationError it was raised from
        if not hasattr(cause, "absolute_path"):
            raise
        key = ".".join(map(str, cause.absolute_path)) or "(top level)"
        raise ConfigError(key, cause.message) from None
    check_duplicate_keys(configfiles)
    try:
        factories.resolve_python_path(config, configfiles, overrides)
    except factories.FactoryError as error:
        raise ConfigError(error.key, str(error)) from None
    check(config, executor, local_gpus)


def check_model_name(config) -> None:
    """A built-in model's name, or a factory: said plainly before the schema's `anyOf` would."""
    model = config.get("model")
    if isinstance(model, str) and model not in MODELS:
        raise ConfigError(
            "model",
            f"unknown {model!r}: choose one of {', '.join(MODELS)}, "
            "or {factory: 'package.module:function', kwargs: {...}}",
        )


# Metrics a family's setting and the families' order may be chosen by: training and validation
# only.
SELECTION_METRICS = ("final_valid_loss", "best_valid_loss", "final_train_loss")


def check_selection_metric(config) -> None:
    """The test split never chooses anything: refuse it by name before the schema's enum does."""
    metric = (config.get("report") or {}).get("best_metric")
    if isinstance(metric, str) and metric.startswith("test"):
        raise ConfigError(
            "report.best_metric",
            f"{metric!r} would choose on the test split, which must stay unseen until the "
            f"verdict; choose one of {', '.join(SELECTION_METRICS)}",
        )


def all_runs(config) -> dict[str, dict]:
    """Every run of the study by name: the config's `runs`, then each family's tuning and
    confirmation runs (lrstudy.families), as `runs.<name>` entries."""
    return {**config["runs"], **families.family_runs(config)}


def definition(config, name: str) -> dict:
    return config["runs"][name] if name in config["runs"] else families.run_definition(config, name)


def range_runs(config) -> list[str]:
    return [name for name, run in config["runs"].items() if "range_test" in run]


def uses_auto(config, name: str) -> bool:
    run = definition(config, name)
    return (
        "auto" in run.get("kwargs", {}).values()
        or run_optimizer(config, name).get("kwargs", {}).get("lr") == "auto"
    )


def run_optimizer(config, name: str) -> dict:
    return definition(config, name).get("optimizer", config["optimizer"])


def auto_momentum(config, name: str) -> float:
    """The momentum run `name` trains with where its LR takes its first `auto` value."""
    run = definition(config, name)
    kwargs = run.get("kwargs", {})
    key = next((k for k, v in kwargs.items() if v == "auto"), "lr")
    return auto.momentum_at(run_optimizer(config, name), run.get("scheduler"), kwargs, key)


def auto_source(config, name: str) -> str:
    """The range test whose suggestion fills run `name`'s `auto` values: the run's own
    `auto_from`, else the study's, else, of the range tests with the run's optimizer, the one
    whose momentum is closest to the run's where it takes the value (the first of equals): a
    range test measured at the momentum a run trains at needs the least conversion."""
    chosen = definition(config, name).get("auto_from") or config.get("auto_from")
    if chosen:
        return chosen
    optimizer = run_optimizer(config, name)["name"]
    same = [test for test in range_runs(config) if run_optimizer(config, test)["name"] == optimizer]
    target = auto_momentum(config, name)
    distance = lambda test: abs(  # noqa: E731
        auto.constant_momentum(run_optimizer(config, test)) - target
    )
    return min(same, key=distance) if same else range_runs(config)[0]


def check_auto(config) -> None:
    """Each `auto` run takes its values from a range test of the same optimizer: the conversion
    between momentum settings (auto.resolve_auto) holds within one optimizer, not across."""
    tests = range_runs(config)
    for key, chosen in [("auto_from", config.get("auto_from"))] + [
        (f"{config_key(config, name)}.auto_from", run.get("auto_from"))
        for name, run in all_runs(config).items()
    ]:
        if chosen and chosen not in tests:
            raise ConfigError(
                key,
                f"{chosen!r} is not a range-test run; range tests: {', '.join(tests) or 'none'}",
            )
    for name in [name for name in all_runs(config) if uses_auto(config, name)]:
        key = config_key(config, name)
        if not tests:
            raise ConfigError(key, "uses `auto` but no run is a range_test to take it from")
        source = auto_source(config, name)
        ours, theirs = run_optimizer(config, name)["name"], run_optimizer(config, source)["name"]
        if ours != theirs:
            raise ConfigError(
                f"{key}.auto_from",
                f"run {name!r} trains with {ours} but takes `auto` from range test {source!r}, "
                f"which uses {theirs}; add a range test with {ours} (or set `auto_from` to one)",
            )


def config_key(config, name: str) -> str:
    """Where run `name` is written in the config: `runs.<name>`, or its family's entry."""
    family = families.family_of(name, config) if name not in config["runs"] else None
    return f"families.{family}" if family else f"runs.{name}"


def check(config, executor: str | None = "local", local_gpus: int = 0) -> None:
    """Raise ConfigError (naming the key) for anything the schema cannot see. With executor None
    the device checks are left out (the workflow runs them once it knows its executor)."""
    added = check_families(config)
    checked = set()  # each distinct optimizer is dry-built once, under the first key that names it
    for name, run in checked_runs(config):
        key = config_key(config, name)
        try:  # the schedule's kind checks it (lrstudy.schedules)
            schedules.check_run(run)
        except schedules.ScheduleError as error:
            raise ConfigError(f"{key}.{error.key}", str(error)) from None
        for opt_key, optimizer in (
            ("optimizer", config["optimizer"]),
            (families.optimizer_key(config, name) or f"{key}.optimizer", run.get("optimizer")),
        ):
            if name in added:  # a range test the families need: checked as their optimizer
                continue
            seen = json.dumps(optimizer, sort_keys=True, default=str)
            if optimizer is not None and seen not in checked:
                checked.add(seen)
                try:
                    optimizers.check_optimizer(optimizer["name"], optimizer.get("kwargs", {}))
                except schedules.ScheduleError as error:
                    raise ConfigError(f"{opt_key}.kwargs", str(error)) from None
    check_auto(config)
    check_report(config)
    if executor is not None:
        check_device(config, executor, local_gpus)
    check_dataset(config["dataset"])
    check_code(config)


def check_code(config) -> None:
    """The model, data and loss work together (lrstudy.factories.check, which calls the user's
    factories on a small batch); for a data factory the task, classes and loss they imply are
    filled in (the built-in datasets are classification: their `auto` loss is cross-entropy)."""
    try:
        facts = factories.check(config)
    except factories.FactoryError as error:
        raise ConfigError(error.key, str(error)) from None
    if factories.is_factory(config["dataset"]):  # the built-in datasets keep `auto`: cross-entropy
        config["loss"] = facts["loss"]
        config["dataset"]["task"] = facts["task"]
        config["dataset"]["num_classes"] = facts["num_classes"]


def checked_runs(config) -> list[tuple[str, dict]]:
    """The config's runs and one run of each family (its others differ only in the multiplier)."""
    first = [families.tuning_run(f, config["tuning"]["multipliers"][0]) for f in config["families"]]
    every = all_runs(config)
    return list(config["runs"].items()) + [(name, every[name]) for name in first]


def check_families(config) -> None:
    """Disjoint tuning and confirmation seeds, room for the confirmation's looks, run names that
    the families' runs do not take, an `lr` only where the optimizer's LR is the family's scale;
    then the range tests the families' optimizers need are added (families.add_range_tests)."""
    tuning = config["tuning"]
    shared = sorted(set(tuning["seeds"]) & set(tuning["confirm_seeds"]))
    if shared:
        raise ConfigError(
            "tuning.confirm_seeds",
            f"seeds {', '.join(map(str, shared))} are also tuning seeds: the pick must be "
            "confirmed on seeds that did not choose it",
        )
    for key, problem in families.plan_problems(config):
        raise ConfigError(key, problem)
    for name in families.family_runs(config):
        if name in config["runs"]:
            raise ConfigError(f"runs.{name}", "is the name of a family's run; rename it")
    return families.add_range_tests(config)


def check_report(config) -> None:
    runs = config["runs"]
    tests = set(range_runs(config))
    for section, names in config["report"].get("extra_sections", {}).items():
        for name in names:
            if name not in runs:
                raise ConfigError(
                    f"report.extra_sections.{section}",
                    f"names run {name!r}, which is not in `runs` ({', '.join(runs)})",
                )
    for section, names in config["report"]["sections"].items():
        for name in names:
            if name not in runs:
                raise ConfigError(
                    f"report.sections.{section}",
                    f"names run {name!r}, which is not in `runs` ({', '.join(runs)})",
                )
            if (section == "range_test") != (name in tests):
                want = (
                    "range-test runs"
                    if section == "range_test"
                    else "scheduled runs (not range tests)"
                )
                raise ConfigError(
                    f"report.sections.{section}", f"must name {want}; {name!r} is not one"
                )
    count, tuned = config["report"]["best_count"], len(config["families"])
    if count > tuned:
        raise ConfigError(
            "report.best_count",
            f"the {count} best of only {tuned} families (`families`): the best section "
            "compares tuned families",
        )


def check_device(config, executor: str, local_gpus: int) -> None:
    plan = device_plan(config, executor, local_gpus)
    if config["device"] == "cuda" and executor != "slurm" and local_gpus == 0:
        raise ConfigError(
            "device",
            f"is `cuda` (gpus per job: {config['gpus']}) but this machine shows no GPU; "
            "use `auto` or `cpu`",
        )
    if plan == "cuda" and executor != "slurm" and config["gpus"] > local_gpus:
        raise ConfigError(
            "gpus", f"{config['gpus']} GPUs per job, but this machine shows {local_gpus}"
        )
    if config["plugin"] in CUDA_PLUGINS and plan != "cuda":
        raise ConfigError(
            "plugin",
            f"`{config['plugin']}` needs CUDA, and this run is planned on the CPU; "
            "choose auto, none or torch_ddp",
        )
    world = world_size(plan, config["gpus"], config["procs"])
    if config["plugin"] == "none" and world > 1:
        raise ConfigError(
            "plugin",
            f"`none` runs a single rank, but the job has {world} ranks; choose auto or torch_ddp",
        )
    if config["batch_size"] % world:
        raise ConfigError(
            "batch_size",
            f"{config['batch_size']} is the global batch and must divide by the {world} ranks",
        )
    if config["precision"] == "fp16" and plan == "cpu":
        raise ConfigError(
            "precision",
            "fp16 needs CUDA, and this run is planned on the CPU; "
            "use bf16 (torch.autocast) or fp32",
        )
    if plan == "cpu" and world > 1 and config["model"] == "resnet18":
        raise ConfigError(
            "procs",
            "resnet18 has BatchNorm, which TorchDDPPlugin turns into SyncBatchNorm, "
            "unsupported on the CPU",
        )


def check_dataset(dataset) -> None:
    if dataset["name"] == "digits" or factories.is_factory(dataset):
        return
    from lrstudy.data import raw_dir, raw_files

    folder = raw_dir(dataset)
    if dataset.get("data_dir") and not folder.is_dir():
        raise ConfigError("dataset.data_dir", f"{folder} is not a folder")
    missing = [f for f in raw_files(dataset["name"]) if not (folder / f).is_file()]
    if missing and (dataset.get("data_dir") or not dataset.get("download")):
        raise ConfigError(
            "dataset.data_dir",
            f"{folder} lacks {', '.join(missing)} (raw {dataset['name']} files): "
            "set `dataset.data_dir` to a folder "
            "holding them"
            + ("" if dataset["name"] == "mnist10k" else ", or `dataset.download: true`"),
        )
