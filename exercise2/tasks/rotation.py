"""rotate: turn faces left and right (--rotation_method), with the landmark yaw of every view drawn
and recorded; with the data, compare the methods on held-out faces against a random direction of the
same length: how far the views turn (landmark yaw against the held-out photos' p10..p90), how many
confident identity-attribute predictions flip, how far the views stay from the face by dlib's face
descriptor (where it tells faces apart on this VAE), how much of the mirror gap closes."""
from __future__ import annotations

import math

import torch

from exercise2 import landmarks as L
from exercise2 import measures as M
from exercise2 import pose as P
from exercise2.analysis import informative_units
from exercise2.context import write_summary
from exercise2.dataset import to_float
from exercise2.drawing import save_views_gif
from exercise2.landmark_drawing import face_grid, yaw_check_figure

ROTATION_VIEWS = 9
ROTATION_FACES = 300          # held-out faces on which the rotation methods are compared
DESCRIPTOR_AUC_FACES = 100    # held-out faces on which the descriptor's separation of faces is measured
DESCRIPTOR_FACES = 40         # faces whose views' descriptors are measured per method (about 90 ms per image)
MIN_DESCRIPTOR_FACES = 20     # fewer held-out faces: no descriptor measure
MIN_DESCRIPTOR_AUC = 0.65     # the descriptor must tell a face's reconstruction from others' at least this well
GOAL_COVER = 0.9              # goal: the views of this share of faces (and of the near-frontal half) span p10..p90
RANDOM_DIRECTIONS = 5         # random directions of equal length each method's flips are compared with
FIGURE_FACES = 1              # faces per method in rotation_methods.png (one row each: legible titles)
RANDOM_LENGTH_OF = ("interfacegan_calibrated", "interfacegan", "yaw_fit")   # the random control in the table goes
# as far as the first of these; each method's goal compares it with a random direction as long as its own views
ROTATION_METHOD_HELP = {
    "yaw_fit": "from the frontal code along the direction the units' measured yaw responses span",
    "mirror_path": "towards the code of the mirror image and past it",
    "global_axis": "first principal axis of face-minus-mirror codes",
    "interfacegan": "along the normal of a linear model of landmark yaw in code space (InterFaceGAN)",
    "interfacegan_conditional": "the InterFaceGAN yaw normal with the identity attributes' normals projected out",
    "interfacegan_calibrated": "the conditional path bent along the identity normals (fitted on training faces) so "
                               "the attribute classifier keeps their identity",
    "random_control": "a random direction of informative units, as far as the reference method goes"}


def available_methods(stats: dict) -> list[str]:
    """The methods these statistics allow (yaw_fit and the interfacegan ones need their fitted directions)."""
    return [m for m in P.ROTATION_METHODS if m in ("mirror_path", "global_axis") or m in stats]


def choose_method(ctx) -> str:
    """--rotation_method, or the nearest available one with a note that says why."""
    method, stats = ctx.args.rotation_method, ctx.analysis()
    if "yaw_instrument" not in stats:
        ctx.say("note: these statistics were computed with the old symmetry yaw measure, which does not track head "
                "yaw; run once with the face data to recompute them with landmark yaw")
    if method in available_methods(stats):
        return method
    for better, why in (("interfacegan_conditional", "it needs the identity attributes' labels and the attribute "
                                                     "classifier"),
                        ("interfacegan", "it needs the identity attributes' labels")):
        if method in P.INTERFACEGAN_METHODS[P.INTERFACEGAN_METHODS.index(better) + 1:] and better in stats:
            ctx.say(f"note: no {method} path ({why}): turning by {better} instead")
            return better
    fallback = "yaw_fit" if "yaw_fit" in stats else "global_axis"
    why = stats.get("interfacegan_note") if method in P.INTERFACEGAN_METHODS else None
    ctx.say(f"note: these statistics have no {method} direction ({why or 'run once with the face data to compute it'}); "
            f"turning by {fallback} instead")
    return fallback


