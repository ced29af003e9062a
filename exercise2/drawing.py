"""Every figure of exercise 2: labelled grids, plain grids, looping GIFs, the training curves and the
yaw check. The functions take images (float `[N, 3, H, W]` in [0, 1]) and words, and write files;
they measure nothing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid, save_image


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def labelled_grid(rows: list[torch.Tensor], labels: list[str], title: str | None = None, column_labels=None,
                  scale: int = 2, label_width: int = 300, pad: int = 2) -> Image.Image:
    """Rows of images (`[V, 3, H, W]` each, in [0, 1]) with a text label left of each row, an optional
    title and column captions; fonts sized to stay legible when the grid is printed page-wide.
    Returns a PIL image (saved by the caller)."""
    v = max(len(r) for r in rows)
    h, w = rows[0].shape[-2:]
    th, tw = h * scale, w * scale
    font, small = _font(21), _font(18)
    top = (30 if title else 0) + (24 if column_labels else 0)
    canvas = Image.new("RGB", (label_width + v * (tw + pad), top + len(rows) * (th + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 3), title, fill="black", font=font)
    if column_labels:
        for c, text in enumerate(column_labels):
            draw.text((label_width + c * (tw + pad) + 4, top - 22), str(text), fill="dimgray", font=small)
    for r, (images, label) in enumerate(zip(rows, labels)):
        y = top + r * (th + pad)
        for line_no, line in enumerate(str(label).split("\n")[: max(1, (th - 4) // 22)]):
            draw.text((4, y + 3 + 22 * line_no), line, fill="black", font=font if line_no == 0 else small)
        for c, img in enumerate(images):
            arr = (img.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            tile = Image.fromarray(arr).resize((tw, th), Image.NEAREST)
            canvas.paste(tile, (label_width + c * (tw + pad), y))
    return canvas


def signed_attribute(name: str, value: float) -> str:
    """'+Smiling' or '-Male' from a signed effect."""
    return f"{'+' if value >= 0 else '-'}{name}"


def save_grid(images: torch.Tensor, path: Path, nrow: int) -> None:
    """Images `[N, 3, H, W]` as one grid, `nrow` to a row, on a white background."""
    save_image(images, path, nrow=nrow, padding=2, pad_value=1.0)


def save_gif(frames: list[torch.Tensor], path: Path, ms: int = 120) -> None:
    """Frames [3, H, W] in [0, 1] -> looping GIF that plays forward and back."""
    imgs = [Image.fromarray((f.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)) for f in frames]
    imgs = imgs + imgs[-2:0:-1]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=ms, loop=0)


def save_views_gif(views: torch.Tensor, path: Path, nrow: int) -> None:
    """`[F, V, 3, H, W]` (F faces, V views each) -> a GIF whose frame k shows view k of every face."""
    save_gif([make_grid(views[:, k], nrow=nrow, padding=2, pad_value=1.0) for k in range(views.shape[1])], path)


def training_curves(history: dict, title: str, path: Path) -> None:
    """Reconstruction, KL and held-out PSNR against the iteration, from the training history."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = history
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
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def yaw_check_figure(faces: torch.Tensor, yaw: torch.Tensor, path: Path) -> None:
    """Held-out photos at five quantiles of the yaw measure, eight per row: a person can check that
    the measure orders turned faces (and that mirrored photos get the opposite sign)."""
    order = yaw.argsort()
    rows, labels = [], []
    for q in (0.03, 0.25, 0.5, 0.75, 0.97):
        i = max(0, min(int(q * len(order)), len(order) - 8))
        pick = order[i:i + 8]
        rows.append(faces[pick])
        labels.append(f"quantile {q:.2f}\nyaw {yaw[pick].min():+.3f}..{yaw[pick].max():+.3f}")
    labelled_grid(rows, labels, "held-out photos ordered by the yaw measure", label_width=220).save(path)
