"""The one training loop of the three character models (LSTM, TCN, Transformer).

Batched training on random fixed-length windows of the training lines, AdamW with warm-up and a
cosine schedule, gradient clipping; a text shorter than the config's `small_text.below_chars` trains
with the config's `small_text` settings (the size rule, `fit_to_text`); after each epoch the held-out loss in nats and bits per
character and a closed-loop sample from a fixed prompt are logged (console, `train_log.txt`,
`metrics.jsonl`). The best held-out model is `<ckpt_dir>/<name>/<name>.pt`, the state to resume
`last.pt`; both are written atomically.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from exercise1.data import load_text_data, random_windows
from exercise1.data_preparation import txt_to_numpy
from exercise1.evaluation import LN2, evaluate
from exercise1.generation import generate
from exercise1.models import build_model, count_parameters, default_config_path, read_config
from utils.checkpoint import atomic_save, load_checkpoint, load_state_dict_float32, write_json
from utils.device import DEVICE_CHOICES, autocast, device_name, resolve_device, use_bf16
from utils.distributed import barrier, cleanup, init_distributed, shard, synced_clock
from utils.errors import UserError, cli
from utils.helper_functions import decode
from utils.paths import repo_path


TRAINING_DEFAULTS = {
    "save_model": True, "epochs": 2000, "max_minutes": None, "learning_rate": 2e-3, "batch_size": 64,
    "seq_len": 128, "grad_clip": 1.0, "weight_decay": 0.01, "warmup_steps": 50, "min_lr_ratio": 0.1,
    "sample_length": 200, "bf16": "auto",
    # right-sized on any text: evaluate (held-out loss, sample) once an epoch but at most every
    # min_eval_steps steps (a chapter has a few steps per epoch), and stop after `patience`
    # evaluations without a better held-out loss (0: never stop early)
    "min_eval_steps": 50, "patience": 3,
}


def lr_at(progress: float, step: int, cfg: dict) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` of the peak as progress goes 0 -> 1."""
    peak = cfg["learning_rate"]
    if step < cfg["warmup_steps"]:
        return peak * (step + 1) / cfg["warmup_steps"]
    floor = peak * cfg["min_lr_ratio"]
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(progress, 1.0)))


def fit_to_text(config: dict, n_train_chars: int, fixed=frozenset()) -> tuple[dict, str]:
    """The size rule: a text of fewer than `small_text.below_chars` training characters trains with the
    config's `small_text` settings (e.g. a smaller batch, more dropout) in place of the ones tuned on a
    novel; keys in `fixed` ("section.key", set by a flag or --set) are left as the user gave them.
    Returns the config to train with and the line that says what the rule did."""
    rule = config.get("small_text") or {}
    limit = rule.get("below_chars")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise UserError(f"small_text.below_chars must be a whole number of characters >= 0 (0 = size rule off), "
                        f"got {limit!r}")
    if not limit:
        return config, "size rule: off (the config sets no small_text.below_chars)"
    if n_train_chars >= limit:
        return config, (f"size rule: {n_train_chars:,} training characters >= small_text.below_chars={limit:,}: "
                        "the config's settings")
    config = copy.deepcopy(config)
    changed, kept = [], []
    for section in ("model", "training"):
        target = config.setdefault(section, {})
        for key, value in rule.get(section, {}).items():
            if target.get(key) == value:
                continue
            if f"{section}.{key}" in fixed:
                kept.append(f"{key}={target.get(key)}")
            else:
                changed.append(f"{key} {target.get(key)} -> {value}")
                target[key] = value
    line = (f"size rule: {n_train_chars:,} training characters < small_text.below_chars={limit:,}: small-text settings "
            + (", ".join(changed) if changed else "(already in effect)"))
    return config, line + (f"; kept as given: {', '.join(kept)}" if kept else "")


