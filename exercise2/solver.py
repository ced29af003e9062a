"""The Solver of the course's exercise 2: model, data and optimiser, and the four tasks.

    train                 beta-VAE training with held-out evaluation, grids, curves, atomic checkpoints
    generate_from_latent  decode z ~ N(0, I), and say where the codes of real faces sit
    latent_analysis       rank units by KL, traversal grids and GIFs, a measured effect per unit
    rotate                turn a face along the latent yaw axis found from images and their mirror images
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid, save_image
from tqdm import tqdm

from exercise2.dataset import load_face, load_face_folder, split_faces, to_float
from exercise2.model import BetaVAE, kl_per_unit, vae_loss
from utils.checkpoint import atomic_save, load_checkpoint, load_state_dict_float32, write_json
from utils.device import autocast, resolve_device
from utils.distributed import any_rank, cleanup, init_distributed, shard
from utils.errors import UserError
from utils.paths import repo_path

ARCH_KEYS = ("z_dim", "channels", "batchnorm", "image_size")
ACTIVE_VARIANCE = 0.01  # a unit is active if its posterior mean varies across faces (Burda et al. 2016)
INFORMATIVE_KL = 0.1    # nats: with 128 units many pass the variance test while carrying ~0.01 nats each


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
        self._faces = None
        arch = {"z_dim": args.z_dim, "channels": list(args.channels), "batchnorm": not args.no_batchnorm,
                "image_size": args.image_size}
        ckpt = self._find_checkpoint()
        if ckpt is not None:
            arch = {k: ckpt["config"][k] for k in ARCH_KEYS}
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
                ckpt = load_checkpoint(self.ckpt_folder / name)
                if "config" not in ckpt or "z_dim" not in ckpt.get("config", {}):
                    raise UserError(f"{self.ckpt_folder / name} is not a beta-VAE checkpoint of this project")
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

    def save_checkpoint(self) -> None:
        if not self.is_main:
            return
        model = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        common = {"model": model, "config": self._config(), "iteration": self.iteration, "history": self.history,
                  "latent_stats": self.latent_stats, "summary": self.summary, "train_seconds": self.train_seconds}
        atomic_save({**common, "optimizer": self.optim.state_dict()}, self.ckpt_folder / "last.pt")
        atomic_save(common, self.ckpt_folder / f"{self.args.ckpt_name}.pt")  # small: no optimiser state
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
            faces = load_face_folder(folder, self.arch["image_size"], cache, self.args.num_workers)
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
                session_seconds += dt
                self.train_seconds += dt
                images_seen += args.batch_size
                run_recon += recon.item()
                run_kl += kl.item()
                run_n += 1
                bar.update(1)
                if self.iteration % 20 == 0:
                    bar.set_postfix(recon=f"{recon.item():.1f}", kl=f"{kl.item():.1f}")
                out_of_time = max_seconds is not None and session_seconds >= max_seconds
                done = any_rank(out_of_time or self.iteration >= max_iter, self.dist, self.device)
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
        # final figures on the whole held-out split, the latent statistics the analyses need, summary
        ev = self.evaluate(val)
        self.latent_stats = self._latent_statistics(val)
        self.summary = {
            "held_out_images": ev["images"], "held_out_recon_per_image": ev["recon_per_image"],
            "held_out_mse": ev["mse"], "held_out_psnr_db": ev["psnr_db"], "held_out_kl": ev["kl"],
            "kl_per_unit": ev["kl_per_unit"], "active_units": ev["active_units"],
            "informative_units": ev["informative_units"], "iterations": self.iteration,
            "train_minutes": self.train_seconds / 60,
            "images_per_second": images_seen / session_seconds if session_seconds else None,
            "rotation": self.latent_stats.get("rotation"),
        }
        self.save_checkpoint()
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

    # ------------------------------------------------------------------ latent statistics
    @torch.no_grad()
    def _latent_statistics(self, val: torch.Tensor) -> dict:
        """What the analyses need, kept in the checkpoint so they also run without data: where the
        codes of held-out faces lie, the yaw axis, a few codes of real faces."""
        mu, logvar = self.encode_all(val)
        mu_flip, _ = self.encode_all(val.flip(-1))
        half = len(val) // 2 or 1
        # A face and its mirror image differ (to first order) by the sign of the yaw angle, so the
        # differences of their codes span the yaw axis: take their first principal direction.
        delta = (mu - mu_flip)[:half]
        _, s, vh = torch.linalg.svd(delta, full_matrices=False)
        axis = vh[0]
        explained = (s[0] ** 2 / (s ** 2).sum()).item()
        proj = mu @ axis
        stats = {"mu_mean": mu.mean(0), "mu_std": mu.std(0) if len(mu) > 1 else torch.ones(mu.shape[1]),
                 "kl_per_unit": kl_per_unit(mu, logvar).mean(0), "yaw_axis": axis,
                 "yaw_scale": proj.std().item() if len(proj) > 1 else 1.0, "yaw_explained": explained,
                 "example_codes": mu[:8].clone()}
        stats["rotation"] = self._rotation_figure(val[half:] if len(val) > 1 else val, axis)
        stats["rotation"]["flip_variance_explained_by_axis"] = explained
        return stats

    @torch.no_grad()
    def _rotation_figure(self, images: torch.Tensor, axis: torch.Tensor) -> dict:
        """Turn each face to the mirrored yaw (reflect its coordinate on the axis) and compare with the
        reconstruction of the mirrored photo; baseline: the unturned reconstruction."""
        images = images[:500]
        mu, _ = self.encode_all(images)
        mu_flip, _ = self.encode_all(images.flip(-1))
        target = self.decode(mu_flip)
        c = mu @ axis
        turned = self.decode(mu - 2 * c[:, None] * axis[None])
        unturned = self.decode(mu)
        err_turned = (turned - target).pow(2).mean().item()
        err_unturned = (unturned - target).pow(2).mean().item()
        err_flipped = (unturned.flip(-1) - target).pow(2).mean().item()
        return {"faces": len(images), "mse_turned_vs_mirror": err_turned, "mse_unturned_vs_mirror": err_unturned,
                "mse_flipped_reconstruction_vs_mirror": err_flipped,
                "mirror_gap_closed": 1.0 - err_turned / max(err_unturned, 1e-12)}

    def _stats(self) -> dict:
        if self.latent_stats is None:
            data = self.faces(required=True)
            self.latent_stats = self._latent_statistics(data[1])
        return self.latent_stats

    def _held_out_or_decoded(self, n: int):
        """n real held-out faces (uint8) if the data is there, else faces the model decodes from codes
        of real faces stored in the checkpoint (float). Returns (images in [0, 1], description)."""
        data = self.faces(required=False)
        if data is not None:
            return to_float(data[1][:n]), "held-out faces"
        codes = self._stats()["example_codes"]
        reps = -(-n // len(codes))
        return self.decode(codes.repeat(reps, 1)[:n]), "faces decoded by the model from stored codes (no data found)"

    # ------------------------------------------------------------------ tasks
    def _task_dir(self, task: str) -> Path:
        out = self.output_root / task
        out.mkdir(parents=True, exist_ok=True)
        return out

    @torch.no_grad()
    def generate_from_latent(self) -> dict:
        args = self.args
        out = self._task_dir("random_generation")
        gen = torch.Generator().manual_seed(args.seed)
        z_dim = self.arch["z_dim"]
        z = torch.randn(args.num_samples, z_dim, generator=gen)
        nrow = max(1, int(math.sqrt(args.num_samples)))
        save_image(self.decode(z), out / "samples_from_prior.png", nrow=nrow, padding=2, pad_value=1.0)
        st = self._stats()
        # The same number of samples from a Gaussian fitted to where real codes lie: if these look like
        # faces and the prior samples do not, the decoder is fine and the prior is the problem.
        z_fit = st["mu_mean"] + st["mu_std"] * torch.randn(args.num_samples, z_dim, generator=gen)
        save_image(self.decode(z_fit), out / "samples_from_fitted_code_distribution.png", nrow=nrow, padding=2, pad_value=1.0)
        mu_std = st["mu_std"]
        kl_units = st["kl_per_unit"]
        summary = {
            "num_samples": args.num_samples, "seed": args.seed,
            "mean_posterior_kl_nats": float(kl_units.sum()),
            "code_mean_norm": float(st["mu_mean"].norm()),
            "code_std_per_unit": {"min": float(mu_std.min()), "median": float(mu_std.median()), "max": float(mu_std.max())},
            "units_with_code_std_within_0.5_to_2": int(((mu_std > 0.5) & (mu_std < 2)).sum()),
            "files": ["samples_from_prior.png", "samples_from_fitted_code_distribution.png"],
        }
        wide, narrow = int((mu_std > 2).sum()), int((mu_std < 0.5).sum())
        summary.update(units_wider_than_prior=wide, units_narrower_than_prior=narrow)
        write_json(summary, out / "summary.json")
        print(f"decoded {args.num_samples} samples z ~ N(0, I) -> {out / 'samples_from_prior.png'}")
        print(f"where real faces' codes lie: per-unit std of the posterior means {mu_std.min():.2f} .. {mu_std.median():.2f} "
              f"(median) .. {mu_std.max():.2f} (the prior has 1); {summary['units_with_code_std_within_0.5_to_2']}/{z_dim} "
              f"units within 0.5..2; mean KL to the prior {summary['mean_posterior_kl_nats']:.1f} nats per face.")
        if wide:
            print(f"  -> {wide} units spread wider than the prior (typical for beta = 0, which never pulls codes towards "
                  "N(0, I)): prior samples miss where faces are encoded and decode to blends or non-faces. Compare "
                  "samples_from_fitted_code_distribution.png, drawn from where the codes really lie.")
        if narrow:
            print(f"  -> {narrow} units vary less than the prior: those the decoder ignores (collapsed) or uses with "
                  "a finer scale; prior samples move them further than any real face does.")
        return summary

    @torch.no_grad()
    def latent_analysis(self) -> dict:
        args = self.args
        out = self._task_dir("latent_analysis")
        st = self._stats()
        kl_units = st["kl_per_unit"]
        order = torch.argsort(kl_units, descending=True)
        # Units that carry information: over 0.1 nats on average and varying across faces.
        active = [int(i) for i in order if kl_units[i] > INFORMATIVE_KL and st["mu_std"][i] ** 2 > ACTIVE_VARIANCE]
        if not active:
            active = [int(i) for i in order[:4]]
            print("note: no latent unit is active (the codes hardly vary across faces: posterior collapse; train longer "
                  f"or lower beta); showing the {len(active)} units with the largest KL anyway")
        faces, source = self._held_out_or_decoded(max(args.num_faces, 16))
        mu, _ = self.encode_all((faces * 255).round().to(torch.uint8))
        values = torch.linspace(-3, 3, 9)
        shown = active[: args.max_units]  # the grids show the units with the most KL; the table measures all
        files = []
        for f in range(args.num_faces):
            rows = []
            for unit in shown:
                z = mu[f].repeat(len(values), 1)
                z[:, unit] = mu[f, unit] + values * st["mu_std"][unit]
                rows.append(self.decode(z))
            grid = torch.cat(rows)  # [units * values, 3, 64, 64]
            save_image(grid, out / f"traversal_face{f + 1}.png", nrow=len(values), padding=2, pad_value=1.0)
            frames = [make_grid(torch.stack([rows[r][v] for r in range(len(shown))]), nrow=min(8, len(shown)),
                                padding=2, pad_value=1.0) for v in range(len(values))]
            save_gif(frames, out / f"traversal_face{f + 1}.gif")
            files += [f"traversal_face{f + 1}.png", f"traversal_face{f + 1}.gif"]
        table, maps = self._measure_effects(mu[:16], active, st["mu_std"])
        save_image(torch.stack(maps[: len(shown)]), out / "effect_maps.png", nrow=min(8, len(shown)), padding=2,
                   pad_value=1.0, normalize=True, scale_each=True)
        files.append("effect_maps.png")
        summary = {"source": source, "traversal_values_in_code_std": values.tolist(),
                   "kl_per_unit_ranked": [{"unit": int(i), "kl": float(kl_units[i])} for i in order],
                   "active_units": active, "units_in_grids": shown, "effects": table, "files": files,
                   "layout": "traversal_face*.png: one row per unit (most KL first), columns: code -3..+3 std of that "
                             "unit across faces; effect_maps.png: where each shown unit changes the image"}
        write_json(summary, out / "summary.json")
        print(f"latent units of {args.ckpt_name}, by KL (informative, > {INFORMATIVE_KL} nats: {len(active)}/{self.arch['z_dim']}; grids show the first "
              f"{len(shown)}); traversals of {source}:")
        print(f"{'unit':>4} {'KL':>6} {'change':>7} {'top':>5} {'centre':>6} {'sides':>5} {'bottom':>6} {'L/R':>5} {'bright':>7} {'warm':>6}  effect")
        for row in table[: max(args.max_units, 20)]:
            s = row["region_share"]
            print(f"{row['unit']:4d} {row['kl']:6.2f} {row['mean_abs_change']:7.3f} {s['top']:5.2f} {s['centre']:6.2f} "
                  f"{s['sides']:5.2f} {s['bottom']:6.2f} {row['left_right_antisymmetry']:5.2f} {row['brightness_shift']:+7.3f} "
                  f"{row['warmth_shift']:+6.3f}  {row['description']}")
        print(f"files in {out}")
        return summary

    def _measure_effects(self, mu: torch.Tensor, active: list[int], mu_std: torch.Tensor):
        """For each unit: decode every face at code +2 and -2 std along it and measure the difference
        D = up - down: where it is largest, whether it is left-right antisymmetric (D ~ -mirror(D):
        pose or side lighting), and the shift of brightness and of warmth (red minus blue)."""
        regions = torch.zeros(4, 64, 64, dtype=torch.bool)  # top, centre, sides, bottom
        regions[0, :16] = True
        regions[1, 16:56, 14:50] = True
        regions[2, 16:, :14] = regions[2, 16:, 50:] = True
        regions[3, 56:, 14:50] = True
        names = ("top", "centre", "sides", "bottom")
        table, maps = [], []
        st = self._stats()
        for unit in active:
            up, down = mu.clone(), mu.clone()
            up[:, unit] += 2 * mu_std[unit]
            down[:, unit] -= 2 * mu_std[unit]
            d = self.decode(up) - self.decode(down)          # [F, 3, 64, 64]
            mag = d.abs().mean(1).mean(0)                    # [64, 64]
            maps.append(mag[None].repeat(3, 1, 1))
            per_pixel = [mag[r].mean().item() for r in regions]
            share = [p / max(sum(per_pixel), 1e-12) for p in per_pixel]
            anti = (d - d.flip(-1)).pow(2).sum().item()
            sym = (d + d.flip(-1)).pow(2).sum().item()
            antisym = anti / max(anti + sym, 1e-12)
            bright = d.mean().item()
            warmth = (d[:, 0].mean() - d[:, 2].mean()).item()
            words = []
            if antisym > 0.6:
                words.append("left-right: pose or side lighting")
            words.append(f"mostly {names[int(np.argmax(share))]}")
            if abs(bright) > 0.03:
                words.append("brighter" if bright > 0 else "darker")
            if abs(warmth) > 0.03:
                words.append("warmer (redder)" if warmth > 0 else "cooler (bluer)")
            table.append({"unit": unit, "kl": float(st["kl_per_unit"][unit]), "mean_abs_change": mag.mean().item(),
                          "region_share": dict(zip(names, share)), "left_right_antisymmetry": antisym,
                          "brightness_shift": bright, "warmth_shift": warmth, "description": ", ".join(words)})
        return table, maps

    @torch.no_grad()
    def rotate(self) -> dict:
        args = self.args
        out = self._task_dir("rotate")
        st = self._stats()
        axis = st["yaw_axis"]
        if args.image:
            path = Path(args.image).expanduser()
            if not path.is_file():
                raise UserError(f"--image {path} not found")
            try:
                face = torch.from_numpy(load_face(path, self.arch["image_size"])).permute(2, 0, 1)[None]
            except Exception as err:  # PIL raises many kinds for unreadable files
                raise UserError(f"cannot read --image {path} as an image: {err}") from None
            faces, source = to_float(face), f"--image {path}"
        else:
            faces, source = self._held_out_or_decoded(args.num_faces)
        mu, _ = self.encode_all((faces * 255).round().to(torch.uint8))
        c = mu @ axis
        reach = max(2.5 * st["yaw_scale"], float(c.abs().max()))
        steps = torch.linspace(-reach, reach, 9)
        rows = []
        for i in range(len(mu)):
            z = mu[i] + (steps - c[i])[:, None] * axis[None]  # move only the yaw coordinate
            rows.append(torch.cat([faces[i:i + 1], self.decode(mu[i:i + 1]), self.decode(z)]))
        save_image(torch.cat(rows), out / "rotation.png", nrow=len(steps) + 2, padding=2, pad_value=1.0)
        frames = [make_grid(torch.stack([r[2 + k] for r in rows]), nrow=len(rows), padding=2, pad_value=1.0)
                  for k in range(len(steps))]
        save_gif(frames, out / "rotation.gif")
        data = self.faces(required=False)
        figure = self._rotation_figure(data[1][len(data[1]) // 2:], axis) if data is not None else st.get("rotation")
        summary = {"source": source, "yaw_coordinate_of_faces": c.tolist(), "views_yaw_coordinates": steps.tolist(),
                   "rotation_figure": figure,
                   "rotation_figure_source": "held-out faces (second half)" if data is not None else "measured when training ended",
                   "files": ["rotation.png", "rotation.gif"],
                   "layout": "each row: input, reconstruction, then 9 views from one side to the other"}
        write_json(summary, out / "summary.json")
        print(f"rotated {len(mu)} {source} along the latent yaw axis -> {out / 'rotation.png'}")
        if figure:
            print(f"turning a face to its mirrored yaw brings it {100 * figure['mirror_gap_closed']:.0f}% closer to the "
                  f"reconstruction of its mirror image (MSE {figure['mse_unturned_vs_mirror']:.4f} -> "
                  f"{figure['mse_turned_vs_mirror']:.4f}; flipping the pixels: {figure['mse_flipped_reconstruction_vs_mirror']:.4f})")
        return summary
