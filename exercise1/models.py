"""The three text architectures behind one interface, and loading a trained one from its checkpoint.

Every model maps character indices `[B, T]` (and an optional state) to logits `[B, T, V]` and the
new state; `max_context` is None or the longest sequence it accepts. ARCHITECTURES is the registry.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import torch

from exercise1.config import TRAINING_DEFAULTS as TRAINING_KEYS
from exercise1.ensemble import Ensemble
from exercise1.lstm.modules import CharLSTM
from exercise1.tcn.modules import CharTCN
from exercise1.transformer.modules import CharTransformer
from utils.checkpoint import load_checkpoint, load_state_dict_float32
from utils.errors import UserError
from utils.paths import REPO_ROOT

ARCHITECTURES = {"lstm": CharLSTM, "tcn": CharTCN, "transformer": CharTransformer}


def default_config_path(arch: str) -> Path:
    return REPO_ROOT / "exercise1" / arch / "config.json"


def read_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None


MAX_MEMBERS = 16  # an ensemble's members each cost a model's time and memory
COMMON_MODEL_KEYS = ("name", "d_one_hot", "members")  # every architecture: the run's name, the alphabet size,
# how many models of it are trained side by side as one ensemble (exercise1/ensemble.py; 1 = a single model)


def check_members(members, where: str = "model") -> None:
    """A UserError unless `members` (an ensemble's size, set at `where`.members) is a whole number 1..MAX_MEMBERS."""
    if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
        raise UserError(f"{where}.members must be a whole number from 1 (a single model) to {MAX_MEMBERS}, "
                        f"got {members!r}")


def check_model_keys(arch: str, config: dict) -> None:
    """A UserError for a model.* (or small_text.model.*) key the architecture does not read, so a typo
    or a setting of another architecture (weight_drop on a TCN) is not silently ignored, and for an
    ensemble size out of range where it is set."""
    known = (*COMMON_MODEL_KEYS, *ARCHITECTURES[arch].config_keys)
    for where, section in (("model", config.get("model") or {}), ("small_text.model",
                                                                  (config.get("small_text") or {}).get("model") or {})):
        if "members" in section:
            check_members(section["members"], where)
        for key in section:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = (f"did you mean {where}.{close[0]}?" if close else
                    f"did you mean training.{key}?" if key in config.get("training", {}) or key in TRAINING_KEYS
                    else f"the {arch} reads {', '.join(ARCHITECTURES[arch].config_keys)}")
            raise UserError(f"{where}.{key} is not a setting of the {arch}: {hint}")


def build_model(arch: str, config: dict, d_one_hot: int) -> torch.nn.Module:
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    model_cfg = config.get("model", {})
    members = model_cfg.get("members", 1)
    check_members(members)
    try:
        if members == 1:
            return ARCHITECTURES[arch].from_config(model_cfg, d_one_hot)
        return Ensemble([ARCHITECTURES[arch].from_config(model_cfg, d_one_hot) for _ in range(members)])
    except (ValueError, AssertionError, TypeError) as err:
        raise UserError(f"bad model settings in the config: {err}") from None


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_model_file(path: str | Path, alphabet=None):
    """(model in eval mode on the CPU, checkpoint dict, file) of a checkpoint file, or of a run folder's kept
    model `<run>/<run>.pt`; with `alphabet` (a prepared text's), a model trained on another is refused."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{path.name}.pt"
    if not path.is_file():
        raise UserError(f"no model at {path}: give a run folder (with <name>/<name>.pt) or a checkpoint file")
    ckpt = load_checkpoint(path)
    if "arch" not in ckpt or "alphabet" not in ckpt:
        raise UserError(f"{path} is not a text-model checkpoint of this project")
    if alphabet is not None and list(ckpt["alphabet"]) != list(alphabet):
        raise UserError(f"{path} was trained on a text with another alphabet than the prepared text given")
    model = build_model(ckpt["arch"], ckpt["config"], len(ckpt["alphabet"]))
    load_state_dict_float32(model, ckpt["model"])
    return model.eval(), ckpt, path


def load_text_model(ckpt_dir: str | Path, name: str, arch: str | None = None):
    """(model in eval mode on the CPU, config, alphabet, checkpoint dict) of `<ckpt_dir>/<name>/<name>.pt`."""
    path = Path(ckpt_dir) / name / f"{name}.pt"
    ckpt = load_checkpoint(path, hint=f"Train it first (python exercise1/{arch or '<arch>'}/train.py --name {name}) "
                                      f"or pass --ckpt_dir / --name of an existing one.")
    if "arch" not in ckpt or "alphabet" not in ckpt:
        raise UserError(f"{path} is not a text-model checkpoint of this project")
    if arch is not None and ckpt["arch"] != arch:
        raise UserError(f"{path} holds a {ckpt['arch']} model, not a {arch}: use exercise1/{ckpt['arch']}/test.py")
    alphabet = np.array(ckpt["alphabet"], dtype="<U1")
    model = build_model(ckpt["arch"], ckpt["config"], len(alphabet))
    load_state_dict_float32(model, ckpt["model"])
    return model.eval(), ckpt["config"], alphabet, ckpt
