"""The Solver of the course's exercise 2: model, data and optimiser, and the tasks.

    train                 beta-VAE training with held-out evaluation, grids, curves, atomic checkpoints
    generate_from_latent  decode z ~ N(0, I); how face-like the samples are; reconstructions
    latent_analysis       what each unit encodes (attributes, yaw, lighting), labelled traversals, MIG
    rotate                turn a face left and right; three methods compared on held-out faces
    edit                  move a face along an attribute's direction (beyond the sheet)

The measuring code lives in `measures.py` (pure functions), the attribute classifier that serves as
the instrument in `classifier.py`, the attribute file in `attributes.py`.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid, save_image
from tqdm import tqdm

from exercise2 import measures as M
from exercise2.attributes import find_attribute_file, match_attributes
from exercise2.classifier import CLASSIFIER_NAME, RELIABLE_AUC, AttributeClassifier, classifier_path, load_classifier
from exercise2.dataset import load_face, load_faces_and_names, split_faces, to_float
from exercise2.measures import yaw_measure
from exercise2.model import ARCH_KEYS, BetaVAE, kl_per_unit, load_vae_checkpoint, vae_loss
from utils.checkpoint import atomic_save, load_state_dict_float32, write_json
from utils.device import autocast, resolve_device
from utils.distributed import cleanup, init_distributed, shard, synced_clock
from utils.errors import UserError
from utils.paths import repo_path

ANALYSIS_VERSION = "2"  # change it when _compute_analysis changes: stored statistics are then recomputed
ACTIVE_VARIANCE = 0.01  # a unit is active if its posterior mean varies across faces (Burda et al. 2016)
INFORMATIVE_KL = 0.1    # nats: with 128 units many pass the variance test while carrying ~0.01 nats each
MIG_BOOTSTRAP = 50      # resamples of the held-out faces for MIG's standard error
MEASURE_FACES = 64      # faces whose traversals are measured per unit
MAX_MEASURED_UNITS = 48
TRAVERSAL_VALUES = torch.linspace(-3, 3, 9)  # in std of the unit's codes across held-out faces
ROTATION_VIEWS = 9
ROTATION_FACES = 300    # held-out faces on which the rotation methods are compared
YAW_MARGIN = 1.5        # views reach 1.5x the larger of the held-out yaw's 10th/90th percentile
YAW_PROBE_FACES = 128   # training faces on which the yaw response of each unit is measured
YAW_MAX_STEPS = 4.0     # views stay within 4 std (along the yaw direction) of the frontal code
YAW_UNIT_MAX_IDENTITY_CHANGE = 0.25
YAW_UNIT_CHANGE = 0.02  # image widths: a unit whose +-2 std traversal moves the yaw this much "turns the head"
EDIT_STEPS = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])  # multiples of the attribute direction
EDIT_FACES = 200
ROTATION_METHOD_HELP = {"yaw_fit": "from the frontal code along the direction that turns the decoded face",
                        "mirror_path": "towards the code of the mirror image and past it",
                        "global_axis": "first principal axis of face-minus-mirror codes"}


@dataclass
class FaceLabels:
    """Attributes of the training and held-out faces (bool [N, A]) and which faces have them."""
    names: list[str]
    train: torch.Tensor
    train_has: torch.Tensor
    val: torch.Tensor
    val_has: torch.Tensor


def psnr(mse: float) -> float:
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def save_gif(frames: list[torch.Tensor], path: Path, ms: int = 120) -> None:
    """Frames [3, H, W] in [0, 1] -> looping GIF that plays forward and back."""
    imgs = [Image.fromarray((f.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)) for f in frames]
    imgs = imgs + imgs[-2:0:-1]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=ms, loop=0)


class Solver:
    def __init__(self, args):
        self.args = args
        want = args.device if args.device else ("auto" if args.cuda else "cpu")
        self.dist, self.device = init_distributed(resolve_device(want))
        self.is_main = self.dist.is_main
        self.ckpt_folder = repo_path(args.ckpt_dir) / args.ckpt_name
        self.output_root = repo_path(args.output_dir) / args.ckpt_name
        self.iteration = 0
        self.history: dict[str, list] = {"iteration": [], "train_recon": [], "train_kl": [], "val_recon": [],
                                         "val_kl": [], "val_psnr": [], "minutes": []}
        self.latent_stats: dict | None = None
        self.summary: dict = {}
        self.train_seconds = 0.0
        self.best = {"val_loss": float("inf"), "iteration": 0}  # held-out loss (recon + beta KL) of <ckpt_name>.pt
        self._faces = None
        self._names: list[str] | None = None
        self._analysis: dict | None = None
        self._labels: FaceLabels | None | bool = False   # False: not looked for yet
        self._classifier: AttributeClassifier | None | bool = False
        arch = {"z_dim": args.z_dim, "channels": list(args.channels), "batchnorm": not args.no_batchnorm,
                "image_size": args.image_size}
        ckpt = self._find_checkpoint()
        self.trained_config = ckpt["config"] if ckpt is not None else {}
        if ckpt is not None:
            arch = {k: ckpt["config"][k] for k in ARCH_KEYS}
            given = getattr(args, "explicit", set())
            clash = [f"--{flag} {want} (it has {arch[key]})" for flag, key, want in (
                ("z_dim", "z_dim", args.z_dim), ("channels", "channels", list(args.channels)),
                ("no_batchnorm", "batchnorm", not args.no_batchnorm), ("image_size", "image_size", args.image_size))
                if flag in given and want != (list(arch[key]) if key == "channels" else arch[key])]
            if clash:
                raise UserError(f"checkpoint {args.ckpt_name!r} in {self.ckpt_folder.parent} was built otherwise: "
                                f"{'; '.join(clash)}. Use another --ckpt_name for a new model, or drop those flags "
                                "to use this one")
        elif args.task != "train":
            raise UserError(f"no checkpoint named {args.ckpt_name!r} in {self.ckpt_folder.parent}: train it first "
                            f"(python exercise2/main.py --beta {args.beta:g} --ckpt_name {args.ckpt_name}) "
                            "or pass --ckpt_dir/--ckpt_name of an existing one")
        try:
            self.model = BetaVAE(arch["z_dim"], tuple(arch["channels"]), arch["batchnorm"], arch["image_size"])
        except ValueError as err:
            raise UserError(str(err)) from None
        self.arch = arch
        self.model.to(self.device, memory_format=torch.channels_last)
        self.optim = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
        if ckpt is not None:
            self._restore(ckpt)

    # ------------------------------------------------------------------ checkpoints
    def _find_checkpoint(self) -> dict | None:
        """Training resumes from last.pt (with optimiser state); analysis uses the named checkpoint."""
        names = ("last.pt", f"{self.args.ckpt_name}.pt") if self.args.task == "train" else (f"{self.args.ckpt_name}.pt", "last.pt")
        for name in names:
            if (self.ckpt_folder / name).is_file():
                ckpt = load_vae_checkpoint(self.ckpt_folder / name)
                self._ckpt_path = self.ckpt_folder / name
                return ckpt
        return None

    def _restore(self, ckpt: dict) -> None:
        load_state_dict_float32(self.model, ckpt["model"])
        self.iteration = int(ckpt.get("iteration", 0))
        self.history = ckpt.get("history", self.history)
        self.latent_stats = ckpt.get("latent_stats")
        self.summary = ckpt.get("summary", {})
        self.train_seconds = float(ckpt.get("train_seconds", 0.0))
        self.best = ckpt.get("best", self.best)
        if self.args.task == "train":
            if "optimizer" in ckpt:
                self.optim.load_state_dict(ckpt["optimizer"])
                for group in self.optim.param_groups:
                    group["lr"] = self.args.lr
            trained_beta = ckpt["config"].get("beta")
            if trained_beta is not None and trained_beta != self.args.beta and self.is_main:
                print(f"note: {self.args.ckpt_name} was trained with beta={trained_beta:g}; continuing with beta={self.args.beta:g}")
            if self.is_main:
                print(f"resuming {self.args.ckpt_name} from {self._ckpt_path.name} at iteration {self.iteration}")

    def _config(self) -> dict:
        a = self.args
        return {**self.arch, "beta": a.beta, "lr": a.lr, "beta1": a.beta1, "beta2": a.beta2, "batch_size": a.batch_size,
                "dataset": a.dataset, "seed": a.seed, "likelihood": "gaussian (squared error summed over pixels)"}

    def _state(self) -> dict:
        model = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return {"model": model, "config": self._config(), "iteration": self.iteration, "history": self.history,
                "latent_stats": self.latent_stats, "summary": self.summary, "train_seconds": self.train_seconds,
                "best": self.best}

    def save_checkpoint(self) -> None:
        """last.pt: the latest state with the optimiser, what --resume continues from."""
        if self.is_main:
            atomic_save({**self._state(), "optimizer": self.optim.state_dict()}, self.ckpt_folder / "last.pt")

    def save_best(self) -> None:
        """<ckpt_name>.pt: the model of the best held-out loss so far (as for the text models), without
        optimiser state; the analyses load it."""
        if self.is_main:
            atomic_save(self._state(), self.ckpt_folder / f"{self.args.ckpt_name}.pt")
            write_json({"config": self._config(), "iteration": self.iteration, **self.summary},
                       self.ckpt_folder / "summary.json")

    # ------------------------------------------------------------------ data
    def faces(self, required: bool = True):
        """(train, held-out) uint8 tensors, or None when no data is there and it is not required."""
        if self._faces is None:
            folder = repo_path(self.args.dset_dir) / self.args.dataset
            if not folder.is_dir() and not required:
                return None
            cache = repo_path(self.args.cache_dir) if self.args.cache_dir else None
            faces, self._names = load_faces_and_names(folder, self.arch["image_size"], cache, self.args.num_workers)
            if len(faces) < 2:
                raise UserError(f"{folder} holds {len(faces)} image: at least 2 are needed (one is held out)")
            self._faces = split_faces(faces)
        return self._faces

    def _batch(self, images: torch.Tensor) -> torch.Tensor:
        return to_float(images).to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def encode_all(self, images: torch.Tensor, batch: int = 256):
        self.model.eval()
        mus, logvars = [], []
        for i in range(0, len(images), batch):
            mu, logvar = self.model.encode(self._batch(images[i:i + batch]))
            mus.append(mu.float().cpu())
            logvars.append(logvar.float().cpu())
        return torch.cat(mus), torch.cat(logvars)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, batch: int = 256) -> torch.Tensor:
        self.model.eval()
        return torch.cat([torch.sigmoid(self.model.decode(z[i:i + batch].to(self.device)).float()).cpu()
                          for i in range(0, len(z), batch)])

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor) -> dict:
        """Held-out figures: reconstruction (squared error per image, from the posterior mean), PSNR,
        KL per image and per unit, active units."""
        mu, logvar = self.encode_all(images)
        recon = self.decode(mu)
        sq = (recon - to_float(images)).pow(2)
        mse = sq.mean().item()
        kl_units = kl_per_unit(mu, logvar).mean(0)
        active = (mu.var(0) > ACTIVE_VARIANCE) if len(mu) > 1 else torch.zeros(mu.shape[1], dtype=torch.bool)
        return {"recon_per_image": sq.sum((1, 2, 3)).mean().item(), "mse": mse, "psnr_db": psnr(mse),
                "kl": kl_units.sum().item(), "kl_per_unit": kl_units.tolist(), "active_units": int(active.sum()),
                "informative_units": int((kl_units > INFORMATIVE_KL).sum()),
                "images": len(images)}

    # ------------------------------------------------------------------ train
    def train(self) -> dict:
        args = self.args
        train, val = self.faces()
        val_probe = val[: min(len(val), 512)]
        model = self.model
        ddp = model
        if self.dist.enabled:
            ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        gen = torch.Generator().manual_seed(args.seed + self.iteration)
        max_iter = int(args.max_iter)
        max_seconds = args.max_minutes * 60 if args.max_minutes else None
        out_dir = self.output_root / "train"
        if self.is_main:
            n_params = sum(p.numel() for p in model.parameters())
            print(f"beta-VAE (beta={args.beta:g}, z_dim={self.arch['z_dim']}, {n_params:,} parameters) on {len(train):,} "
                  f"training / {len(val):,} held-out faces, batch {args.batch_size}, device {self.device}"
                  + (f", {self.dist.world_size} processes" if self.dist.enabled else ""))
            out_dir.mkdir(parents=True, exist_ok=True)
        fixed = val[:8]
        model.train()
        bar = tqdm(total=None if max_seconds else max_iter, initial=self.iteration, desc=f"train {args.ckpt_name}", unit="it",
                   disable=not self.is_main, dynamic_ncols=True)
        run_recon = run_kl = 0.0
        run_n = 0
        images_seen = 0
        session_seconds = 0.0
        done = self.iteration >= max_iter
        try:
            while not done:
                t0 = time.perf_counter()
                if args.lr_schedule == "cosine":  # decay to a tenth over the budget (iterations or minutes)
                    progress = self.iteration / max_iter
                    if max_seconds:
                        progress = max(progress, session_seconds / max_seconds)
                    for group in self.optim.param_groups:
                        group["lr"] = args.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0))))
                idx = torch.randint(0, len(train), (args.batch_size,), generator=gen)
                x = self._batch(shard(train[idx], self.dist))
                with autocast(self.device, args.bf16):
                    logits, mu, logvar = ddp(x)
                loss, recon, kl = vae_loss(logits.float(), x, mu.float(), logvar.float(), args.beta)
                self.optim.zero_grad(set_to_none=True)
                loss.backward()
                self.optim.step()
                self.iteration += 1
                dt = time.perf_counter() - t0
                # one clock for all ranks (the slowest's): the learning rate and the time budget follow it
                session_seconds, stop = synced_clock(session_seconds + dt, self.iteration >= max_iter, self.dist, self.device)
                self.train_seconds += dt
                images_seen += args.batch_size
                run_recon += recon.item()
                run_kl += kl.item()
                run_n += 1
                bar.update(1)
                if self.iteration % 20 == 0:
                    bar.set_postfix(recon=f"{recon.item():.1f}", kl=f"{kl.item():.1f}")
                done = stop or (max_seconds is not None and session_seconds >= max_seconds)
                if self.iteration % args.display_step == 0 or done:
                    ev = self.evaluate(val_probe)
                    model.train()
                    h = self.history
                    for key, value in (("iteration", self.iteration), ("train_recon", run_recon / run_n),
                                       ("train_kl", run_kl / run_n), ("val_recon", ev["recon_per_image"]),
                                       ("val_kl", ev["kl"]), ("val_psnr", ev["psnr_db"]),
                                       ("minutes", self.train_seconds / 60)):
                        h[key].append(value)
                    if self.is_main:
                        tqdm.write(f"[{self.iteration:6d}] train recon {run_recon / run_n:8.2f} kl {run_kl / run_n:7.2f} | "
                                   f"held-out recon {ev['recon_per_image']:8.2f} kl {ev['kl']:7.2f} psnr {ev['psnr_db']:5.2f} dB "
                                   f"active {ev['active_units']:2d}/{self.arch['z_dim']} | {images_seen / session_seconds:5.0f} img/s")
                    run_recon = run_kl = 0.0
                    run_n = 0
                    val_loss = ev["recon_per_image"] + args.beta * ev["kl"]
                    if val_loss < self.best["val_loss"]:
                        self.best = {"val_loss": val_loss, "iteration": self.iteration}
                        self.save_best()
                if self.iteration % args.save_step == 0 or done:
                    self.save_checkpoint()
                    if self.is_main and args.save_output:
                        self._save_train_figures(fixed, out_dir)
        except KeyboardInterrupt:
            self.save_checkpoint()
            if self.is_main:
                tqdm.write(f"interrupted: saved iteration {self.iteration}; run the same command again to resume")
            raise
        finally:
            bar.close()
        # the kept model is the best held-out one: final figures on the whole held-out split, the latent
        # statistics the analyses need and the summary are its own
        last_iteration = self.iteration
        if self.best["iteration"] != self.iteration and (self.ckpt_folder / f"{args.ckpt_name}.pt").is_file():
            load_state_dict_float32(self.model, load_vae_checkpoint(self.ckpt_folder / f"{args.ckpt_name}.pt")["model"])
            self.iteration = self.best["iteration"]
            if self.is_main:
                print(f"keeping iteration {self.iteration} (best held-out loss {self.best['val_loss']:.1f}), "
                      f"not the last ({last_iteration})")
        ev = self.evaluate(val)
        self._analysis = None
        self.latent_stats = self.analysis()  # also kept in analysis.pt
        self.summary = {
            "held_out_images": ev["images"], "held_out_recon_per_image": ev["recon_per_image"],
            "held_out_mse": ev["mse"], "held_out_psnr_db": ev["psnr_db"], "held_out_kl": ev["kl"],
            "kl_per_unit": ev["kl_per_unit"], "active_units": ev["active_units"],
            "informative_units": ev["informative_units"], "iterations": self.iteration,
            "last_iteration": last_iteration,
            "train_minutes": self.train_seconds / 60,
            "images_per_second": images_seen / session_seconds if session_seconds else None,
            "yaw_gain": self.latent_stats.get("yaw_gain"),
        }
        self.save_best()
        if self.is_main:
            write_json({"config": self._config(), **self.summary}, out_dir / "summary.json")
            print(f"held-out: PSNR {ev['psnr_db']:.2f} dB, reconstruction {ev['recon_per_image']:.1f} per image, "
                  f"KL {ev['kl']:.2f} nats, {ev['active_units']}/{self.arch['z_dim']} active units; "
                  f"{self.summary['images_per_second'] or 0:.0f} images/s; figures in {out_dir}")
        cleanup(self.dist)
        return self.summary

    def _save_train_figures(self, fixed: torch.Tensor, out_dir: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        mu, _ = self.encode_all(fixed)
        grid = torch.cat([to_float(fixed), self.decode(mu)])
        save_image(grid, out_dir / "reconstructions.png", nrow=len(fixed), padding=2, pad_value=1.0)
        self.model.train()
        h = self.history
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(h["iteration"], h["train_recon"], label="train")
        axes[0].plot(h["iteration"], h["val_recon"], label="held-out")
        axes[0].set_title("reconstruction (squared error / image)")
        axes[1].plot(h["iteration"], h["train_kl"], label="train")
        axes[1].plot(h["iteration"], h["val_kl"], label="held-out")
        axes[1].set_title("KL (nats / image)")
        axes[2].plot(h["iteration"], h["val_psnr"])
        axes[2].set_title("held-out PSNR (dB)")
        for ax in axes:
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
        axes[0].legend()
        fig.suptitle(f"{self.args.ckpt_name}: beta = {self.args.beta:g}")
        fig.tight_layout()
        fig.savefig(out_dir / "loss_curves.png", dpi=110)
        plt.close(fig)

    # ------------------------------------------------------------------ what the analyses need
    @torch.no_grad()
    def encode_faces(self, images: torch.Tensor, flipped: bool = False) -> torch.Tensor:
        """Posterior means of uint8 or float faces (mirrored first if `flipped`)."""
        images = images.flip(-1) if flipped else images
        if images.is_floating_point():
            images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        return self.encode_all(images)[0]

    @torch.no_grad()
    def _compute_analysis(self, train: torch.Tensor, val: torch.Tensor) -> dict:
        """Everything the analyses need from data, small enough to keep beside the checkpoint
        (analysis.pt), so the tasks also run without data: where the codes of held-out faces lie, the
        directions that turn a face (fitted on mirror pairs of training faces, calibrated so the views
        span the held-out faces' yaw), and one direction per attribute."""
        mu_val, logvar_val = self.encode_all(val)
        mu_tr, mu_tr_flip = self.encode_faces(train), self.encode_faces(train, flipped=True)
        yaw_val = chunked(yaw_measure, to_float_chunks(val))
        p10, p50, p90 = (float(v) for v in torch.quantile(yaw_val, torch.tensor([0.1, 0.5, 0.9])))
        glob = M.fit_global_axis(mu_tr, mu_tr_flip)
        # The yaw direction: how much the decoded yaw moves when each informative unit goes from -2 to
        # +2 std (on training faces), kept where the response is clearly measured (|t| >= 3); then how far
        # along it the views must go to reach the held-out faces' yaw, at most 3 std.
        scale = mu_tr.std(0) if len(mu_tr) > 1 else torch.ones(mu_tr.shape[1])
        kl_tr = kl_per_unit(*self.encode_all(train[:1000])).mean(0)
        beta = float(self.trained_config.get("beta", self.args.beta))
        units = [j for j in range(len(scale)) if beta == 0 or kl_tr[j] > INFORMATIVE_KL]
        probe = mu_tr[:YAW_PROBE_FACES]
        gradient = torch.zeros(len(scale))
        clf = self.classifier()
        identity = [clf.names.index(n) for n in M.IDENTITY_ATTRIBUTES if n in self._measured_attributes()] if clf else []
        yaw_units = {}
        for j in tqdm(units, desc="yaw per unit", unit="unit", leave=False, disable=len(units) < 16):
            step = torch.zeros(len(scale))
            step[j] = 2 * scale[j]
            up, down = self.decode(probe + step), self.decode(probe - step)
            diff = (yaw_measure(up) - yaw_measure(down)) / 4
            t = float(diff.mean() / (diff.std() / math.sqrt(len(diff))).clamp_min(1e-12)) if len(diff) > 1 else 0.0
            # a unit that also changes who is shown (an identity attribute's mean probability by >= 0.1
            # over +-2 std) does not join the direction, however much it turns the face
            id_change = float((clf.predict(up)[:, identity] - clf.predict(down)[:, identity]).mean(0).abs().max()) if identity else 0.0
            if abs(t) >= 3:
                yaw_units[j] = {"yaw_per_std": float(diff.mean()), "t": t, "identity_change": id_change}
                if id_change < YAW_UNIT_MAX_IDENTITY_CHANGE:
                    gradient[j] = diff.mean()
        if not gradient.any():  # nothing turns the face clearly and alone: take what turns it at all
            print("note: no unit turns the decoded face clearly (|t| >= 3) without changing identity; the yaw "
                  "direction uses every unit that turns it")
            for j, info in yaw_units.items():
                gradient[j] = info["yaw_per_std"]
            if not gradient.any():
                gradient[units] = 1e-6
        directions = None
        labels = self.labels()
        if labels is not None:
            y = labels.train[labels.train_has]
            m = mu_tr[labels.train_has]
            pos, neg = y.float().sum(0).clamp_min(1), (~y).float().sum(0).clamp_min(1)
            directions = (y.float().T @ m) / pos[:, None] - ((~y).float().T @ m) / neg[:, None]   # [A, Z]
            both = (y.sum(0) >= 5) & ((~y).sum(0) >= 5)
            keep = torch.stack([directions[a] for a, n in enumerate(labels.names) if n in M.IDENTITY_ATTRIBUTES and both[a]]
                               or [torch.zeros(mu_tr.shape[1])])
        yaw_fit = M.yaw_direction(gradient, scale, keep if labels is not None else None)
        target = max(abs(p10), abs(p90))
        ends = M.rotation_codes("yaw_fit", probe, mu_tr_flip[:YAW_PROBE_FACES], {"yaw_fit": yaw_fit, "yaw_reach": 2.0}, views=2)
        delivered = yaw_measure(self.decode(ends.reshape(-1, ends.shape[-1]))).view(-1, 2)
        gain = float(((delivered[:, 1] - delivered[:, 0]) / 4).median())  # yaw per step
        reach = min(YAW_MAX_STEPS, YAW_MARGIN * target / max(gain, 1e-6))
        coordinate = (mu_val - glob["centre"]) @ glob["axis"]
        out = {
            "mu_mean": mu_val.mean(0), "mu_std": mu_val.std(0) if len(mu_val) > 1 else torch.ones(mu_val.shape[1]),
            "kl_per_unit": kl_per_unit(mu_val, logvar_val).mean(0), "example_codes": mu_val[:16].clone(),
            "yaw_fit": yaw_fit, "yaw_gain": gain, "yaw_reach": reach, "yaw_units": yaw_units,
            "yaw_percentiles_held_out": [p10, p50, p90],
            "global_axis": glob, "axis_reach": 2.5 * float(coordinate.std()) if len(coordinate) > 1 else 1.0,
            "faces": {"train": len(train), "held_out": len(val)},
        }
        if directions is not None:
            out["attribute_names"] = labels.names
            out["attribute_directions"] = directions
        return out

    def analysis(self) -> dict:
        """The analysis statistics: from the data when it is there (and then kept in analysis.pt beside
        the checkpoint), else from analysis.pt, else the older statistics stored in the checkpoint."""
        if self._analysis is not None:
            return self._analysis
        data = self.faces(required=False)
        path = self.ckpt_folder / "analysis.pt"
        stored = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
        if data is not None:
            key = self._data_key()
            if stored is not None and stored.get("data_key") == key and stored.get("iteration") == self.iteration:
                self._analysis = stored  # computed from the same faces and checkpoint before
                return stored
            self._analysis = self._compute_analysis(*data)
            self._analysis.update(source=f"{len(data[0]) + len(data[1]):,} faces of {self.args.dataset}", data_key=key)
            if self.is_main:
                try:
                    atomic_save({**self._analysis, "iteration": self.iteration}, path)
                except OSError as err:
                    print(f"note: could not keep the analysis statistics in {path}: {err}")
        elif stored is not None:
            if stored.get("iteration") != self.iteration:
                print(f"note: {path} was computed at iteration {stored.get('iteration')}, the checkpoint is at "
                      f"{self.iteration}; run a task with the data once to renew it")
            self._analysis = stored
        elif self.latent_stats is not None:  # a checkpoint from before analysis.pt: its first mirror axis only
            st = self.latent_stats
            self._analysis = {"mu_mean": st["mu_mean"], "mu_std": st["mu_std"], "kl_per_unit": st["kl_per_unit"],
                              "example_codes": st["example_codes"], "source": "statistics stored in the checkpoint",
                              "global_axis": {"axis": st["yaw_axis"], "centre": torch.zeros_like(st["yaw_axis"]),
                                              "explained": st.get("yaw_explained", float("nan"))},
                              "axis_reach": 2.5 * st["yaw_scale"]}
        else:
            raise UserError(f"no face data found at {repo_path(self.args.dset_dir) / self.args.dataset} and no "
                            f"analysis statistics in {path}: pass --dset_dir/--dataset of the faces")
        return self._analysis

    def _data_key(self) -> str:
        """What the analysis statistics were computed from: the face files, the attribute file, the
        classifier and the code that computes them (ANALYSIS_VERSION)."""
        parts = [ANALYSIS_VERSION, str(repo_path(self.args.dset_dir) / self.args.dataset), str(len(self._names)),
                 self._names[0], self._names[-1]]
        for path in (find_attribute_file(repo_path(self.args.dset_dir) / self.args.dataset, self.args.attr_file),
                     classifier_path(self._classifier_root())):
            if path is not None and Path(path).is_file():
                st = Path(path).stat()
                parts += [str(path), str(st.st_size), str(int(st.st_mtime))]
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]

    def labels(self) -> FaceLabels | None:
        """CelebA attributes of the training and held-out faces, matched by file name; None (with one
        line that says why) when there are none."""
        if self._labels is not False:
            return self._labels
        self._labels = None
        data = self.faces(required=False)
        folder = repo_path(self.args.dset_dir) / self.args.dataset
        if data is None:
            why = f"no face data at {folder}"
        else:
            path = find_attribute_file(folder, self.args.attr_file)
            if path is None:
                why = f"no list_attr_celeba.txt in {folder} or {folder / 'Anno'} (pass --attr_file)"
            else:
                attrs = match_attributes(path, self._names)
                n = len(self._names)
                values = torch.zeros(n, len(attrs.names), dtype=torch.bool)
                has = torch.zeros(n, dtype=torch.bool)
                values[attrs.matched] = torch.from_numpy(attrs.values)
                has[attrs.matched] = True
                n_train = len(data[0])
                self._labels = FaceLabels(attrs.names, values[:n_train], has[:n_train], values[n_train:], has[n_train:])
                if self.is_main:
                    print(f"attributes: {len(attrs.matched):,} of {n:,} faces matched by file name in {path}")
                return self._labels
        if self.is_main:
            print(f"note: the attribute-based measures are left out: {why}")
        return None

    def _classifier_root(self) -> str:
        """--ckpt_dir if it holds an attribute classifier, else the repository's shipped one."""
        return self.args.ckpt_dir if (repo_path(self.args.ckpt_dir) / CLASSIFIER_NAME).is_dir() else "checkpoints"

    def classifier(self) -> AttributeClassifier | None:
        if self._classifier is False:
            self._classifier = load_classifier(self._classifier_root(), self.device)
            if self._classifier is None and self.is_main:
                print("note: no attribute classifier (checkpoints/face_attributes/): the measures that use it are left "
                      "out; train it with python exercise2/classifier.py")
        return self._classifier

    def _measured_attributes(self) -> list[str]:
        clf = self.classifier()
        return clf.attributes_for(self.args.ckpt_name) if clf else []

    def _held_out_or_decoded(self, n: int):
        """n real held-out faces if the data is there, else faces the model decodes from codes of real
        faces kept with the checkpoint. Returns (float images in [0, 1], description)."""
        data = self.faces(required=False)
        if data is not None:
            return to_float(data[1][:n]), "held-out faces"
        codes = self.analysis()["example_codes"][:n]  # at most the distinct stored codes
        return self.decode(codes), "faces decoded by the model from stored codes (no data found)"

    # ------------------------------------------------------------------ tasks
    def _task_dir(self, task: str) -> Path:
        out = self.output_root / task
        out.mkdir(parents=True, exist_ok=True)
        return out

    def _write_summary(self, summary: dict, out: Path) -> None:
        write_json(M.round_floats(summary), out / "summary.json")

    @torch.no_grad()
    def generate_from_latent(self) -> dict:
        """Decode z ~ N(0, I); measure how face-like the samples are (Frechet distance of the classifier's
        features to held-out faces) beside samples from where real codes lie and reconstructions."""
        args = self.args
        out = self._task_dir("random_generation")
        gen = torch.Generator().manual_seed(args.seed)
        z_dim = self.arch["z_dim"]
        st = self.analysis()
        nrow = max(1, int(math.sqrt(args.num_samples)))
        prior = self.decode(torch.randn(args.num_samples, z_dim, generator=gen))
        save_image(prior, out / "samples_from_prior.png", nrow=nrow, padding=2, pad_value=1.0)
        # The same number of samples from a Gaussian fitted to where real codes lie: if these look like
        # faces and the prior samples do not, the decoder is fine and the prior is the problem.
        fitted = self.decode(st["mu_mean"] + st["mu_std"] * torch.randn(args.num_samples, z_dim, generator=gen))
        save_image(fitted, out / "samples_from_fitted_code_distribution.png", nrow=nrow, padding=2, pad_value=1.0)
        files = ["samples_from_prior.png", "samples_from_fitted_code_distribution.png"]
        faces, source = self._held_out_or_decoded(8)
        save_image(torch.cat([faces, self.decode(self.encode_faces(faces))]), out / "reconstructions.png", nrow=len(faces),
                   padding=2, pad_value=1.0)
        files.append("reconstructions.png")
        mu_std, kl_units = st["mu_std"], st["kl_per_unit"]
        summary = {
            "num_samples": args.num_samples, "seed": args.seed,
            "mean_posterior_kl_nats": float(kl_units.sum()), "code_mean_norm": float(st["mu_mean"].norm()),
            "code_std_per_unit": {"min": float(mu_std.min()), "median": float(mu_std.median()), "max": float(mu_std.max())},
            "units_with_code_std_within_0.5_to_2": int(((mu_std > 0.5) & (mu_std < 2)).sum()),
            "units_wider_than_prior": int((mu_std > 2).sum()), "units_narrower_than_prior": int((mu_std < 0.5).sum()),
            "reconstructions_of": source, "files": files,
        }
        fd = self._frechet_distances(gen)
        if fd:
            summary["frechet_distance"] = fd
        self._write_summary(summary, out)
        print(f"decoded {args.num_samples} samples z ~ N(0, I) -> {out / 'samples_from_prior.png'}; reconstructions of "
              f"{source} -> reconstructions.png")
        print(f"where real faces' codes lie: per-unit std of the posterior means {mu_std.min():.2f} .. {mu_std.median():.2f} "
              f"(median) .. {mu_std.max():.2f} (the prior has 1); {summary['units_with_code_std_within_0.5_to_2']}/{z_dim} "
              f"units within 0.5..2; mean KL to the prior {summary['mean_posterior_kl_nats']:.1f} nats per face.")
        if summary["units_wider_than_prior"]:
            print(f"  -> {summary['units_wider_than_prior']} units spread wider than the prior (typical for beta = 0, "
                  "which never pulls codes towards N(0, I)): prior samples miss where faces are encoded. Compare "
                  "samples_from_fitted_code_distribution.png, drawn from where the codes really lie.")
        if fd:
            print(f"how face-like (Frechet distance of classifier features to {fd['reference_faces']} held-out photos; "
                  "lower is closer):")
            for key in ("training_photos", "reconstructions", "samples_from_fitted_code_distribution", "samples_from_prior"):
                print(f"  {key.replace('_', ' '):40s} {fd[key]:8.2f}")
        return summary

    def _frechet_distances(self, gen: torch.Generator) -> dict | None:
        clf, data = self.classifier(), self.faces(required=False)
        if clf is None or data is None:
            print("note: no Frechet distance: it needs the face data and the attribute classifier")
            return None
        train, val = data
        n = min(len(val), 1000)
        st = self.analysis()
        z_dim = self.arch["z_dim"]
        feats = lambda images: clf.predict(images, features=True)  # noqa: E731
        ref = feats(to_float(val[:n]))
        sets = {"training_photos": to_float(train[torch.randperm(len(train), generator=gen)[:n]]),
                "reconstructions": self.decode(self.encode_faces(val[:n])),
                "samples_from_fitted_code_distribution": self.decode(st["mu_mean"] + st["mu_std"] * torch.randn(n, z_dim, generator=gen)),
                "samples_from_prior": self.decode(torch.randn(n, z_dim, generator=gen))}
        out = {"reference_faces": n, "features": "attribute classifier, pooled last block (256)"}
        out.update({k: M.frechet_distance(feats(v), ref) for k, v in sets.items()})
        return out

    # ------------------------------------------------------------------ latent_analysis
    @torch.no_grad()
    def _traversal_effects(self, mu: torch.Tensor, units: list[int], names: list[str]) -> list[dict]:
        """For each unit: decode every face with the unit at +2 and -2 std of its codes and measure the
        difference: classifier probabilities of the attributes `names`, yaw, and pixel measures for
        what no attribute covers (left-right antisymmetry: pose or side lighting; background against face, per pixel;
        brightness; warmth)."""
        st = self.analysis()
        clf = self.classifier()
        idx = [clf.names.index(n) for n in names] if clf else []
        background = ~M.face_ellipse(64)
        rows = []
        for unit in tqdm(units, desc="traversals", unit="unit", leave=False, disable=len(units) < 16):
            up, down = mu.clone(), mu.clone()
            up[:, unit] += 2 * st["mu_std"][unit]
            down[:, unit] -= 2 * st["mu_std"][unit]
            img_up, img_down = self.decode(up), self.decode(down)
            d = img_up - img_down                                   # [F, 3, 64, 64]
            mag = d.abs().mean(1).mean(0)                           # [64, 64]
            anti = (d - d.flip(-1)).pow(2).sum().item()
            sym = (d + d.flip(-1)).pow(2).sum().item()
            row = {"unit": unit, "kl": float(st["kl_per_unit"][unit]), "mean_abs_change": mag.mean().item(),
                   "yaw_change": float((yaw_measure(img_up) - yaw_measure(img_down)).mean()),
                   "left_right_antisymmetry": anti / max(anti + sym, 1e-12),
                   "background_ratio": float(mag[background].mean() / mag[~background].mean().clamp_min(1e-12)),
                   "brightness_shift": d.mean().item(), "warmth_shift": (d[:, 0].mean() - d[:, 2].mean()).item()}
            if idx:
                dp = (clf.predict(img_up)[:, idx] - clf.predict(img_down)[:, idx]).mean(0)
                row["classifier_change"] = {n: float(dp[k]) for k, n in enumerate(names)}
            rows.append(row)
        return rows

    @torch.no_grad()
    def _decoded_change(self, mu: torch.Tensor) -> torch.Tensor:
        """Per unit, the mean absolute pixel change when its code moves from -2 to +2 std: `[Z]`."""
        std = self.analysis()["mu_std"]
        z_dim = mu.shape[1]
        steps = torch.eye(z_dim) * 2 * std[:, None]                     # [Z, Z]
        out = torch.zeros(z_dim)
        for unit in range(z_dim):
            out[unit] = (self.decode(mu + steps[unit]) - self.decode(mu - steps[unit])).abs().mean()
        return out

    @torch.no_grad()
    def latent_analysis(self) -> dict:
        """What each latent unit encodes: units ranked by KL (beta > 0) or by how much the decoded face
        changes (beta = 0, where every unit carries information), each named by the attributes its code
        correlates with on held-out faces and by those the classifier sees change along its traversal;
        labelled traversal grids; disentanglement (MIG, best single unit against a linear probe)."""
        args = self.args
        out = self._task_dir("latent_analysis")
        st = self.analysis()
        kl_units, mu_std = st["kl_per_unit"], st["mu_std"]
        faces, source = self._held_out_or_decoded(max(args.num_faces, MEASURE_FACES))
        mu = self.encode_faces(faces)
        names = self._measured_attributes()
        beta = float(self.trained_config.get("beta", self.args.beta))
        if beta > 0:
            order = [int(i) for i in torch.argsort(kl_units, descending=True)]
            ranked = [i for i in order if kl_units[i] > INFORMATIVE_KL and mu_std[i] ** 2 > ACTIVE_VARIANCE]
            ranking = f"KL (informative units: > {INFORMATIVE_KL} nats)"
            if not ranked:
                ranked = order[:4]
                print("note: no latent unit is informative (posterior collapse: train longer or lower beta); showing "
                      f"the {len(ranked)} units with the largest KL anyway")
        else:
            change = self._decoded_change(mu[:16])
            ranked = [int(i) for i in torch.argsort(change, descending=True)]
            ranking = "decoded change (beta = 0: every unit carries information, KL does not rank them)"
        measured = ranked[:MAX_MEASURED_UNITS]
        table = self._traversal_effects(mu[:MEASURE_FACES], measured, names)
        labels = self.labels()
        data = self.faces(required=False)
        disentanglement = None
        if labels is not None:
            val_mu = self.encode_faces(data[1])[labels.val_has]
            val_y = labels.val[labels.val_has]
            # the attributes the classifier reads on this VAE's decodes, where the labels have them
            auc_names = [n for n in labels.names if n in names] or labels.names
            cols = [labels.names.index(n) for n in auc_names]
            auc = M.auc_matrix(val_mu[:, measured], val_y[:, cols])          # [units, A]
            for r, row in enumerate(table):
                row["code_auc"] = {n: float(auc[r, k]) for k, n in enumerate(auc_names) if not math.isnan(auc[r, k])}
            train_mu = self.encode_faces(data[0])[labels.train_has]
            disentanglement = self._disentanglement(train_mu, labels.train[labels.train_has], val_mu, val_y, labels.names)
        for row in table:
            row["description"] = describe_unit(row)
        shown = measured[: args.max_units]
        files = self._traversal_figures(mu, shown, table, out)
        summary = {"source": source, "ranking": ranking, "measured_attributes": names,
                   "attributes_note": None if labels is not None else "no attribute labels: code AUC and MIG left out",
                   "traversal_values_in_code_std": TRAVERSAL_VALUES.tolist(),
                   "kl_per_unit_ranked": [{"unit": int(i), "kl": float(kl_units[i])} for i in torch.argsort(kl_units, descending=True)],
                   "units_ranked": ranked, "units_in_grids": shown, "units": table, "disentanglement": disentanglement,
                   "files": files,
                   "layout": "traversal_face*.png: one row per unit (label: unit, KL or decoded change, the attributes "
                             "whose classifier probability changes most along it (at +2 std minus at -2 std), the "
                             "attribute its code predicts best on held-out faces (AUC; below 0.5: the code falls as the "
                             "attribute appears), what no attribute covers), columns: code -3..+3 std of that unit "
                             "across faces"}
        self._write_summary(summary, out)
        print(f"latent units of {args.ckpt_name} ranked by {ranking}: {len(ranked)} units; traversals of {source}")
        print(f"{'unit':>4} {'KL':>7} {'change':>7} {'yaw':>6}  {'traversal: classifier change':32s} {'code AUC':24s} other")
        for row in table[: max(args.max_units, 16)]:
            print(f"{row['unit']:4d} {row['kl']:7.2f} {row['mean_abs_change']:7.3f} {row['yaw_change']:+6.3f}  "
                  f"{top_effects(row.get('classifier_change'), 2, centre=0.0):32s} {top_effects(row.get('code_auc'), 1, centre=0.5):24s} "
                  f"{row['description']['other']}")
        if disentanglement:
            d = disentanglement
            print(f"MIG over {len(d['attributes'])} attributes the classifier reads on every VAE's decodes: "
                  f"{d['mig']['mig']:.3f} (bootstrap std {d['mig']['bootstrap_std']:.3f}); over all "
                  f"{len(d['mig_all_attributes']['per_attribute'])} with both classes: {d['mig_all_attributes']['mig']:.3f} "
                  f"({d['mig_all_attributes']['bootstrap_std']:.3f})")
            print(f"best single unit vs linear probe on all units (held-out AUC, mean over those attributes): "
                  f"{d['mean_single_unit_auc']:.3f} vs {d['mean_probe_auc']:.3f}")
        print(f"files in {out}")
        return summary

    def _disentanglement(self, train_mu, train_y, val_mu, val_y, all_names: list[str]) -> dict:
        clf = self.classifier()
        read_by_all = set.intersection(*(set(v) for v in clf.reliable.values())) if clf and clf.reliable else set()
        both = (val_y.sum(0) >= 5) & ((~val_y).sum(0) >= 5) & (train_y.sum(0) >= 5) & ((~train_y).sum(0) >= 5)
        usable = [n for a, n in enumerate(all_names) if both[a]]   # MI and AUC need both classes
        if not usable:
            return None
        common = [n for n in usable if n in read_by_all] or usable
        cols = [all_names.index(n) for n in common]
        every = [all_names.index(n) for n in usable]
        mig = M.mig(val_mu, val_y[:, cols], common, bootstrap=MIG_BOOTSTRAP)
        probe = M.single_unit_vs_probe(train_mu, train_y[:, cols], val_mu, val_y[:, cols], common)
        return {"attributes": common, "attributes_rule": f"read reliably (AUC >= {RELIABLE_AUC}) by the classifier "
                "on the reconstructions of every VAE it was measured on", "mig": mig,
                "mig_all_attributes": M.mig(val_mu, val_y[:, every], usable, bootstrap=MIG_BOOTSTRAP),
                "single_unit_vs_probe": probe,
                "mean_single_unit_auc": float(np.mean([v["unit_auc"] for v in probe.values()])),
                "mean_probe_auc": float(np.mean([v["probe_auc"] for v in probe.values()])),
                "held_out_faces": len(val_mu)}

    def _traversal_figures(self, mu, shown: list[int], table: list[dict], out: Path) -> list[str]:
        st = self.analysis()
        by_unit = {r["unit"]: r for r in table}
        beta0 = float(self.trained_config.get("beta", self.args.beta)) == 0
        files = []
        for f in range(min(self.args.num_faces, len(mu))):
            rows, labels = [], []
            for unit in shown:
                z = mu[f].repeat(len(TRAVERSAL_VALUES), 1)
                z[:, unit] = mu[f, unit] + TRAVERSAL_VALUES * st["mu_std"][unit]
                rows.append(self.decode(z))
                row = by_unit[unit]
                head = f"unit {unit}  " + (f"change {row['mean_abs_change']:.3f}" if beta0 else f"KL {row['kl']:.2f}")
                labels.append("\n".join([head] + row["description"]["lines"]))
            title = f"{self.args.ckpt_name}: face {f + 1}, each row one unit from -3 to +3 std of its codes"
            M.labelled_grid(rows, labels, title, [f"{v:+.1f}" for v in TRAVERSAL_VALUES.tolist()],
                            label_width=340).save(out / f"traversal_face{f + 1}.png")
            frames = [make_grid(torch.stack([r[v] for r in rows]), nrow=min(8, len(rows)), padding=2, pad_value=1.0)
                      for v in range(len(TRAVERSAL_VALUES))]
            save_gif(frames, out / f"traversal_face{f + 1}.gif")
            files += [f"traversal_face{f + 1}.png", f"traversal_face{f + 1}.gif"]
        return files

    # ------------------------------------------------------------------ rotate
    def _rotation_method(self) -> str:
        method = self.args.rotation_method
        if method == "yaw_fit" and "yaw_fit" not in self.analysis():
            print("note: this checkpoint's stored statistics have no fitted yaw direction (run once with the face data "
                  "to compute it); turning along the first principal mirror axis instead")
            return "global_axis"
        return method

    @torch.no_grad()
    def _views(self, method: str, faces: torch.Tensor, views: int = ROTATION_VIEWS):
        """(codes [F, Z], view images [F, V, 3, 64, 64]) of faces turned by the method."""
        mu, mu_flip = self.encode_faces(faces), self.encode_faces(faces, flipped=True)
        codes = M.rotation_codes(method, mu, mu_flip, self.analysis(), views)
        images = self.decode(codes.reshape(-1, codes.shape[-1])).view(len(faces), views, *faces.shape[1:])
        return mu, images

    @torch.no_grad()
    def rotate(self) -> dict:
        """Turn faces left and right (--rotation_method; default: along the yaw direction fitted on mirror
        pairs), with the measured yaw of every view; on held-out faces, compare the methods: how far the
        views turn, how many confident identity attributes flip, how much of the mirror gap closes."""
        args = self.args
        out = self._task_dir("rotate")
        method = self._rotation_method()
        if args.image:
            faces, source = to_float(self._read_image(args.image)), f"--image {args.image}"
        else:
            faces, source = self._held_out_or_decoded(args.num_faces)
        mu, views = self._views(method, faces)
        clf = self.classifier()
        identity = [n for n in M.IDENTITY_ATTRIBUTES if n in self._measured_attributes()]
        rows, labels, per_face = [], [], []
        for i in range(len(faces)):
            recon = self.decode(mu[i:i + 1])
            yaw_views = yaw_measure(views[i])
            info = {"yaw_input": float(yaw_measure(faces[i:i + 1])[0]), "yaw_views": yaw_views.tolist()}
            text = [f"face {i + 1}", f"yaw of photo {info['yaw_input']:+.3f}",
                    f"views {yaw_views.min():+.3f} .. {yaw_views.max():+.3f}"]
            if clf and identity:
                k = [clf.names.index(n) for n in identity]
                ref = clf.predict(recon)[:, k]
                flips = M.identity_flips(clf.predict(views[i])[None][:, :, k], ref, names=identity)
                info["identity_flips"] = flips
                text.append(f"identity flips {flips['flipped']}/{flips['confident_predictions']}")
            per_face.append(info)
            rows.append(torch.cat([faces[i:i + 1], recon, views[i]]))
            labels.append("\n".join(text))
        columns = ["photo", "recon"] + [f"view {v + 1}" for v in range(views.shape[1])]
        title = f"{args.ckpt_name}: turned by {method} ({ROTATION_METHOD_HELP[method]})"
        M.labelled_grid(rows, labels, title, columns, label_width=270).save(out / "rotation.png")
        frames = [make_grid(views[:, k], nrow=len(faces), padding=2, pad_value=1.0) for k in range(views.shape[1])]
        save_gif(frames, out / "rotation.gif")
        files = ["rotation.png", "rotation.gif"]
        summary = {"source": source, "method": method, "faces": per_face, "files": files,
                   "layout": "each row: photo, reconstruction, then views from one side to the other; yaw: offset of "
                             "the face's mirror-symmetry axis from the image centre, in image widths"}
        if self.faces(required=False) is not None:
            summary["comparison"] = self._compare_rotations(out)
            files += ["rotation_methods.png", "yaw_check.png"]
        self._write_summary(summary, out)
        print(f"turned {len(faces)} {source} by {method} -> {out / 'rotation.png'}")
        if "comparison" in summary:
            c = summary["comparison"]
            lo, hi = c["target_yaw_p10_p90"]
            print(f"methods on {c['faces']} held-out faces (target: views span the held-out photos' yaw p10..p90 = "
                  f"{lo:+.3f}..{hi:+.3f}; near-frontal: the {c['near_frontal_faces']} faces with the smallest |yaw|):")
            print(f"{'method':14s} {'spans p10-p90':>13s} {'(near-frontal)':>14s} {'span/target':>11s} "
                  f"{'identity flips':>14s} {'faces with flip':>16s} {'mirror gap closed':>17s}")
            for name, m in c["methods"].items():
                gap = m.get("mirror_gap_closed")
                gap_text = "-" if name == "random_control" else "by construction" if gap is None else f"{gap:.0%}"
                print(f"{name:14s} {m['yaw_span']['covers_target_share']:13.0%} {m['yaw_span_near_frontal']['covers_target_share']:14.0%} "
                      f"{m['yaw_span']['span_over_target_median']:11.2f} {m['identity']['flip_share']:14.1%} "
                      f"{m['identity'].get('faces_with_any_flip', float('nan')):16.0%} {gap_text:>17s}")
        return summary

    @torch.no_grad()
    def _compare_rotations(self, out: Path) -> dict:
        val = self.faces()[1][:ROTATION_FACES]
        faces = to_float(val)
        yaw_photos = yaw_measure(faces)
        lo, _, hi = self.analysis()["yaw_percentiles_held_out"]
        frontal = yaw_photos.abs() <= yaw_photos.abs().median()
        clf = self.classifier()
        identity = [n for n in M.IDENTITY_ATTRIBUTES if n in self._measured_attributes()]
        k = [clf.names.index(n) for n in identity] if clf else []
        mu_flip = self.encode_faces(val, flipped=True)
        mu_flip_target = self.decode(mu_flip)
        methods, strips = {}, []
        stats = self.analysis()
        for method in available_rotation_methods(stats) + (["random_control"] if "yaw_fit" in stats else []):
            if method == "random_control":  # yardstick: as far from the frontal code, in a random direction
                informative = (stats["kl_per_unit"] > INFORMATIVE_KL) & (stats["mu_std"] ** 2 > ACTIVE_VARIANCE)
                g = torch.randn(len(informative), generator=torch.Generator().manual_seed(0)) * informative
                control = {**stats, "yaw_fit": M.yaw_direction(g, stats["mu_std"])}
                mu = self.encode_faces(faces)
                codes = M.rotation_codes("yaw_fit", mu, self.encode_faces(faces, flipped=True), control)
                views = self.decode(codes.reshape(-1, codes.shape[-1])).view(len(faces), -1, *faces.shape[1:])
            else:
                mu, views = self._views(method, faces)
            yaw_views = chunked(yaw_measure, views.reshape(-1, *views.shape[2:])).view(len(faces), -1)
            m = {"yaw_span": M.yaw_span(yaw_views, lo, hi), "yaw_span_near_frontal": M.yaw_span(yaw_views[frontal], lo, hi)}
            if k:
                ref = clf.predict(self.decode(mu))[:, k]
                probs = clf.predict(views.reshape(-1, *views.shape[2:]))[:, k].view(len(faces), -1, len(k))
                m["identity"] = M.identity_flips(probs, ref, names=identity)
                m["identity_near_frontal"] = M.identity_flips(probs[frontal], ref[frontal])
                m["identity_attributes"] = identity
            else:
                m["identity"] = {"flip_share": float("nan")}
            turned = None if method == "random_control" else M.mirrored_codes(method, mu, mu_flip, stats)
            if turned is not None:
                own = self.decode(mu)
                err_turned = (self.decode(turned) - mu_flip_target).pow(2).mean().item()
                err_own = (own - mu_flip_target).pow(2).mean().item()
                m["mirror_gap_closed"] = 1 - err_turned / max(err_own, 1e-12)
            methods[method] = m
            strips.append((method, views[:4]))
        rows = [v for _, s in strips for v in s]
        labels = [f"{name}\nface {i + 1}" for name, s in strips for i in range(len(s))]
        M.labelled_grid(rows, labels, "the same held-out faces turned by each method",
                        label_width=190).save(out / "rotation_methods.png")
        self._yaw_check_figure(faces, yaw_photos, out / "yaw_check.png")
        return {"faces": len(faces), "near_frontal_faces": int(frontal.sum()), "target_yaw_p10_p90": [lo, hi],
                "views": ROTATION_VIEWS, "methods": methods,
                "yaw_measure_antisymmetry_max_error": float((yaw_measure(faces.flip(-1)) + yaw_photos).abs().max())}

    def _yaw_check_figure(self, faces, yaw, path: Path) -> None:
        """Held-out photos at five quantiles of the yaw measure, eight per row: a person can check that
        the measure orders turned faces (and that mirrored photos get the opposite sign)."""
        order = yaw.argsort()
        rows, labels = [], []
        for q in (0.03, 0.25, 0.5, 0.75, 0.97):
            i = min(int(q * len(order)), len(order) - 8)
            pick = order[i:i + 8]
            rows.append(faces[pick])
            labels.append(f"quantile {q:.2f}\nyaw {yaw[pick].min():+.3f}..{yaw[pick].max():+.3f}")
        M.labelled_grid(rows, labels, "held-out photos ordered by the yaw measure", label_width=220).save(path)

    # ------------------------------------------------------------------ edit
    @torch.no_grad()
    def edit(self) -> dict:
        """Move faces along an attribute's direction in code space (mean code of training faces with the
        attribute minus without), and measure what changes: that attribute, the others, identity."""
        args = self.args
        st = self.analysis()
        if "attribute_directions" not in st:
            raise UserError("--task edit needs attribute directions: run it once with face data that has "
                            "list_attr_celeba.txt (or --attr_file)")
        names = st["attribute_names"]
        if not args.attribute:
            raise UserError(f"--task edit needs --attribute NAME, one of: {', '.join(names)}")
        if args.attribute not in names:
            raise UserError(f"unknown attribute {args.attribute!r}; choose one of: {', '.join(names)}")
        out = self._task_dir("edit")
        direction = st["attribute_directions"][names.index(args.attribute)]
        if args.image:
            faces, source = to_float(self._read_image(args.image)), f"--image {args.image}"
        else:
            faces, source = self._held_out_or_decoded(args.num_faces)
        clf = self.classifier()
        a = clf.names.index(args.attribute) if clf else None
        strips, labels = [], []
        for i, z in enumerate(self.encode_faces(faces)):
            views = self.decode(z[None] + EDIT_STEPS[:, None] * direction[None])
            strips.append(torch.cat([faces[i:i + 1], views]))
            text = [f"face {i + 1}"]
            if clf:
                p = clf.predict(views)[:, a]
                text.append(f"p({args.attribute})")
                text.append(f"{p[0]:.2f} -> {p[-1]:.2f}")
            labels.append("\n".join(text))
        columns = ["photo"] + [f"{s:+.1f}" for s in EDIT_STEPS.tolist()]
        M.labelled_grid(strips, labels, f"{args.ckpt_name}: {args.attribute}, steps along (mean code with - without)",
                        columns, label_width=190).save(out / f"edit_{args.attribute}.png")
        summary = {"source": source, "attribute": args.attribute, "steps": EDIT_STEPS.tolist(),
                   "direction_norm": float(direction.norm()), "files": [f"edit_{args.attribute}.png"]}
        if clf:
            summary["measured"] = self._measure_edit(direction, args.attribute)
        # one summary.json for every attribute edited so far with this checkpoint
        previous = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
        attributes = previous.get("attributes", {}) if isinstance(previous.get("attributes"), dict) else {}
        self._write_summary({"attributes": {**attributes, args.attribute: summary}}, out)
        print(f"edited {len(faces)} {source} along {args.attribute} -> {out / summary['files'][0]}")
        m = summary.get("measured")
        if m:
            steps = "  ".join(f"{s:+.1f}: {p:.2f}" for s, p in zip(EDIT_STEPS.tolist(), m["target_probability_by_step"]))
            print(f"mean p({args.attribute}) over {m['faces']} {m['faces_source']} by step: {steps}")
            print("other attributes that change most from step -1 to +1: "
                  + ", ".join(f"{n} {v:+.2f}" for n, v in m["other_changes_top"].items()))
            print(f"confident identity predictions that flip: {m['identity']['flipped']}/{m['identity']['confident_predictions']}")
        return summary

    def _measure_edit(self, direction: torch.Tensor, attribute: str) -> dict:
        clf = self.classifier()
        faces, source = self._held_out_or_decoded(EDIT_FACES)
        mu = self.encode_faces(faces)
        probs = torch.stack([clf.predict(self.decode(mu + s * direction[None])) for s in EDIT_STEPS.tolist()], 1)  # [F, S, A]
        a = clf.names.index(attribute)
        reliable = [n for n in self._measured_attributes() if n != attribute]
        change = {n: float((probs[:, EDIT_STEPS.tolist().index(1.0), clf.names.index(n)]
                            - probs[:, EDIT_STEPS.tolist().index(-1.0), clf.names.index(n)]).mean()) for n in reliable}
        top = dict(sorted(change.items(), key=lambda kv: -abs(kv[1]))[:5])
        identity = [n for n in M.IDENTITY_ATTRIBUTES if n in reliable]
        k = [clf.names.index(n) for n in identity]
        ref = clf.predict(self.decode(mu))[:, k]
        return {"faces": len(faces), "faces_source": source,
                "target_probability_by_step": probs[:, :, a].mean(0).tolist(),
                "target_reliable_on_this_vae": attribute in self._measured_attributes(),
                "other_changes": change, "other_changes_top": top,
                "other_mean_abs_change": float(np.mean([abs(v) for v in change.values()])) if change else float("nan"),
                "identity": M.identity_flips(probs[:, :, k], ref), "identity_attributes": identity}

    def _read_image(self, image: str) -> torch.Tensor:
        path = Path(image).expanduser()
        if not path.is_file():
            raise UserError(f"--image {path} not found")
        try:
            return torch.from_numpy(load_face(path, self.arch["image_size"])).permute(2, 0, 1)[None]
        except Exception as err:  # PIL raises many kinds for unreadable files
            raise UserError(f"cannot read --image {path} as an image: {err}") from None


