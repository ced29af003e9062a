"""Figures that show dlib's 68 landmarks (exercise2/landmarks.py) on faces, so a reader sees what the
yaw is read from: a grid of faces with the points drawn and a value above each face (`face_grid`),
and held-out photos ordered by landmark yaw (`yaw_check_figure`, used by `rotate` and by
scripts/validate_face_instruments.py).

The figures are drawn at their printed size: at most TEXT_WIDTH_CM wide and MAX_HEIGHT_CM tall (an A4
page's text width with 2.2 cm margins; the faces shrink to fit), every text FONT_PT points, so they
read at >= 7 pt printed at that size or larger. Images are float `[N, 3, H, W]` in [0, 1], points
`[N, 68, 2]` in input pixels (pixel i's centre at i), as `landmarks.landmarks` returns them.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import torch
import torch.nn.functional as F

TEXT_WIDTH_CM = 16.6
MAX_HEIGHT_CM = 16.0
FONT_PT = 7.5           # every text: >= 7 pt on paper at the figure's own size
DPI = 200
QUANTILES = (0.03, 0.25, 0.5, 0.75, 0.97)
CHECK_COLUMNS = 8
_CM = 1 / 2.54
_CHAR_CM = 0.55 * FONT_PT / 72 * 2.54   # width of an average character at FONT_PT (DejaVu Sans)
_LINE_CM = 1.25 * FONT_PT / 72 * 2.54   # height of a line of text
_DIGIT_CM = 0.64 * FONT_PT / 72 * 2.54  # width of a digit, sign or point


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _used_points() -> tuple[list[int], list[int]]:
    """(the points landmark_yaw reads: nose tip and base, the cheek pairs; all the others)."""
    from exercise2.landmarks import CHEEK_PAIRS, NOSE_BASE, NOSE_TIP
    used = [NOSE_TIP, *range(NOSE_BASE.start, NOSE_BASE.stop), *(i for pair in CHEEK_PAIRS for i in pair)]
    return used, [i for i in range(68) if i not in used]


def draw_face(ax, image: torch.Tensor, points: torch.Tensor | None, title: str | None = None, dot: float = 1.0) -> None:
    """One face `[3, H, W]` on `ax` (upscaled x4, bicubic, for print), its 68 points drawn when given
    (red: the points landmark_yaw reads; green: the others), `title` above it."""
    h, w = image.shape[-2:]
    big = F.interpolate(image[None].float(), scale_factor=4, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    ax.imshow(big.permute(1, 2, 0).cpu().numpy(), extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="bilinear")
    if points is not None:
        used, other = _used_points()
        p = points.cpu().numpy()
        ax.scatter(p[other, 0], p[other, 1], s=0.6 * dot, c="#39ff14", linewidths=0)
        ax.scatter(p[used, 0], p[used, 1], s=1.2 * dot, c="#ff2d2d", linewidths=0)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title is not None:
        ax.set_title(title, fontsize=FONT_PT, pad=1.0)


def face_grid(rows: list[torch.Tensor], path: Path, *, points: list[torch.Tensor | None] | None = None,
              row_labels: list[str] | None = None, cell_titles: list[list[str]] | None = None,
              column_labels: list[str] | None = None, title: str | None = None,
              width_cm: float = TEXT_WIDTH_CM, max_height_cm: float = MAX_HEIGHT_CM) -> dict:
    """Rows of faces (`[V, 3, H, W]` each) with their landmarks (`points[r]` `[V, 68, 2]`, or None for
    a row without), a label left of each row, a title above each face (e.g. its yaw), column labels
    and a title, written to `path` at its printed size (at most `width_cm` wide; at most `max_height_cm`
    tall unless the faces would then be narrower than their titles, when it grows taller). Returns the
    layout {width_cm, height_cm, tile_cm, font_pt, cell_title_cm (the width a title needs)}."""
    plt = _pyplot()
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    labels = row_labels or [""] * n_rows
    label_cm = max((len(line) for lab in labels for line in str(lab).split("\n")), default=0) * _CHAR_CM
    label_cm = label_cm + 0.2 if label_cm else 0.0
    cell_head = _LINE_CM if cell_titles else 0.0
    # a cell title (e.g. "+0.26") must fit above its face: digits are wider than the average character
    title_cm = max((len(t) for row in cell_titles or [] for t in row), default=0) * _DIGIT_CM + 0.05
    gap = 0.06
    width = width_cm
    for _ in range(3):   # the title wraps at the figure's width, which the rows' height may narrow
        title_lines = textwrap.wrap(title, max(20, int((width - 0.2) / _CHAR_CM))) if title else []
        head_cm = len(title_lines) * _LINE_CM + (0.15 if title_lines else 0) + (_LINE_CM if column_labels else 0)
        across = (width_cm - label_cm) / n_cols - gap
        # rows as tall as the height allows, but never so small that the cell titles overlap (then taller)
        tile = min(across, max((max_height_cm - head_cm - 0.1) / n_rows - cell_head - gap, title_cm))
        width = label_cm + n_cols * (tile + gap)
    lines_needed = max((len(str(lab).split("\n")) for lab in labels), default=1)
    if lines_needed * _LINE_CM > tile + cell_head:           # a label taller than its row: fewer columns fit
        raise ValueError(f"row labels of {lines_needed} lines do not fit rows {tile + cell_head:.2f} cm tall")
    height = head_cm + n_rows * (tile + cell_head + gap) + 0.1
    fig = plt.figure(figsize=(width * _CM, height * _CM))
    for k, line in enumerate(title_lines):
        fig.text(0.1 / width, 1 - (0.05 + (k + 0.5) * _LINE_CM) / height, line, fontsize=FONT_PT, va="center")
    for c, text in enumerate(column_labels or []):
        x = (label_cm + c * (tile + gap) + tile / 2) / width
        fig.text(x, 1 - (head_cm - _LINE_CM / 2) / height, str(text), fontsize=FONT_PT, ha="center", va="center",
                 color="dimgray")
    for r, images in enumerate(rows):
        top = head_cm + r * (tile + cell_head + gap)
        fig.text(0.05 / width, 1 - (top + (tile + cell_head) / 2) / height, str(labels[r]), fontsize=FONT_PT,
                 va="center", ha="left", linespacing=1.1)
        pts = points[r] if points is not None else None
        for c, image in enumerate(images):
            ax = fig.add_axes(((label_cm + c * (tile + gap)) / width, 1 - (top + cell_head + tile) / height,
                               tile / width, tile / height))
            draw_face(ax, image, None if pts is None else pts[c],
                      cell_titles[r][c] if cell_titles and c < len(cell_titles[r]) else None, dot=tile / 1.2)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return {"width_cm": width, "height_cm": height, "tile_cm": tile, "font_pt": FONT_PT, "cell_title_cm": title_cm}


def yaw_check_figure(photos: torch.Tensor, points: torch.Tensor, yaw: torch.Tensor, path: Path,
                     measure: str = "landmark yaw") -> dict:
    """Photos ordered by `yaw`, CHECK_COLUMNS around each of QUANTILES per row, their landmarks drawn
    and their yaw above them: a person can check that the measure orders turned faces."""
    order = yaw.argsort()
    n, cols = len(order), min(CHECK_COLUMNS, len(order))
    rows, pts, titles, labels = [], [], [], []
    for q in QUANTILES:
        centre = int(round(q * (n - 1)))
        start = min(max(0, centre - cols // 2), n - cols)
        pick = order[start:start + cols]
        rows.append(photos[pick])
        pts.append(points[pick])
        titles.append([f"{float(yaw[i]):+.2f}" for i in pick])
        labels.append(f"q {q:.2f}")
    return face_grid(rows, path, points=pts, row_labels=labels, cell_titles=titles,
                     title=f"held-out photos ordered by {measure} (value above each face; red: the points it reads; "
                           "positive: face turned towards image right)")
