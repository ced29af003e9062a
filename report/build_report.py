"""Build report/report.pdf from the committed results: the shipped checkpoints' logs and summaries
(checkpoints/*/) and the analysis outputs in report/results/ (written by `make report-results`).

Every number in the text is read from those files; nothing is typed by hand. Edit report/authors.json
for the title page.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from utils.errors import UserError, cli  # noqa: E402
from utils.paths import REPO_ROOT  # noqa: E402

A4 = (8.27, 11.69)
ARCHS = ("lstm", "tcn", "transformer")
BETAS = (0, 4, 20)
TEMPERATURES = ("0.5", "1.0")
NAMES = {"lstm": "LSTM", "tcn": "TCN", "transformer": "Transformer"}


def size_label(arch: str, m: dict) -> str:
    """A model's size from its config section `model`, e.g. "1 x 512 units"."""
    if arch == "lstm":
        return f"{m.get('num_lstm_layers', 1)} x {m['d_lstm']} units"
    if arch == "tcn":
        return f"{len(m['channels'])} x {m['channels'][0]} channels"
    return f"d_model {m['d_model']} x {m['num_layers']} layers"


def variant_label(arch: str, m: dict) -> str:
    return f"{size_label(arch, m)}, dropout {m.get('dropout', 0):g}"


def epoch_label(epoch: float) -> str:
    """A logged epoch as text: whole epochs without decimals, the partial last one with one."""
    return f"{epoch:.0f}" if abs(epoch - round(epoch)) < 1e-6 else f"{epoch:.1f}"


def best_epoch(curve: list[dict]) -> dict:
    """The logged epoch with the lowest held-out loss."""
    return min(curve, key=lambda e: e["val_bpc"])


def ending(curve: list[dict]) -> str:
    """How a run's held-out loss ended: "improving" (the last epoch is the best), "risen" (0.02 bpc or
    more above its best) or "level"."""
    rise = curve[-1]["val_bpc"] - best_epoch(curve)["val_bpc"]
    return "risen" if rise >= 0.02 else "improving" if rise <= 0 else "level"


def read_json(path: Path):
    if not path.is_file():
        raise UserError(f"{path} is missing: run `make report-results` first (it needs the shipped checkpoints)")
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise UserError(f"{path} is missing: the text checkpoints must ship their training log")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Report:
    def __init__(self, pdf: PdfPages):
        self.pdf = pdf
        self.fig = None
        self.y = 0.0
        self.pages = 0

    def new_page(self, heading: str | None = None):
        self.finish()
        self.fig = plt.figure(figsize=A4)
        self.y = 0.95
        if heading:
            self.fig.text(0.08, self.y, heading, fontsize=15, weight="bold", va="top")
            self.y -= 0.045

    def finish(self):
        if self.fig is not None:
            self.pages += 1
            self.fig.text(0.5, 0.02, str(self.pages), ha="center", fontsize=8, color="grey")
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None

    def text(self, body: str, size: float = 9.5, width: int = 100, gap: float = 0.012, **kw):
        lines = []
        for para in body.strip().split("\n"):
            lines += textwrap.wrap(para, width) or [""]
        line_h = size / 72 / A4[1] * 1.35
        if self.y - line_h * len(lines) < 0.05:
            self.new_page()
        self.fig.text(0.08, self.y, "\n".join(lines), fontsize=size, va="top", family=kw.get("family", "sans-serif"),
                      linespacing=1.35)
        self.y -= line_h * len(lines) + gap

    def subheading(self, title: str):
        if self.y < 0.15:
            self.new_page()
        self.fig.text(0.08, self.y, title, fontsize=11.5, weight="bold", va="top")
        self.y -= 0.03

    def table(self, header: list[str], rows: list[list[str]], col_widths=None, height_per_row=0.022):
        h = height_per_row * (len(rows) + 1)
        if self.y - h < 0.05:
            self.new_page()
        ax = self.fig.add_axes([0.08, self.y - h, 0.84, h])
        ax.axis("off")
        t = ax.table(cellText=rows, colLabels=header, loc="upper left", cellLoc="left", colWidths=col_widths)
        t.auto_set_font_size(False)
        t.set_fontsize(8)
        t.scale(1, 1.15)
        self.y -= h + 0.02

    def axes(self, height: float, ncols: int = 1):
        if self.y - height < 0.05:
            self.new_page()
        axs = [self.fig.add_axes([0.1 + i * 0.86 / ncols, self.y - height + 0.045, 0.84 / ncols - 0.07, height - 0.07])
               for i in range(ncols)]
        self.y -= height + 0.01
        return axs

    def image(self, path: Path, height: float, caption: str | None = None, ncols: int = 1, col: int = 0):
        if not path.is_file():
            raise UserError(f"{path} is missing: run `make report-results` first")
        if col == 0 and self.y - height < 0.05:
            self.new_page()
        top = self.y
        ax = self.fig.add_axes([0.08 + col * 0.86 / ncols, top - height, 0.84 / ncols - 0.01, height - 0.02])
        ax.imshow(plt.imread(path))
        ax.axis("off")
        if caption:
            ax.set_title(caption, fontsize=8.5)
        if col == ncols - 1:
            self.y -= height + 0.005


REGENERATE = [
    ["1", "data, split", "make sweep (first step: data_preparation.py)"],
    ["2", "final text models: table, curves, samples", "make train-text, then make report-results"],
    ["2", "other runs of the final budget (table)", "make variants (scripts/save_run_curve.py)"],
    ["2.1", "size x learning-rate heat maps, table", "make sweep (scripts/sweep_text.py)"],
    ["2.2", "positional encodings: table, curves", "make sweep (its last three runs)"],
    ["2.3", "side by side, samples at T 0.5 / 1.0", "make report-results"],
    ["3", "beta table, random generation", "make train-vaes, then make report-results"],
    ["3.1", "traversals, effect tables", "make report-results (main.py --task latent_analysis)"],
    ["3.2", "rotation table and strips", "make report-results (main.py --task rotate)"],
    ["all", "this PDF", "make report"],
]

PE_DISCUSSION = """Why a Transformer without positions learns anything. Self-attention by itself is permutation-invariant, but the causal mask is not: position t attends to exactly t + 1 inputs, so the network can recover how far it is into the window (e.g. a head that attends uniformly averages over t + 1 vectors, and the spread of that average shrinks with t). More importantly for characters, the current character always sits in its own residual stream, so the model is at least a bigram model, and attention adds an unordered summary of the recent past (which letters occurred, which words are likely). What it cannot do directly is tell "ab" from "ba" in the context: the order of the preceding characters, which spelling depends on, is only available through the weak position signal that the mask creates. That is what the measured gap costs. Learned and sinusoidal encodings give the order directly: the learned one has to learn its 128 vectors from the data, the sinusoidal one offers every relative offset from the start as a fixed rotation of the sines and cosines."""


