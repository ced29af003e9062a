"""rotate: turn faces left and right (--rotation_method; default: along the yaw direction fitted on
mirror pairs), with the measured yaw of every view; with the data, compare the methods on held-out
faces: how far the views turn, how many confident identity attributes flip, how much of the mirror gap
closes, against a random direction of the same length."""
from __future__ import annotations

import torch

from exercise2 import measures as M
from exercise2 import pose as P
from exercise2.analysis import informative_units
from exercise2.context import write_summary
from exercise2.dataset import to_float
from exercise2.drawing import labelled_grid, save_views_gif, yaw_check_figure
from exercise2.pose import yaw_measure

ROTATION_VIEWS = 9
ROTATION_FACES = 300    # held-out faces on which the rotation methods are compared
ROTATION_METHOD_HELP = {"yaw_fit": "from the frontal code along the direction that turns the decoded face",
                        "mirror_path": "towards the code of the mirror image and past it",
                        "global_axis": "first principal axis of face-minus-mirror codes"}


def available_methods(stats: dict) -> list[str]:
    return [m for m in P.ROTATION_METHODS if m != "yaw_fit" or "yaw_fit" in stats]


def choose_method(ctx) -> str:
    method = ctx.args.rotation_method
    if method == "yaw_fit" and "yaw_fit" not in ctx.analysis():
        ctx.say("note: this checkpoint's stored statistics have no fitted yaw direction (run once with the face data "
                "to compute it); turning along the first principal mirror axis instead")
        return "global_axis"
    return method


def turned_views(ctx, method: str, mu: torch.Tensor, mu_flip: torch.Tensor, stats: dict) -> torch.Tensor:
    """Images `[F, V, 3, H, W]` of the faces (codes `mu`, mirror codes `mu_flip`) turned by the method."""
    return ctx.decode_views(P.rotation_codes(method, mu, mu_flip, stats, ROTATION_VIEWS))


@torch.no_grad()
def run(ctx) -> dict:
    args = ctx.args
    out = ctx.task_dir("rotate")
    stats = ctx.analysis()
    method = choose_method(ctx)
    faces, source = ctx.faces_to_show(args.num_faces)
    mu, mu_flip = ctx.encode_faces(faces), ctx.encode_faces(faces, flipped=True)
    views = turned_views(ctx, method, mu, mu_flip, stats)
    recon = ctx.decode(mu)
    clf, identity = ctx.classifier(), ctx.identity_attributes()
    k = [clf.names.index(n) for n in identity] if clf else []
    rows, labels, per_face = [], [], []
    for i in range(len(faces)):
        yaw_views = yaw_measure(views[i])
        info = {"yaw_input": float(yaw_measure(faces[i:i + 1])[0]), "yaw_views": yaw_views.tolist()}
        text = [f"face {i + 1}", f"yaw of photo {info['yaw_input']:+.3f}",
                f"views {yaw_views.min():+.3f} .. {yaw_views.max():+.3f}"]
        if k:
            ref = clf.predict(recon[i:i + 1])[:, k]
            info["identity_flips"] = flips = M.identity_flips(clf.predict(views[i])[None][:, :, k], ref, names=identity)
            text.append(f"identity flips {flips['flipped']}/{flips['confident_predictions']}")
        per_face.append(info)
        rows.append(torch.cat([faces[i:i + 1], recon[i:i + 1], views[i]]))
        labels.append("\n".join(text))
    columns = ["photo", "recon"] + [f"view {v + 1}" for v in range(views.shape[1])]
    title = f"{ctx.name}: turned by {method} ({ROTATION_METHOD_HELP[method]})"
    labelled_grid(rows, labels, title, columns, label_width=270).save(out / "rotation.png")
    save_views_gif(views, out / "rotation.gif", nrow=len(faces))
    files = ["rotation.png", "rotation.gif"]
    summary = {"source": source, "method": method, "faces": per_face, "files": files,
               "identity_attributes": identity, "statistics_source": stats.get("source"),
               "layout": "each row: photo, reconstruction, then views from one side to the other; yaw: offset of "
                         "the face's mirror-symmetry axis from the image centre, in image widths"}
    if method == "yaw_fit":
        summary.update(yaw_reach=stats["yaw_reach"], yaw_reach_note=stats.get("yaw_reach_note"))
        if stats.get("yaw_reach_note"):
            ctx.say(f"note: {stats['yaw_reach_note']}")
    if ctx.faces(required=False) is not None:
        summary["comparison"] = compare_methods(ctx, out)
        files += ["rotation_methods.png", "yaw_check.png"]
    write_summary(summary, out / "summary.json")
    report(summary, out, len(faces))
    return summary


