"""Derived facts of the report that are not a plain lookup in one result file (facts.json): the shipped
text models' samples per epoch, a sweep's best cells compared at equal steps, the chapter runs and the
spread over seeds. Used by figures.py, which writes them with the figures."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REPORT = Path(__file__).resolve().parent
REPO = REPORT.parent
RESULTS = REPORT / "results"
CKPT = REPO / "checkpoints"
ARCHS = ("lstm", "tcn", "transformer")


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def chapter_runs(folder: Path) -> list[dict]:
    """One row per exploration run on the chapter (report/results/text/chapter/explore/): the settings
    that differ between them and what each reached, sorted by architecture and best held-out bpc."""
    rows = []
    for path in sorted(folder.glob("*.json")):
        run = read_json(path)
        m, t = run["config"]["model"], run["config"]["training"]
        width = m.get("d_lstm") or m.get("d_model") or (m.get("channels") or [0])[0]
        arch = "lstm" if "d_lstm" in m else "tcn" if "channels" in m else "transformer"
        rows.append({"run": path.stem, "arch": arch,
                     "batch_size": t["batch_size"], "dropout": m.get("dropout", 0.0), "width": width,
                     "learning_rate": t["learning_rate"], "epochs": t["epochs"], "best_bpc": run["best"]["val_bpc"],
                     "best_minutes": run["best"]["minutes"], "end_minutes": run["curve"][-1]["minutes"]})
    return sorted(rows, key=lambda r: (ARCHS.index(r["arch"]), -r["best_bpc"]))


def seed_spread(folder: Path) -> dict:
    """Per kind of run and architecture, the default runs of several seeds (<folder>/<kind>_<arch>_s<seed>.json,
    written by KIND=... SEEDS="0 1 2" scripts/chapter_runs.sh, e.g. anneal_lstm_s0): best held-out bpc of each,
    mean and sample std, training minutes and steps until each stopped, how it stopped, the step of its best
    held-out loss, the step at which patience started its final anneal and what that anneal gained (None
    where the run did not anneal)."""
    out = {}
    for path in sorted(folder.glob("*_s[0-9]*.json")):
        run = read_json(path)
        stem, seed = path.stem.rsplit("_s", 1)
        kind, arch = stem.rsplit("_", 1)
        row = out.setdefault(kind, {}).setdefault(arch, {"seeds": [], "bpc": [], "stopped_at_minutes": [], "stopped": [],
                                                         "anneal_gain": [], "steps": [], "best_step": [],
                                                         "anneal_from_step": []})
        row["seeds"].append(int(seed))
        row["bpc"].append(run["best"]["val_bpc"])
        # within the run: the best held-out bpc before its final anneal started minus the best at its end
        start = (run.get("ended") or {}).get("annealed_from_step")
        before = [e["val_bpc"] for e in run["curve"] if start is not None and e["step"] <= start]
        row["anneal_gain"].append(min(before) - run["best"]["val_bpc"] if before else None)
        row["anneal_from_step"].append(start)
        row["best_step"].append(run["best"]["step"])
        row["stopped_at_minutes"].append(run["curve"][-1]["minutes"])
        row["steps"].append(run["curve"][-1]["step"])
        row["stopped"].append((run.get("ended") or {}).get("stopped"))
    for rows in out.values():
        for row in rows.values():
            row["mean"] = float(np.mean(row["bpc"]))
            row["std"] = float(np.std(row["bpc"], ddof=1)) if len(row["bpc"]) > 1 else None
            row["minutes_mean"] = float(np.mean(row["stopped_at_minutes"]))
    return out


def text_runs(folder: Path) -> dict:
    """Per kind and architecture, the default runs on a text of another size (<folder>/<kind>_<arch>.json,
    written by NAME=... scripts/chapter_runs.sh): best held-out bpc, the minutes it was reached at and
    the run stopped at, how it stopped, the settings the size rule chose, the steps it made and its
    held-out curve by step (for comparisons at equal steps)."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        run = read_json(path)
        kind, arch = path.stem.rsplit("_", 1)
        m, t = run["config"]["model"], run["config"]["training"]
        ended = run.get("ended") or {}
        out.setdefault(kind, {})[arch] = {
            "best_bpc": run["best"]["val_bpc"], "best_minutes": run["best"]["minutes"],
            "end_minutes": ended.get("minutes", run["curve"][-1]["minutes"]), "stopped": ended.get("stopped"),
            "batch_size": t["batch_size"], "dropout": m.get("dropout", 0.0),
            "width": m.get("d_lstm") or m.get("d_model") or (m.get("channels") or [0])[0],
            "weight_decay": t.get("weight_decay", 0.01), "ema_steps": t.get("ema_steps", 0),
            "steps": run["curve"][-1]["step"],
            "curve": [[e["step"], e["val_bpc"]] for e in run["curve"]]}
    return out


