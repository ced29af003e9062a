"""Head pose and identity read by instruments trained elsewhere: dlib's 68-point face landmarks and
its 128-d face descriptor, for the project's 64x64 aligned face crops.

The models come with the `face_recognition_models` package (the .dat files under its `models/`
folder); the package is located with `importlib` and never imported (its `__init__` needs
`pkg_resources`, which current setuptools no longer ships). Nothing is downloaded at run time. dlib
is imported on first use only, so the rest of the project works without it:

    pip install dlib-bin face-recognition-models

API (images are float `[N, 3, H, W]` in [0, 1] or uint8 `[N, 3, H, W]`; points are in input-pixel
coordinates, x to the right and y down, pixel i's centre at i, so a 64x64 image spans -0.5..63.5):

    landmarks(images)        -> float [N, 68, 2]  dlib's 68 points (iBUG 300-W numbering)
    landmark_yaw(points)     -> float [N]         head yaw from the points; positive: face turned
                                                  towards image right
    yaw(images)              -> float [N]         landmark_yaw(landmarks(images)), for short
    descriptors(images)      -> float [N, 128]    dlib's face descriptor (ResNet, LFW 99.38 %)
    descriptor_distance(a, b)-> float [N]         Euclidean distance per row (dlib's "same person"
                                                  threshold is 0.6 on full-size photos)

How the 64x64 crops are read: each image is upscaled (x4, bicubic) before dlib sees it. dlib's face
detector often misses faces this small and, when it finds them, returns boxes quantised to a few
sizes; the crops are aligned (eyes at fixed places), so a fixed face box is used instead: the box
dlib's detector returns on average on CelebA training crops, centred horizontally so that the box
of a mirrored image is the mirrored box (`FACE_BOX`). By default the points are averaged over the
image and its mirror (the mirror's points mirrored back, left and right points swapped): the
estimate of a mirrored face is then exactly the mirrored estimate, and the predictor's own
left-right bias cancels (`scripts/validate_face_instruments.py` measures the raw, unaveraged
antisymmetry as well).
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from utils.errors import UserError
from utils.progress import progress

INSTALL_HINT = "pip install dlib-bin face-recognition-models"
MODEL_FILES = {"shape": "shape_predictor_68_face_landmarks.dat",
               "descriptor": "dlib_face_recognition_resnet_model_v1.dat"}
UPSCALE = 4
# The face box as (centre x, centre y, side) in fractions of the image width and height: the mean of
# dlib's detector boxes on 600 training crops (64x64, upscaled x4; 567 found: centre 31.5, 41.3 px,
# side 40.5 px), with the centre moved to the image's middle column.
FACE_BOX = (0.5, 0.645, 0.633)
PROGRESS_OVER = 1000  # a progress bar for more images than this (not for the analysis' many small batches)
CHUNK = 64            # images upscaled at once

# iBUG 68-point scheme: the index each point takes in the mirrored face (left and right swapped).
_MIRROR = np.array(
    list(range(16, -1, -1))                              # jaw 0..16
    + list(range(26, 16, -1))                            # eyebrows 17..21 <-> 26..22
    + [27, 28, 29, 30]                                   # nose bridge
    + [35, 34, 33, 32, 31]                               # nostrils 31..35
    + [45, 44, 43, 42, 47, 46]                           # eye 36..41 <-> 45..40 (corners and lids)
    + [39, 38, 37, 36, 41, 40]                           # eye 42..47
    + [54, 53, 52, 51, 50, 49, 48]                       # outer lip top 48..54
    + [59, 58, 57, 56, 55]                               # outer lip bottom 55..59
    + [64, 63, 62, 61, 60]                               # inner lip top 60..64
    + [67, 66, 65])                                      # inner lip bottom 65..67
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)       # image left / image right (the person's right / left)
NOSE_TIP, NOSE_BASE = 30, slice(31, 36)
CHEEK_PAIRS = ((0, 16), (1, 15), (2, 14))            # jaw-line points at eye-to-nose height


# ---------------------------------------------------------------------------------------- models
def model_dir() -> Path:
    """The `models/` folder of the installed `face_recognition_models` package (located, not imported),
    or a UserError that says what to install."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UserError(f"the face landmark and descriptor models are not installed: {INSTALL_HINT}")
    folder = Path(locations[0]) / "models"
    missing = [name for name in MODEL_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{', '.join(missing)} not found in {folder}: reinstall with {INSTALL_HINT}")
    return folder


def _dlib():
    try:
        import dlib  # noqa: PLC0415 (lazy: the rest of the project works without it)
    except ImportError as err:
        raise UserError(f"dlib is not installed ({err}): {INSTALL_HINT}") from None
    return dlib


@functools.lru_cache(maxsize=None)
def _models():
    """(dlib, shape predictor, face recogniser), loaded once."""
    folder = model_dir()
    dlib = _dlib()
    return (dlib, dlib.shape_predictor(str(folder / MODEL_FILES["shape"])),
            dlib.face_recognition_model_v1(str(folder / MODEL_FILES["descriptor"])))


def require() -> None:
    """Load the models now (a UserError with the pip command when they or dlib are missing)."""
    _models()


# ---------------------------------------------------------------------------------------- images
def _as_float(images: torch.Tensor) -> torch.Tensor:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [N, 3, H, W], got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.detach().float().cpu()


def _upscaled(images: torch.Tensor, scale: int) -> np.ndarray:
    """float or uint8 `[B, 3, H, W]` -> contiguous uint8 `[B, scale H, scale W, 3]` (bicubic), as dlib
    takes it (dlib misreads arrays that are not contiguous)."""
    x = _as_float(images.cpu())
    if scale != 1:
        x = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    return np.ascontiguousarray(x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())


def _box(dlib, height: int, width: int, box=FACE_BOX, dx: float = 0.0, dy: float = 0.0, zoom: float = 1.0):
    """dlib rectangle (pixel indices, right and bottom inclusive) of the fixed face box in an image of
    `height` x `width` pixels, shifted by (dx, dy) and scaled by zoom (fractions of the box side);
    mirror-symmetric when box[0] is 0.5 and dx is 0."""
    cx, cy, side = box
    s = side * zoom * width
    left = round((cx + dx * side) * width - s / 2)
    top = round((cy + dy * side) * height - s / 2)
    return dlib.rectangle(left, top, left + round(s) - 1, top + round(s) - 1)


def mirror_points(points: torch.Tensor, width: int) -> torch.Tensor:
    """The points of the mirrored image (x -> width - 1 - x), renumbered so that index i is again
    the iBUG point i: `[N, 68, 2]` -> `[N, 68, 2]`."""
    out = points[:, torch.as_tensor(_MIRROR)].clone()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


# ---------------------------------------------------------------------------------------- landmarks
def _predict(dlib, predictor, image: np.ndarray, rects) -> np.ndarray:
    """Mean over `rects` of the 68 points dlib predicts in one upscaled image: `[68, 2]` (dlib pixels)."""
    acc = np.zeros((68, 2))
    for rect in rects:
        shape = predictor(image, rect)
        acc += np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return acc / len(rects)


def _chunks(images: torch.Tensor, scale: int, symmetric: bool, boxes, desc: str, chunk: int = CHUNK):
    """Yields (upscaled uint8 images `[B, sH, sW, 3]`, their points `[B, 68, 2]` in upscaled pixels)
    chunk by chunk, with a progress bar for many images."""
    dlib, predictor, _ = _models()
    n = len(images)
    bar = progress(total=n, desc=desc, unit="img", disable=n <= PROGRESS_OVER)
    try:
        for start in range(0, n, chunk):
            batch = _upscaled(images[start:start + chunk], scale)
            h, w = batch.shape[1:3]
            rects = [_box(dlib, h, w, FACE_BOX, *b) for b in boxes]
            pts = np.stack([_predict(dlib, predictor, image, rects) for image in batch])
            if symmetric:   # the mirrored image's points, mirrored back and renumbered
                back = np.stack([_predict(dlib, predictor, np.ascontiguousarray(image[:, ::-1]), rects)
                                 for image in batch])[:, _MIRROR]
                back[..., 0] = (w - 1) - back[..., 0]
                pts = (pts + back) / 2
            yield batch, pts
            bar.update(len(batch))
    finally:
        bar.close()


# The face boxes the points are averaged over, as (dx, dy, zoom) in fractions of the box side. One:
# on 300 training crops five boxes shifted by 3 % (or three zoomed by 8 %) changed the yaw's
# agreement with blurred photos and reconstructions by 0.003 at most, for five times the time.
DEFAULT_BOXES = ((0.0, 0.0, 1.0),)


def landmarks(images: torch.Tensor, scale: int = UPSCALE, symmetric: bool = True, boxes=DEFAULT_BOXES) -> torch.Tensor:
    """dlib's 68 landmarks of each face: `[N, 3, H, W]` -> float `[N, 68, 2]`, (x, y) in input pixels
    (pixel i's centre at i). `scale`: upscaling before dlib; `symmetric`: average with the mirrored
    image's points (mirrored back); `boxes`: (dx, dy, zoom) of each face box the points are averaged
    over (fractions of the box side). Aligned, centred faces only: the face box is fixed."""
    parts = [pts for _, pts in _chunks(images, scale, symmetric, boxes, "landmarks")]
    out = np.concatenate(parts) if parts else np.zeros((0, 68, 2))
    out = (out + 0.5) / scale - 0.5                     # upscaled pixel centres -> input pixel centres
    return torch.from_numpy(out).float()


# ---------------------------------------------------------------------------------------- yaw
def _eye_frame(p: torch.Tensor):
    """Unit vector along the eye line (image left eye -> image right eye), eye midpoint, inter-ocular distance."""
    left, right = p[:, LEFT_EYE].mean(1), p[:, RIGHT_EYE].mean(1)           # [N, 2] eye centres
    axis = right - left
    iod = axis.norm(dim=1).clamp_min(1e-9)
    return axis / iod[:, None], (left + right) / 2, iod


def landmark_yaw(points: torch.Tensor) -> torch.Tensor:
    """Head yaw from 68 landmarks `[N, 68, 2]` -> `[N]`: where the nose sits between the two sides of the
    face. (nose - midpoint of the cheek contour) / (width of the cheek contour), both measured along
    the eye line (so roll does not count), with the nose the mean of its tip and the five points of
    its base (30..35) and the cheek contour the jaw-line pairs at eye-to-nose height (0-16, 1-15,
    2-14). 0 for a frontal face; positive when the nose lies right of the face's middle in the
    image, i.e. the face is turned towards image right (the person looks to their own left);
    dimensionless, within about +-0.5. For a head shaped like an upright cylinder of radius r with
    the nose d in front of it, seen under weak perspective, the contour stays at +-r while the nose
    moves by (r + d) sin(yaw): the value is about (1 + d/r)/2 sin(yaw).

    Why this one: six candidate definitions (nose tip or nose points against the eye midpoint, in
    inter-ocular distances, as in the issue's first check; nose or eye midpoint against the cheek
    contour; nose against eyes and mouth) ranked 300 training crops alike (Spearman 0.95 to 0.99
    between any two: dlib's points move as one shape), and this one was the steadiest of them:
    under Gaussian blur (Spearman with the sharp photo's value 0.996 at sigma 1 px, 0.978 at 2 px,
    against 0.990 and 0.957 for the nose against the eyes) and through the shipped VAEs' blurry
    reconstructions (0.984 / 0.928 / 0.791 for beta 0 / 4 / 20, against 0.951 / 0.897 / 0.742). The
    cheek contour lies further back than the eyes, so the nose moves further against it for the same
    turn. A weak-perspective fit to a generic 3-D head would use the same points, with generic depth
    constants.
    A plain function of the points: with `landmarks(..., symmetric=True)` (the default) a mirrored
    face gets exactly the negated value.
    """
    p = points.double()
    ex, _, _ = _eye_frame(p)
    nose = p[:, [NOSE_TIP, *range(NOSE_BASE.start, NOSE_BASE.stop)]].mean(1)      # [N, 2]
    mid = torch.stack([(p[:, a] + p[:, b]) / 2 for a, b in CHEEK_PAIRS], 1).mean(1)
    width = torch.stack([((p[:, b] - p[:, a]) * ex).sum(1) for a, b in CHEEK_PAIRS], 1).mean(1)
    return (((nose - mid) * ex).sum(1) / width.clamp_min(1e-9)).float()


def nose_eye_yaw(points: torch.Tensor) -> torch.Tensor:
    """The issue's first definition, for comparison: the nose tip's (point 30) offset from the eye
    midpoint along the eye line, in inter-ocular distances: `[N, 68, 2]` -> `[N]` (same sign as
    `landmark_yaw`; about (nose depth in front of the eyes / inter-ocular distance) tan(yaw))."""
    p = points.double()
    ex, mid, iod = _eye_frame(p)
    return (((p[:, NOSE_TIP] - mid) * ex).sum(1) / iod).float()


def yaw(images: torch.Tensor, **kwargs) -> torch.Tensor:
    """`landmark_yaw(landmarks(images))`: `[N, 3, H, W]` -> `[N]` (positive: turned towards image right)."""
    return landmark_yaw(landmarks(images, **kwargs))


# ---------------------------------------------------------------------------------------- identity
def descriptors(images: torch.Tensor, scale: int = UPSCALE, symmetric: bool = True, boxes=DEFAULT_BOXES,
                padding: float = 0.25) -> torch.Tensor:
    """dlib's 128-d face descriptor of each face: `[N, 3, H, W]` -> float `[N, 128]`. Computed on the
    upscaled image, with the 68 points of `landmarks` (same options) as the face's shape: dlib cuts
    and aligns the 150x150 chip its network was trained on from them (`padding` as in dlib)."""
    dlib, _, recogniser = _models()
    out = []
    for batch, pts in _chunks(images, scale, symmetric, boxes, "descriptors", chunk=32):
        rect = _box(dlib, *batch.shape[1:3])              # not used by dlib here: the points place the chip
        shapes = []
        for face in pts:
            shape = dlib.full_object_detections()
            parts = [dlib.point(int(round(x)), int(round(y))) for x, y in face]
            shape.append(dlib.full_object_detection(rect, parts))
            shapes.append(shape)
        # one call per chunk (dlib batches the network: about 20 % faster than face by face)
        found = recogniser.compute_face_descriptor(list(batch), shapes, 0, padding)
        out.extend(np.asarray(f[0]) for f in found)
    return torch.from_numpy(np.stack(out) if out else np.zeros((0, 128))).float()


def descriptor_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between descriptors, row by row: `[N, 128]`, `[N, 128]` (or `[128]`) -> `[N]`.
    dlib's model puts photos of one person within 0.6 of each other (full-size photos)."""
    return (a.double() - b.double()).norm(dim=-1).float()


__all__ = ["landmarks", "landmark_yaw", "yaw", "descriptors", "descriptor_distance", "mirror_points",
           "nose_eye_yaw", "model_dir", "require", "FACE_BOX", "UPSCALE", "INSTALL_HINT"]
