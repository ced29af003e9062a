"""Device choice shared by all scripts: auto picks CUDA when it is there, else the CPU."""
from __future__ import annotations

import contextlib
import platform
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


def bf16_native(device: torch.device) -> bool:
    """Does this device compute bf16 matrix products in hardware? (CUDA: Ampere and newer;
    CPU: Intel AMX or AVX512-BF16. Elsewhere bf16 is emulated and slower than fp32.)"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return False


def use_bf16(device: torch.device, setting) -> bool:
    """Config value true / false / "auto" -> whether to train under bf16 autocast.

    "auto" turns it on only where the hardware has native bf16; an explicit true on hardware
    without it still works (emulated) but warns, because it is then slower than fp32."""
    if setting in (None, False, "off", "false", "fp32"):
        return False
    native = bf16_native(device)
    if setting == "auto":
        return native
    if not native:
        warnings.warn(f"bf16 was asked for but {device.type} has no native bf16: this is slower than fp32",
                      stacklevel=2)
    return True


def device_name(device: torch.device) -> str:
    """What the run ran on, for logs: the GPU's name, or the CPU's model name (Linux) and threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast (weights, optimiser and loss stay fp32) when enabled, else a no-op."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