DROPOUT_WHERE = {"lstm": "on the output before the linear layer (and between stacked layers)", "tcn": "after each convolution",
                 "transformer": "on attention weights, residual branches and the input"}


NO_DROPOUT = {"lstm": "1x512_d0", "tcn": "d0", "transformer": "d0"}  # run tags of the rule's size without dropout


def runs_discussion(text: dict, runs: dict) -> str:
    """What the runs of the final budget show, computed from the result files."""
    best = best_epoch
    parts = []
    ship_cfg = text["lstm"]["config"]["model"]
    lstm = [(v["config"]["model"], v["curve"], (v.get("test") or {}).get("chars_per_second"), False)
            for k, v in runs.items() if k.startswith("lstm_")]
    lstm.append((ship_cfg, text["lstm"]["log"], text["lstm"]["eval"]["chars_per_second"], True))
    layers = lambda m: m.get("num_lstm_layers", 1)  # noqa: E731
    one = sorted((m.get("dropout", 0), best(c)["val_bpc"], m["d_lstm"]) for m, c, _, _ in lstm if layers(m) == 1)
    if one:
        parts.append(f"dropout on the one-layer LSTM ({one[0][2]} units): "
                     + ", ".join(f"{d:g} gives {b:.3f}" for d, b, _ in one)
                     + " bpc; the stronger it is, the later the best epoch and the smaller the gap between training and "
                       "held-out loss at the end, but the floor moves by hundredths only")
    one_gen = max(((g, m["d_lstm"]) for m, _, g, _ in lstm if layers(m) == 1 and g), default=None)
    for m, c, gen, shipped_run in sorted((e for e in lstm if layers(e[0]) > 1), key=lambda e: -e[0]["d_lstm"]):
        b, last = best(c), c[-1]
        h = m["d_lstm"]
        trend = ("still improving at the end" if ending(c) == "improving" else
                 f"{'level' if ending(c) == 'level' else 'risen again'} at the end (best at epoch {epoch_label(b['epoch'])})")
        parts.append(f"{layers(m)} layers of {h} units with dropout {m.get('dropout', 0):g}{' (shipped)' if shipped_run else ''} "
                     f"reach {b['val_bpc']:.3f} bpc in {last['epoch']:.1f} epochs ({last['step']:,} steps), {trend} "
                     f"(train {last['train_bpc']:.3f}, held-out {last['val_bpc']:.3f}); each character then reads "
                     f"{2 * layers(m) - 1} matrices of {4 * h} x {h}"
                     + (f" and generation runs at {gen:,.0f} characters/s" if gen else ""))
    deep = [e for e in lstm if layers(e[0]) > 1]
    if deep:
        shipped_gen = next((g for _, _, g, shipped_run in deep if shipped_run), None)
        parts.append("depth helps more than dropout: the second layer lowers the held-out loss although it costs steps"
                     + (", and the narrower stack is the one this budget affords (more steps) and that still generates "
                        "faster than the project's 2,000 characters/s" if shipped_gen and shipped_gen >= 2000 else "")
                     + (f" (one layer of {one_gen[1]} units: {one_gen[0]:,.0f} characters/s; single measurements of 500 "
                        "characters)" if one_gen else ""))
    for k, v in runs.items():
        if k.startswith("tcn_"):
            b, ship = best(v["curve"]), best(text["tcn"]["log"])
            parts.append(f"the TCN with dropout {v['config']['model'].get('dropout', 0):g} reaches {b['val_bpc']:.3f} against "
                         f"{ship['val_bpc']:.3f} without: it made {v['curve'][-1]['step']:,} steps against "
                         f"{text['tcn']['log'][-1]['step']:,} (the random masks cost time in every step, and the host's speed "
                         f"varied), so the TCN is shipped without")
    ship_log = text["transformer"]["log"]
    for k, v in runs.items():
        if k.startswith("transformer_"):
            b, last = best(v["curve"]), v["curve"][-1]
            parts.append(f"the Transformer of {size_label('transformer', v['config']['model'])} reached {b['val_bpc']:.3f} "
                         f"(best at epoch {epoch_label(b['epoch'])} of {last['epoch']:.1f}, {last['step']:,} steps on the faster Intel "
                         f"host) and the shipped {size_label('transformer', text['transformer']['config']['model'])} "
                         f"{best(ship_log)['val_bpc']:.3f} ({ship_log[-1]['step']:,} steps on the AMD host): nearly the same "
                         f"loss from {text['transformer']['best']['parameters'] / v['parameters']:.0%} of the weights, which "
                         f"generate {text['transformer']['eval']['chars_per_second']:,.0f} characters/s against "
                         f"{v['test']['chars_per_second']:,.0f}")
    if not text["transformer"]["config"]["model"].get("dropout"):
        parts.append("the Transformer was not run with dropout"
                     + (": the shipped one was still improving when its time ran out"
                        if ending(ship_log) == "improving" else ""))
    joined = "; ".join(parts)
    return "Results. " + joined[:1].upper() + joined[1:] + ". The shipped checkpoints are the best held-out epochs, so overfitting costs the rest of the budget rather than the result."


def final_choice(res: dict) -> tuple[str, float]:
    """The rule for the final models: the best learning rate, and the larger of the two best sizes at it."""
    best_lr = min(res["runs"].values(), key=lambda c: c["best_val_bpc"])["learning_rate"]
    two = sorted(res["sizes"], key=lambda s: res["runs"][f"{s}@{best_lr:g}"]["best_val_bpc"])[:2]
    return max(two, key=res["sizes"].index), best_lr


