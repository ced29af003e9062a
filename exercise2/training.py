"""Training of the beta-VAE: the loop (time or iteration budget, cosine learning rate, held-out
evaluation, best and latest checkpoints, figures) and the held-out evaluation it reports."""
from __future__ import annotations

import math
import time

import torch
from tqdm import tqdm

from exercise2.analysis import ACTIVE_VARIANCE, informative_units
from exercise2.context import write_summary
from exercise2.dataset import to_float
from exercise2.drawing import save_grid, training_curves
from exercise2.model import kl_per_unit, load_vae_checkpoint, vae_loss
from utils.checkpoint import atomic_save, load_state_dict_float32
from utils.device import autocast
from utils.distributed import cleanup, shard, synced_clock
from utils.progress import progress
from utils.schedule import budget_share, cosine_lr


def psnr(mse: float) -> float:
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def evaluate(ctx, images: torch.Tensor) -> dict:
    """Held-out figures: reconstruction (squared error per image, from the posterior mean), PSNR,
    KL per image and per unit, active and informative units (see analysis.informative_units)."""
    mu, logvar = ctx.encode_all(images)
    sq = (ctx.decode(mu) - to_float(images)).pow(2)
    mse = sq.mean().item()
    kl_units = kl_per_unit(mu, logvar).mean(0)
    std = mu.std(0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    return {"recon_per_image": sq.sum((1, 2, 3)).mean().item(), "mse": mse, "psnr_db": psnr(mse),
            "kl": kl_units.sum().item(), "kl_per_unit": kl_units.tolist(), "active_units": int((std ** 2 > ACTIVE_VARIANCE).sum()),
            "informative_units": int(informative_units(kl_units, std).sum()), "images": len(images)}


def learning_rate(args, iteration: int, seconds: float) -> float:
    """--lr, or with --lr_schedule cosine decayed to a tenth over the budget (the larger of the shares of
    --max_iter and of --max_minutes used, over the whole run, resumed parts included: utils/schedule.py)."""
    if args.lr_schedule != "cosine":
        return args.lr
    max_seconds = args.max_minutes * 60 if args.max_minutes else None
    return cosine_lr(args.lr, budget_share(iteration, int(args.max_iter), seconds, max_seconds), min_ratio=0.1)


def train(solver) -> dict:
    """Train `solver.model` until --max_iter iterations in all or --max_minutes in this run; keep the
    model of the best held-out loss (<ckpt_name>.pt), the latest state (last.pt), its analysis
    statistics (analysis.pt) and the summary in the run folder, figures in <output_dir>/<ckpt_name>/train/."""
    args, ctx, model = solver.args, solver.ctx, solver.model
    train_faces, val = ctx.faces()
    val_probe, fixed = val[: min(len(val), 512)], val[:8]
    ddp = model
    if solver.dist.enabled:
        device_ids = [solver.device.index] if solver.device.type == "cuda" else None
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    gen = torch.Generator().manual_seed(args.seed + solver.iteration)
    max_iter, max_seconds = int(args.max_iter), (args.max_minutes * 60 if args.max_minutes else None)
    out_dir = solver.output_root / "train"
    if solver.is_main:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"beta-VAE (beta={args.beta:g}, z_dim={solver.arch['z_dim']}, {n_params:,} parameters) on "
              f"{len(train_faces):,} training / {len(val):,} held-out faces, batch {args.batch_size}, device {solver.device}"
              + (f", {solver.dist.world_size} processes" if solver.dist.enabled else "") + f"; run folder {solver.ckpt_folder}")
        out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    bar = progress(total=None if max_seconds else max_iter, initial=solver.iteration, desc=f"train {args.ckpt_name}",
                   unit="it", disable=not solver.is_main, dynamic_ncols=True)
    run_recon = run_kl = 0.0
    run_n = images_seen = 0
    session_seconds = 0.0
    done = solver.iteration >= max_iter or (max_seconds is not None and solver.train_seconds >= max_seconds)
    try:
        while not done:
            t0 = time.perf_counter()
            for group in solver.optim.param_groups:
                group["lr"] = learning_rate(args, solver.iteration, solver.train_seconds)
            idx = torch.randint(0, len(train_faces), (args.batch_size,), generator=gen)
            x = ctx.batch(shard(train_faces[idx], solver.dist))
            with autocast(solver.device, args.bf16):
                logits, mu, logvar = ddp(x)
            loss, recon, kl = vae_loss(logits.float(), x, mu.float(), logvar.float(), args.beta)
            solver.optim.zero_grad(set_to_none=True)
            loss.backward()
            solver.optim.step()
            solver.iteration += 1
            dt = time.perf_counter() - t0
            # one clock for all ranks (the slowest's): the learning rate and the time budget follow it; the
            # budget counts the whole run's training time, resumed parts included, as the text models' does
            solver.train_seconds, stop = synced_clock(solver.train_seconds + dt, solver.iteration >= max_iter,
                                                      solver.dist, solver.device)
            session_seconds += dt
            images_seen += args.batch_size
            run_recon, run_kl, run_n = run_recon + recon.item(), run_kl + kl.item(), run_n + 1
            bar.update(1)
            if solver.iteration % 20 == 0:
                bar.set_postfix(recon=f"{recon.item():.1f}", kl=f"{kl.item():.1f}")
            done = stop or (max_seconds is not None and solver.train_seconds >= max_seconds)
            if solver.iteration % args.display_step == 0 or done:
                ev = evaluate(ctx, val_probe)
                model.train()
                for key, value in (("iteration", solver.iteration), ("train_recon", run_recon / run_n),
                                   ("train_kl", run_kl / run_n), ("val_recon", ev["recon_per_image"]),
                                   ("val_kl", ev["kl"]), ("val_psnr", ev["psnr_db"]),
                                   ("minutes", solver.train_seconds / 60)):
                    solver.history[key].append(value)
                if solver.is_main:
                    tqdm.write(f"[{solver.iteration:6d}] train recon {run_recon / run_n:8.2f} kl {run_kl / run_n:7.2f} | "
                               f"held-out recon {ev['recon_per_image']:8.2f} kl {ev['kl']:7.2f} psnr {ev['psnr_db']:5.2f} dB "
                               f"active {ev['active_units']:2d}/{solver.arch['z_dim']} | {images_seen / session_seconds:5.0f} img/s")
                run_recon = run_kl = 0.0
                run_n = 0
                val_loss = ev["recon_per_image"] + args.beta * ev["kl"]
                if val_loss < solver.best["val_loss"]:
                    solver.best = {"val_loss": val_loss, "iteration": solver.iteration}
                    solver.save_best()
            if solver.iteration % args.save_step == 0 or done:
                solver.save_checkpoint()
                if solver.is_main and args.save_output:
                    save_figures(solver, fixed, out_dir)
    except KeyboardInterrupt:
        solver.save_checkpoint()
        if solver.is_main:
            tqdm.write(f"interrupted: saved iteration {solver.iteration}; continue with the same command and --resume")
        raise
    finally:
        bar.close()
    summary = finish(solver, val, images_seen / session_seconds if session_seconds else None)
    if solver.is_main:
        write_summary({"config": solver.config(), **summary}, out_dir / "summary.json", digits=8)
        print(f"held-out: PSNR {summary['held_out_psnr_db']:.2f} dB, reconstruction "
              f"{summary['held_out_recon_per_image']:.1f} per image, KL {summary['held_out_kl']:.2f} nats, "
              f"{summary['active_units']}/{solver.arch['z_dim']} active units; {summary['images_per_second'] or 0:.0f} "
              f"images/s; model in {solver.ckpt_folder}, figures in {out_dir}")
    cleanup(solver.dist)
    return summary