def random_control(stats: dict, reach: float | None = None, seed: int = 0) -> tuple[dict, str]:
    """The yardstick: the interfacegan construction (from the code's coordinate along the direction set to
    the mean code's, +- reach) along a random direction of the informative units (seeded), as long in
    code space as the views of the first of RANDOM_LENGTH_OF, or +- `reach`. Returns (its fit, that
    method's name)."""
    informative = informative_units(stats["kl_per_unit"], stats["mu_std"])
    g = torch.randn(len(informative), generator=torch.Generator().manual_seed(seed)) * informative
    g = g if g.norm() > 0 else torch.randn(len(informative), generator=torch.Generator().manual_seed(seed))
    r = g / g.norm()
    ref = next(m for m in RANDOM_LENGTH_OF if m in stats)
    if reach is None:
        reach = 0.5 * float(method_codes(ref, stats["example_codes"], stats["example_codes"], stats)[:, [0, -1]]
                            .diff(dim=1).norm(dim=-1).median())
    return {"direction": r, "yaw_normal": r, "centre": stats["mu_mean"], "reach": reach}, ref


def method_codes(method: str, mu: torch.Tensor, mu_flip: torch.Tensor, stats: dict, views: int = ROTATION_VIEWS):
    if method == "random_control":
        fit, _ = random_control(stats)
        return P.interfacegan_codes(mu, fit, torch.linspace(-fit["reach"], fit["reach"], views))
    return P.rotation_codes(method, mu, mu_flip, stats, views)


def turned_views(ctx, method: str, mu: torch.Tensor, mu_flip: torch.Tensor, stats: dict) -> torch.Tensor:
    """Images `[F, V, 3, H, W]` of the faces (codes `mu`, mirror codes `mu_flip`) turned by the method."""
    return ctx.decode_views(method_codes(method, mu, mu_flip, stats))


def measured(images: torch.Tensor):
    """(landmarks `[N, 68, 2]`, landmark yaw `[N]`) of images `[N, 3, H, W]`."""
    points = L.landmarks(images)
    return points, L.landmark_yaw(points)


@torch.no_grad()
def run(ctx) -> dict:
    args = ctx.args
    out = ctx.task_dir("rotate")
    stats = ctx.analysis()
    L.require()
    method = choose_method(ctx)
    faces, source = ctx.faces_to_show(args.num_faces)
    if args.image:
        ctx.say("note: the VAE and the landmark yaw expect a face framed like CelebA's aligned crops (eyes level, "
                "face centred, filling about two thirds of the width); crop a photo of your own that way, or its "
                "views and their measured yaw may be off")
    mu, mu_flip = ctx.encode_faces(faces), ctx.encode_faces(faces, flipped=True)
    views = turned_views(ctx, method, mu, mu_flip, stats)
    recon = ctx.decode(mu)
    n, v = views.shape[:2]
    points, yaw = measured(torch.cat([faces, recon, views.flatten(0, 1)]))
    clf, identity = ctx.classifier(), ctx.identity_attributes()
    k = [clf.names.index(name) for name in identity] if clf else []
    rows, row_points, titles, labels, per_face = [], [], [], [], []
    for i in range(n):
        at = [i, n + i, *range(2 * n + i * v, 2 * n + (i + 1) * v)]
        info = {"yaw_input": float(yaw[i]), "yaw_reconstruction": float(yaw[n + i]),
                "yaw_views": yaw[2 * n + i * v: 2 * n + (i + 1) * v].tolist()}
        text = [f"face {i + 1}"]
        if k:
            ref = clf.predict(recon[i:i + 1])[:, k]
            info["identity_flips"] = flips = M.identity_flips(clf.predict(views[i])[None][:, :, k], ref, names=identity)
            text.append(f"identity flips\n{flips['flipped']} of {flips['confident_predictions']}")
        per_face.append(info)
        rows.append(torch.cat([faces[i:i + 1], recon[i:i + 1], views[i]]))
        row_points.append(points[at])
        titles.append([f"{float(y):+.2f}" for y in yaw[at]])
        labels.append("\n".join(text))
    columns = ["photo", "recon"] + [f"view {j + 1}" for j in range(v)]
    face_grid(rows, out / "rotation.png", points=row_points, row_labels=labels, cell_titles=titles, column_labels=columns,
              title=f"{ctx.name}: turned by {method} ({ROTATION_METHOD_HELP[method]}); landmark yaw above each face, "
                    "dlib's points drawn (red: those the yaw reads)")
    save_views_gif(views, out / "rotation.gif", nrow=len(faces))
    files = ["rotation.png", "rotation.gif"]
    summary = {"source": source, "method": method, "faces": per_face, "files": files,
               "identity_attributes": identity, "statistics_source": stats.get("source"),
               "yaw_instrument": stats.get("yaw_instrument", "the old symmetry measure (statistics of an older version)"),
               "layout": "each row: photo, reconstruction, then views from one side to the other; yaw: landmark_yaw "
                         "(exercise2/landmarks.py), (nose - cheek-contour midpoint) / cheek-contour width along the "
                         "eye line, positive: face turned towards image right"}
    if method == "yaw_fit":
        summary.update(yaw_reach=stats["yaw_reach"], yaw_reach_note=stats.get("yaw_reach_note"))
        if stats.get("yaw_reach_note"):
            ctx.say(f"note: {stats['yaw_reach_note']}")
    elif method in P.INTERFACEGAN_METHODS:
        fit = stats[method]
        summary.update(reach=fit["reach"], reach_note=fit["calibration"]["note"], fit=fit["fit"])
        if "bend_fit" in fit:
            summary["bend_fit"] = fit["bend_fit"]
    if ctx.faces(required=False) is not None:
        summary["comparison"] = compare_methods(ctx, out)
        files += ["rotation_methods.png", "yaw_check.png"]
    write_summary(summary, out / "summary.json")
    report(summary, out, len(faces))
    return summary


