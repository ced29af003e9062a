"""Figures and derived facts of the report, from the committed result files and checkpoints only.

    python report/figures.py        # writes report/figures/*.svg and report/figures/facts.json

Plots are SVG (vector); image grids are JPEG copies of the PNGs that the analyses wrote under
report/results/.
facts.json holds what the document needs that is not a plain lookup in one result file (samples per
epoch, a sweep's cells compared at equal steps, the VAEs' training curves); report.typ reads it and
the result files with json() and guards each sentence that compares numbers with #assert.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import matplotlib
import matplotlib.text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facts import (ARCHS, CKPT, REPO, REPORT, RESULTS, chapter_runs, read_json, read_jsonl,  # noqa: E402
                   lever_runs, lr_brackets, retrain_runs, seed_spread, text_facts, text_runs)

OUT = REPORT / "figures"
NAMES = {"lstm": "LSTM", "tcn": "TCN", "transformer": "Transformer"}
BETAS = (0, 4, 20)
COLORS = {"lstm": "#1f77b4", "tcn": "#d62728", "transformer": "#2ca02c", 0: "#1f77b4", 4: "#ff7f0e", 20: "#2ca02c"}

plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
                     "xtick.labelsize": 8, "ytick.labelsize": 8, "svg.fonttype": "none", "axes.grid": True,
                     "grid.alpha": 0.3, "figure.dpi": 100})

# The report prints each plot at a share of its text width (report.typ reads these from facts.json) and
# scales the SVG to it: no text may come out smaller than MIN_PRINT_PT there. The image grids are
# printed as exercise2/drawing.py sized their labels for (`print_width_cm`).
TEXT_WIDTH_PT = 16.6 / 2.54 * 72   # A4 less 2 x 2.2 cm margins
MIN_PRINT_PT = 7.0
PRINT_WIDTH = {"sweep.svg": 1.0, "text_curves.svg": 0.82, "runs.svg": 1.0, "chapter.svg": 1.0,
               "positions.svg": 0.466,  # the right column of a (1.1fr, 1fr) grid with a 10 pt gutter
               "vae_curves.svg": 1.0, "classifier.svg": 1.0, "mig.svg": 0.88, "rotation_methods.svg": 1.0,
               "context_use.svg": 1.0, "lr_bracket.svg": 1.0}
PRINTED_PT: dict[str, float] = {}  # the smallest text of each plot on paper


def save(fig, name: str) -> None:
    """Write the plot and check that its smallest text prints at MIN_PRINT_PT or more at PRINT_WIDTH."""
    fig.savefig(OUT / name, bbox_inches="tight")
    width_pt = float(re.search(r'<svg[^>]*?width="([0-9.]+)pt"', (OUT / name).read_text(encoding="utf-8")).group(1))
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    smallest = min(texts, key=lambda t: t.get_fontsize())
    PRINTED_PT[name] = smallest.get_fontsize() * PRINT_WIDTH[name] * TEXT_WIDTH_PT / width_pt
    plt.close(fig)
    if PRINTED_PT[name] < MIN_PRINT_PT:
        raise ValueError(f"{name}: the text {smallest.get_text()!r} prints at {PRINTED_PT[name]:.1f} pt "
                         f"(< {MIN_PRINT_PT}) at {PRINT_WIDTH[name]:.0%} of the text width: enlarge it or print wider")


# ---------------------------------------------------------------------------------------- exercise 1
def sweep_figure(sweeps: dict) -> None:
    """Best held-out bpc against the learning rate, one line per model size, one panel per architecture."""
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.7), sharey=True)
    for ax, arch in zip(axes, ARCHS):
        s = sweeps[arch]
        for size, marker in zip(s["sizes"], "os^"):
            lrs = [lr for lr in s["learning_rates"] if f"{size}@{lr:g}" in s["runs"]]
            bpc = [s["runs"][f"{size}@{lr:g}"]["best_val_bpc"] for lr in lrs]
            params = s["runs"][f"{size}@{lrs[0]:g}"]["parameters"]
            ax.plot(lrs, bpc, marker=marker, label=f"{size} ({params / 1e6:.2f}M)")
        ladder_line(ax)
        ax.set_xscale("log")
        ax.set_xticks(s["learning_rates"], [f"{lr:g}" for lr in s["learning_rates"]])
        ax.minorticks_off()
        ax.set_title(NAMES[arch])
        ax.set_xlabel("learning rate")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, ncols=1)
    axes[0].set_ylabel(f"best held-out bpc ({sweeps['lstm']['minutes']:g} min)")
    save(fig, "sweep.svg")


def bracket_figure(brackets: dict) -> None:
    """The learning-rate brackets at equal steps: every seed's best held-out bpc (dots) and the mean per
    rate (line), one panel per architecture, with the novel's Kneser-Ney ladder."""
    archs = [a for a in ARCHS if a in brackets]
    fig, axes = plt.subplots(1, len(archs), figsize=(2.4 * len(archs) + 0.4, 2.6), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        b = brackets[arch]
        for c in b["cells"]:
            seeds = list(c["bpc_by_seed"].values())
            ax.scatter([c["learning_rate"]] * len(seeds), seeds, s=10, color="tab:blue", alpha=0.5, zorder=3)
        ax.plot(b["rates"], [c["mean"] for c in b["cells"]], "-", color="tab:blue", lw=1.2)
        ladder_line(ax, label=arch == archs[0])
        ax.set_xscale("log")
        ax.set_xticks(b["rates"], [f"{lr:g}" for lr in b["rates"]], rotation=35)
        ax.minorticks_off()
        ax.set_title(f"{NAMES[arch]} {b['size']}, {b['steps']:,} steps")
        ax.set_xlabel("learning rate")
    axes[0][0].set_ylabel("best held-out bpc")
    if archs:
        axes[0][0].legend(loc="upper left", frameon=False)
    save(fig, "lr_bracket.svg")


def ladder_line(ax, text: str = "text", label: bool = True) -> None:
    """The yardstick as a reference line: the best order of the Kneser-Ney n-gram ladder on the same
    split (report/results/text/ngram_ladder_<text>.json, written by exercise1/ngram.py)."""
    ladder = read_json(RESULTS / "text" / f"ngram_ladder_{text}.json")
    ax.axhline(ladder["best_bpc"], color="grey", ls=":", lw=1.2,
               label=f"Kneser-Ney {ladder['best_order']}-gram" if label else None)


def curves_figure() -> None:
    """Held-out (solid) and training (dashed) bpc per epoch of the three shipped text models."""
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    for arch in ARCHS:
        rows = read_jsonl(CKPT / arch / "metrics.jsonl")
        ep = [r["epoch"] for r in rows]
        ax.plot(ep, [r["val_bpc"] for r in rows], color=COLORS[arch], label=f"{NAMES[arch]} held-out")
        ax.plot(ep, [r["train_bpc"] for r in rows], color=COLORS[arch], ls="--", lw=1, label=f"{NAMES[arch]} train")
    top = max(max(r["train_bpc"], r["val_bpc"]) for a in ARCHS for r in read_jsonl(CKPT / a / "metrics.jsonl"))
    ax.set_ylim(1.4, top * 1.03)
    ladder_line(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    save(fig, "text_curves.svg")


def runs_figure(runs: dict) -> None:
    """Held-out bpc per epoch of the other runs of the final budget beside the models shipped before the
    retraining (the same rates and host as these runs; report/results/text/retrain/previous_<arch>.json)."""
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.7))
    for ax, arch in zip(axes, ("lstm", "tcn")):
        rows = read_json(RESULTS / "text" / "retrain" / f"previous_{arch}.json")["curve"]
        ax.plot([r["epoch"] for r in rows], [r["val_bpc"] for r in rows], color="black", lw=2, label="shipped before")
        values = [r["val_bpc"] for r in rows]
        for tag, run in sorted(runs.items()):
            if tag.startswith(arch + "_"):
                ax.plot([c["epoch"] for c in run["curve"]], [c["val_bpc"] for c in run["curve"]],
                        label=tag.removeprefix(arch + "_").replace("_", " "))
                values += [c["val_bpc"] for c in run["curve"]]
        ax.set_ylim(min(values) * 0.97, max(values) * 1.03)  # every point shown
        ladder_line(ax)
        ax.set_title(f"{NAMES[arch]}: other runs of the same budget")
        ax.set_xlabel("epoch")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False, ncols=2)
    axes[0].set_ylabel("held-out bpc")
    save(fig, "runs.svg")