def build_arg_parser(arch: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"Train the character-level {arch.upper()} on prepared one-hot data (see README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", default=str(default_config_path(arch)), help="JSON config (course keys)")
    p.add_argument("--dataset", default=None, help="prepared data set (folder under --data_dir); default: config dataset.name")
    p.add_argument("--data_dir", default=None, help="folder holding prepared data sets; default: config dataset.data_dir or data")
    p.add_argument("--text", default=None, help="a UTF-8 text to prepare on the fly (one paragraph per line)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (one epoch = as many characters as the training split)")
    p.add_argument("--max_minutes", type=float, default=None, help="stop cleanly after this much training time and save")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (config training.learning_rate)")
    p.add_argument("--batch_size", type=int, default=None, help="windows per step (global, over all processes)")
    p.add_argument("--seq_len", type=int, default=None, help="characters per training window")
    p.add_argument("--name", default=None, help="model name: checkpoints go to <ckpt_dir>/<name>/; default: config model.name")
    p.add_argument("--ckpt_dir", default="checkpoints", help="checkpoint root folder")
    p.add_argument("--resume", action="store_true", help="continue from <ckpt_dir>/<name>/last.pt")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many held-out evaluations without a better loss; 0 = never (default: "
                        f"config training.patience or {TRAINING_DEFAULTS['patience']})")
    p.add_argument("--seed", type=int, default=0, help="random seed (initialisation and batches)")
    p.add_argument("--device", default=None, choices=DEVICE_CHOICES, help="default: config general.device or auto")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--bf16", action="store_true",
                      help="train under bf16 autocast (default: config training.bf16, 'auto' = where the hardware "
                           "has native bf16: CUDA Ampere+, CPUs with AMX or AVX512-BF16)")
    prec.add_argument("--fp32", action="store_true", help="train in plain fp32")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config entries, e.g. model.d_lstm=256 (values are JSON); they win over the size "
                        "rule, and small_text.below_chars=0 turns the rule off")
    return p


def apply_overrides(config: dict, args) -> tuple[dict, frozenset]:
    """The config with the flags and --set entries applied, and the "section.key" names they set
    (the size rule leaves those alone)."""
    config = copy.deepcopy(config)
    fixed = set()
    for section in ("general", "model", "training", "testing", "dataset"):
        config.setdefault(section, {})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise UserError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
        section, name = key.split(".", 1)
        fixed.add(key)
        try:
            config.setdefault(section, {})[name] = json.loads(value)
        except json.JSONDecodeError:
            config.setdefault(section, {})[name] = value
    t = config["training"]
    for flag, key in (("epochs", "epochs"), ("max_minutes", "max_minutes"), ("lr", "learning_rate"),
                      ("batch_size", "batch_size"), ("seq_len", "seq_len"), ("patience", "patience")):
        if getattr(args, flag) is not None:
            t[key] = getattr(args, flag)
            fixed.add(f"training.{key}")
    if t.get("patience") is not None and t["patience"] < 0:
        raise UserError(f"--patience must be >= 0 (0 = never stop early), got {t['patience']}")
    if args.bf16 or args.fp32:
        t["bf16"] = bool(args.bf16)
    if args.name:
        config["model"]["name"] = args.name
    if args.dataset:
        config["dataset"]["name"] = args.dataset
    if args.data_dir:
        config["dataset"]["data_dir"] = args.data_dir
    if args.device:
        config["general"]["device"] = args.device
    return config, frozenset(fixed)