@torch.no_grad()
def descriptor_setup(ctx, faces: torch.Tensor, own: torch.Tensor) -> dict:
    """Whether dlib's descriptor tells a face's own reconstruction from other faces' reconstructions on
    this VAE (`M.descriptor_separation` on the first DESCRIPTOR_AUC_FACES held-out faces): where its AUC
    is at least MIN_DESCRIPTOR_AUC, the views' identity is measured with it against the median distance
    between different faces' reconstructions. Returns {separation, used, note, reference, own}."""
    n = min(len(faces), DESCRIPTOR_AUC_FACES)
    if n < MIN_DESCRIPTOR_FACES:
        note = f"only {len(faces)} held-out faces: the descriptor's separation of faces needs {MIN_DESCRIPTOR_FACES}"
        return {"used": False, "note": note}
    photo_desc, own_desc = L.descriptors(faces[:n]), L.descriptors(own[:n])
    sep = M.descriptor_separation(photo_desc, own_desc)
    used = sep["auc_own_vs_other_reconstructions"] >= MIN_DESCRIPTOR_AUC
    note = None if used else (
        f"dlib's descriptor tells a photo's own reconstruction from other faces' reconstructions with AUC "
        f"{sep['auc_own_vs_other_reconstructions']:.2f} < {MIN_DESCRIPTOR_AUC} on this VAE: it cannot judge identity "
        "here, and the views are not measured with it")
    return {"separation": sep, "used": used, "note": note, "reference": sep["median_distance_between_reconstructions"],
            "own": own_desc[:DESCRIPTOR_FACES]}


def goal(methods: dict) -> dict:
    """Whether each method meets the goal: the views of >= GOAL_COVER of the faces, and of the near-frontal
    half, span p10..p90 of held-out landmark yaw, and identity flips no more often than along a random
    direction as long as its views (None where flips could not be measured)."""
    per = {}
    for name, m in methods.items():
        if name == "random_control":
            continue
        flips = m["identity"]["flip_share"]
        random_flips = m.get("random_of_equal_length", {}).get("flip_share", float("nan"))
        keeps = None if math.isnan(flips) or math.isnan(random_flips) else bool(flips <= random_flips)
        covers = m["yaw_span_landmark"]["covers_target_share"] >= GOAL_COVER
        near = m["yaw_span_landmark_near_frontal"]["covers_target_share"] >= GOAL_COVER
        per[name] = {"covers": covers, "near_frontal_covers": near, "flips_no_more_than_random": keeps,
                     "flip_share": flips, "random_flip_share_of_equal_length": random_flips,
                     "met": bool(covers and near and keeps)}
    return {"rule": f"views of >= {GOAL_COVER:.0%} of the faces and of the near-frontal half span p10..p90 of held-out "
                    "landmark yaw, and identity flips no more often than along a random direction as long as the "
                    "method's views",
            "methods": per, "met_by": [name for name, g in per.items() if g["met"]]}