def chapter_figure(chapter: dict) -> None:
    """Held-out bpc against training minutes on a chapter-sized text: the novel's settings against the
    size rule's, one panel per architecture."""
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.4), sharey=True)
    for ax, arch in zip(axes, ARCHS):
        for kind, style in (("novel_settings", "--"), ("size_rule", "-")):
            run = chapter[f"{kind}_{arch}"]
            ax.plot([c["minutes"] for c in run["curve"]], [c["val_bpc"] for c in run["curve"]], style,
                    color=COLORS[arch], label=kind.replace("_", " "))
            ax.plot(run["best"]["minutes"], run["best"]["val_bpc"], "o", color=COLORS[arch], ms=4)
        ax.set_ylim(1.85, 3.0)  # the novel settings' runs climb far above (TCN to 5 bpc): cut, see the table
        ladder_line(ax, "chapter", label=False)
        ax.set_title(NAMES[arch])
        ax.set_xlabel("training minutes")
    axes[0].set_ylabel("held-out bpc")
    ladder = read_json(RESULTS / "text" / "ngram_ladder_chapter.json")
    fig.legend(handles=[plt.Line2D([], [], color="black", ls="--", label="novel settings"),
                        plt.Line2D([], [], color="black", label="size rule"),
                        plt.Line2D([], [], color="grey", ls=":", label=f"Kneser-Ney {ladder['best_order']}-gram")],
               loc="upper center", bbox_to_anchor=(0.5, -0.02), frameon=False, ncols=3)
    save(fig, "chapter.svg")


