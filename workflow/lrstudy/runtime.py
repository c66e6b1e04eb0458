"""Where a training job runs: its device, its rank and the number of ranks, and the ranks' helpers.

A single-rank job runs in its own process; a multi-rank one joins the process group through
`colossalai.launch_from_torch` (each rank started by torchrun, lrstudy.train).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import torch

from lrstudy import precision
from lrstudy.spec import Spec


@dataclass
class Runtime:
    """Where this process trains: its device, its rank and the number of ranks."""

    device: str
    rank: int
    world: int

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


def resolve_device(requested: str) -> str:
    """`auto` is decided on the node that runs the job, never on the machine that built the DAG."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def start_runtime(spec: Spec) -> Runtime:
    """Threads, device and (for several ranks) the process group; deterministic algorithms."""
    torch.set_num_threads(spec.threads)
    device = resolve_device(spec.device)
    world = spec.world(device)
    rank = 0
    if world > 1:
        if not torch.distributed.is_initialized():
            import colossalai

            backend = "nccl" if device == "cuda" else "gloo"
            colossalai.launch_from_torch(backend=backend, seed=spec.seed, verbose=False)
        rank = torch.distributed.get_rank()
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        device = f"cuda:{torch.cuda.current_device()}"
    torch.use_deterministic_algorithms(True, warn_only=True)
    precision.check(spec.precision, device)  # `auto` may have resolved to the CPU: no fp16 there
    return Runtime(device, rank, world)


def make_plugin(name: str, world: int, precision: str = "fp32"):
    """The cheapest correct plugin: none for one rank, DDP for several (ZeRO/Gemini on request)."""
    if name == "auto":
        name = "none" if world == 1 else "torch_ddp"
    if name == "none":
        return None
    from colossalai.booster import plugin

    return {
        "torch_ddp": lambda: plugin.TorchDDPPlugin(),
        "low_level_zero": lambda: plugin.LowLevelZeroPlugin(stage=1, precision=precision),
        "gemini": lambda: plugin.GeminiPlugin(precision=precision),
    }[name]()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(values)
        values /= torch.distributed.get_world_size()
    return values
