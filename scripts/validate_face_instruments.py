"""Check the face instruments of exercise2/landmarks.py (dlib's landmark yaw and face descriptor) on
held-out CelebA crops, before they are used to measure the VAEs.

    python scripts/validate_face_instruments.py --dset_dir data --faces 200

Takes the first --faces of the held-out faces (the last 10 % of the sorted files, as every
evaluation of exercise 2) and writes to --out:

  summary.json           the figures below (strict JSON, rounded)
  landmark_yaw_check.png held-out photos ordered by landmark yaw (rows at the 3, 25, 50, 75 and 97 %
                         quantiles), the 68 points drawn, so the ordering can be checked by eye
                         (exercise2.landmark_drawing.yaw_check_figure, the figure `rotate` draws too)

Yaw (`landmark_yaw`, and the issue's first definition `nose_eye_yaw` for comparison):
  mirror antisymmetry   yaw(photo) against yaw(mirrored photo): correlation (ideal -1) and mean
                        |yaw(p) + yaw(mirror p)|; for the raw points and for the shipped (mirror-
                        averaged) points, where it is -1 and 0 by construction
  symmetry measure      Spearman with exercise2.pose.yaw_measure (was in measures.py) on the same photos
  blur                  Spearman between yaw of the photos and of Gaussian-blurred photos
                        (sigma 1 and 2 px at 64x64): VAE decodes are blurry
  reconstruction        Spearman between yaw of each photo and of its reconstruction (posterior
                        mean decoded) by each shipped VAE
  percentiles           p10, p50, p90 of the photos' yaw (the rotation's target range)
Identity (dlib's 128-d descriptor, Euclidean distance):
  AUC that a photo is nearer to its own mirror / reconstruction than to another face's mirror /
  reconstruction (all pairs; ties count one half, from mid-ranks), and than to another photo.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from utils.arguments import positive_int  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.paths import repo_path  # noqa: E402


# ---------------------------------------------------------------------------------------- statistics
def midranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N of a 1-d tensor, tied values sharing the mean of their ranks."""
    x = x.double().flatten()
    values, order = x.sort(stable=True)
    _, inverse, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2                     # mean of the ranks each run occupies
    r = torch.empty_like(x)
    r[order] = mean_rank[inverse]
    return r


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-300))


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    return pearson(midranks(a), midranks(b))


def auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(a positive scores above a negative) + 1/2 P(tie), from mid-ranks (Mann-Whitney U)."""
    scores = torch.cat([positive.double().flatten(), negative.double().flatten()])
    n_pos, n_neg = positive.numel(), negative.numel()
    rank_sum = midranks(scores)[:n_pos].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def rounded(obj, digits: int = 4):
    """Floats rounded in nested dicts and lists; NaN and infinities become None (strict JSON)."""
    if isinstance(obj, (float, np.floating)):
        return round(float(obj), digits) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of float `[N, C, H, W]` (sigma in pixels, edges replicated)."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = images.shape[1]
    row, col = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), row, groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), col, groups=c)


# ---------------------------------------------------------------------------------------- parts
def held_out_faces(args) -> tuple[torch.Tensor, list[str]]:
    from exercise2.dataset import load_faces_and_names, split_faces, to_float
    folder = repo_path(args.dset_dir) / args.dataset
    cache = repo_path(args.cache_dir) if args.cache_dir else None
    faces, names = load_faces_and_names(folder, 64, cache)
    if len(faces) < 2:
        raise UserError(f"{folder} holds {len(faces)} image: at least 2 are needed (one is held out)")
    _, held_out = split_faces(faces)
    held_names = names[len(faces) - len(held_out):]
    n = min(args.faces, len(held_out))
    if n < 10:
        raise UserError(f"only {n} held-out faces: pass a larger data set (the statistics need at least 10)")
    return to_float(held_out[:n]), held_names[:n]


def reconstructions(photos: torch.Tensor, betas, checkpoints: Path) -> dict:
    """{beta: sigmoid(decode(posterior mean))} for each shipped VAE."""
    from exercise2.model import load_vae
    out = {}
    with torch.no_grad():
        for beta in betas:
            path = checkpoints / f"vae_beta_{beta}" / f"vae_beta_{beta}.pt"
            model = load_vae(path)
            recon = []
            for start in range(0, len(photos), 100):
                mu, _ = model.encode(photos[start:start + 100])
                recon.append(torch.sigmoid(model.decode(mu)))
            out[beta] = torch.cat(recon)
    return out


def yaw_checks(name: str, fn, points: dict, raw: dict, photos_sym_yaw_measure: torch.Tensor, betas) -> dict:
    """The yaw figures of one definition `fn` (points -> yaw)."""
    y = {k: fn(v) for k, v in points.items()}
    y_raw, y_raw_mirror = fn(raw["photo"]), fn(raw["mirror"])
    mean_abs = float(y["photo"].abs().mean())
    turned = y["photo"].abs() >= y["photo"].abs().quantile(0.8)
    return {
        "definition": name,
        "mirror_antisymmetry": {
            "raw_points": {"r": pearson(y_raw, y_raw_mirror),
                           "mean_abs_sum": float((y_raw + y_raw_mirror).abs().mean()),
                           "mean_abs_sum_over_mean_abs_yaw": float((y_raw + y_raw_mirror).abs().mean()) / mean_abs},
            "mirror_averaged_points": {"r": pearson(y["photo"], y["mirror"]),
                                       "mean_abs_sum": float((y["photo"] + y["mirror"]).abs().mean())},
        },
        "spearman_with_symmetry_yaw_measure": spearman(y["photo"], photos_sym_yaw_measure),
        # the most turned fifth of the photos (by |yaw|): does the symmetry measure give the same sign?
        "most_turned_fifth_sign_agreement_with_symmetry_yaw_measure": float(
            (torch.sign(y["photo"]) == torch.sign(photos_sym_yaw_measure))[turned].double().mean()),
        "pearson_with_symmetry_yaw_measure": pearson(y["photo"], photos_sym_yaw_measure),
        "spearman_photo_vs_blurred": {f"sigma_{s}px": spearman(y["photo"], y[f"blur_{s}"]) for s in (1, 2)},
        "spearman_photo_vs_reconstruction": {f"beta_{b}": spearman(y["photo"], y[f"recon_{b}"]) for b in betas},
        "mean_abs_photo_minus_reconstruction": {f"beta_{b}": float((y["photo"] - y[f"recon_{b}"]).abs().mean())
                                                for b in betas},
        "reconstruction_yaw_sd_over_photo_yaw_sd": {f"beta_{b}": float(y[f"recon_{b}"].std() / y["photo"].std())
                                                    for b in betas},
        "photo_yaw_sd": float(y["photo"].std()),
        "photo_yaw_percentiles": {f"p{q}": float(np.percentile(y["photo"].numpy(), q)) for q in (10, 50, 90)},
    }, y


def identity_checks(desc: dict, betas) -> dict:
    """Descriptor-distance AUCs: photo i against its own mirror / reconstruction (positives) and the
    other faces' mirrors / reconstructions, or the other photos (negatives; all pairs i != j)."""
    from exercise2.landmarks import descriptor_distance
    photo = desc["photo"]
    n = len(photo)
    off = ~torch.eye(n, dtype=torch.bool)
    others_photo = torch.cdist(photo.double(), photo.double())[off]
    out = {"pairs": {"positives": n, "negatives": int(off.sum())}}
    for kind in ["mirror", *[f"recon_{b}" for b in betas]]:
        other = desc[kind]
        own = descriptor_distance(photo, other).double()
        cross = torch.cdist(photo.double(), other.double())[off]
        out[f"photo_vs_{kind}"] = {
            # a smaller distance should mean the same face: score = -distance
            "auc_vs_other_faces_same_kind": auc(-own, -cross),
            "auc_vs_other_photos": auc(-own, -others_photo),
            "median_distance_own": float(own.median()),
            "median_distance_other_faces": float(cross.median()),
            "fraction_own_below_0.6": float((own < 0.6).double().mean()),
        }
    out["median_distance_between_photos"] = float(others_photo.median())
    return out