def pe_figure(pe: dict) -> None:
    fig, ax = plt.subplots(figsize=(3.4, 2.3))
    for name, run in pe["runs"].items():
        ax.plot([c["step"] for c in run["curve"]], [c["val_bpc"] for c in run["curve"]], marker="o", ms=3, label=name)
    ladder_line(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out bpc")
    ax.legend(loc="upper right", frameon=False, title="positions")
    save(fig, "positions.svg")


def learning_figure(path: Path) -> None:
    """Context use: held-out bpc when each model sees only the last k characters, early (dashed) and at the
    kept model (solid), beside the Kneser-Ney model of order k + 1 (dotted)."""
    if not path.is_file():
        return
    result = read_json(path)
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    for name, run in result["runs"].items():
        arch = next(a for a in ARCHS if a in name)
        for which, style in (("early", "--"), ("kept", "-")):
            rows = run[which]["context_use"]
            ax.plot([r["context"] for r in rows], [r["bpc"] for r in rows], style, color=COLORS[arch], marker="o", ms=2.5,
                    label=f"{NAMES[arch]} {which} (epoch {run[which]['epoch']:.0f})")
    ngram = result["ngram_context_use"]  # the count model of order k + 1 on the same held-out positions
    ax.plot([r["context"] for r in ngram], [r["bpc"] for r in ngram], ":", color="grey", marker="s", ms=2.5,
            label="Kneser-Ney order k + 1")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("characters of context k")
    ax.set_ylabel("held-out bpc")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    save(fig, "context_use.svg")


# ---------------------------------------------------------------------------------------- exercise 2
def vae_curves_figure() -> dict:
    """Held-out reconstruction error, KL and PSNR during training, per beta (from the checkpoints)."""
    import torch

    hist = {}
    for beta in BETAS:
        ck = torch.load(CKPT / f"vae_beta_{beta}" / f"vae_beta_{beta}.pt", map_location="cpu", weights_only=True)
        hist[beta] = {k: [float(v) for v in vals] for k, vals in ck["history"].items()}
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.3))
    for beta in BETAS:
        h = hist[beta]
        axes[0].plot(h["minutes"], h["val_recon"], color=COLORS[beta], label=f"β = {beta}")
        axes[1].plot(h["minutes"], h["val_kl"], color=COLORS[beta])
        axes[2].plot(h["minutes"], h["val_psnr"], color=COLORS[beta])
    axes[0].set_ylabel("held-out squared error / image")
    axes[1].set_ylabel("held-out KL (nats / image)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("held-out PSNR (dB)")
    for ax in axes:
        ax.set_xlabel("minutes of training")
    axes[0].legend(loc="upper right", frameon=False)
    fig.tight_layout()
    save(fig, "vae_curves.svg")
    return {str(b): {"final_minutes": hist[b]["minutes"][-1], "first_val_kl": hist[b]["val_kl"][0],
                     "last_val_kl": hist[b]["val_kl"][-1]} for b in BETAS}


def classifier_figure(clf: dict) -> None:
    """Held-out AUC per attribute on photos and on each VAE's reconstructions."""
    per = clf["per_attribute"]
    names = sorted(per["photos"], key=lambda n: -per["photos"][n]["auc"])
    fig, ax = plt.subplots(figsize=(7.0, 2.9))
    x = np.arange(len(names))
    for key, marker, color in (("photos", "o", "black"), ("reconstructions by vae_beta_0", "s", COLORS[0]),
                               ("reconstructions by vae_beta_4", "^", COLORS[4]),
                               ("reconstructions by vae_beta_20", "v", COLORS[20])):
        ax.plot(x, [per[key][n]["auc"] for n in names], marker, color=color, ms=4,
                label=key.replace("reconstructions by vae_beta_", "reconstructions, β = "))
    ax.axhline(clf["reliable_auc_threshold"], color="gray", lw=0.8, ls="--")
    ax.set_xticks(x, [n.replace("_", " ") for n in names], rotation=75, ha="right")
    ax.set_ylabel("held-out AUC")
    ax.set_ylim(0.45, 1.0)
    ax.legend(loc="lower left", frameon=True, ncols=2)
    save(fig, "classifier.svg")


def mig_figure(latent: dict) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(6.2, 2.2))
    xs = np.arange(len(BETAS))
    d = [latent[b]["disentanglement"] for b in BETAS]
    axes[0].bar(xs - 0.18, [x["mig"]["mig"] for x in d], 0.36, yerr=[x["mig"]["bootstrap_std"] for x in d],
                label=f"{len(d[0]['attributes'])} attributes read on all decodes", capsize=3)
    axes[0].bar(xs + 0.18, [x["mig_all_attributes"]["mig"] for x in d], 0.36,
                yerr=[x["mig_all_attributes"]["bootstrap_std"] for x in d], label="all 40 attributes", capsize=3)
    for k, key in enumerate(("mig", "mig_all_attributes")):  # the permutation null, where it was measured
        nulls = [(x, v[key]["null"]["mean"]) for x, v in zip(xs, d) if "null" in v[key]]
        axes[0].plot([x + (k - 0.5) * 0.36 for x, _ in nulls], [n for _, n in nulls], "_", color="black", ms=14, mew=2,
                     label="permutation null" if k == 0 and nulls else None)
    axes[0].set_ylabel("MIG (held-out)")
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    axes[0].set_ylim(0, max(x["mig"]["mig"] + x["mig"]["bootstrap_std"] for x in d) * 1.15)
    axes[1].bar(xs - 0.18, [x["mean_single_unit_auc"] for x in d], 0.36, label="best single unit")
    axes[1].bar(xs + 0.18, [x["mean_probe_auc"] for x in d], 0.36, label="linear probe, all units")
    axes[1].set_ylim(0.5, 1.0)
    axes[1].set_ylabel("mean held-out AUC")
    axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    for ax in axes:
        ax.set_xticks(xs, [f"β = {b}" for b in BETAS])
    fig.tight_layout()
    save(fig, "mig.svg")