# ---------------------------------------------------------------------------------------- helpers
def chunked(fn, images, size: int = 1000) -> torch.Tensor:
    """fn over chunks of an image tensor (or an iterable of chunks), concatenated."""
    parts = images if not torch.is_tensor(images) else (images[i:i + size] for i in range(0, len(images), size))
    return torch.cat([fn(p) for p in parts])


def to_float_chunks(images: torch.Tensor, size: int = 1000):
    return (to_float(images[i:i + size]) for i in range(0, len(images), size))


def available_rotation_methods(stats: dict) -> list[str]:
    return [m for m in M.ROTATION_METHODS if m != "yaw_fit" or "yaw_fit" in stats]


def top_effects(effects: dict | None, k: int, centre: float) -> str:
    if not effects:
        return "-"
    best = sorted(effects.items(), key=lambda kv: -abs(kv[1] - centre))[:k]
    return ", ".join(f"{n} {v:+.2f}" if centre == 0 else f"{n} {v:.2f}" for n, v in best)


def describe_unit(row: dict) -> dict:
    """Words for a unit from its measures: the attributes that change along it (classifier, |change|
    >= 0.1), the attribute its code predicts best (AUC), yaw, and pixel measures where no attribute
    covers the change."""
    lines = []
    change = row.get("classifier_change") or {}
    strong = sorted(((n, v) for n, v in change.items() if abs(v) >= 0.1), key=lambda kv: -abs(kv[1]))[:2]
    lines += [f"{n} {v:+.2f}" for n, v in strong]
    auc = row.get("code_auc") or {}
    if auc:
        n, v = max(auc.items(), key=lambda kv: abs(kv[1] - 0.5))
        if abs(v - 0.5) >= 0.1:
            lines.append(f"code: {n} AUC {v:.2f}")
    other = []
    if abs(row["yaw_change"]) >= YAW_UNIT_CHANGE:
        other.append(f"turns head (yaw {row['yaw_change']:+.3f})")
    elif row["left_right_antisymmetry"] > 0.6:
        other.append("left-right: side lighting or hair parting")
    if row["background_ratio"] > 1.5:  # changes the background more than the face, per pixel
        other.append("background")
    if abs(row["brightness_shift"]) > 0.03:
        other.append("brighter" if row["brightness_shift"] > 0 else "darker")
    if abs(row["warmth_shift"]) > 0.03:
        other.append("warmer (redder)" if row["warmth_shift"] > 0 else "cooler (bluer)")
    lines += other[:2]
    if not lines:
        lines.append("small or unnamed change")
    return {"lines": lines[:5], "other": ", ".join(other) or "-",
            "top_attribute": f"{M.signed_attribute(*strong[0])}" if strong else None}
