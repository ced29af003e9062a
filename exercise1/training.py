"""The one training loop of the three character models (LSTM, TCN, Transformer).

Batched training on random fixed-length windows of the training lines (or, with `carry_state`,
contiguous lanes whose windows start from the state the previous one left), optionally with input
characters noised (`input_noise`) and targets softened by a cross-fitted n-gram teacher
(`ngram_distill`), AdamW with warm-up and a cosine schedule, gradient clipping. Every
epoch, but at most every `min_eval_steps` steps, the held-out loss (nats and bits per character) and a
closed-loop sample from a fixed prompt are recorded (console, `train_log.txt`, `metrics.jsonl`; with
input noise the training loss is the one on the noised inputs). After `patience` evaluations without a
better held-out loss the run goes back to its best weights and anneals: the learning rate falls from
where it is to the schedule's floor over `anneal_share` of the steps done so far (at least one
evaluation interval), then the run stops by itself; a run that reaches its budget has annealed by the
cosine schedule itself. With `ema_steps` > 0 what is evaluated, kept and annealed from is a moving
average of the weights over about that many steps (`WeightAverage`). The best held-out model is
`<run>/<name>.pt`, the state to resume `last.pt`, both written atomically. The configuration (defaults,
flags, size rule) is `exercise1/config.py`'s; the command line is `exercise1/cli.py`'s.
"""
from __future__ import annotations

import copy
import json
import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from exercise1.config import RESUME_MAY_CHANGE, changed_on_resume, training_config
from exercise1.data import lane_windows, load_text_data, noised, random_windows
from exercise1.evaluation import LN2, detached, evaluate
from exercise1.generation import generate
from exercise1.learning import char_kinds, loss_by_kind, sample_statistics, words_of
from exercise1.models import build_model, check_model_keys, count_parameters
from exercise1.ngram import cross_fitted
from utils.checkpoint import atomic_save, atomic_write_text, load_checkpoint, load_state_dict_float32, write_json
from utils.device import autocast, device_name, resolve_device, use_bf16
from utils.distributed import barrier, cleanup, init_distributed, shard, synced_clock
from utils.errors import UserError
from utils.helper_functions import decode
from utils.paths import repo_path
from utils.progress import progress
from utils.schedule import budget_share, cosine_lr
from utils.runs import clear_run_dir, start_run_dir

DISTILL_FOLDS = 20  # parts of the training text for the n-gram teacher: each predicted by a model of the other 19


def new_state(seed: int = 0, train_chars: int | None = None) -> dict:
    """What a run has done so far; kept in last.pt (plain types, loadable with weights_only)."""
    return {"step": 0, "epoch": 0, "elapsed": 0.0, "best_bpc": float("inf"), "history": [], "since_best": 0,
            "stopped": None, "anneal": None, "seed": seed, "train_chars": train_chars}


def anneal_lr(anneal: dict, step: int, floor: float) -> float:
    """The learning rate in the final anneal ({start, steps, lr}): a half cosine from `lr` to `floor`."""
    done = min(max(step - anneal["start"], 0) / max(anneal["steps"], 1), 1.0)
    return floor + 0.5 * (anneal["lr"] - floor) * (1 + math.cos(math.pi * done))


class WeightAverage:
    """An exponential moving average of a model's parameters (Polyak averaging; SWA, Izmailov et al.
    2018): an average of the weights along the end of a noisy path sits nearer the middle of the valley
    than any one point of it. Decay 1 - 1/steps, but at most (1 + n) / (10 + n) after n updates, so it
    never keeps the initialisation: it spans about min(steps, n / 9) of the latest steps, a ninth of
    the run so far until n reaches 9 * steps. Up to the final anneal the training path is the same as
    without it (only which weights are evaluated and kept differs); the anneal starts from the best
    averaged weights."""

    def __init__(self, model: torch.nn.Module, steps: float):
        self.params = list(model.parameters())
        self.decay = 1.0 - 1.0 / steps
        self.average = [p.detach().clone() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - decay)

    @torch.no_grad()
    def reset(self) -> None:
        """Start the average again at the model's weights (after the anneal loads the best ones)."""
        for a, p in zip(self.average, self.params):
            a.copy_(p)

    @contextmanager
    def swapped(self):
        """The averaged weights in the model for the duration (an evaluation, a checkpoint), the trained
        ones back afterwards."""
        trained = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, a in zip(self.params, self.average):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, t in zip(self.params, trained):
                    p.copy_(t)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "average": [a.detach().cpu() for a in self.average]}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        for a, saved in zip(self.average, state["average"]):
            a.copy_(saved)