def rotation_figure(rot: dict) -> None:
    methods = ("interfacegan_calibrated", "interfacegan_conditional", "interfacegan", "yaw_fit", "mirror_path",
               "global_axis", "random_control")
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 2.6))
    xs = np.arange(len(BETAS))
    width = 0.8 / len(methods)
    for k, m in enumerate(methods):
        rows = [rot[b]["comparison"]["methods"].get(m) for b in BETAS]
        cover = [np.nan if r is None else r["yaw_span_landmark"]["covers_target_share"] for r in rows]
        flips = [np.nan if r is None or r["identity"].get("flip_share") is None else r["identity"]["flip_share"]
                 for r in rows]  # null: not measured (no identity attribute read)
        offset = (k - (len(methods) - 1) / 2) * width
        axes[0].bar(xs + offset, cover, width, label=m.replace("_", " "))
        axes[1].bar(xs + offset, flips, width)
    axes[0].axhline(0.9, color="grey", ls=":", lw=1)
    axes[0].set_ylabel("faces whose views span\np10..p90 of photo yaw")
    axes[1].set_ylabel("confident identity\npredictions flipped")
    for ax in axes:
        ax.set_xticks(xs, [f"β = {b}" for b in BETAS])
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.02), frameon=False,
               ncols=3)
    axes[0].set_ylim(0, 1.05)
    fig.tight_layout()
    save(fig, "rotation_methods.svg")


