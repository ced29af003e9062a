"""Every figure of exercise 2: labelled grids, plain grids, looping GIFs, the training curves and the
yaw check. The functions take images (float `[N, 3, H, W]` in [0, 1]) and words, and write files;
they measure nothing."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid, save_image


# How the report prints a grid (report/report.typ, via report/figures.py): at the text width of an A4
# page with 2.2 cm margins, unless that would make it taller than MAX_PRINT_HEIGHT_CM; then at that height.
TEXT_WIDTH_CM = 16.6
MAX_PRINT_HEIGHT_CM = 16.0
MIN_PRINT_PT = 7.0      # no text smaller than this on paper
LABEL_FONT_PX = 18      # the font size `label_width` is given for: the label column grows with the font


def print_width_cm(size: tuple[int, int], text_width_cm: float = TEXT_WIDTH_CM,
                   max_height_cm: float = MAX_PRINT_HEIGHT_CM) -> float:
    """Printed width of an image of `size` (width, height in px): the text width, or narrower where the
    image would otherwise be printed taller than `max_height_cm`."""
    w, h = size
    return min(text_width_cm, max_height_cm * w / h)


def printed_pt(font_px: float, size: tuple[int, int], width_cm: float | None = None) -> float:
    """Size on paper, in points, of a font of `font_px` pixels in an image of `size` printed `width_cm`
    wide (default: `print_width_cm(size)`)."""
    width_cm = print_width_cm(size) if width_cm is None else width_cm
    return font_px * 72 * (width_cm / 2.54) / size[0]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _wrap(text: str, font, width: float) -> list[str]:
    """One line of text -> lines no wider than `width` px, broken at spaces (a single word stays whole)."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + [line] if line or not lines else lines


def _pack(items: list[str], font, width: float) -> list[str]:
    """Items joined with ", " into lines no wider than `width` px, an item broken only where it is
    wider than a line on its own."""
    lines: list[str] = []
    for item in items:
        if lines and font.getlength(lines[-1] + ", " + item) <= width:
            lines[-1] += ", " + item
        else:
            if lines:
                lines[-1] += ","
            lines += _wrap(item, font, width)
    return lines


def fit_label(label: str, font, width: float, max_lines: int) -> tuple[list[str], bool]:
    """A label's lines in at most `max_lines` lines no wider than `width` px, and whether all of it fits.
    The first line (the head) stays alone; where the others do not fit one to a line they are packed,
    item by item, then word by word; what still does not fit ends in an ellipsis."""
    head, *rest = str(label).split("\n")
    top = _wrap(head, font, width)
    for body in ([ln for part in rest for ln in _wrap(part, font, width)], _pack(rest, font, width),
                 _wrap(", ".join(rest), font, width) if rest else []):
        if len(top) + len(body) <= max_lines:
            return top + body, True
    lines = (top + body)[:max_lines]
    last = lines[-1]
    while last and font.getlength(last + " …") > width:
        last = last[:-1]
    lines[-1] = last.rstrip(", ") + " …"
    return lines, False


def labelled_grid(rows: list[torch.Tensor], labels: list[str], title: str | None = None, column_labels=None,
                  scale: int = 2, label_width: int = 300, pad: int = 2, *, print_width: float | None = None,
                  min_pt: float = MIN_PRINT_PT) -> Image.Image:
    """Rows of images (`[V, 3, H, W]` each, in [0, 1]) with a text label left of each row, an optional
    title and column captions. The font is the smallest whose text is at least `min_pt` points on
    paper when the grid is printed `print_width` cm wide (default: as the report prints it,
    `print_width_cm` of the grid's own size); `label_width` is the label column's width in pixels for a
    font of LABEL_FONT_PX pixels and grows with the font, and further (up to half the images' width)
    where a label would not fit the row height otherwise (`fit_label`). Returns a PIL image (saved by
    the caller) whose `info` holds the layout: font_px, title_px, label_width, top, print_width_cm,
    printed_pt."""
    v = max(len(r) for r in rows)
    h, w = rows[0].shape[-2:]
    th, tw = h * scale, w * scale
    images_width = v * (tw + pad)

    def layout(px: int) -> dict:
        title_px = round(px * 1.15)
        lw = max(label_width, round(label_width * px / LABEL_FONT_PX))
        font, max_lines = _font(px), max(1, (th - 2) // sum(_font(px).getmetrics()))
        while lw < images_width / 2 and not all(fit_label(x, font, lw - 8, max_lines)[1] for x in labels):
            lw += px
        width = lw + images_width
        title_lines = _wrap(title, _font(title_px), width - 8) if title else []
        line_h = sum(_font(title_px).getmetrics())
        top = (len(title_lines) * line_h + 6 if title else 0) + (sum(_font(px).getmetrics()) + 4 if column_labels else 0)
        return {"font_px": px, "title_px": title_px, "label_width": lw, "title_lines": title_lines,
                "top": top, "size": (width, top + len(rows) * (th + pad))}

    px = 8
    for _ in range(100):  # the smallest font that prints at min_pt: the canvas grows with the font
        lay = layout(px)
        pt = printed_pt(px, lay["size"], print_width)
        if pt >= min_pt:
            break
        px = max(px + 1, math.ceil(px * min_pt / pt))
    else:
        raise ValueError(f"labels cannot reach {min_pt} pt at this print width: print the grid wider or give "
                         "the labels a narrower column")
    font, title_font = _font(px), _font(lay["title_px"])
    lw, top = lay["label_width"], lay["top"]
    line_h = sum(font.getmetrics())
    canvas = Image.new("RGB", lay["size"], "white")
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lay["title_lines"]):
        draw.text((4, 3 + k * sum(title_font.getmetrics())), line, fill="black", font=title_font)
    if column_labels:
        for c, text in enumerate(column_labels):
            draw.text((lw + c * (tw + pad) + 4, top - line_h - 2), str(text), fill="dimgray", font=font)
    for r, (images, label) in enumerate(zip(rows, labels)):
        y = top + r * (th + pad)
        for line_no, line in enumerate(fit_label(label, font, lw - 8, max(1, (th - 2) // line_h))[0]):
            draw.text((4, y + 1 + line_h * line_no), line, fill="black" if line_no == 0 else "#333333", font=font)
        for c, img in enumerate(images):
            arr = (img.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            tile = Image.fromarray(arr).resize((tw, th), Image.NEAREST)
            canvas.paste(tile, (lw + c * (tw + pad), y))
    canvas.info.update(font_px=px, title_px=lay["title_px"], label_width=lw, top=top,
                       print_width_cm=print_width if print_width is not None else print_width_cm(lay["size"]),
                       printed_pt=printed_pt(px, lay["size"], print_width))
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
