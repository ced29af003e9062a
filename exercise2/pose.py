"""Head pose of faces and the codes of turned faces: a yaw measure read off the pixels (the offset of
the face's mirror-symmetry axis), and the rotation methods that move a code so that the decoded face
turns (`yaw_fit`, `mirror_path`, `global_axis`).

Conventions: codes are float tensors `[N, Z]`, images float `[N, 3, H, W]` in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


# ---------------------------------------------------------------------------------------- yaw
def blur(gray: torch.Tensor, sigma: float) -> torch.Tensor:
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
    detail = gray - blur(gray, sigma=w / 16)
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