@torch.no_grad()
def compare_methods(ctx, out) -> dict:
    """Every method and a random direction of the same length on the same held-out faces (codes and
    mirror codes encoded once), measured with landmark yaw, the classifier's identity attributes and
    dlib's face descriptor."""
    val = ctx.faces()[1][:ROTATION_FACES]
    faces = to_float(val)
    stats = ctx.analysis()
    photo_points, yaw_photos = measured(faces)
    lo, _, hi = stats["yaw_percentiles_held_out"]
    frontal = yaw_photos.abs() <= yaw_photos.abs().median()
    clf, identity = ctx.classifier(), ctx.identity_attributes()
    k = [clf.names.index(n) for n in identity] if clf else []
    mu, mu_flip = ctx.encode_faces(val), ctx.encode_faces(val, flipped=True)
    own, mirror_target = ctx.decode(mu), ctx.decode(mu_flip)
    ref = clf.predict(own)[:, k] if k else None
    desc = descriptor_setup(ctx, faces, own)
    if desc["note"]:
        ctx.say(f"note: {desc['note']}")
    names = available_methods(stats) + ["random_control"]
    if "interfacegan_conditional" not in names:
        ctx.say("note: no interfacegan_conditional in the comparison (it needs the identity attributes' labels)")
    methods, strips = {}, []
    for method in names:
        codes = method_codes(method, mu, mu_flip, stats)
        views = ctx.decode_views(codes)
        points, yaw = measured(views.flatten(0, 1))
        yaw_views = yaw.view(len(faces), -1)
        m = {"yaw_span_landmark": M.yaw_span(yaw_views, lo, hi),
             "yaw_span_landmark_near_frontal": M.yaw_span(yaw_views[frontal], lo, hi),
             "view_yaw_landmark_median_by_view": yaw_views.median(0).values.tolist(),
             "path_length_median": float((codes[:, -1] - codes[:, 0]).norm(dim=1).median())}
        if k:
            probs = clf.predict(views.flatten(0, 1))[:, k].view(len(faces), -1, len(k))
            m["identity"] = M.identity_flips(probs, ref, names=identity)
            m["identity_near_frontal"] = M.identity_flips(probs[frontal], ref[frontal])
            m["identity_attributes"] = identity
            if method != "random_control":   # the goal's yardstick: random directions as long as these views
                randoms = []
                for seed in range(RANDOM_DIRECTIONS):
                    fit, _ = random_control(stats, reach=m["path_length_median"] / 2, seed=seed)
                    steps = torch.linspace(-fit["reach"], fit["reach"], ROTATION_VIEWS)
                    random_views = ctx.decode_views(P.interfacegan_codes(mu, fit, steps))
                    randoms.append(clf.predict(random_views.flatten(0, 1))[:, k].view(len(faces), -1, len(k)))
                shares = [M.identity_flips(r, ref)["flip_share"] for r in randoms]
                m["random_of_equal_length"] = {
                    "path_length_median": m["path_length_median"], "directions": RANDOM_DIRECTIONS,
                    "flip_share": sum(shares) / len(shares), "flip_share_by_direction": shares,
                    "flip_share_difference": M.flip_share_difference(probs, randoms, ref)}
        else:
            m["identity"] = {"flip_share": float("nan"), "note": "no attribute classifier or no identity attribute it reads"}
        if desc["used"]:
            nd = len(desc["own"])
            m["identity_descriptor"] = M.descriptor_identity(L.descriptors(views[:nd].flatten(0, 1)).view(nd, views.shape[1], -1),
                                                             desc["own"], desc["reference"])
        else:
            m["identity_descriptor"] = {"closer_than_other_faces_share": float("nan"), "note": desc["note"]}
        turned = None if method == "random_control" else P.mirrored_codes(method, mu, mu_flip, stats)
        if turned is not None:
            err_turned = (ctx.decode(turned) - mirror_target).pow(2).mean().item()
            err_own = (own - mirror_target).pow(2).mean().item()
            m["mirror_gap_closed"] = 1 - err_turned / max(err_own, 1e-12)
        methods[method] = m
        shown = min(FIGURE_FACES, len(faces))
        strips.append((method, views[:shown], points.view(len(faces), -1, 68, 2)[:shown], yaw_views[:shown]))
    rows = [v for _, s, _, _ in strips for v in s]
    pts = [p for _, _, s, _ in strips for p in s]
    titles = [[f"{float(y):+.2f}" for y in ys] for _, _, _, s in strips for ys in s]
    labels = [f"{name.replace('_', chr(10)) if len(name) > 13 else name}\nface {i + 1}" for name, s, _, _ in strips
              for i in range(len(s))]
    face_grid(rows, out / "rotation_methods.png", points=pts, row_labels=labels, cell_titles=titles,
              title="the same held-out faces turned by each method; landmark yaw above each view")
    yaw_check_figure(faces, photo_points, yaw_photos, out / "yaw_check.png")
    _, length_of = random_control(stats)
    result = {"faces": len(faces), "near_frontal_faces": int(frontal.sum()), "target_yaw_p10_p90": [lo, hi],
              "target_from": f"landmark yaw of {stats.get('yaw_held_out_faces', '?')} held-out photos",
              "yaw_instrument": stats.get("yaw_instrument"), "views": ROTATION_VIEWS,
              "random_control": {"length_of": length_of, "construction": ROTATION_METHOD_HELP["random_control"]},
              "identity_descriptor": {k2: v2 for k2, v2 in desc.items() if k2 != "own"}, "methods": methods}
    result["goal"] = goal(methods)
    return result


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0%}"


