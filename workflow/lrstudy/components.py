"""A run's components: model, optimizer and scheduler as the spec names them, and ColossalAI's
Booster around them (lrstudy.train.set_up calls both)."""

from __future__ import annotations

from lrstudy import auto, factories, losses, optimizers, precision, schedules
from lrstudy.evaluation import data_facts
from lrstudy.inputs import Length
from lrstudy.runtime import Runtime, make_plugin
from lrstudy.spec import Spec


def build_components(spec: Spec, dataset: dict, length: Length, bounds: dict | None):
    """Model, optimizer, scheduler and what run.json records of them (`auto` values resolved)."""
    model = factories.build_model(spec.model, data_facts(dataset["meta"]))
    opt_kwargs = spec.optimizer.get("kwargs", {})
    test = spec.range_test
    sched_kwargs = {} if test else spec.scheduler["kwargs"]
    auto_record = tuning = None
    if bounds is not None:
        opt_kwargs, sched_kwargs, auto_record = auto.resolve_auto(spec.to_dict(), bounds)
    if spec.tuning:  # a family's run: its LR scale times the grid point's multiplier
        opt_kwargs, sched_kwargs, tuning = auto.apply_multiplier(
            spec.tuning, opt_kwargs, sched_kwargs
        )
    optimizer = optimizers.build_optimizer(model.parameters(), spec.optimizer["name"], opt_kwargs)
    if test:
        scheduler = schedules.build_range_test(optimizer, test.to_dict(), length.total_steps)
        record = {"class": "LambdaLR", "range_test": test.to_dict()}
    else:
        name, per_epoch, epochs = spec.scheduler["class"], length.steps_per_epoch, length.epochs
        scheduler = schedules.build_scheduler(optimizer, name, sched_kwargs, per_epoch, epochs)
        record = {
            "class": name,
            "kwargs": schedules.fill_kwargs(name, sched_kwargs, per_epoch, epochs),
            "config_kwargs": spec.scheduler["kwargs"],
        }
    optimizer_record = {"name": spec.optimizer["name"], "kwargs": opt_kwargs}
    records = {
        "scheduler": record,
        "optimizer": optimizer_record,
        "auto": auto_record,
        "tuning": tuning,
    }
    return model, optimizer, scheduler, records


def boost(spec: Spec, runtime: Runtime, model, optimizer, scheduler, loss_kind: str):
    """ColossalAI's Booster around model, optimizer, criterion and scheduler (and, for several
    ranks, the plugin): (booster, plugin, model, optimizer, criterion, scheduler)."""
    from colossalai.booster import Booster
    from colossalai.interface import OptimizerWrapper

    plugin = make_plugin(spec.plugin, runtime.world, spec.precision)
    mixed_precision = precision.booster_mixed_precision(spec.precision, runtime.device, plugin)
    booster = Booster(
        plugin=plugin, device=runtime.device.split(":")[0], mixed_precision=mixed_precision
    )
    if plugin is None and mixed_precision is None:
        optimizer = OptimizerWrapper(optimizer)  # gives booster.backward() its optimizer.backward()
    model, optimizer, criterion, _, scheduler = booster.boost(
        model, optimizer, losses.criterion(loss_kind), lr_scheduler=scheduler
    )
    return booster, plugin, model, optimizer, criterion, scheduler