def train(arch: str, config: dict, ckpt_dir: str = "checkpoints", resume: bool = False, seed: int = 0,
          fixed=frozenset()) -> dict:
    """Train `arch` as `config` (after the size rule, `fit_to_text`) says; return the final metrics.
    Used by train.py and the tests."""
    config = copy.deepcopy(config)
    for section in ("general", "model", "training", "testing", "dataset"):
        config.setdefault(section, {})
    data = load_text_data(repo_path(config["dataset"].get("data_dir", "data")) / config["dataset"].get("name", "text"))
    config["training"] = {**TRAINING_DEFAULTS, **config["training"]}
    config, size_line = fit_to_text(config, len(data.train), fixed)
    device = resolve_device(config["general"].get("device", "auto"))
    dist_info, device = init_distributed(device)
    log = print if dist_info.is_main else (lambda *a, **k: None)
    log(size_line)
    cfg = config["training"]
    name = config["model"].setdefault("name", arch)
    out_dir = repo_path(ckpt_dir) / name
    alphabet = data.alphabet
    config["model"]["d_one_hot"] = len(alphabet)  # d_one_hot follows the data's alphabet
    train_stream = torch.from_numpy(data.train)
    val_stream = torch.from_numpy(data.val)

    torch.manual_seed(seed)
    model = build_model(arch, config, len(alphabet)).to(device)
    max_ctx = getattr(model, "max_context", None)
    if max_ctx is not None and cfg["seq_len"] > max_ctx:
        raise UserError(f"seq_len={cfg['seq_len']} exceeds the model's context_length={max_ctx}")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["learning_rate"])
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, len(train_stream) // (cfg["batch_size"] * cfg["seq_len"]))
    total_steps = steps_per_epoch * cfg["epochs"]
    max_seconds = cfg["max_minutes"] * 60 if cfg.get("max_minutes") else None
    eval_interval = max(steps_per_epoch, int(cfg["min_eval_steps"]))
    patience = int(cfg["patience"] or 0)
    state = {"step": 0, "epoch": 0, "elapsed": 0.0, "best_bpc": float("inf"), "history": [], "since_best": 0}

    last_path = out_dir / "last.pt"
    if resume:
        if not last_path.is_file():
            raise UserError(f"--resume: {last_path} does not exist; train without --resume first")
        ck = load_checkpoint(last_path)
        if ck.get("arch") != arch or ck["config"]["model"] != config["model"]:
            raise UserError(f"--resume: {last_path} was trained with other model settings "
                            f"({ck.get('arch')}, {ck['config']['model']}); use another --name")
        if list(ck["alphabet"]) != alphabet.tolist():
            raise UserError(f"--resume: the data's alphabet differs from the one {last_path} was trained on")
        load_state_dict_float32(model, ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        gen.set_state(ck["generator"])
        log(f"resumed {name} at epoch {state['epoch']}, step {state['step']}, {state['elapsed'] / 60:.1f} min trained")

    ddp_model = model
    if dist_info.enabled:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    prompt_line = data.val_lines[0] if data.val_lines else data.train[:40]
    prompt = torch.from_numpy(prompt_line[: config.get("testing", {}).get("teacher_forcing_steps", 30)].copy())
    n_params = count_parameters(model)
    bf16 = use_bf16(device, cfg.get("bf16", "auto"))
    log(f"{arch}: {n_params:,} parameters, {model.context_description()}; "
        f"{len(train_stream):,} training / {len(val_stream):,} held-out characters, alphabet {len(alphabet)}; "
        f"{steps_per_epoch} steps per epoch of {cfg['batch_size']}x{cfg['seq_len']}; device {device} "
        f"[{device_name(device)}]"
        f" ({'bf16 autocast' if bf16 else 'fp32'})"
        + (f", {dist_info.world_size} processes" if dist_info.enabled else ""))
    log(f"held-out evaluation and a sample every {eval_interval} steps ({eval_interval / steps_per_epoch:.1f} epochs); "
        + (f"stops early after {patience} evaluations without a better held-out loss (--patience 0: never)"
           if patience else "no early stop (--patience 0)"))
    if dist_info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(config, out_dir / "config.json")
        np.save(out_dir / "alphabet.npy", alphabet)

    def checkpoint_dict(extra: dict | None = None) -> dict:
        return {"arch": arch, "config": config, "alphabet": alphabet.tolist(),
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **(extra or {})}

    def save_last():
        if dist_info.is_main:
            atomic_save(checkpoint_dict({"optimizer": opt.state_dict(), "state": state,
                                         "generator": gen.get_state()}), last_path)

    def end_of_epoch(train_loss: float):
        metrics = evaluate(model, val_stream, cfg["seq_len"], device)
        sample = decode(generate(model, prompt.to(device), cfg["sample_length"], temperature=0.8,
                                 generator=torch.Generator().manual_seed(0))[0].cpu(), alphabet)
        model.train()
        entry = {"epoch": state["epoch"], "step": state["step"], "minutes": state["elapsed"] / 60,
                 "train_loss_nats": train_loss, "train_bpc": train_loss / LN2, "val_loss_nats": metrics["loss_nats"],
                 "val_bpc": metrics["bpc"], "val_accuracy": metrics["accuracy"],
                 "chars_per_second": state["step"] * cfg["batch_size"] * cfg["seq_len"] / max(state["elapsed"], 1e-9),
                 "sample": sample}
        state["history"].append(entry)
        line = (f"epoch {entry['epoch']:6.2f} step {entry['step']:6d} {entry['minutes']:6.2f} min | train {train_loss:.3f} nats "
                f"({entry['train_bpc']:.3f} bpc) | held-out {metrics['loss_nats']:.3f} nats, {metrics['bpc']:.3f} bpc, "
                f"acc {metrics['accuracy']:.3f}")
        if dist_info.is_main:
            tqdm.write(line)
            tqdm.write(f"    sample: {decode(prompt.numpy(), alphabet)!r} -> {sample!r}")
            with open(out_dir / "train_log.txt", "a", encoding="utf-8") as f:
                f.write(line + "\n    sample: " + repr(sample) + "\n")
            with open(out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        if metrics["bpc"] < state["best_bpc"]:
            state["since_best"] = 0
        else:
            state["since_best"] = state.get("since_best", 0) + 1
        if dist_info.is_main:
            if metrics["bpc"] < state["best_bpc"]:
                state["best_bpc"] = metrics["bpc"]
                if cfg.get("save_model", True):
                    best = {"epoch": state["epoch"], "step": state["step"], "minutes": entry["minutes"],
                            "parameters": n_params, **{f"val_{k}": v for k, v in metrics.items()}}
                    atomic_save(checkpoint_dict({"metrics": best}), out_dir / f"{name}.pt")
                    write_json(best, out_dir / "metrics.json")
        if not dist_info.is_main and metrics["bpc"] < state["best_bpc"]:
            state["best_bpc"] = metrics["bpc"]  # every rank keeps the same patience count
        save_last()
        return entry

    model.train()
    done = state["step"] >= total_steps or (max_seconds is not None and state["elapsed"] >= max_seconds)
    # With a time budget the step total is unknown: show steps and rate without a misleading ETA.
    bar = tqdm(total=None if max_seconds else total_steps, initial=state["step"], desc=f"train {name}", unit="step",
               disable=not dist_info.is_main, dynamic_ncols=True)
    running, n_running = 0.0, 0
    try:
        while not done:
            t0 = time.perf_counter()
            progress = state["step"] / total_steps
            if max_seconds:
                progress = max(progress, state["elapsed"] / max_seconds)
            for group in opt.param_groups:
                group["lr"] = lr_at(progress, state["step"], cfg)
            x, y = random_windows(train_stream, cfg["batch_size"], cfg["seq_len"], gen)
            x, y = shard(x, dist_info).to(device), shard(y, dist_info).to(device)
            with autocast(device, bf16):
                logits = ddp_model(x)[0]
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
            state["step"] += 1
            # one clock for all ranks (the slowest's): the learning rate and the time budget follow it
            state["elapsed"], stop = synced_clock(state["elapsed"] + time.perf_counter() - t0,
                                                  state["step"] >= total_steps, dist_info, device)
            running += loss.item()
            n_running += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
            done = stop or (max_seconds is not None and state["elapsed"] >= max_seconds)
            if state["step"] % eval_interval == 0 or done:
                state["epoch"] = state["step"] / steps_per_epoch
                end_of_epoch(running / n_running)
                running, n_running = 0.0, 0
                if patience and state["since_best"] >= patience and not done:
                    log(f"stopping early: no better held-out loss in the last {patience} evaluations "
                        f"(best {state['best_bpc']:.3f} bpc, kept in {name}.pt)")
                    done = True
    except KeyboardInterrupt:
        if dist_info.is_main:
            tqdm.write("interrupted: saving the last state (continue with --resume)")
        save_last()
        raise
    finally:
        bar.close()
    final = dict(state["history"][-1]) if state["history"] else {}
    final.update(best_val_bpc=state["best_bpc"], parameters=n_params, checkpoint=str(out_dir / f"{name}.pt"))
    cleanup(dist_info)
    return final


def train_main(arch: str, argv=None) -> None:
    @cli
    def main():
        args = build_arg_parser(arch).parse_args(argv)
        if args.threads:
            torch.set_num_threads(args.threads)
        config, fixed = apply_overrides(read_config(repo_path(args.config)), args)
        if args.text:  # prepare on the fly; the data set is named after the text unless --dataset says otherwise
            # Under torchrun only rank 0 writes the files (ranks writing one folder at once delete each
            # other's samples); the others wait for it.
            info, _ = init_distributed(resolve_device(config["general"].get("device", "auto")))
            if info.is_main:
                txt_to_numpy(args.text, config["dataset"].get("data_dir", "data"), args.dataset)
            barrier(info)
            config["dataset"]["name"] = args.dataset or repo_path(args.text).stem
        final = train(arch, config, ckpt_dir=args.ckpt_dir, resume=args.resume, seed=args.seed, fixed=fixed)
        if final.get("val_bpc") is not None:
            print(f"done: best held-out {final['best_val_bpc']:.3f} bpc; checkpoint {final['checkpoint']}")

    main()