class RunRecord:
    """The files of one run: config, alphabet, the evaluation log (train_log.txt, metrics.jsonl), the
    best model with its metrics, and last.pt. Only the main process writes."""

    def __init__(self, folder: Path, name: str, write: bool):
        self.folder, self.name, self.write = folder, name, write
        self.best_path, self.last_path = folder / f"{name}.pt", folder / "last.pt"

    def start(self, config: dict, alphabet: np.ndarray, history: list[dict]) -> None:
        """config.json and alphabet.npy; the logs rewritten from `history` (empty for a fresh run,
        what last.pt recorded for a resumed one), so they never hold another run's lines."""
        if not self.write:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(config, self.folder / "config.json")
        np.save(self.folder / "alphabet.npy", alphabet)
        atomic_write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in history),
                          self.folder / "metrics.jsonl")
        atomic_write_text("".join(self.log_line(e) for e in history), self.folder / "train_log.txt")

    @staticmethod
    def log_line(entry: dict) -> str:
        train = "train (noised inputs)" if entry.get("noised_inputs") else "train"
        return (f"epoch {entry['epoch']:6.2f} step {entry['step']:6d} {entry['minutes']:6.2f} min | {train} "
                f"{entry['train_loss_nats']:.3f} nats ({entry['train_bpc']:.3f} bpc) | held-out "
                f"{entry['val_loss_nats']:.3f} nats, {entry['val_bpc']:.3f} bpc, acc {entry['val_accuracy']:.3f}\n"
                f"    sample: {entry['sample']!r}\n")

    def add_evaluation(self, entry: dict) -> None:
        if not self.write:
            return
        tqdm.write(self.log_line(entry).rstrip("\n"))
        with open(self.folder / "train_log.txt", "a", encoding="utf-8") as f:
            f.write(self.log_line(entry))
        with open(self.folder / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def save_best(self, checkpoint: dict, metrics: dict) -> None:
        if self.write:
            atomic_save({**checkpoint, "metrics": metrics}, self.best_path)
            write_json(metrics, self.folder / "metrics.json")

    def save_early(self, checkpoint: dict, metrics: dict) -> None:
        """early.pt: the model at the first evaluation, to compare what it knows early and late."""
        if self.write:
            atomic_save({**checkpoint, "metrics": metrics}, self.folder / "early.pt")

    def save_last(self, checkpoint: dict) -> None:
        if self.write:
            atomic_save(checkpoint, self.last_path)

    def finish(self, state: dict) -> None:
        """run.json: how the run ended (`stopped`: epochs, time budget or patience), for scripts that
        must not train a finished run further (the sweep)."""
        if self.write:
            write_json({"stopped": state["stopped"], "step": state["step"], "epoch": state["epoch"],
                        "minutes": state["elapsed"] / 60, "best_val_bpc": state["best_bpc"],
                        "annealed_from_step": (state.get("anneal") or {}).get("start"),
                        **({"ngram_teacher": state["teacher"]} if state.get("teacher") else {})},
                       self.folder / "run.json")


def with_model_defaults(model_cfg: dict) -> dict:
    """A model config with the settings added later filled in at their defaults, so a run started before
    they existed still resumes (the LSTM's weight drop, locked dropout and activation regularisation, the
    TCN's activation and channel dropout, the Transformer's ALiBi, the ensemble's member count)."""
    return {"members": 1, "weight_drop": 0.0, "locked_dropout": False, "activation_reg": 0.0,
            "temporal_activation_reg": 0.0, "activation": "relu", "channel_dropout": 0.0, "alibi": 0.0, **model_cfg}


def resume_state(record: RunRecord, arch: str, config: dict, alphabet, model, opt, gen, average, seed: int,
                 train_chars: int) -> dict:
    """Model, optimiser, weight average and sampler state from last.pt; the run's state dict."""
    if not record.last_path.is_file():
        raise UserError(f"--resume: {record.last_path} does not exist; train without --resume first")
    ck = load_checkpoint(record.last_path)
    if ck.get("arch") != arch or with_model_defaults(ck["config"]["model"]) != with_model_defaults(config["model"]):
        raise UserError(f"--resume: {record.last_path} was trained with other model settings "
                        f"({ck.get('arch')}, {ck['config']['model']}); use another --name")
    if list(ck["alphabet"]) != alphabet.tolist():
        raise UserError(f"--resume: the data's alphabet differs from the one {record.last_path} was trained on")
    if ck["state"].get("train_chars") not in (None, train_chars):  # another text with the same characters
        raise UserError(f"--resume: {record.last_path} was trained on {ck['state']['train_chars']:,} training "
                        f"characters, this data set has {train_chars:,}: resume with the data it started on "
                        "(--dataset/--data_dir/--text), or start a new run with another --name or --overwrite")
    changed = changed_on_resume(ck["config"].get("training", {}), config["training"])
    if ck["state"].get("seed", seed) != seed:  # it draws the windows (with carry_state, the lanes' offsets)
        changed.append(f"--seed: {ck['state']['seed']} -> {seed}")
    if changed:  # the run would go on as another recipe than the one it started (and records) without a word
        raise UserError(f"--resume: {record.last_path} was trained with other training settings ({'; '.join(changed)}); "
                        f"repeat the flags and --set entries it was started with ({record.folder / 'config.json'} "
                        f"holds its settings; only {', '.join(RESUME_MAY_CHANGE)} may change), or start a new run "
                        "with another --name or --overwrite")
    load_state_dict_float32(model, ck["model"])
    opt.load_state_dict(ck["optimizer"])
    gen.set_state(ck["generator"])
    if average is not None:
        if "average" in ck:
            average.load_state_dict(ck["average"])
        else:  # a run started without one: the average starts at the resumed weights
            average.reset()
    return {**new_state(seed, train_chars), **ck["state"]}


def train_step(net, model: torch.nn.Module, opt, x: torch.Tensor, y: torch.Tensor, grad_clip: float, device,
               bf16: bool, average: "WeightAverage | None" = None, state=None, soft: torch.Tensor | None = None,
               soft_weight: float = 0.0):
    """One update: next-character cross-entropy of `net` (the model, or its DDP wrapper) on inputs `x`
    and targets `y` `[B, T]` under bf16 autocast where asked, the gradient norm of `model` clipped, the
    optimiser step and the weight average's update. `state`: what the previous window left (carried
    state), None = an empty start. `soft` `[B, T, V]`: a teacher's distributions; the update then follows
    (1 - soft_weight) * the cross-entropy against `y` + soft_weight * the one against `soft`; a model that
    sets `penalty` in its training pass (the LSTM's activation regularisation) has it added. An ensemble
    (exercise1/ensemble.py) returns every member's logits in training: the loss is the members' mean, so each
    learns on its own loss (its gradient is 1/K of the one it would get alone; `grad_clip` applies to all
    members' gradients together). Returns the plain cross-entropy against `y` (a tensor, not synchronised; an
    ensemble's: its members' mean) and the model's state after the window,
    cut from the graph (gradients stop at the window's start)."""
    with autocast(device, bf16):
        logits, state = net(x, state)
    logits = logits.float()  # [B, T, V], or [K, B, T, V] from an ensemble of K: each member learns on its own
    loss = F.cross_entropy(logits.flatten(0, -2), y.expand(logits.shape[:-1]).flatten())
    objective = loss
    if soft is not None and soft_weight > 0:
        objective = (1 - soft_weight) * loss + soft_weight * F.cross_entropy(
            logits.flatten(0, -2), soft.expand(logits.shape).flatten(0, -2))
    penalty = getattr(model, "penalty", None)
    if penalty is not None:
        objective = objective + penalty
        model.penalty = None  # consumed: the model keeps no tensor of this step's graph (it could not be deep-copied)
    opt.zero_grad(set_to_none=True)
    objective.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    if average is not None:
        average.update()
    return loss, detached(state)


def train(arch: str, config: dict, ckpt_dir: str = "runs", resume: bool = False, seed: int = 0,
          fixed=frozenset(), overwrite: bool = False) -> dict:
    """Train `arch` as `config` says (after `training_config`: defaults, size rule, checks) into
    `<ckpt_dir>/<name>/`; return the final metrics. Used by train.py and the tests."""
    config = copy.deepcopy(config)
    check_model_keys(arch, config)
    dataset = config.get("dataset", {})
    data = load_text_data(repo_path(dataset.get("data_dir", "data")) / dataset.get("name", "text"))
    config, size_line = training_config(config, len(data.train), fixed)
    device = resolve_device(config["general"].get("device", "auto"))
    dist_info, device = init_distributed(device)
    log = print if dist_info.is_main else (lambda *a, **k: None)
    cfg = config["training"]
    name = config["model"].setdefault("name", arch)
    out_dir = start_run_dir(repo_path(ckpt_dir) / name, resume=resume, overwrite=overwrite)
    barrier(dist_info)  # every process has checked the folder before the main one writes to it
    if overwrite and not resume and dist_info.is_main:
        clear_run_dir(out_dir)
    log(size_line)
    record = RunRecord(out_dir, name, write=dist_info.is_main)
    alphabet = data.alphabet
    config["model"]["d_one_hot"] = len(alphabet)  # d_one_hot follows the data's alphabet
    train_stream, val_stream = torch.from_numpy(data.train), torch.from_numpy(data.val)
    if len(train_stream) < cfg["seq_len"] + 1:
        raise UserError(f"the training text ({len(train_stream):,} characters) is shorter than seq_len + 1 = "
                        f"{cfg['seq_len'] + 1}: lower --seq_len")
    if cfg["carry_state"]:
        lane_windows(train_stream, cfg["batch_size"], cfg["seq_len"], 0, seed)  # too short for the lanes: say so now
    positions = torch.arange(len(train_stream))  # windows are drawn as positions: characters and teacher rows

    torch.manual_seed(seed)
    model = build_model(arch, config, len(alphabet)).to(device)
    max_ctx = getattr(model, "max_context", None)
    if cfg["carry_state"] and not getattr(model, "carries_state", False):
        raise UserError(f"training.carry_state: the {arch} has no state to carry from one window to the next "
                        "(it works for the LSTM and the TCN); set it to false")
    if max_ctx is not None and cfg["seq_len"] > max_ctx:
        raise UserError(f"seq_len={cfg['seq_len']} exceeds the model's context_length={max_ctx}")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["learning_rate"])
    gen = torch.Generator().manual_seed(seed)
    average = WeightAverage(model, cfg["ema_steps"]) if cfg["ema_steps"] else None
    steps_per_epoch = max(1, len(train_stream) // (cfg["batch_size"] * cfg["seq_len"]))
    total_steps = steps_per_epoch * cfg["epochs"]
    max_seconds = cfg["max_minutes"] * 60 if cfg["max_minutes"] is not None else None
    eval_interval = max(steps_per_epoch, cfg["min_eval_steps"])
    patience = cfg["patience"]
    state = new_state(seed, len(train_stream))
    if resume:
        state = resume_state(record, arch, config, alphabet, model, opt, gen, average, seed, len(train_stream))
        log(f"resumed {name} at epoch {state['epoch']:.2f}, step {state['step']}, {state['elapsed'] / 60:.1f} min trained")
        if state["stopped"] == "patience":
            log(f"{name} already stopped by itself (no better held-out loss in {patience} evaluations"
                + (", then annealed" if state["anneal"] else "") + "): nothing to train. Start again with --overwrite "
                "or another --name")
            cleanup(dist_info)
            return {**(state["history"][-1] if state["history"] else {}), "best_val_bpc": state["best_bpc"],
                    "checkpoint": str(record.best_path), "stopped": "patience"}
        state["stopped"] = None
    teacher = None
    if cfg["ngram_distill"] > 0:
        fitted = cross_fitted(data.train, len(data.alphabet), folds=DISTILL_FOLDS)
        teacher = torch.from_numpy(fitted["probs"])
        if not resume:  # the teacher is part of the recipe's cost; a resumed run builds it again, uncounted
            state["elapsed"] += fitted["seconds"]
            state["teacher"] = {"order": fitted["order"], "train_bpc": min(fitted["bpc"]), "seconds": fitted["seconds"],
                                "folds": DISTILL_FOLDS}
        log(f"n-gram teacher for ngram_distill={cfg['ngram_distill']}: Kneser-Ney order {fitted['order']}, cross-fitted "
            f"on {DISTILL_FOLDS} parts of the training text: {min(fitted['bpc']):.3f} bpc on it, {fitted['seconds']:.1f} s"
            + ("" if resume else " (counted in the training time)"))

    ddp_model = model
    if dist_info.enabled:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    kinds = char_kinds(data.val, alphabet)                     # for the held-out loss by kind of character
    known_words = set(words_of(decode(data.train, alphabet)))  # for the share of sampled words that exist
    prompt_line = data.val_lines[0] if data.val_lines else data.train[:40]
    prompt = torch.from_numpy(prompt_line[: config["testing"].get("teacher_forcing_steps", 30)].copy())
    n_params = count_parameters(model)
    bf16 = use_bf16(device, cfg["bf16"])
    log(f"{arch}: {n_params:,} parameters, {model.context_description()}; "
        f"{len(train_stream):,} training / {len(val_stream):,} held-out characters, alphabet {len(alphabet)}; "
        f"{steps_per_epoch} steps per epoch of {cfg['batch_size']}x{cfg['seq_len']}; device {device} "
        f"[{device_name(device)}] ({'bf16 autocast' if bf16 else 'fp32'})"
        + (f", {dist_info.world_size} processes" if dist_info.enabled else ""))
    log(f"held-out evaluation and a sample every {eval_interval} steps ({eval_interval / steps_per_epoch:.1f} epochs); "
        + (f"after {patience} evaluations without a better held-out loss it anneals and stops (--patience 0: never)"
           if patience else "no early stop (--patience 0)") + f"; writing {out_dir}")
    record.start(config, alphabet, state["history"])

    def checkpoint(extra: dict | None = None) -> dict:
        return {"arch": arch, "config": config, "alphabet": alphabet.tolist(),
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **(extra or {})}

    def save_last():
        extra = {"average": average.state_dict()} if average is not None else {}
        record.save_last(checkpoint({"optimizer": opt.state_dict(), "state": state, "generator": gen.get_state(),
                                     **extra}))

    def evaluation(train_loss: float) -> None:
        """Held-out loss and a sample of the averaged weights (if any); the log, the best model, the
        patience count."""
        with average.swapped() if average is not None else nullcontext():
            evaluate_and_keep(train_loss)

    def evaluate_and_keep(train_loss: float) -> None:
        metrics = evaluate(model, val_stream, cfg["seq_len"], device, per_char=True)
        by_kind = loss_by_kind(metrics.pop("losses"), kinds)
        sample = decode(generate(model, prompt.to(device), cfg["sample_length"], temperature=0.8,
                                 generator=torch.Generator().manual_seed(0))[0].cpu(), alphabet)
        model.train()
        entry = {"epoch": state["epoch"], "step": state["step"], "minutes": state["elapsed"] / 60,
                 "train_loss_nats": train_loss, "train_bpc": train_loss / LN2, "noised_inputs": cfg["input_noise"] > 0,
                 "val_loss_nats": metrics["loss_nats"],
                 "val_bpc": metrics["bpc"], "val_accuracy": metrics["accuracy"],
                 "chars_per_second": state["step"] * cfg["batch_size"] * cfg["seq_len"] / max(state["elapsed"], 1e-9),
                 "val_bpc_by_kind": {k: v["bpc"] for k, v in by_kind.items()},
                 "sample": sample, "sample_statistics": sample_statistics(sample, known_words)}
        state["history"].append(entry)
        record.add_evaluation(entry)
        summary = {"epoch": state["epoch"], "step": state["step"], "minutes": entry["minutes"], "parameters": n_params,
                   **{f"val_{k}": v for k, v in metrics.items()}}
        if len(state["history"]) == 1:
            record.save_early(checkpoint(), summary)
        better = metrics["bpc"] < state["best_bpc"]  # the same on every process: patience counts alike
        state["since_best"] = 0 if better else state["since_best"] + 1
        if better:
            state["best_bpc"] = metrics["bpc"]
            best_weights.clear()
            best_weights.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            if cfg["save_model"]:
                record.save_best(checkpoint(), summary)

    best_weights: dict = {}  # the best held-out weights so far: the anneal starts from them
    if resume and record.best_path.is_file():
        best_weights.update(load_checkpoint(record.best_path)["model"])
    model.train()
    done = state["step"] >= total_steps or (max_seconds is not None and state["elapsed"] >= max_seconds)
    # With a time budget the step total is unknown: show steps and rate without a misleading ETA.
    bar = progress(total=None if max_seconds else total_steps, initial=state["step"], desc=f"train {name}",
                   unit="step", disable=not dist_info.is_main, dynamic_ncols=True)
    running, n_running = 0.0, 0
    carried = None  # with carry_state: the state the last window left (a resumed run starts its pass afresh)
    try:
        while not done:
            t0 = time.perf_counter()
            share = budget_share(state["step"], total_steps, state["elapsed"], max_seconds)
            lr = cosine_lr(cfg["learning_rate"], share, state["step"], cfg["warmup_steps"], cfg["min_lr_ratio"])
            if state["anneal"]:
                lr = min(lr, anneal_lr(state["anneal"], state["step"], cfg["learning_rate"] * cfg["min_lr_ratio"]))
            for group in opt.param_groups:
                group["lr"] = lr
            if cfg["carry_state"]:
                at_x, at_y, fresh = lane_windows(positions, cfg["batch_size"], cfg["seq_len"], state["step"], seed)
                carried = None if fresh else carried
            else:
                at_x, at_y = random_windows(positions, cfg["batch_size"], cfg["seq_len"], gen)
            x = noised(train_stream[at_x], train_stream, cfg["input_noise"], gen)
            x, y = shard(x, dist_info).to(device), shard(train_stream[at_y], dist_info).to(device)
            soft = teacher[shard(at_y, dist_info)].to(device) if teacher is not None else None
            loss, left = train_step(ddp_model, model, opt, x, y, cfg["grad_clip"], device, bf16, average, carried,
                                    soft, cfg["ngram_distill"])
            # kept only where it is carried (None otherwise); it is carried through the anneal's reload of the
            # best weights (then computed by the weights before it) until the pass ends
            carried = left if cfg["carry_state"] else None
            state["step"] += 1
            # one clock for all ranks (the slowest's): the learning rate and the time budget follow it
            state["elapsed"], stop = synced_clock(state["elapsed"] + time.perf_counter() - t0,
                                                  state["step"] >= total_steps, dist_info, device)
            running += loss.item()
            n_running += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
            if stop:
                state["stopped"] = "epochs"
            elif max_seconds is not None and state["elapsed"] >= max_seconds:
                state["stopped"] = "time budget"
            elif state["anneal"] and state["step"] >= state["anneal"]["start"] + state["anneal"]["steps"]:
                state["stopped"] = "patience"
            if state["step"] % eval_interval == 0 or state["stopped"]:
                state["epoch"] = state["step"] / steps_per_epoch
                evaluation(running / n_running)
                running, n_running = 0.0, 0
                if patience and not state["stopped"] and not state["anneal"] and state["since_best"] >= patience:
                    steps = max(eval_interval, round(cfg["anneal_share"] * state["step"]))
                    state["anneal"] = {"start": state["step"], "steps": steps, "lr": opt.param_groups[0]["lr"]}
                    if best_weights:
                        model.load_state_dict(best_weights)
                    if average is not None:
                        average.reset()
                    log(f"no better held-out loss in the last {patience} evaluations (best {state['best_bpc']:.3f} "
                        f"bpc): back to those weights, annealing the learning rate {state['anneal']['lr']:.1e} -> "
                        f"{cfg['learning_rate'] * cfg['min_lr_ratio']:.1e} over {steps} steps, then stopping")
                elif state["stopped"] == "patience":
                    log(f"annealed and stopped (best {state['best_bpc']:.3f} bpc, kept in {name}.pt)")
                save_last()
            done = state["stopped"] is not None
    except KeyboardInterrupt:
        if dist_info.is_main:
            tqdm.write("interrupted: saving the last state (continue with --resume)")
        save_last()
        raise
    finally:
        bar.close()
    record.finish(state)
    final = dict(state["history"][-1]) if state["history"] else {}
    final.update(best_val_bpc=state["best_bpc"], parameters=n_params, checkpoint=str(record.best_path),
                 stopped=state["stopped"])
    cleanup(dist_info)
    return final
