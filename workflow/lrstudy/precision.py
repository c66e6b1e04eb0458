"""Mixed precision for a training job: the config's `precision` (fp32, bf16, fp16) on its device.

On CUDA ColossalAI does it: a plugin that controls the precision (LowLevelZero, Gemini) gets it as
its `precision`; otherwise fp16 is the Booster's `mixed_precision="fp16"` (torch AMP with a
GradScaler). ColossalAI 0.5's Booster has no working bf16 (its BF16MixedPrecision is an empty
abstract class), so bf16 without such a plugin, and bf16 on the CPU, is `torch.autocast` around the
forward pass and the loss. fp16 on the CPU is refused at DAG build (config.check_device).
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


def check(precision: str, device: str) -> None:
    """A job's last word, once its device is known (`auto` may resolve to the CPU on its node)."""
    if precision == "fp16" and not device.startswith("cuda"):
        raise SystemExit(
            "config key `precision`: fp16 needs CUDA, and this job runs on the CPU; "
            "use bf16 or fp32"
        )


def _plugin_controls(plugin) -> bool:
    return plugin is not None and plugin.control_precision()


def booster_mixed_precision(precision: str, device: str, plugin) -> str | None:
    """The Booster's `mixed_precision` argument: fp16 on CUDA unless the plugin controls it."""
    if precision == "fp16" and device.startswith("cuda") and not _plugin_controls(plugin):
        return "fp16"
    return None


def autocast(precision: str, device: str, plugin):
    """A fresh context for one forward pass and loss: torch.autocast for bf16 where neither the
    plugin nor the Booster handles it, else nothing."""
    if precision == "bf16" and not _plugin_controls(plugin):
        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(precision: str, device: str, plugin) -> dict:
    """What run.json records: the precision and what applied it."""
    if precision == "fp32":
        via = "none (fp32)"
    elif _plugin_controls(plugin):
        via = f"{type(plugin).__name__}(precision={precision!r})"
    elif booster_mixed_precision(precision, device, plugin):
        via = "Booster(mixed_precision='fp16')"
    else:
        via = f"torch.autocast({device.split(':')[0]!r}, dtype=torch.bfloat16)"
    return {"name": precision, "via": via}