def text_facts(sweeps: dict) -> dict:
    facts = {}
    for arch in ARCHS:
        rows = read_jsonl(CKPT / arch / "metrics.jsonl")
        best = min(rows, key=lambda r: r["val_bpc"])
        mid = rows[min(2, len(rows) - 1)]
        facts[arch] = {
            "epochs": rows[-1]["epoch"], "best_epoch": best["epoch"], "best_val_bpc": best["val_bpc"],
            "first": {k: rows[0][k] for k in ("epoch", "val_bpc", "sample")},
            "early": {k: mid[k] for k in ("epoch", "val_bpc", "sample")},
            "late": {k: best[k] for k in ("epoch", "val_bpc", "sample")},
            "end_train_bpc": rows[-1]["train_bpc"], "end_val_bpc": rows[-1]["val_bpc"], "steps": rows[-1]["step"],
            "minutes": rows[-1]["minutes"],  # training minutes until the last evaluation
            "curve": [[r["epoch"], r["val_bpc"]] for r in rows],  # (epoch, held-out bpc) at every evaluation
        }
        # the sweep's best cell against the runner-up, at equal steps (the cells ran different numbers
        # of steps in the same minutes)
        s = sweeps[arch]
        cells = sorted(s["runs"].items(), key=lambda kv: kv[1]["best_val_bpc"])
        (best_key, b), (second_key, c) = cells[0], cells[1]
        steps = min(b["steps"], c["steps"])

        def at(run, step):
            pts = [(p["step"], p["val_bpc"]) for p in run["curve"]]
            return float(np.interp(step, [p[0] for p in pts], [p[1] for p in pts]))

        facts[arch]["sweep"] = {"best": best_key, "second": second_key, "best_bpc": b["best_val_bpc"],
                                "second_bpc": c["best_val_bpc"], "best_steps": b["steps"], "second_steps": c["steps"],
                                "equal_steps": steps, "best_at_equal_steps": at(b, steps),
                                "second_at_equal_steps": at(c, steps), "steps_ratio": b["steps"] / c["steps"]}
    return facts


def lr_brackets(folder: Path) -> dict:
    """Per architecture, the learning-rate bracket at equal steps (<folder>/lr_bracket_<arch>.json, written
    by scripts/lr_bracket.py): the cells by rate (mean and std over the seeds each has), the best rate by
    the mean of the seeded cells, whether it lies inside the rates tried (bracketed), and the gap to the runner-up
    with twice their pooled std (the noise threshold of a difference)."""
    out = {}
    for arch in ARCHS:
        path = folder / f"lr_bracket_{arch}.json"
        if not path.is_file():
            continue
        result = read_json(path)
        cells = sorted(result["cells"].values(), key=lambda c: c["learning_rate"])
        seeded = sorted((c for c in cells if c["std"] is not None), key=lambda c: c["mean"])
        rates = [c["learning_rate"] for c in cells]
        row = {"size": result["size"], "epochs": result["epochs"], "steps": cells[0]["steps"], "cells": cells,
               "rates": rates}
        if len(seeded) >= 2:
            best, second = seeded[0], seeded[1]
            pooled = float(np.sqrt((best["std"] ** 2 + second["std"] ** 2) / 2))
            row.update(best=best, second=second, gap=second["mean"] - best["mean"], noise=2 * pooled,
                       best_inside=rates[0] < best["learning_rate"] < rates[-1])
        out[arch] = row
    return out


def lever_runs(folder: Path) -> dict:
    """The levers tried on the chapter with seed 0 (<folder>/<lever>_<arch>_s0.json, written by KIND=<lever>
    SET="..." SEEDS=0 scripts/chapter_runs.sh): per run its architecture, best held-out bpc, the training
    minutes until it stopped, how it stopped (None: stopped by hand), and the train and held-out bpc of its
    last evaluation."""
    out = {}
    for path in sorted(folder.glob("*_s[0-9]*.json")):
        run = read_json(path)
        stem = path.stem.rsplit("_s", 1)[0]
        lever, arch = stem.rsplit("_", 1)
        ended = run.get("ended") or {}
        out[path.stem] = {"lever": lever, "arch": arch, "best_bpc": run["best"]["val_bpc"],
                          "end_minutes": ended.get("minutes", run["curve"][-1]["minutes"]),
                          "stopped": ended.get("stopped"), "learning_rate": run["config"]["training"]["learning_rate"],
                          "end_train_bpc": run["curve"][-1]["train_bpc"], "end_val_bpc": run["curve"][-1]["val_bpc"],
                          "end_step": run["curve"][-1]["step"]}
    return out


def retrain_runs(folder: Path) -> dict:
    """The novel's 10-minute runs behind the retrained shipped models (<folder>/<role>_<arch>[_<tag>].json,
    written by scripts/save_run_curve.py; the report finds a run by its file name): "previous" is the model
    shipped before, "probe" a run of another recipe on the host of the retraining. Per run its recipe
    (learning rate, dropout, weight drop, weight average), the steps trained, the kept epoch and its
    held-out bpc, and the train and held-out bpc of the last evaluation (how far it had begun to memorise);
    also the minutes it trained, how it stopped and its held-out curve (for comparisons at equal passes).
    The same for the later lever runs on the novel (report/results/text/novel_levers/)."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        run = read_json(path)
        t, m = run["config"]["training"], run["config"]["model"]
        last = run["curve"][-1]
        out[path.stem] = {"learning_rate": t["learning_rate"],
                          "dropout": m.get("dropout", 0.0), "weight_drop": m.get("weight_drop", 0.0),
                          "ema_steps": t.get("ema_steps", 0), "weight_decay": t.get("weight_decay", 0.01),
                          "steps": last["step"],
                          "best_bpc": run["best"]["val_bpc"], "best_epoch": run["best"]["epoch"],
                          "epochs": last["epoch"], "end_train_bpc": last["train_bpc"], "end_val_bpc": last["val_bpc"],
                          "minutes": last["minutes"],
                          "stopped": (run.get("ended") or {}).get("stopped"),
                          "curve": [[e["epoch"], e["val_bpc"]] for e in run["curve"]]}
    return out