@torch.no_grad()
def compare_methods(ctx, out) -> dict:
    """Every method (and a random direction of the yaw direction's length) on the same held-out faces,
    whose codes and mirror codes are encoded once."""
    val = ctx.faces()[1][:ROTATION_FACES]
    faces = to_float(val)
    yaw_photos = yaw_measure(faces)
    stats = ctx.analysis()
    lo, _, hi = stats["yaw_percentiles_held_out"]
    frontal = yaw_photos.abs() <= yaw_photos.abs().median()
    clf, identity = ctx.classifier(), ctx.identity_attributes()
    k = [clf.names.index(n) for n in identity] if clf else []
    mu, mu_flip = ctx.encode_faces(val), ctx.encode_faces(val, flipped=True)
    own, mirror_target = ctx.decode(mu), ctx.decode(mu_flip)
    ref = clf.predict(own)[:, k] if k else None
    methods, strips = {}, []
    for method in available_methods(stats) + (["random_control"] if "yaw_fit" in stats else []):
        if method == "random_control":  # yardstick: as far from the frontal code, in a random direction
            informative = informative_units(stats["kl_per_unit"], stats["mu_std"])
            g = torch.randn(len(informative), generator=torch.Generator().manual_seed(0)) * informative
            views = turned_views(ctx, "yaw_fit", mu, mu_flip, {**stats, "yaw_fit": P.yaw_direction(g, stats["mu_std"])})
        else:
            views = turned_views(ctx, method, mu, mu_flip, stats)
        yaw_views = yaw_measure(views.reshape(-1, *views.shape[2:])).view(len(faces), -1)
        m = {"yaw_span": M.yaw_span(yaw_views, lo, hi), "yaw_span_near_frontal": M.yaw_span(yaw_views[frontal], lo, hi)}
        if k:
            probs = clf.predict(views.reshape(-1, *views.shape[2:]))[:, k].view(len(faces), -1, len(k))
            m["identity"] = M.identity_flips(probs, ref, names=identity)
            m["identity_near_frontal"] = M.identity_flips(probs[frontal], ref[frontal])
            m["identity_attributes"] = identity
        else:
            m["identity"] = {"flip_share": float("nan")}
        turned = None if method == "random_control" else P.mirrored_codes(method, mu, mu_flip, stats)
        if turned is not None:
            err_turned = (ctx.decode(turned) - mirror_target).pow(2).mean().item()
            err_own = (own - mirror_target).pow(2).mean().item()
            m["mirror_gap_closed"] = 1 - err_turned / max(err_own, 1e-12)
        methods[method] = m
        strips.append((method, views[:4]))
    rows = [v for _, s in strips for v in s]
    labels = [f"{name}\nface {i + 1}" for name, s in strips for i in range(len(s))]
    labelled_grid(rows, labels, "the same held-out faces turned by each method", label_width=190).save(
        out / "rotation_methods.png")
    yaw_check_figure(faces, yaw_photos, out / "yaw_check.png")
    return {"faces": len(faces), "near_frontal_faces": int(frontal.sum()), "target_yaw_p10_p90": [lo, hi],
            "views": ROTATION_VIEWS, "methods": methods,
            "yaw_measure_antisymmetry_max_error": float((yaw_measure(faces.flip(-1)) + yaw_photos).abs().max())}


def report(summary: dict, out, n_faces: int) -> None:
    print(f"turned {n_faces} {summary['source']} by {summary['method']} -> {out / 'rotation.png'}")
    c = summary.get("comparison")
    if not c:
        return
    lo, hi = c["target_yaw_p10_p90"]
    print(f"methods on {c['faces']} held-out faces (target: views span the held-out photos' yaw p10..p90 = "
          f"{lo:+.3f}..{hi:+.3f}; near-frontal: the {c['near_frontal_faces']} faces with the smallest |yaw|):")
    print(f"{'method':14s} {'spans p10-p90':>13s} {'(near-frontal)':>14s} {'span/target':>11s} "
          f"{'identity flips':>14s} {'faces with flip':>16s} {'mirror gap closed':>17s}")
    for name, m in c["methods"].items():
        gap = m.get("mirror_gap_closed")
        gap_text = "-" if name == "random_control" else "by construction" if gap is None else f"{gap:.0%}"
        print(f"{name:14s} {m['yaw_span']['covers_target_share']:13.0%} "
              f"{m['yaw_span_near_frontal']['covers_target_share']:14.0%} "
              f"{m['yaw_span']['span_over_target_median']:11.2f} {m['identity']['flip_share']:14.1%} "
              f"{m['identity'].get('faces_with_any_flip', float('nan')):16.0%} {gap_text:>17s}")