def sweep_discussion(sweep: dict, minutes: float) -> str:
    """The sweep's findings, computed from the results (so the text cannot drift from the numbers)."""
    parts, spreads = [], {}
    for a in ARCHS:
        res = sweep[a]
        lrs = res["learning_rates"]
        cells = {s: [res["runs"][f"{s}@{lr:g}"] for lr in lrs] for s in res["sizes"]}
        top_lr_best = [s for s, c in cells.items() if min(c, key=lambda x: x["best_val_bpc"])["learning_rate"] == lrs[-1]]
        spread = {s: max(x["best_val_bpc"] for x in c) - min(x["best_val_bpc"] for x in c) for s, c in cells.items()}
        best_size = {lr: min(res["sizes"], key=lambda s: res["runs"][f"{s}@{lr:g}"]["best_val_bpc"]) for lr in lrs}
        speed = {s: c[0]["chars_per_second"] for s, c in cells.items()}
        spreads[a] = max(spread.values())
        parts.append(
            f"{NAMES[a]}: the highest learning rate ({lrs[-1]:g}) is best for {len(top_lr_best)} of {len(cells)} sizes; "
            f"the learning rate moves the result by {min(spread.values()):.2f} to {max(spread.values()):.2f} bpc per size. "
            f"Best size at each learning rate: {', '.join(f'{lr:g}: {best_size[lr]}' for lr in lrs)}. "
            f"Throughput S / M / L: {' / '.join(f'{speed[s]:,.0f}' for s in res['sizes'])} characters/s.")
    lstm_spread = spreads["lstm"]
    return ("Results. " + " ".join(parts) + f""" Discussion. In {minutes:g} minutes every model is still early in training, so the budget, not the capacity, limits the result: what counts is how much loss each second of compute removes. That favours high learning rates (the best rate sits at the upper edge of the grid almost everywhere, so the optimum for this budget may lie higher still) and models that are cheap per character: a larger model learns more per character seen but sees fewer of them. The LSTM shows both effects most strongly: its small version runs several times faster than the large one, and the learning rate changes its result by up to {lstm_spread:.2f} bpc (a single recurrent path through 128 steps learns slowly at low rates, and the schedule's decay leaves little time to catch up). Because a longer budget moves the optimum towards larger models, each final model (section 2) takes its architecture's best learning rate and the larger of the two best sizes at that rate: """ + "; ".join(
        f"{NAMES[a]} {final_choice(sweep[a])[0]} at {final_choice(sweep[a])[1]:g}" for a in ARCHS)
        + ". Section 2 says where a shipped model departs from this rule and why.")


