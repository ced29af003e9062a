"""The codes of turned faces: the rotation methods that move a code so that the decoded face turns
(`yaw_fit`, `mirror_path`, `global_axis`, `interfacegan`, `interfacegan_conditional`,
`interfacegan_calibrated`), the linear fits they rest on, and the old symmetry yaw measure.

Yaw itself is measured with dlib's landmarks (`exercise2/landmarks.py`, `landmarks.yaw`), validated in
report/results/instruments/. `yaw_measure` below (the offset of the face's mirror-symmetry axis) is
kept only to compare instruments: on held-out photos it agrees with landmark yaw at Spearman -0.12,
so it does not measure yaw (scripts/validate_face_instruments.py).

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
    """The old symmetry measure, kept to compare instruments only (it does not track landmark yaw on
    photos: Spearman -0.12; use `exercise2.landmarks.yaw`): the horizontal offset of the face's mirror-
    symmetry axis from the image centre, in units of the image width (positive: axis right of centre).

    Aligned face crops put the eyes at fixed places, so a turned head shows as a nose, mouth and chin
    shifted to one side: the vertical line about which the lower face is most nearly mirror-symmetric
    moves with the turn. The search compares, for every candidate axis in half-pixel steps within
    +-max_offset of the centre, each column with its mirror column (half_width of the image to either
    side) over the rows below the eyes (`band`, fractions of the height; the eyes, fixed by the
    alignment, would hold the axis at the centre), on a high-passed grey image (so smooth side
    lighting does not pull the axis), with the mismatch normalised by the energy compared (so a flat
    patch does not look symmetric for lacking detail), and refines the best axis with a parabola.
    A mirrored photo gives exactly the negated value.
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
ROTATION_METHODS = ("yaw_fit", "mirror_path", "global_axis", "interfacegan", "interfacegan_conditional",
                    "interfacegan_calibrated")
INTERFACEGAN_METHODS = ("interfacegan", "interfacegan_conditional", "interfacegan_calibrated")
MIN_COSINE = 0.25   # interfacegan_conditional: the frontal shift divides by cos(direction, yaw normal), at least this


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


# ---------------------------------------------------------------------------------------- InterFaceGAN
def ridge_fit(x: torch.Tensor, y: torch.Tensor, penalties: int = 25) -> dict:
    """Ridge regression with an intercept of each column of `y` (`[N]` or `[N, K]`) on `x` `[N, Z]`, the
    penalty of each column chosen among `penalties` values (log-spaced, 1e-6 to 10 times the largest
    squared singular value of the centred x) by the exact leave-one-out error of the centred problem
    (residual / (1 - leverage), from one SVD). Returns {weights `[Z]` or `[K, Z]`, intercept, penalty,
    loo_r2 (1 - leave-one-out squared error / variance of y)}."""
    x, y = x.double(), y.double()
    single = y.dim() == 1
    y2 = y[:, None] if single else y
    x_mean, y_mean = x.mean(0), y2.mean(0)
    xc, yc = x - x_mean, y2 - y_mean
    u, s, vh = torch.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc                                                          # [R, K]
    grid = (s.max() ** 2).clamp_min(1e-12) * torch.logspace(-6, 1, penalties, dtype=torch.float64)
    best_err = torch.full((y2.shape[1],), float("inf"), dtype=torch.float64)
    best_pen = torch.zeros(y2.shape[1], dtype=torch.float64)
    for pen in grid:
        shrink = s ** 2 / (s ** 2 + pen)                                    # [R]
        fitted = u @ (shrink[:, None] * uty)                                # [N, K]
        leverage = (u ** 2) @ shrink + 1.0 / len(x)                         # the intercept's share too
        err = ((yc - fitted) / (1 - leverage).clamp_min(1e-9)[:, None]).pow(2).mean(0)
        better = err < best_err
        best_err, best_pen = torch.where(better, err, best_err), torch.where(better, pen, best_pen)
    w = vh.T @ ((s[:, None] / (s[:, None] ** 2 + best_pen[None])) * uty)    # [Z, K]
    var = yc.pow(2).mean(0).clamp_min(1e-300)
    out = {"weights": w[:, 0] if single else w.T, "intercept": (y_mean - x_mean @ w)[0] if single else y_mean - x_mean @ w,
           "penalty": best_pen[0] if single else best_pen, "loo_r2": 1 - best_err / var}
    if single:
        out["loo_r2"] = out["loo_r2"][0]
    return {k: v.float() if torch.is_tensor(v) and v.dim() else float(v) for k, v in out.items()}