def photo_copies() -> dict:
    """JPEG copies (quality 90) of the analyses' image grids for the PDF: as PNG they would make it
    over 10 MB (the grids are photos, upscaled for legible labels). Returns the width in cm at which
    the report prints each grid, keyed by its path under report/results/: the width its labels were
    sized for (exercise2/drawing.py `print_width_cm`: the text width, or less for a tall grid)."""
    from PIL import Image

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from exercise2.drawing import print_width_cm

    widths = {}
    for png in sorted([*RESULTS.glob("vae_beta_*/*/*.png"), *RESULTS.glob("instruments/*.png"),
                         *RESULTS.glob("text/surprisal_*.png")]):
        out = OUT / "img" / ("__".join(png.relative_to(RESULTS).parts)).replace(".png", ".jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(png) as img:
            widths[png.relative_to(RESULTS).as_posix()] = round(print_width_cm(img.size), 3)
            if not out.is_file() or out.stat().st_mtime < png.stat().st_mtime:
                img.convert("RGB").save(out, quality=90, optimize=True)
    return widths


def main(out: Path | None = None) -> int:
    """Write the figures and facts.json to `out` (default report/figures/)."""
    global OUT
    OUT = Path(out) if out is not None else OUT
    missing = [p for p in (RESULTS / "text" / "sweep_lstm.json", RESULTS / "vae_beta_4" / "rotate" / "summary.json",
                           CKPT / "face_attributes" / "summary.json") if not p.is_file()]
    if missing:
        print(f"error: result files missing ({', '.join(map(str, missing))}): run make report-results", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    sweeps = {a: read_json(RESULTS / "text" / f"sweep_{a}.json") for a in ARCHS}
    runs = {p.stem: read_json(p) for p in sorted((RESULTS / "text" / "runs").glob("*.json"))}
    sweep_figure(sweeps)
    curves_figure()
    runs_figure(runs)
    chapter_figure({p.stem: read_json(p) for p in sorted((RESULTS / "text" / "chapter").glob("*.json"))})
    pe_figure(read_json(RESULTS / "text" / "positional_encoding.json"))
    learning_figure(RESULTS / "text" / "learning_chapter.json")
    latent = {b: read_json(RESULTS / f"vae_beta_{b}" / "latent_analysis" / "summary.json") for b in BETAS}
    rot = {b: read_json(RESULTS / f"vae_beta_{b}" / "rotate" / "summary.json") for b in BETAS}
    facts = {"text": text_facts(sweeps), "vae": vae_curves_figure(),
             "chapter_runs": chapter_runs(RESULTS / "text" / "chapter" / "explore"),
             "chapter_seeds": seed_spread(RESULTS / "text" / "chapter_seeds"),
             "mid_runs": text_runs(RESULTS / "text" / "mid"),
             "mid_seeds": seed_spread(RESULTS / "text" / "mid_seeds"),  # seeds 1, 2 of today's default on the 330k text
             "levers": lever_runs(RESULTS / "text" / "chapter" / "levers"),
             "noising": seed_spread(RESULTS / "text" / "chapter" / "noising"),  # input noise on the chapter, seed 0
             "mid_noising": seed_spread(RESULTS / "text" / "mid_noising"),  # the same on the 330k text, linear rule
             # today's chapter defaults on a host without bf16 units (AMD EPYC, AVX2, fp32), two threads, alone
             "slow_host": seed_spread(RESULTS / "text" / "chapter" / "slow_host"),
             # n-gram distillation (training.ngram_distill) on the chapter, on the same slower host
             "distill": seed_spread(RESULTS / "text" / "chapter" / "distill"),
             # the same at about 300k characters (a cut of the novel), against that text's default (teacher faded to 0)
             "mid_distill": seed_spread(RESULTS / "text" / "mid" / "distill"),
             # the cheap CPU dropout mask (utils/dropout.py) on the chapter, same slower host; "olddrop": PyTorch's mask
             "cheap_dropout": seed_spread(RESULTS / "text" / "chapter" / "cheap_dropout"),
             # ALiBi's biases in the chapter Transformer (model.alibi), same slower host; "ctl19": the control without
             "alibi": seed_spread(RESULTS / "text" / "chapter" / "alibi"),
             # the same at about 150k characters (the novel's first lines): the default (ALiBi faded to about half) and off
             "mid_alibi": seed_spread(RESULTS / "text" / "mid" / "alibi"),
             # more levers on the chapter's defaults, same slower host (TCN width and carried state, the Transformer's
             # weight decay, the LSTM's batch)
             "levers2": seed_spread(RESULTS / "text" / "chapter" / "levers2"),
             # the TCN's new width at about 300k characters (224 channels) against the rule before (192), same host
             "mid_width": seed_spread(RESULTS / "text" / "mid" / "width"),
             # the chapter Transformer's teacher on top of ALiBi, with and without input noise, same host; and the
             # Transformer's new default at about 150k characters (its control: mid/alibi/'s run of the rule before)
             "teacher_tf": seed_spread(RESULTS / "text" / "chapter" / "teacher_tf"),
             # the chapter TCN at 192 channels: its rate and dropout, against this session's default run ("ctl21"),
             # same host; the LSTM's default run of that session ("ctl21") for the day's pace
             "levers3": seed_spread(RESULTS / "text" / "chapter" / "levers3"),
             # more levers on the chapter (the TCN's kernel and batch, the LSTM's width, weight drop, carried state,
             # batch), each against a run of the default at the same pace ("ctl22": session 22's controls)
             "levers4": seed_spread(RESULTS / "text" / "chapter" / "levers4"),
             # the LSTM's depth, window length, locked dropout and weight decay on the chapter, against session 23's
             # runs of its default ("ctl23", three seeds)
             "levers5": seed_spread(RESULTS / "text" / "chapter" / "levers5"),
             # session 24 on an AMD EPYC with AVX512-BF16 (bf16 autocast): the three defaults ("ctl24") and the
             # LSTM's levers (width 512, activation regularisation) against them
             "levers6": seed_spread(RESULTS / "text" / "chapter" / "levers6"),
             # ensembles trained in one run on the chapter (model.members = 2 or 3): the LSTM's and the Transformer's
             # chapter defaults, the TCN's (one model stays its default)
             "ensemble": seed_spread(RESULTS / "text" / "chapter" / "ensemble"),
             # the LSTM and the Transformer at the ensemble's switch (91,882 training characters of the novel): two
             # members ("rule" for the LSTM, "ens2" for the Transformer) against one model ("one")
             "cut92": seed_spread(RESULTS / "text" / "cut92"),
             "mid_teacher_tf": seed_spread(RESULTS / "text" / "mid" / "teacher_tf"),
             # session 29: the LSTM's candidate rule for the novel (carried state from the middle of the size range,
             # novel dropout 0.2) on the 330k text at equal steps (37 passes, "cand"), against today's rule ("ctl37")
             "mid_carry": seed_spread(RESULTS / "text" / "mid" / "carry_rule"),
             "lr_brackets": lr_brackets(RESULTS / "text"),
             "retrain": retrain_runs(RESULTS / "text" / "retrain"),
             "novel_levers": retrain_runs(RESULTS / "text" / "novel_levers"),
             # more seeds of each shipped recipe at the shipped run's passes (scripts/seed_runs.sh)
             "novel_seeds": retrain_runs(RESULTS / "text" / "novel_seeds")}
    if facts["lr_brackets"]:
        bracket_figure(facts["lr_brackets"])
    classifier_figure(read_json(CKPT / "face_attributes" / "summary.json"))
    mig_figure(latent)
    rotation_figure(rot)
    facts.update(grid_width_cm=photo_copies(), print_width=PRINT_WIDTH, printed_pt=PRINTED_PT)
    (OUT / "facts.json").write_text(json.dumps(facts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"figures and facts.json in {OUT}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help="where the figures and facts.json go (default: report/figures)")
    sys.exit(main(parser.parse_args().out.resolve()))
