"""Device choice shared by all scripts: auto picks CUDA when it is there, else the CPU."""
from __future__ import annotations

import contextlib
import warnings

import torch

from utils.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' | 'cpu' | 'cuda' (also the course's 'CPU' / 'GPU') -> torch.device.

    Asking for CUDA on a machine without it falls back to the CPU with a warning, so a config
    written on a GPU machine still runs on a laptop."""
    name = (name or "auto").lower()
    name = {"gpu": "cuda"}.get(name, name)
    if name.startswith("cuda"):
        if torch.cuda.is_available():
            dev = torch.device(name)
        else:
            warnings.warn("CUDA was asked for but is not available: running on the CPU", stacklevel=2)
            dev = torch.device("cpu")
    elif name == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cpu":
        dev = torch.device("cpu")
    else:
        raise UserError(f"unknown device {name!r}: use one of {', '.join(DEVICE_CHOICES)}")
    if dev.type == "cuda":
        # TF32 matmuls and cuDNN autotuning: large speed-ups on Ampere+ for fixed-shape training.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return dev


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled; a no-op elsewhere (CPU training stays in fp32)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