# ---------------------------------------------------------------------------------------- main
@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dset_dir", default="data", help="data root (default: data)")
    p.add_argument("--dataset", default="CelebA", help="folder under dset_dir with the face images (default: CelebA)")
    p.add_argument("--cache_dir", default="data/cache",
                   help="where the decoded faces are cached (default: data/cache; '' for none)")
    p.add_argument("--faces", type=positive_int, default=200, help="held-out faces used (the first ones; default: 200)")
    p.add_argument("--betas", type=int, nargs="+", default=[0, 4, 20],
                   help="shipped VAEs to reconstruct with (default: 0 4 20)")
    p.add_argument("--checkpoints", default="checkpoints",
                   help="folder with vae_beta_<b>/vae_beta_<b>.pt (default: checkpoints)")
    p.add_argument("--out", default="report/results/instruments",
                   help="output folder (default: report/results/instruments)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default: 1)")
    args = p.parse_args()
    if args.faces < 10:
        raise UserError("--faces must be at least 10")
    torch.set_num_threads(args.threads)

    from exercise2 import landmarks as lm   # raises a UserError with the pip command when dlib is missing
    from exercise2.landmark_drawing import yaw_check_figure
    from exercise2.pose import yaw_measure
    lm.require()

    t0 = time.monotonic()
    timing = {}
    photos, names = held_out_faces(args)
    recon = reconstructions(photos, args.betas, repo_path(args.checkpoints))
    timing["data_and_reconstructions_s"] = time.monotonic() - t0

    t = time.monotonic()
    views = {"photo": photos, "mirror": photos.flip(-1), "blur_1": blur(photos, 1.0), "blur_2": blur(photos, 2.0),
             **{f"recon_{b}": r for b, r in recon.items()}}
    points = {k: lm.landmarks(v) for k, v in views.items()}                  # the instrument as shipped
    raw = {k: lm.landmarks(views[k], symmetric=False) for k in ("photo", "mirror")}
    timing["landmarks_s"] = time.monotonic() - t
    timing["landmark_images"] = sum(len(v) for v in views.values()) + 2 * len(photos)

    sym_measure = yaw_measure(photos)
    chosen, y = yaw_checks("landmark_yaw: (nose - cheek-contour midpoint) / cheek-contour width, along the eye line",
                           lm.landmark_yaw, points, raw, sym_measure, args.betas)
    first, _ = yaw_checks("nose_eye_yaw: (nose tip - eye midpoint) / inter-ocular distance (the issue's first check)",
                          lm.nose_eye_yaw, points, raw, sym_measure, args.betas)
    chosen["spearman_with_nose_eye_yaw"] = spearman(y["photo"], lm.nose_eye_yaw(points["photo"]))

    t = time.monotonic()
    desc = {k: lm.descriptors(views[k]) for k in ["photo", "mirror", *[f"recon_{b}" for b in args.betas]]}
    timing["descriptors_s"] = time.monotonic() - t
    timing["descriptor_images"] = sum(len(v) for v in desc.values())
    identity = identity_checks(desc, args.betas)

    out = repo_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    yaw_check_figure(photos, points["photo"], y["photo"], out / "landmark_yaw_check.png", "landmark_yaw")
    timing["total_s"] = time.monotonic() - t0

    import dlib
    summary = {
        "what": "validation of exercise2/landmarks.py (dlib 68-point landmarks and 128-d face descriptor) "
                "on held-out 64x64 CelebA crops; written by scripts/validate_face_instruments.py",
        "data": {"folder": f"{args.dset_dir}/{args.dataset}", "held_out_faces_used": len(photos),
                 "first": names[0], "last": names[-1]},
        "instrument": {"upscale": lm.UPSCALE, "face_box_cx_cy_side_fraction": list(lm.FACE_BOX),
                       "mirror_averaged_points": True, "dlib": dlib.__version__,
                       "yaw_definition_chosen_on": "300 random training crops, not these held-out faces "
                                                   "(exercise2/landmarks.py, landmark_yaw's docstring)",
                       "yaw_sign": "positive: face turned towards image right (nose right of the face's middle)"},
        "yaw": chosen,
        "yaw_nose_eye_for_comparison": first,
        "symmetry_yaw_measure_percentiles": {f"p{q}": float(np.percentile(sym_measure.numpy(), q))
                                             for q in (10, 50, 90)},
        "identity": identity,
        "reconstruction_betas": args.betas,
        "timing": timing,
        "threads": args.threads,
    }
    text = json.dumps(rounded(summary, 4), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    (out / "summary.json").write_text(text, encoding="utf-8")
    ych, ide = chosen, identity
    print(f"wrote {out / 'summary.json'} and {out / 'landmark_yaw_check.png'} ({timing['total_s']:.0f} s)")
    print(f"mirror antisymmetry (raw points) r = {ych['mirror_antisymmetry']['raw_points']['r']:.3f}; "
          f"Spearman with the symmetry measure {ych['spearman_with_symmetry_yaw_measure']:.3f}; blur 1/2 px "
          + " / ".join(f"{v:.3f}" for v in ych["spearman_photo_vs_blurred"].values()))
    print("photo vs reconstruction: "
          + ", ".join(f"{k} {v:.3f}" for k, v in ych["spearman_photo_vs_reconstruction"].items()))
    print("descriptor AUC: " + ", ".join(f"{k} {v['auc_vs_other_faces_same_kind']:.3f}" for k, v in ide.items()
                                         if k.startswith("photo_vs_")))


if __name__ == "__main__":
    main()