def finish(solver, val: torch.Tensor, images_per_second: float | None) -> dict:
    """The kept model is the best held-out one: its figures on the whole held-out split, its analysis
    statistics (analysis.pt in the run folder, also stored in the checkpoint) and its summary."""
    args, ctx = solver.args, solver.ctx
    last_iteration = solver.iteration
    best_path = solver.ckpt_folder / f"{args.ckpt_name}.pt"
    if solver.best["iteration"] != solver.iteration and best_path.is_file():
        load_state_dict_float32(solver.model, load_vae_checkpoint(best_path)["model"])
        solver.iteration = solver.best["iteration"]
        if solver.is_main:
            print(f"keeping iteration {solver.iteration} (best held-out loss {solver.best['val_loss']:.1f}), "
                  f"not the last ({last_iteration})")
    ev = evaluate(ctx, val)
    ctx.renew(solver.model_key(), solver.iteration)
    solver.latent_stats = ctx.compute_analysis()
    if solver.is_main:
        atomic_save(solver.latent_stats, solver.ckpt_folder / "analysis.pt")
    solver.summary = {
        "held_out_images": ev["images"], "held_out_recon_per_image": ev["recon_per_image"],
        "held_out_mse": ev["mse"], "held_out_psnr_db": ev["psnr_db"], "held_out_kl": ev["kl"],
        "kl_per_unit": ev["kl_per_unit"], "active_units": ev["active_units"],
        "informative_units": ev["informative_units"], "iterations": solver.iteration,
        "last_iteration": last_iteration, "train_minutes": solver.train_seconds / 60,
        "images_per_second": images_per_second, "yaw_gain": solver.latent_stats.get("yaw_gain"),
    }
    solver.save_best()
    return solver.summary


def save_figures(solver, fixed: torch.Tensor, out_dir) -> None:
    """Reconstructions of eight held-out faces and the curves so far."""
    ctx = solver.ctx
    save_grid(torch.cat([to_float(fixed), ctx.decode(ctx.encode_faces(fixed))]), out_dir / "reconstructions.png",
              nrow=len(fixed))
    solver.model.train()
    training_curves(solver.history, f"{solver.args.ckpt_name}: beta = {solver.args.beta:g}", out_dir / "loss_curves.png")