def report(summary: dict, out, n_faces: int) -> None:
    print(f"turned {n_faces} {summary['source']} by {summary['method']} -> {out / 'rotation.png'}")
    c = summary.get("comparison")
    if not c:
        return
    lo, hi = c["target_yaw_p10_p90"]
    sep = c["identity_descriptor"].get("separation")
    print(f"methods on {c['faces']} held-out faces (target: views span the held-out photos' landmark yaw p10..p90 = "
          f"{lo:+.3f}..{hi:+.3f}; near-frontal: the {c['near_frontal_faces']} faces with the smallest |yaw|):")
    if sep:
        print(f"  dlib descriptor: own reconstruction vs other faces' reconstructions AUC "
              f"{sep['auc_own_vs_other_reconstructions']:.2f} on {sep['faces']} faces"
              + ("" if c["identity_descriptor"]["used"] else " (too low: not used)"))
    print(f"{'method':25s} {'spans p10-p90':>13s} {'(near-frontal)':>14s} {'span/target':>11s} {'identity flips':>14s} "
          f"{'faces w/ flip':>13s} {'descr. nearer':>13s} {'code path':>9s} {'mirror gap':>10s}")
    for name, m in c["methods"].items():
        gap = m.get("mirror_gap_closed")
        gap_text = "-" if name == "random_control" else "by constr." if gap is None else f"{gap:.0%}"
        flips = m["identity"]["flip_share"]
        print(f"{name:25s} {_pct(m['yaw_span_landmark']['covers_target_share']):>13s} "
              f"{_pct(m['yaw_span_landmark_near_frontal']['covers_target_share']):>14s} "
              f"{m['yaw_span_landmark']['span_over_target_median']:11.2f} "
              f"{'-' if math.isnan(flips) else f'{flips:.1%}':>14s} "
              f"{_pct(m['identity'].get('faces_with_any_flip')):>13s} "
              f"{_pct(m['identity_descriptor']['closer_than_other_faces_share']):>13s} "
              f"{m['path_length_median']:9.2f} {gap_text:>10s}")
    g = c["goal"]
    print(f"goal ({g['rule']}): " + (f"met by {', '.join(g['met_by'])}" if g["met_by"] else "met by no method"))
