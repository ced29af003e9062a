"""Faces as one uint8 tensor: decoded once, cropped and resized relative to the image size, cached.

The course template squashed whole CelebA frames to 64x64 (`Resize((64, 64))`). Here every image
is cut to a centred square of 148/178 of its width (the usual CelebA face crop: 148x148 of a
178x218 frame, 74x74 of the half-size copy) and resized with antialiasing, so full-size and
half-size CelebA frame the face the same way.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from utils.errors import UserError
from utils.progress import progress

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
CROP_FRACTION = 148 / 178


def load_face(path: str | Path, size: int = 64) -> np.ndarray:
    """One image -> uint8 `[size, size, 3]`: RGB, centred square crop of 148/178 of the width, resized."""
    with Image.open(path) as img:
        img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale when the file is much larger
        img = img.convert("RGB")
        w, h = img.size
        side = min(w * CROP_FRACTION, h)
        left, top = (w - side) / 2, (h - side) / 2
        img = img.resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side), reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)


def list_images(folder: Path) -> list[Path]:
    """Image files below `folder` (any depth, sorted; other files are ignored)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_face_folder(folder: str | Path, size: int = 64, cache_dir: str | Path | None = None,
                     workers: int = 2, verbose: bool = True) -> torch.Tensor:
    """All faces below `folder` as uint8 `[N, 3, size, size]` (see `load_faces_and_names`)."""
    return load_faces_and_names(folder, size, cache_dir, workers, verbose)[0]


def _say_skipped(skipped: list[str], total: int, folder: Path, verbose: bool) -> None:
    if skipped and verbose:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        print(f"note: {len(skipped)} of {total} image files below {folder} could not be read and are skipped ({shown})")


def load_faces_and_names(folder: str | Path, size: int = 64, cache_dir: str | Path | None = None,
                         workers: int = 2, verbose: bool = True) -> tuple[torch.Tensor, list[str]]:
    """All faces below `folder` as uint8 `[N, 3, size, size]`, and the file name of each (unreadable
    files are skipped, with a note that counts them, so names, not positions, tie a face to its
    annotations). The decoded array is
    cached in `cache_dir`, keyed by the folder, its file list, the size and the crop, so later runs
    load it in a second."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"image folder {folder} not found. Put the faces at <dset_dir>/<dataset>/<subfolder>/*.jpg "
                        "(e.g. data/CelebA/img_align_celeba/), or pass --dset_dir and --dataset")
    files = list_images(folder)
    if not files:
        raise UserError(f"no images (.jpg, .png, ...) found below {folder}")
    recipe = f"crop {CROP_FRACTION:.6f} bicubic reducing_gap 3"  # change it when load_face changes
    key = hashlib.sha1(f"{folder.resolve()}|{size}|{recipe}|{len(files)}|{files[0].name}|{files[-1].name}".encode()).hexdigest()[:12]
    cache = Path(cache_dir) / f"faces_{folder.name}_{size}px_{len(files)}_{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            skipped = stored["skipped"].tolist() if "skipped" in stored.files else []
            _say_skipped(skipped, len(files), folder, verbose)
            return torch.from_numpy(stored["faces"]).permute(0, 3, 1, 2).contiguous(), stored["names"].tolist()

    def read(path):
        try:
            return load_face(path, size)
        except (UnidentifiedImageError, OSError, ValueError):
            return None  # not an image after all, or a damaged one: skipped

    with ThreadPoolExecutor(max(1, workers)) as pool:  # PIL releases the GIL while decoding
        faces = list(progress(pool.map(read, files, chunksize=64), total=len(files), desc=f"decoding {folder.name}",
                              unit="img", disable=len(files) < 500 or not verbose))
    names = [p.name for p, f in zip(files, faces) if f is not None]
    skipped = [p.name for p, f in zip(files, faces) if f is None]
    faces = [f for f in faces if f is not None]
    if not faces:
        raise UserError(f"none of the {len(files)} image files below {folder} could be read")
    _say_skipped(skipped, len(files), folder, verbose)
    array = np.stack(faces)  # [N, size, size, 3]
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp.npz")  # one per process: ranks may race
            np.savez(tmp, faces=array, names=np.array(names), skipped=np.array(skipped, dtype=str))
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only place: work without the cache
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous(), names


def split_faces(faces: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed split every evaluation uses: the last `val_fraction` of the (sorted) files are held out."""
    n_val = max(1, int(round(len(faces) * val_fraction))) if len(faces) > 1 else 0
    return faces[: len(faces) - n_val], faces[len(faces) - n_val:]


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 `[B, 3, H, W]` -> float in [0, 1]."""
    return batch.float().div_(255.0)