def build(out: Path, results: Path) -> int:
    ck = REPO_ROOT / "checkpoints"
    authors = read_json(REPO_ROOT / "report" / "authors.json")
    text = {a: {"log": read_jsonl(ck / a / "metrics.jsonl"), "best": read_json(ck / a / "metrics.json"),
                "config": read_json(ck / a / "config.json"), "eval": read_json(results / "text" / f"{a}.json")}
            for a in ARCHS}
    vae = {b: {"summary": read_json(ck / f"vae_beta_{b}" / "summary.json"),
               "random": read_json(results / f"vae_beta_{b}" / "random_generation" / "summary.json"),
               "latent": read_json(results / f"vae_beta_{b}" / "latent_analysis" / "summary.json"),
               "rotate": read_json(results / f"vae_beta_{b}" / "rotate" / "summary.json")} for b in BETAS}
    split = read_json(results / "text" / "split.json")
    sweep = {a: read_json(results / "text" / f"sweep_{a}.json") for a in ARCHS}
    pe = read_json(results / "text" / "positional_encoding.json")
    pe_unscaled = read_json(results / "text" / "pe_sinusoidal_unscaled.json")
    temps = {a: {t: read_json(results / "text" / f"{a}_T{t}.json") for t in TEMPERATURES} for a in ARCHS}
    # other runs of the final budget (report/results/text/runs/<arch>_<tag>.json, `make variants`)
    variant_runs = {f.stem: read_json(f) for f in sorted((results / "text" / "runs").glob("*.json"))}

    with PdfPages(out) as pdf:
        r = Report(pdf)
        # ---------------------------------------------------------------- title
        r.new_page()
        r.fig.text(0.5, 0.72, authors["title"], ha="center", fontsize=17, weight="bold", wrap=True)
        r.fig.text(0.5, 0.67, "Character-level language models and beta-VAEs: protocols, results, discussion",
                   ha="center", fontsize=11)
        y = 0.58
        for a in authors["authors"]:
            r.fig.text(0.5, y, f"{a['name']}   ·   {a['matriculation_number']}   ·   {a['email']}", ha="center", fontsize=10.5)
            y -= 0.03
        r.fig.text(0.5, 0.2, "Every number in this report is read from the result files in the repository;\n"
                   "`make report` rebuilds it, `make report-results` regenerates the analyses.", ha="center",
                   fontsize=8.5, color="grey")
        # ---------------------------------------------------------------- setup
        r.new_page("1  Setup")
        r.text(f"""Text: The Water of the Wondrous Isles by William Morris (1897, public domain; the course's Tolkien chapter is under copyright), one paragraph per line, lowercased, lines of one character or less skipped: {split['n_lines']:,} lines, {split['n_chars']:,} characters, an alphabet of {text['lstm']['config']['model']['d_one_hot']} symbols including the line separator. A fixed split by line (seed {split['seed']}): {len(split['train'])} training and {len(split['val'])} held-out lines. Every loss below is the mean negative log-likelihood of the held-out characters in nats, also given in bits per character (bpc = nats / ln 2); each character is predicted from as much context as the model can use (LSTM and TCN carry their state along the text, the Transformer slides its window with stride context/2).
Faces: the first 10,000 aligned CelebA images at half resolution, a centred square of 148/178 of the width resized to 64x64; the last 1,000 files are held out. Reconstruction error is the squared error summed over the 3x64x64 pixels; PSNR = 10 log10(1 / mean squared error) over the held-out set, from the posterior mean.
Hardware: every model was trained on 2 CPU cores (no GPU) with a fixed wall-clock training budget per run. The virtual machine's host changed during the project (an Intel Xeon with AMX, later an AMD EPYC without AMX; section 2 says which model ran where), so equal time means equal compute only on the same host (training logs now name the CPU).""")
        # ---------------------------------------------------------------- exercise 1
        r.new_page("2  Exercise 1: character-level text generation")

        def train_speed(a):
            return sum(e["chars_per_second"] for e in text[a]["log"]) / len(text[a]["log"])

        def sweep_size(a, cell):  # the cell's size overrides on top of the architecture's model config
            return size_label(a, {**text[a]["config"]["model"],
                                  **{k.split(".", 1)[1]: v for k, v in cell["overrides"].items() if k.startswith("model.")}})

        def rule_size(a):  # the size the sweep's rule chose
            size, lr = final_choice(sweep[a])
            return sweep_size(a, sweep[a]["runs"][f"{size}@{lr:g}"])

        def departure(a):  # how the shipped model differs from the sweep's rule, or None
            rule, m = rule_size(a), text[a]["config"]["model"]
            if size_label(a, m) != rule:
                ruled = [v for k, v in variant_runs.items()
                         if k.split("_", 1)[0] == a and size_label(a, v["config"]["model"]) == rule]
                rule_best = min((best_epoch(v["curve"])["val_bpc"] for v in ruled), default=float("inf"))
                if rule_best < text[a]["eval"]["bpc"]:  # the rule's size was better but is not shipped: speed
                    return (f"the {NAMES[a]} departs from it: the rule's {rule} reached {rule_best:.3f} bpc, but the "
                            f"{size_label(a, m)} reaches {text[a]['eval']['bpc']:.3f} in the same time and generates about "
                            f"twice as fast (table below), so the smaller one is shipped")
                return (f"the {NAMES[a]} departs from it: the rule's {rule} overfitted within the budget (at best "
                        f"{rule_best:.3f} bpc), so other runs of the same budget (table below) were compared and the one with "
                        f"the lowest held-out loss, {variant_label(a, m)}, is shipped (chosen on the held-out lines, so its "
                        f"figure is slightly optimistic)")
            if m.get("dropout"):
                return f"the {NAMES[a]} adds dropout {m['dropout']:g}, after a first final run without it overfitted"
            return None

        departures = [d for d in map(departure, ARCHS) if d]
        dropped_note = "; " + "; ".join(departures) if departures else ""
        def speed_against_sweep(a):
            shipped, lr = size_label(a, text[a]["config"]["model"]), text[a]["config"]["training"]["learning_rate"]
            cells = [c for c in sweep[a]["runs"].values() if sweep_size(a, c) == shipped and c["learning_rate"] == lr]
            return f"against {cells[0]['chars_per_second']:,.0f} in its sweep cell" if cells else "(not a cell of the sweep)"

        speed_note = "; ".join(f"{NAMES[a]} {train_speed(a):,.0f} characters/s {speed_against_sweep(a)}" for a in ARCHS)
        r.text(f"""Protocol. Each architecture is trained with one shared loop: random windows of fixed length from the training lines (joined by the line separator), AdamW with a short linear warm-up and a cosine decay to a tenth of the peak learning rate over the time budget, gradient clipping at 1. After every epoch (as many characters as the training split) the held-out loss and a closed-loop sample from a fixed held-out prompt are logged. The best held-out model is kept. Training runs under bf16 autocast (weights, optimiser, loss and evaluation in fp32). Sizes and learning rates come from the sweep of section 2.1 (its best learning rate and the larger of the two best sizes at it){dropped_note}; every run gets the same budget of training time ({text['lstm']['config']['training']['max_minutes']:g} minutes against {sweep['lstm']['minutes']:g} in the sweep). Hosts: the sweep (and the d_model 256 Transformer of the second table) ran on an Intel Xeon with AMX (bf16 matrix units); this workplace then moved to an AMD EPYC with AVX512-BF16 but no AMX, where the three shipped models were trained. The training characters/s in the table show what each model got out of its 10 minutes ({speed_note}).""")
        rows = []
        for a in ARCHS:
            m, ev, cfg = text[a]["best"], text[a]["eval"], text[a]["config"]
            speed = train_speed(a)
            context = {"lstm": "recurrent state", "tcn": ev["context"].split()[-2] + " chars (RF)",
                       "transformer": ev["context"].split()[2] + " chars"}[a]
            rows.append([NAMES[a], f"{m['parameters']:,}", context,
                         f"{cfg['training']['learning_rate']:g}/{cfg['model'].get('dropout', 0):g}", f"{m['minutes']:.1f}", f"{m['epoch']:.1f}",
                         f"{ev['loss_nats']:.3f}", f"{ev['bpc']:.3f}", f"{ev['accuracy']:.3f}",
                         f"{speed:,.0f}", f"{ev['chars_per_second']:,.0f}"])
        r.table(["model", "params", "context", "lr / drop.", "best min", "epoch", "nats", "bpc", "acc.",
                 "train chars/s", "gen. chars/s"], rows,
                col_widths=[0.11, 0.1, 0.14, 0.09, 0.08, 0.06, 0.06, 0.06, 0.06, 0.1, 0.1])
        r.text("lr / drop.: peak learning rate and dropout; best min / epoch: when the kept (best held-out) checkpoint was reached; train chars/s: mean over the run; "
               "gen. chars/s: batch 1, 500 characters.", size=7.5, gap=0.004)
        ax1, ax2 = r.axes(0.27, ncols=2)
        for i, a in enumerate(ARCHS):
            log, colour = text[a]["log"], f"C{i}"
            ax1.plot([e["minutes"] for e in log], [e["val_bpc"] for e in log], color=colour, label=NAMES[a])
            ax2.plot([e["epoch"] for e in log], [e["train_bpc"] for e in log], "--", color=colour, label=f"{NAMES[a]} train")
            ax2.plot([e["epoch"] for e in log], [e["val_bpc"] for e in log], color=colour, label=f"{NAMES[a]} held-out")
            if f"{a}_{NO_DROPOUT[a]}" in variant_runs:
                run = variant_runs[f"{a}_{NO_DROPOUT[a]}"]
                curve, label = run["curve"], f"{NAMES[a]} {size_label(a, run['config']['model'])} without dropout"
                ax2.plot([e["epoch"] for e in curve], [e["val_bpc"] for e in curve], ":", color=colour, alpha=0.6,
                         label=f"{label}, held-out")
                ax2.plot([e["epoch"] for e in curve], [e["train_bpc"] for e in curve], "-.", color=colour, alpha=0.4,
                         label=f"{label}, train")
        ax1.set(xlabel="training minutes", ylabel="held-out bits per character", title="held-out bpc over time")
        ax2.set(xlabel="epoch", ylabel="bits per character", title="train (dashed) and held-out bpc")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            ax.set_ylim(top=3.5)
        ranked = sorted(ARCHS, key=lambda a: text[a]["eval"]["bpc"])
        gaps = {a: text[a]["log"][-1]["val_bpc"] - text[a]["log"][-1]["train_bpc"] for a in ARCHS}
        r.text(f"""Results. Held-out bpc after 10 minutes, lowest first: {', '.join(f"{NAMES[a]} {text[a]['eval']['bpc']:.3f}" for a in ranked)}. The gap between held-out and training bpc in the last epoch is {', '.join(f"{NAMES[a]} {gaps[a]:+.3f}" for a in ARCHS)}: a positive gap means the model has started to fit the particular training lines, which is why the best held-out checkpoint, not the last one, is kept.""")
        def overfit(a):
            log = text[a]["log"]
            b, last = best_epoch(log), log[-1]
            return (f"{NAMES[a]}: best {b['val_bpc']:.3f} at epoch {epoch_label(b['epoch'])} ({b['minutes']:.1f} min), at the end "
                    f"(epoch {last['epoch']:.1f}) train {last['train_bpc']:.3f} and held-out {last['val_bpc']:.3f}")

        kinds = {k: [NAMES[a] for a in ARCHS if ending(text[a]["log"]) == k] for k in ("risen", "level", "improving")}
        phrases = {"risen": "has risen well above its best", "level": "has levelled off", "improving": "is still falling"}
        after_best = "; ".join(f"the held-out loss of the {' and '.join(v)} {phrases[k]}" for k, v in kinds.items() if v)
        r.text(f"""Overfitting, dropout and depth. At the end of the budget every shipped model fits the training lines better than the held-out text ({'; '.join(overfit(a) for a in ARCHS)}): {after_best}. Under 700k training characters are few for models of {min(text[a]['best']['parameters'] for a in ARCHS) / 1e6:.1f} to {max(text[a]['best']['parameters'] for a in ARCHS) / 1e6:.1f}M parameters that see them {min(text[a]['log'][-1]['epoch'] for a in ARCHS):.0f} to {max(text[a]['log'][-1]['epoch'] for a in ARCHS):.0f} times. The sweep's 2-minute runs end before any model overfits, so it could not choose a regulariser; the table below compares the shipped models with other runs of the same budget (`make variants`). Dropout acts {'; '.join(f"in the {NAMES[a]} {DROPOUT_WHERE[a]}" for a in ARCHS)}. Shipped models are marked with *.""")
        rows = []
        for a in ARCHS:
            entries = [("shipped", text[a]["config"], text[a]["log"], text[a]["eval"]["chars_per_second"])]
            entries += [(key.split("_", 1)[1], v["config"], v["curve"], (v.get("test") or {}).get("chars_per_second"))
                        for key, v in variant_runs.items() if key.split("_", 1)[0] == a]
            for tag, cfg, curve, gen in entries:
                b_, last = best_epoch(curve), curve[-1]
                rows.append([NAMES[a], variant_label(a, cfg["model"]) + (" *" if tag == "shipped" else ""),
                             f"{b_['val_bpc']:.3f}", f"{epoch_label(b_['epoch'])} of {last['epoch']:.1f}", f"{last['step']:,}",
                             f"{last['train_bpc']:.3f} / {last['val_bpc']:.3f}", f"{gen:,.0f}" if gen else "-"])
        r.table(["model", "variant", "best bpc", "best epoch", "steps", "end: train / held-out", "gen. chars/s"], rows,
                col_widths=[0.11, 0.33, 0.08, 0.11, 0.08, 0.17, 0.12])
        r.text(runs_discussion(text, variant_runs))
        # samples over training
        r.subheading("What the models produce early and late in training (closed loop, temperature 0.8)")
        for a in ARCHS:
            log = text[a]["log"]
            picks = sorted({0, min(2, len(log) - 1), len(log) // 3, len(log) - 1})
            r.text(f"{a}:", size=9, gap=0.002)
            for i in picks:
                e = log[i]
                r.text(f"epoch {e['epoch']:.1f} ({e['minutes']:.1f} min, held-out {e['val_bpc']:.2f} bpc): "
                       f"{e['sample'][:150]!r}", size=7, width=108, gap=0.004, family="monospace")
        first = {a: text[a]["log"][0]["val_bpc"] for a in ARCHS}
        at5 = {a: next((e["val_bpc"] for e in text[a]["log"] if e["epoch"] >= 5), float("nan")) for a in ARCHS}
        best_ep = {a: best_epoch(text[a]["log"])["epoch"] for a in ARCHS}
        lstm_early = ("leads after five epochs (a recurrent state picks up the local statistics quickly)"
                      if at5["lstm"] == min(at5.values()) else f"is at {at5['lstm']:.2f} after five epochs")
        if f"lstm_{NO_DROPOUT['lstm']}" in variant_runs:
            nd = variant_runs[f"lstm_{NO_DROPOUT['lstm']}"]
            lstm_late = (f"without dropout ({size_label('lstm', nd['config']['model'])}) it memorises the training lines once "
                         f"those statistics are learned (best epoch {epoch_label(best_epoch(nd['curve'])['epoch'])}); the shipped LSTM "
                         f"({variant_label('lstm', text['lstm']['config']['model'])}) improves until epoch {epoch_label(best_ep['lstm'])}")
        else:
            lstm_late = f"its best epoch is {epoch_label(best_ep['lstm'])}"
        r.text(f"""Interpretation. The first epoch's samples are mostly frequent letters and spaces with roughly the right word lengths: the unigram and bigram statistics are the cheapest loss reduction. Next come frequent short words ("and", "the", "of") and the text's archaic function words ("thou", "thee"), then punctuation after clauses and longer words; late in training the samples keep the style (clause chains joined by "and") and mostly spell real words, but lose the thread after a few words: a model that predicts one character at a time from a few hundred characters of context has learned local syntax and vocabulary, not meaning. Per epoch, held-out bpc after the first epoch is {', '.join(f"{NAMES[a]} {first[a]:.2f}" for a in ARCHS)} and after five {', '.join(f"{NAMES[a]} {at5[a]:.2f}" for a in ARCHS)}; the best epoch is {', '.join(f"{NAMES[a]} {epoch_label(best_ep[a])}" for a in ARCHS)}. The TCN starts fastest: its convolutions see a fixed window from the first step, so local letter patterns are learned at once, but it then improves least. The Transformer starts slowest (attention has to learn where to look, and its learned positions start as noise) and keeps improving longest, without dropout to {text['transformer']['eval']['bpc']:.3f}. The LSTM {lstm_early}; {lstm_late}.""")
        # ---------------------------------------------------------------- sweep
        minutes = sweep["lstm"]["minutes"]
        r.new_page("2.1  Model size and learning rate at a fixed budget")
        r.text(f"""Protocol. For each architecture, 3 sizes x 3 peak learning rates, each run trained for {minutes:g} minutes of pure training time (evaluations not counted) on 2 CPU threads with the shared loop, seed 0, the same split and schedule as above (the cosine decay spans the time budget), bf16 autocast on the Intel host (AMX). Everything except the named size parameter comes from the architecture's config.json. Reported: the best held-out bpc of the run, its parameter count and its training throughput. `python scripts/sweep_text.py --minutes {minutes:g}` regenerates all of it (results/text/sweep_*.json and the heat maps).""")
        for i, a in enumerate(ARCHS):
            r.image(results / "text" / f"sweep_{a}.png", 0.2, None, ncols=3, col=i)
        rows = []
        for a in ARCHS:
            res = sweep[a]
            for size in res["sizes"]:
                cells = [res["runs"][f"{size}@{lr:g}"] for lr in res["learning_rates"]]
                best_cell = min(cells, key=lambda c: c["best_val_bpc"])
                rows.append([NAMES[a], f"{size}: {sweep_size(a, cells[0])}", f"{cells[0]['parameters']:,}",
                             f"{sum(c['chars_per_second'] for c in cells) / len(cells):,.0f}",
                             f"{sum(c['epochs'] for c in cells) / len(cells):.1f}",
                             " / ".join(f"{c['best_val_bpc']:.3f}" for c in cells), f"{best_cell['learning_rate']:g}"])
        r.table(["model", "size", "parameters", "train chars/s", "epochs", "bpc at lr " + " / ".join(
            "lo mid hi".split()), "best lr"], rows, col_widths=[0.11, 0.26, 0.1, 0.1, 0.06, 0.23, 0.07])
        best = {a: min(sweep[a]["runs"].values(), key=lambda c: c["best_val_bpc"]) for a in ARCHS}
        lrs = {a: " / ".join(f"{x:g}" for x in sweep[a]["learning_rates"]) for a in ARCHS}
        worst = {a: max(sweep[a]["runs"].values(), key=lambda c: c["best_val_bpc"]) for a in ARCHS}
        r.text("Learning rates (lo / mid / hi): " + "; ".join(f"{NAMES[a]} {lrs[a]}" for a in ARCHS) + ". Best cell: "
               + "; ".join(f"{NAMES[a]} {sweep_size(a, best[a])} at lr {best[a]['learning_rate']:g}: "
                           f"{best[a]['best_val_bpc']:.3f} bpc" for a in ARCHS)
               + ". Worst cell: " + "; ".join(f"{NAMES[a]} {sweep_size(a, worst[a])} at lr "
                                             f"{worst[a]['learning_rate']:g}: {worst[a]['best_val_bpc']:.3f}" for a in ARCHS) + ".")
        r.text(sweep_discussion(sweep, minutes))
        # ---------------------------------------------------------------- positional encoding
        r.new_page("2.2  Positional encoding of the Transformer")
        runs = pe["runs"]
        r.text(f"""Protocol. The Transformer of size {pe['size']} (d_model {runs['learned']['overrides']['model.d_model']}, context {text['transformer']['config']['model']['context_length']}) at learning rate {pe['learning_rate']:g}, {pe['minutes']:g} minutes each, with positional_encoding = none (the course template), learned (a trained vector per position) and sinusoidal (fixed sines and cosines of the position, added to the input). Same seed, data order and schedule.""")
        common = min(int(v["curve"][-1]["epoch"]) for v in [*runs.values(), pe_unscaled])  # same steps, same batches

        def at_epoch(curve, e):
            return next(c for c in curve if abs(c["epoch"] - e) < 1e-6)

        def pe_row(label, v, train_bpc):
            return [label, f"{at_epoch(v['curve'], common)['val_bpc']:.3f}", f"{v['best_val_bpc']:.3f}", train_bpc,
                    f"{v['steps']:,}", f"{v['chars_per_second']:,.0f}"]

        r.table(["positional encoding", f"bpc, {common} epochs", f"bpc, {pe['minutes']:g} min",
                 "train bpc (end)", "steps", "train chars/s"],
                [pe_row(k, v, f"{v['final_train_bpc']:.3f}") for k, v in runs.items()]
                + [pe_row("sinusoidal, unscaled (first version)", pe_unscaled, f"{pe_unscaled['curve'][-1]['train_bpc']:.3f}")],
                col_widths=[0.33, 0.14, 0.12, 0.14, 0.1, 0.13])
        r.text(f"""The runs see the same batches in the same order, but the host's speed varied between them (see the steps and characters/s), so the fair comparison is at an equal number of steps: the second column, after {common} epochs. The time-budget result is given for completeness.""", size=8.5)
        (ax,) = r.axes(0.3)
        for k, v in runs.items():
            ax.plot([c["epoch"] for c in v["curve"]], [c["val_bpc"] for c in v["curve"]], marker=".", label=k)
        ax.plot([c["epoch"] for c in pe_unscaled["curve"]], [c["val_bpc"] for c in pe_unscaled["curve"]], ":", marker=".",
                color="grey", label="sinusoidal, unscaled (first version)")
        ax.set(xlabel="epochs (same steps and batches for every run)", ylabel="held-out bits per character",
               title="held-out bpc by positional encoding")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_ylim(top=3.4)
        eq = {k: at_epoch(v["curve"], common)["val_bpc"] for k, v in runs.items()}
        better = min(("learned", "sinusoidal"), key=eq.get)
        r.text(f"""Results. After {common} epochs the model without positions is at {eq['none']:.3f} bpc, {eq['none'] - eq[better]:+.3f} bpc behind the better encoding ({better}, {eq[better]:.3f}); learned {eq['learned']:.3f}, sinusoidal {eq['sinusoidal']:.3f}.""")
        r.text(f"""A lesson from the first version: the sinusoidal table (entries between -1 and 1) was added unscaled to character embeddings initialised at scale 0.02, so the input was 35 times more "where" than "what". After {common} epochs that run was at {at_epoch(pe_unscaled['curve'], common)['val_bpc']:.3f} bpc, worse than no positions at all ({eq['none']:.3f}): the network first has to learn to dig the characters out from under the positions. The code now scales the table to the embeddings' initial size (root mean square 0.02, the size of the learned positions at initialisation); Vaswani et al. get the same balance by multiplying the embeddings by sqrt(d_model).""")
        r.text(PE_DISCUSSION)
        # ---------------------------------------------------------------- final models side by side
        r.new_page("2.3  The three final models side by side")
        r.text("""Each shipped model is the one chosen in section 2 (from the sweep of section 2.1 and the other runs of the final budget), trained for the final budget. Generation speed: batch 1, the state reused between characters (LSTM state, TCN per-layer queues, Transformer key/value cache), measured while sampling 500 characters in fp32 on 2 threads. Samples from the same prompt at two temperatures (`test.py --prompt ... --temperature T --seed 1`).""")
        rows = []
        for a in ARCHS:
            m, ev = text[a]["best"], text[a]["eval"]
            rows.append([NAMES[a], f"{ev['bpc']:.3f}", f"{m['parameters']:,}", f"{text[a]['log'][-1]['minutes']:.1f}",
                         f"{ev['chars_per_second']:,.0f}", ev["context"].replace("context of ", "").replace("positional encoding ", "positions ")])
        r.table(["model", "held-out bpc", "parameters", "train min", "gen. chars/s", "context"], rows,
                col_widths=[0.12, 0.11, 0.11, 0.09, 0.11, 0.46])
        for a in ARCHS:
            for t in TEMPERATURES:
                res = temps[a][t]
                r.text(f"{NAMES[a]}, T = {t}: {res['prompt']!r} -> {res['sample'][:260]!r}", size=7, width=108,
                       gap=0.006, family="monospace")
        r.text(f"""Reading the samples. At T = 0.5 the models pick high-probability characters: mostly correct words and the text's frequent phrases and names, in safe clause chains. At T = 1.0 they sample the model's real distribution: more varied, with more invented words where the model is unsure. Held-out bpc is the number that measures this distribution; single samples only illustrate it.""")
        # ---------------------------------------------------------------- exercise 2
        r.new_page("3  Exercise 2: beta-VAEs on 64x64 faces")
        r.text("""Protocol. The same convolutional encoder and decoder (4 strided convolutions each way, batch normalisation, 128 latent units) are trained with beta = 0 (the plain autoencoder), 4 and 20 for the same wall-clock budget, batch 64, Adam with learning rate 1e-3 decaying to 1e-4 (cosine). Loss per image = squared error summed over pixels + beta x KL(q(z|x) || N(0, I)).""")
        rows = []
        informative = {b: sum(k > 0.1 for k in vae[b]["summary"]["kl_per_unit"]) for b in BETAS}
        for b in BETAS:
            s = vae[b]["summary"]
            rows.append([f"{b}", f"{s['held_out_psnr_db']:.2f}", f"{s['held_out_recon_per_image']:.1f}",
                         f"{s['held_out_kl']:.1f}", f"{informative[b]} / {s['active_units']}", f"{s['iterations']:,}",
                         f"{s['train_minutes']:.1f}",
                         f"{100 * s['rotation']['mirror_gap_closed']:.0f}%" if s.get("rotation") else "-"])
        r.table(["beta", "PSNR (dB)", "recon/img", "KL (nats)", "units KL>0.1 / var>0.01", "iterations",
                 "minutes", "mirror gap closed"], rows, col_widths=[0.06, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1, 0.16])
        s0, s4, s20 = (vae[b]["summary"] for b in BETAS)
        r.text(f"""Results. Raising beta trades reconstruction for a code closer to the prior: PSNR falls from {s0['held_out_psnr_db']:.1f} dB (beta 0) to {s4['held_out_psnr_db']:.1f} dB (beta 4) and {s20['held_out_psnr_db']:.1f} dB (beta 20), while the KL per face falls from {s0['held_out_kl']:.0f} to {s4['held_out_kl']:.0f} and {s20['held_out_kl']:.0f} nats and the number of informative units (mean KL above 0.1 nats) from {informative[0]} to {informative[4]} and {informative[20]} of 128. (The usual activity test, variance of the posterior mean across faces above 0.01, counts {s0['active_units']}, {s4['active_units']} and {s20['active_units']}: with 128 units many pass it while carrying a hundredth of a nat.) The KL term charges every unit for the information it carries, so at large beta the model keeps only the few units that explain the most pixels (coarse pose, lighting, hair and background colour) and switches the others off.""")
        for b in BETAS:
            rg = vae[b]["random"]
            r.text(f"beta {b}: posterior-mean spread per unit {rg['code_std_per_unit']['min']:.2f} .. "
                   f"{rg['code_std_per_unit']['median']:.2f} (median) .. {rg['code_std_per_unit']['max']:.2f}; "
                   f"{rg['units_wider_than_prior']} units wider than the prior, {rg['units_narrower_than_prior']} narrower.",
                   size=8.5, gap=0.003)
        r.subheading("Random generation: decoded z ~ N(0, I)")
        for i, b in enumerate(BETAS):
            r.image(results / f"vae_beta_{b}" / "random_generation" / "samples_from_prior.png", 0.27,
                    f"beta = {b}", ncols=3, col=i)
        r.text("""With beta = 0 nothing pulls the codes towards N(0, I): they spread over a region of another scale and shape, so samples from the prior land where no face was encoded and decode to blends and artefacts. The file samples_from_fitted_code_distribution.png beside each grid draws from a diagonal Gaussian fitted to the real codes: for beta = 0 it decodes to recognisable but distorted faces (the diagonal fit misses the correlations between units), far closer to faces than the prior samples, so the main failure is where the prior puts its mass. With beta = 4 and 20 the prior samples are faces, blurrier for larger beta.""")
        r.new_page("3.1  Latent analysis")
        r.text("""Protocol. Units are ranked by their mean KL on held-out faces. For each of the 10 highest, its code is moved from -3 to +3 standard deviations (of that unit across faces) around a held-out face's code with all other units fixed. The effect is measured on 16 faces from the difference D between the decodes at +2 and -2 standard deviations: the share of the change in four regions (top/hair, face centre, sides/background, bottom), the left-right antisymmetry of D (near 1 when D = -mirror(D), i.e. pose or light from one side), and the shifts of brightness and of warmth (red minus blue).""")
        for b in (4, 20):
            if r.y < 0.42:
                r.new_page()
            r.subheading(f"beta = {b}: traversals of the first held-out face (rows: units by KL; columns: -3 .. +3)")
            top = r.y
            r.image(results / f"vae_beta_{b}" / "latent_analysis" / "traversal_face1.png", 0.32, None, ncols=2, col=0)
            rows = [[str(e["unit"]), f"{e['kl']:.2f}", f"{e['left_right_antisymmetry']:.2f}", f"{e['brightness_shift']:+.3f}",
                     f"{e['warmth_shift']:+.3f}", e["description"][:38]] for e in vae[b]["latent"]["effects"][:10]]
            r.y = top - 0.33
            ax = r.fig.add_axes([0.5, top - 0.30, 0.46, 0.28])
            ax.axis("off")
            t = ax.table(cellText=rows, colLabels=["unit", "KL", "L/R", "bright", "warm", "effect"], loc="upper left",
                         cellLoc="left", colWidths=[0.08, 0.1, 0.09, 0.12, 0.11, 0.5])
            t.auto_set_font_size(False)
            t.set_fontsize(6.5)
        lead = {b: vae[b]["latent"]["effects"][:10] for b in BETAS}
        conc = {b: sum(max(e["region_share"].values()) for e in lead[b]) / len(lead[b]) for b in BETAS}
        change = {b: sum(e["mean_abs_change"] for e in lead[b]) / len(lead[b]) for b in BETAS}
        anti = {b: sum(e["left_right_antisymmetry"] > 0.6 for e in lead[b]) for b in BETAS}
        n_inf = {b: len(vae[b]["latent"]["active_units"]) for b in BETAS}
        r.text(f"""Discussion. Informative units (KL > 0.1 nats): beta 0: {n_inf[0]}, beta 4: {n_inf[4]}, beta 20: {n_inf[20]} of 128; the rest are dead: moving them changes nothing in the decoded image. For the 10 leading units, a move of +-2 standard deviations changes the image by {change[0]:.3f} (beta 0), {change[4]:.3f} (beta 4) and {change[20]:.3f} (beta 20) on average per pixel: without the KL term the information is spread thinly over all 128 units, each with a small effect, while with beta > 0 a few units carry large, visible factors. The share of the change that falls into the unit's main region averages {conc[0]:.2f}, {conc[4]:.2f} and {conc[20]:.2f} (0.25 would be spread evenly over the four regions); leading units measured as left-right antisymmetric (pose or side lighting): {anti[0]}, {anti[4]} and {anti[20]}. The traversals show the same: background brightness, hair, skin tone and a turn of the head are separate rows for beta = 4 and 20.""")
        r.new_page("3.2  Rotation")
        r.text("""Protocol. A face and its mirror image differ, to first order, by the sign of the yaw angle. The codes of held-out faces and of their horizontal flips therefore differ along a yaw direction: we take the first principal direction of these differences on one half of the held-out faces. To turn a face, only its coordinate along that axis is changed. Measure, on the other half: set the coordinate to its negative (the mirrored pose) and compare the decode with the reconstruction of the mirrored photo; the baseline is the unturned reconstruction. "Mirror gap closed" = 1 - error(turned) / error(unturned).""")
        rows = []
        for b in BETAS:
            f = vae[b]["rotate"]["rotation_figure"]
            rows.append([str(b), f"{f['flip_variance_explained_by_axis']:.2f}" if "flip_variance_explained_by_axis" in f else "-",
                         f"{f['mse_unturned_vs_mirror']:.4f}", f"{f['mse_turned_vs_mirror']:.4f}",
                         f"{f['mse_flipped_reconstruction_vs_mirror']:.4f}", f"{100 * f['mirror_gap_closed']:.0f}%"])
        r.table(["beta", "flip variance on axis", "MSE unturned", "MSE turned", "MSE pixel flip", "mirror gap closed"], rows)
        for b in BETAS:
            r.subheading(f"beta = {b}: input, reconstruction, then views from one side to the other")
            r.image(results / f"vae_beta_{b}" / "rotate" / "rotation.png", 0.16)
        var = {(a, sz): [sweep[a]["runs"][f"{sz}@{lr:g}"]["chars_per_second"] for lr in sweep[a]["learning_rates"]]
               for a in ARCHS for sz in sweep[a]["sizes"]}
        speed_key = max(var, key=lambda k: max(var[k]) / min(var[k]))
        speed_var = max(var[speed_key]) / min(var[speed_key]) - 1
        speed_arch = f"{NAMES[speed_key[0]]} {speed_key[1]}"
        r.new_page("4  Limitations")
        r.text(f"""The text models were trained for short fixed budgets on 2 CPU cores each; longer training or larger models on a GPU reach lower loss. Each sweep cell is a single run (seed 0): differences of a few hundredths of a bpc between neighbouring cells are within the run-to-run noise and should not be over-read. The budget is wall-clock time on a shared virtual machine whose speed varied: the same model size ran at up to {speed_var:.0%} different characters/s in different cells (largest for {speed_arch}), and one Transformer cell was rerun on a faster host after a test suite had shared its cores, so cells compare compute on this machine as it was, not a fixed amount of work. The shipped models all ran on the AMD host, the sweep (and the d_model 256 Transformer run) on the faster Intel one, so throughputs and steps compare only within a host. The best shipped model reaches {min(text[a]['eval']['bpc'] for a in ARCHS):.3f} bpc and the best other run of the final budget {min(min(e['val_bpc'] for e in v['curve']) for v in variant_runs.values()):.3f}: with under 700k training characters the one-layer models overfit within their budget and dropout moved them by hundredths; a second layer helped more, as far as the budget's steps and the generation speed allow (the wider two-layer LSTM was still improving when its time ran out). A larger text, or deeper and regularised models on faster hardware, is the way further. Generation speeds are single measurements of 500 characters on that shared machine. At batch 1 every character multiplies each weight matrix with one vector; on the AMD host these products read the weights at 6 to 36 GB/s, varying from minute to minute with the load, while a plain sum over as many bytes ran at 64 to 86 GB/s: the matrix-vector routine (MKL's, in PyTorch) and the neighbours on the host, not the memory, set the pace. The sweep budget ({minutes:g} min) is shorter than the final one, so it favours configurations that learn fast; its best cell is not guaranteed to be the best for the longer budget. The face data are 10,000 half-resolution CelebA images; the rotation axis is linear and learned from mirror symmetry alone, so it turns the face only as far as the training poses reach, and it mixes in lighting from the side. The effect labels of latent units come from pixel statistics of decoded images and name regions, not semantic attributes.""")
        r.new_page("Appendix: commands behind every table and figure")
        r.table(["section", "tables and figures", "command (from the repository root)"], REGENERATE,
                col_widths=[0.08, 0.4, 0.52], height_per_row=0.03)
        r.text("""`make reproduce TEXT=... DSET=...` runs all of them in order (data preparation, sweep, final text models, other runs of the final budget, beta-VAEs, analyses, this PDF); TEXT and DSET name the data (defaults data/text.txt and data/), SWEEP_MINUTES, TEXT_MINUTES and VAE_MINUTES the budgets (2, 10, 15). The sweep and the final trainings use fixed time budgets, so on another machine the numbers move with its speed; the seeds are fixed.""")
        r.finish()
        return r.pages


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(REPO_ROOT / "report" / "results"), help="analysis outputs")
    p.add_argument("--out", default=str(REPO_ROOT / "report" / "report.pdf"), help="PDF to write")
    args = p.parse_args()
    pages = build(Path(args.out), Path(args.results))
    print(f"wrote {args.out} ({pages} pages)")


if __name__ == "__main__":
    main()
