"""The measuring instruments of the face analyses, as pure functions (no model, no files):
rank statistics (AUC), mutual information and MIG, a linear probe, a yaw measure read off the
pixels, a Frechet distance between feature sets, identity flips across views, and labelled grids.

Conventions: codes are float tensors `[N, Z]`, labels bool `[N, A]`, images float `[N, 3, H, W]`
in [0, 1].
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

# Attributes that belong to the person, not to the moment (pose, expression, lighting, make-up): a
# rotation that flips one of these has changed who is shown.
IDENTITY_ATTRIBUTES = ("Male", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Bald", "Eyeglasses",
                       "Wearing_Hat", "Bangs", "Mustache", "Goatee", "No_Beard", "Pale_Skin", "Young")


# ---------------------------------------------------------------------------------------- ranks
def ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N along dim 0 of `[N, ...]` (ties broken by order; codes are continuous)."""
    order = x.argsort(0)
    r = torch.empty_like(order)
    r.scatter_(0, order, torch.arange(1, len(x) + 1, device=x.device).view(-1, *([1] * (x.dim() - 1))).expand_as(order))
    return r.double()


def auc_matrix(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AUC of each score column for each label column: `[N, Z]`, bool `[N, A]` -> `[Z, A]`.
    0.5 = no relation, 1 = the score ranks every positive above every negative, 0 = the reverse
    (Mann-Whitney U / (n_pos n_neg)). NaN where a label has only one class."""
    scores = scores.reshape(len(scores), -1).double()
    y = labels.reshape(len(labels), -1).double()
    n_pos = y.sum(0)
    n_neg = len(y) - n_pos
    rank_sum = ranks(scores).T @ y                               # [Z, A]
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[:, (n_pos == 0) | (n_neg == 0)] = float("nan")
    return auc


# ---------------------------------------------------------------------------------------- information
def binary_entropy(labels: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each bool column `[N, A]` -> `[A]`."""
    p = labels.double().mean(0).clamp(1e-12, 1 - 1e-12)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def quantile_bins(codes: torch.Tensor, bins: int) -> torch.Tensor:
    """Each unit's values -> equal-frequency bin indices 0..bins-1: `[N, Z]` -> long `[N, Z]`."""
    return ((ranks(codes) - 1) * bins / len(codes)).long().clamp_(0, bins - 1)


def mutual_information(codes: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> torch.Tensor:
    """Plug-in estimate of I(z_j; y_a) in nats from equal-frequency bins of each unit: `[Z, A]`.
    Its upward bias, about (bins - 1) / (2 N) nats, is the same for every unit, so it cancels in MIG's gap."""
    n = len(codes)
    onehot = F.one_hot(quantile_bins(codes, bins), bins).double()       # [N, Z, B]
    y = labels.double()                                                  # [N, A]
    joint1 = torch.einsum("nzb,na->zba", onehot, y) / n                  # p(bin, y=1)  [Z, B, A]
    joint0 = onehot.mean(0)[:, :, None] - joint1                         # p(bin, y=0)
    p_bin = onehot.mean(0)[:, :, None]                                   # [Z, B, 1]
    p1 = y.mean(0)[None, None]                                           # [1, 1, A]

    def term(joint, p_y):
        ratio = joint / (p_bin * p_y).clamp_min(1e-300)
        return torch.where(joint > 0, joint * ratio.clamp_min(1e-300).log(), torch.zeros_like(joint))

    return (term(joint1, p1) + term(joint0, 1 - p1)).sum(1)


def mig(codes: torch.Tensor, labels: torch.Tensor, names: list[str], bins: int = 10, bootstrap: int = 0) -> dict:
    """Mutual information gap (Chen et al. 2018) with attributes as the factors: for each attribute,
    (the largest minus the second largest I(z_j; y)) / H(y), then the mean over attributes.
    1 = each attribute lives in one unit alone; 0 = it is spread over units (or absent).
    With `bootstrap` > 0: the std of the mean MIG over that many resamples of the faces."""
    mi = mutual_information(codes, labels, bins)                   # [Z, A]
    h = binary_entropy(labels)
    top = mi.topk(min(2, mi.shape[0]), dim=0)
    second = top.values[1] if mi.shape[0] > 1 else torch.zeros_like(h)
    gap = (top.values[0] - second) / h
    per = {name: {"mig": float(gap[a]), "unit": int(top.indices[0, a]), "mi_top": float(top.values[0, a]),
                  "mi_second": float(second[a]), "entropy": float(h[a])} for a, name in enumerate(names)}
    out = {"mig": float(gap.mean()), "bins": bins, "faces": len(codes), "per_attribute": per}
    if bootstrap:
        gen = torch.Generator().manual_seed(0)
        draws = [mig(codes[i], labels[i], names, bins)["mig"]
                 for i in (torch.randint(0, len(codes), (len(codes),), generator=gen) for _ in range(bootstrap))]
        out["bootstrap_std"] = float(torch.tensor(draws).std())
    return out


# ---------------------------------------------------------------------------------------- probes
def standardise(train: torch.Tensor, *others: torch.Tensor):
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return [(t - mean) / std for t in (train, *others)]


def linear_probe(train_codes, train_labels, test_codes, weight_decay: float = 1e-3, steps: int = 200) -> torch.Tensor:
    """Logistic regression of every attribute on all units (fitted on the training codes with L-BFGS):
    predicted probabilities of the test codes `[N_test, A]`."""
    x, xt = standardise(train_codes.double(), test_codes.double())
    y = train_labels.double()
    lin = torch.nn.Linear(x.shape[1], y.shape[1]).double()
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(lin(x), y) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return torch.sigmoid(lin(xt))


def single_unit_vs_probe(train_codes, train_labels, test_codes, test_labels, names: list[str]) -> dict:
    """Per attribute: the best single unit (chosen on the training codes, its sign too) and a linear
    probe on all units, both as held-out AUC. Close values: the attribute sits in one unit."""
    train_auc = auc_matrix(train_codes, train_labels)                     # [Z, A]
    strength = (train_auc - 0.5).abs().nan_to_num(-1)
    best = strength.argmax(0)                                             # [A]
    sign = torch.sign(train_auc[best, torch.arange(len(names))] - 0.5)
    test_auc = auc_matrix(test_codes, test_labels)
    probe = auc_matrix(linear_probe(train_codes, train_labels, test_codes), test_labels).diagonal()
    out = {}
    for a, name in enumerate(names):
        unit_auc = float(test_auc[best[a], a])
        out[name] = {"unit": int(best[a]), "sign": int(sign[a]),
                     "unit_auc": unit_auc if sign[a] >= 0 else 1 - unit_auc, "probe_auc": float(probe[a])}
    return out


# ---------------------------------------------------------------------------------------- yaw
def _blur(gray: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of `[N, 1, H, W]`."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=gray.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    g = F.conv2d(F.pad(gray, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(g, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


def yaw_measure(images: torch.Tensor, max_offset: float = 0.12, band=(0.56, 0.9), half_width: float = 0.22) -> torch.Tensor:
    """How far each face is turned, read off the pixels: the horizontal offset of the face's mirror-
    symmetry axis from the image centre, in units of the image width (positive: axis right of centre).

    Aligned face crops put the eyes at fixed places, so a turned head shows as a nose, mouth and chin
    shifted to one side: the vertical line about which the lower face is most nearly mirror-symmetric
    moves with the turn. The search compares, for every candidate axis in half-pixel steps within
    +-max_offset of the centre, each column with its mirror column (half_width of the image to either
    side) over the rows below the eyes (`band`, fractions of the height; the eyes, fixed by the
    alignment, would hold the axis at the centre), on a high-passed grey image (so smooth side
    lighting does not pull the axis), with the mismatch normalised by the energy compared (so a flat
    patch does not look symmetric for lacking detail), and refines the best axis with a parabola.
    A mirrored photo gives exactly the negated value; checked by eye on held-out photos ordered by it
    (`rotate` writes yaw_check.png).
    """
    x = images.float()
    n, _, h, w = x.shape
    gray = x.mean(1, keepdim=True)                                     # [N, 1, H, W]
    detail = gray - _blur(gray, sigma=w / 16)
    rows = detail[:, 0, int(band[0] * h): int(band[1] * h)]            # [N, R, W]
    rows = rows - rows.mean(-1, keepdim=True)
    steps = int(round(max_offset * w * 2))                             # half-pixel offsets of the axis
    k = max(2, int(half_width * w))                                    # column pairs compared per axis
    errors = []
    for d in range(-steps, steps + 1):
        m = (w - 1) + d                                                # axis at m / 2 (in pixels)
        lo = m // 2 - torch.arange(k) - (1 if m % 2 == 0 else 0)      # columns left of the axis
        hi = m - lo                                                    # their mirror images
        ok = (lo >= 0) & (hi < w)
        a, b = rows[:, :, lo[ok]], rows[:, :, hi[ok]]
        # normalised: a flat region (background, cheek) must not look symmetric just for lacking detail
        errors.append((a - b).pow(2).sum((1, 2)) / (a.pow(2) + b.pow(2)).sum((1, 2)).clamp_min(1e-12))
    err = torch.stack(errors, 1)                                       # [N, 2 steps + 1]
    best = err.argmin(1)
    inner = best.clamp(1, err.shape[1] - 2)
    e0, e1, e2 = (err.gather(1, (inner + o)[:, None])[:, 0] for o in (-1, 0, 1))
    curvature = (e0 - 2 * e1 + e2)
    shift = torch.where(curvature > 1e-12, 0.5 * (e0 - e2) / curvature.clamp_min(1e-12), torch.zeros_like(e1))
    shift = torch.where(best == inner, shift.clamp(-0.5, 0.5), torch.zeros_like(shift))
    offset_half_px = (inner - steps).double() + shift.double()
    return (offset_half_px / 2 / w).float()


def face_ellipse(size: int = 64) -> torch.Tensor:
    """bool `[size, size]`: the central ellipse where an aligned face crop holds the face."""
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return ((yy / size - 0.58) / 0.36) ** 2 + ((xx / size - 0.5) / 0.3) ** 2 <= 1


# ---------------------------------------------------------------------------------------- feature distance
def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets `[N, D]`, `[M, D]` (the FID formula:
    |mu_a - mu_b|^2 + tr(Ca + Cb - 2 (Ca Cb)^(1/2)))."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    va, vecs = torch.linalg.eigh(ca)
    sqrt_a = vecs @ torch.diag(va.clamp_min(0).sqrt()) @ vecs.T
    mid = torch.linalg.eigvalsh(sqrt_a @ cb @ sqrt_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + ca.trace() + cb.trace() - 2 * mid)


# ---------------------------------------------------------------------------------------- views
def identity_flips(probs_views: torch.Tensor, reference: torch.Tensor, confident: float = 0.8, names=None) -> dict:
    """Across views of each face, how many confident identity predictions change side.
    `probs_views` `[F, V, A]` classifier probabilities of each view, `reference` `[F, A]` those of the
    face's own reconstruction. An attribute is confident for a face where the reference probability is
    >= confident or <= 1 - confident; it flips if any view predicts the other side of 0.5. With
    `names`, per_attribute gives [flipped, confident] for each."""
    sure = (reference >= confident) | (reference <= 1 - confident)      # [F, A]
    side = reference >= 0.5
    flipped = ((probs_views >= 0.5) != side[:, None]).any(1) & sure     # [F, A]
    n = int(sure.sum())
    out = {"confident_predictions": n, "flipped": int(flipped.sum()),
            "flip_share": float(flipped.sum()) / n if n else float("nan"),
            "faces_with_any_flip": float(flipped.any(1).float().mean()) if len(flipped) else float("nan")}
    if names is not None:
        out["per_attribute"] = {name: [int(flipped[:, a].sum()), int(sure[:, a].sum())] for a, name in enumerate(names)}
    return out


def yaw_span(view_yaw: torch.Tensor, low: float, high: float) -> dict:
    """`view_yaw` `[F, V]`: per face the range its views cover, against the target [low, high]
    (e.g. the 10th and 90th percentile of real faces' yaw)."""
    lo, hi = view_yaw.min(1).values, view_yaw.max(1).values
    covers = (lo <= low) & (hi >= high)
    span = (hi - lo) / max(high - low, 1e-12)
    return {"faces": len(view_yaw), "covers_target_share": float(covers.float().mean()),
            "span_over_target_median": float(span.median()), "view_yaw_min_median": float(lo.median()),
            "view_yaw_max_median": float(hi.median())}


# ---------------------------------------------------------------------------------------- figures
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


def round_floats(obj, digits: int = 4):
    """Nested dicts/lists with floats rounded (for summary.json files a person reads)."""
    if isinstance(obj, float):
        return obj if math.isnan(obj) or math.isinf(obj) else round(obj, digits)
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------- turning faces
ROTATION_METHODS = ("yaw_fit", "mirror_path", "global_axis")


def yaw_direction(gradient: torch.Tensor, scale: torch.Tensor, keep: torch.Tensor | None = None) -> dict:
    """The direction that turns a face, from how the decoded yaw responds to each unit.

    `gradient[j]` is the mean change of the measured yaw of decoded faces per std of unit j (0 for
    units whose response is not clearly measured), `scale[j]` that std. The direction moves each unit in
    proportion to its response, in units of its spread: units that do not turn the face stay put.
    `keep` `[K, Z]`: directions in code space (e.g. mean code with minus without an identity attribute)
    that the move must not follow: it is made orthogonal to them (in units of the spread).
    `move` is one step of unit length in std space (so +-3 steps stay as far inside the codes' spread
    as a +-3 std traversal). Returns {gradient, move, kept_out}."""
    g = gradient.double()
    kept_out = 0.0
    if keep is not None and len(keep) and g.norm() > 0:
        q, _ = torch.linalg.qr((keep.double() / scale.double()).T)           # [Z, K] orthonormal, std space
        projected = g - q @ (q.T @ g)
        kept_out = float(1 - projected.norm() / g.norm())
        g = projected
    move = scale.double() * g / g.norm().clamp_min(1e-12)
    return {"gradient": gradient.float(), "move": move.float(), "share_removed_by_keep": kept_out}


def fit_global_axis(mu: torch.Tensor, mu_flip: torch.Tensor) -> dict:
    """The first principal direction of the code differences between faces and their mirror images
    (the former default): {axis, centre, explained (share of the differences' variance)}."""
    delta = mu - mu_flip
    _, s, vh = torch.linalg.svd(delta, full_matrices=False)
    return {"axis": vh[0], "centre": ((mu + mu_flip) / 2).mean(0), "explained": float(s[0] ** 2 / (s ** 2).sum())}


def rotation_codes(method: str, mu: torch.Tensor, mu_flip: torch.Tensor, stats: dict, views: int = 9) -> torch.Tensor:
    """Codes of `views` views of each face, from one side to the other: `[F, V, Z]`.

    yaw_fit      from the face's code with its component along the yaw direction set to the midpoint between
                 the face and its mirror image (a frontal view; everything else of the face kept), along the
                 yaw direction by +-stats['yaw_reach'] steps
    mirror_path  z + t (z_mirror - z) for t in [-1, 2]: the face (t = 0), its mirror image (t = 1), and past both
    global_axis  set the coordinate on the first principal mirror axis to values over +-stats['axis_reach']
    """
    if method == "yaw_fit":
        move = stats["yaw_fit"]["move"]
        u = move / move.norm().clamp_min(1e-12)
        frontal = mu - 0.5 * ((mu - mu_flip) @ u)[:, None] * u[None]    # the face's own yaw component removed
        steps = torch.linspace(-stats["yaw_reach"], stats["yaw_reach"], views)
        return frontal[:, None] + steps[None, :, None] * move[None, None]
    if method == "mirror_path":
        t = torch.linspace(-1.0, 2.0, views)
        return mu[:, None] + t[None, :, None] * (mu_flip - mu)[:, None]
    if method == "global_axis":
        g = stats["global_axis"]
        c = (mu - g["centre"]) @ g["axis"]
        steps = torch.linspace(-stats["axis_reach"], stats["axis_reach"], views)
        return mu[:, None] + (steps[None] - c[:, None])[..., None] * g["axis"][None, None]
    raise ValueError(f"unknown rotation method {method!r}; choose from {', '.join(ROTATION_METHODS)}")


def mirrored_codes(method: str, mu: torch.Tensor, mu_flip: torch.Tensor, stats: dict) -> torch.Tensor | None:
    """Each face turned to its mirrored yaw by the method: its component along the method's direction
    reflected (None for mirror_path, which passes through the mirror image's code by construction)."""
    if method == "yaw_fit":
        u = stats["yaw_fit"]["move"]
        u = u / u.norm().clamp_min(1e-12)
        return mu - ((mu - mu_flip) @ u)[:, None] * u[None]   # reflect about the frontal code along u
    if method == "global_axis":
        g = stats["global_axis"]
        return mu - 2 * ((mu - g["centre"]) @ g["axis"])[:, None] * g["axis"][None]
    return None