def fit_yaw_normal(codes: torch.Tensor, yaw: torch.Tensor) -> dict | None:
    """The yaw direction as InterFaceGAN (Shen et al. 2020) finds an attribute's: the normal of a linear
    model of the attribute in code space, here ridge regression of the faces' measured yaw (a
    continuous value: regression rather than InterFaceGAN's SVM on the sign) on their codes `[N, Z]`.
    Returns {normal (unit `[Z]`, pointing to larger yaw), centre (a code where the fitted yaw is 0),
    yaw_per_unit (fitted yaw change per unit of distance along the normal), penalty, loo_r2, faces},
    or None when the codes do not predict the yaw at all (no variance, or weights 0)."""
    if len(codes) < 3 or float(yaw.double().std()) == 0:
        return None
    fit = ridge_fit(codes, yaw)
    w = fit["weights"].double()
    norm = float(w.norm())
    if not norm > 1e-12:
        return None
    normal = w / norm
    # the fitted yaw is intercept + code . w: at centre = -intercept w / |w|^2 it is 0
    centre = -fit["intercept"] * w / norm ** 2
    return {"normal": normal.float(), "centre": centre.float(), "yaw_per_unit": norm, "penalty": fit["penalty"],
            "loo_r2": fit["loo_r2"], "faces": len(codes)}


def attribute_normals(codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Unit normals `[K, Z]` of linear models of K binary attributes (bool `[N, K]`) in code space: ridge
    regression of the +-1 labels (least squares on +-1 labels gives Fisher's discriminant direction;
    InterFaceGAN uses a linear SVM), penalty by leave-one-out error as in `ridge_fit`."""
    w = ridge_fit(codes, labels.double() * 2 - 1)["weights"].double()
    w = w[None] if w.dim() == 1 else w
    return (w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)).float()


def conditional_direction(normal: torch.Tensor, conditions: torch.Tensor) -> dict:
    """InterFaceGAN's conditional manipulation: `normal` `[Z]` made orthogonal to every condition normal
    (`[K, Z]`, e.g. identity attributes') by projecting it onto the orthogonal complement of their span,
    then normalised. Returns {direction (unit `[Z]`), cosine_with_plain (its cosine with `normal`,
    i.e. the share of the normal's length kept)}."""
    n = normal.double()
    q, _ = torch.linalg.qr(conditions.double().T)                       # [Z, K] orthonormal basis of their span
    projected = n - q @ (q.T @ n)
    length = float(projected.norm())
    direction = projected / max(length, 1e-12)
    return {"direction": direction.float(), "cosine_with_plain": float(direction @ n / n.norm())}


def frontal_shift(mu: torch.Tensor, fit: dict) -> torch.Tensor:
    """`[F]`: how far along fit['direction'] each code lies from its frontal code (where the fitted yaw is
    0, InterFaceGAN's projection onto the boundary); for the conditional directions the move is divided
    by their cosine with the yaw normal."""
    d, m = fit["direction"], fit["yaw_normal"]
    return -((mu - fit["centre"]) @ m) / max(float(d @ m), MIN_COSINE)


def bend(fit: dict, steps: torch.Tensor) -> torch.Tensor:
    """The bend of an interfacegan path at `steps` (`[..., Z]`; zero where the fit has none): s odd + s^2 even
    (`interfacegan_calibrated`: vectors in the span of the identity attributes' normals that keep the
    classifier's identity predictions of the views, see analysis.fit_identity_bend)."""
    odd, even = fit.get("bend_odd"), fit.get("bend_even")
    if odd is None or even is None:
        return torch.zeros(*steps.shape, fit["direction"].shape[0])
    return steps[..., None] * odd + steps[..., None] ** 2 * even


def interfacegan_codes(mu: torch.Tensor, fit: dict, steps: torch.Tensor) -> torch.Tensor:
    """`[F, V, Z]`: each code moved along fit['direction'] to its frontal code (`frontal_shift`), then by
    each of `steps` (code units along the direction), plus the path's bend if it has one. fit: {direction,
    yaw_normal, centre[, bend_odd, bend_even]}."""
    d = fit["direction"]
    shift = frontal_shift(mu, fit)
    return mu[:, None] + (shift[:, None] + steps[None])[..., None] * d[None, None] + bend(fit, steps)[None]


def rotation_codes(method: str, mu: torch.Tensor, mu_flip: torch.Tensor, stats: dict, views: int = 9) -> torch.Tensor:
    """Codes of `views` views of each face, from one side to the other: `[F, V, Z]`.

    yaw_fit      from the face's code with its component along the yaw direction set to the midpoint between
                 the face and its mirror image (a frontal view; everything else of the face kept), along the
                 yaw direction by +-stats['yaw_reach'] steps
    mirror_path  z + t (z_mirror - z) for t in [-1, 2]: the face (t = 0), its mirror image (t = 1), and past both
    global_axis  set the coordinate on the first principal mirror axis to values over +-stats['axis_reach']
    interfacegan, interfacegan_conditional, interfacegan_calibrated
                 from the face's frontal code (moved along the direction to where the fitted yaw is 0) by
                 +-stats[method]['reach'] along the direction (`interfacegan_codes`)
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
    if method in INTERFACEGAN_METHODS:
        fit = stats[method]
        return interfacegan_codes(mu, fit, torch.linspace(-fit["reach"], fit["reach"], views))
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
    if method in INTERFACEGAN_METHODS:   # the fitted yaw negated: as far past the frontal code as the face is before it
        fit = stats[method]
        shift = frontal_shift(mu, fit)
        return mu + 2 * shift[:, None] * fit["direction"][None] + bend(fit, shift)
    return None
