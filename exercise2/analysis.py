"""The statistics every analysis needs from the data, computed once per model and data (`FaceContext`
keeps and caches them): where the codes of training and held-out faces lie, the held-out photos'
landmark yaw, the directions that turn a face and how far to go along them, one direction per
attribute. And the definitions the analyses share: an informative unit, a traversal.

Yaw is measured with dlib's landmarks (`exercise2/landmarks.py`, validated in
report/results/instruments/; about 7 ms per 64x64 image on one CPU core): the budgets below keep the
analysis of 10,000 faces to a few minutes.
"""
from __future__ import annotations

import math

import torch

from exercise2 import landmarks as L
from exercise2 import measures as M
from exercise2 import pose as P
from exercise2.model import kl_per_unit
from utils.progress import progress

ANALYSIS_VERSION = "5"  # change it when compute_analysis changes: stored statistics are then recomputed
YAW_INSTRUMENT = "landmark_yaw (exercise2/landmarks.py: dlib's 68 points, nose against the cheek contour)"
ACTIVE_VARIANCE = 0.01  # a unit is active if its posterior mean varies across faces (Burda et al. 2016)
INFORMATIVE_KL = 0.1    # nats: with 128 units many pass the variance test while carrying ~0.01 nats each
TRAVERSAL_STEP = 2.0    # std of a unit's codes: the per-unit measures compare the ends of a +-2 std traversal
YAW_PROBE_FACES = 128   # training faces on which the yaw response of each unit is measured ...
YAW_PROBE_MIN = 32      # ... fewer when many units share YAW_PROBE_BUDGET (face-units), never fewer than this
YAW_PROBE_BUDGET = 6144
YAW_HELD_OUT_FACES = 1000   # held-out photos whose landmark yaw gives the target percentiles
YAW_MAX_STEPS = 6.0     # views stay within 6 std (along the direction) of the frontal code
REACH_PROBE_FACES = 64  # training faces on which the reach of each direction is calibrated
REACH_GRID = 12         # reaches tried: cap / 12, 2 cap / 12, ..., cap
REACH_COVER = 0.95      # the smallest reach at which this share of the probe faces' views span p10..p90
INTERFACEGAN_FACES = 2000   # training photos whose landmark yaw the InterFaceGAN direction is fitted to ...
INTERFACEGAN_DRAWS = 4      # ... on this many codes drawn from each photo's posterior (see fit_interfacegan)
BEND_FACES = 256        # training faces on which interfacegan_calibrated's bend is fitted ...
BEND_STEPS = 60         # ... by this many Adam steps of BEND_BATCH faces, each at 4 views of the path, or,
BEND_BATCH = 48         # on fewer faces, as many as BEND_PASSES passes over them take (at least BEND_MIN_STEPS)
BEND_PASSES = 12
BEND_MIN_STEPS = 15
BEND_MARGIN = 2.0       # ... keeping each confident identity prediction this far (in logits) on its side
MIN_CLASS_FACES = 5     # an identity attribute's normal needs this many labelled faces with and without it
YAW_MIN_T = 3.0         # a unit's yaw response counts where its t statistic over the probe faces is >= 3
YAW_UNIT_MAX_IDENTITY_CHANGE = 0.25  # ... and it moves no identity attribute's mean probability this much


def informative_units(kl_per_unit: torch.Tensor, code_std: torch.Tensor) -> torch.Tensor:
    """bool `[Z]`, the one definition of an informative unit: mean KL above INFORMATIVE_KL nats and
    posterior means that vary across faces (variance above ACTIVE_VARIANCE)."""
    return (kl_per_unit > INFORMATIVE_KL) & (code_std ** 2 > ACTIVE_VARIANCE)


def traversal(mu: torch.Tensor, unit: int, values, std: torch.Tensor) -> torch.Tensor:
    """Codes `[F, V, Z]`: each face's code (`mu` `[F, Z]`) with `unit` moved from its own value by each
    of `values`, in std of that unit's codes across faces (`std` `[Z]`)."""
    values = torch.as_tensor(values, dtype=mu.dtype)
    codes = mu[:, None].repeat(1, len(values), 1)
    codes[:, :, unit] += values * std[unit]
    return codes


def probe_faces_per_unit(units: int) -> int:
    """Faces on which each unit's yaw response is measured: YAW_PROBE_FACES, fewer (not under
    YAW_PROBE_MIN) when many units share the budget of YAW_PROBE_BUDGET face-units (landmarks cost
    about 7 ms per image: beta = 0 has 128 informative units)."""
    return max(YAW_PROBE_MIN, min(YAW_PROBE_FACES, YAW_PROBE_BUDGET // max(units, 1)))


@torch.no_grad()
def yaw_responses(ctx, probe: torch.Tensor, units: list[int], scale: torch.Tensor):
    """How much the decoded face's landmark yaw moves per std of each unit (from its +-2 std traversal
    on the probe faces): (gradient `[Z]`, the units with a clear response (|t| >= YAW_MIN_T), the rule
    used). A unit that also changes who is shown (an identity attribute's mean probability by
    YAW_UNIT_MAX_IDENTITY_CHANGE or more over +-2 std) does not join the gradient, however much it
    turns the face."""
    clf = ctx.classifier()
    identity = [clf.names.index(n) for n in ctx.identity_attributes()] if clf else []
    gradient = torch.zeros(len(scale))
    yaw_units = {}
    for j in progress(units, desc="yaw per unit", unit="unit", leave=False, disable=len(units) < 16):
        down, up = ctx.traversal_ends(probe, j, scale)
        yaw = L.yaw(torch.cat([down, up])).view(2, -1)
        diff = (yaw[1] - yaw[0]) / (2 * TRAVERSAL_STEP)
        t = float(diff.mean() / (diff.std() / math.sqrt(len(diff))).clamp_min(1e-12)) if len(diff) > 1 else 0.0
        id_change = float((clf.predict(up)[:, identity] - clf.predict(down)[:, identity]).mean(0).abs().max()) if identity else 0.0
        if abs(t) >= YAW_MIN_T:
            yaw_units[j] = {"yaw_per_std": float(diff.mean()), "t": t, "identity_change": id_change}
            if id_change < YAW_UNIT_MAX_IDENTITY_CHANGE:
                gradient[j] = diff.mean()
    rule = f"units that turn the face clearly (|t| >= {YAW_MIN_T:g}) without changing identity"
    if not gradient.any():
        rule = f"every unit that turns the face clearly (|t| >= {YAW_MIN_T:g}), identity changes or not"
        for j, info in yaw_units.items():
            gradient[j] = info["yaw_per_std"]
    if not gradient.any():
        rule = "every informative unit alike: none turns the decoded face measurably"
        gradient[units] = 1e-6
    if not rule.startswith("units"):
        ctx.say(f"note: no unit turns the decoded face clearly without changing identity; the yaw direction uses {rule}")
    return gradient, yaw_units, rule


@torch.no_grad()
def calibrate_reach(ctx, ends_at, cap: float, low: float, high: float) -> dict:
    """How far the views of a rotation method must go: the smallest of REACH_GRID reaches
    (cap / REACH_GRID, 2 cap / REACH_GRID, ..., cap) at which the two end views of at least
    REACH_COVER of the probe faces span the held-out photos' landmark yaw from `low` (p10) to `high`
    (p90); the cap (and a note) where even it does not. The cap is tried first, then the grid by
    bisection (the share grows with the reach). `ends_at(reach)` gives the probe faces' codes of the
    two end views `[F, 2, Z]`. Returns {reach, covers_share (at that reach), gain (median yaw change
    per unit of reach there), note, probe_faces, grid: {reach, covers_share, median yaw of either end}
    at the reaches tried}."""
    reaches = [cap * (j + 1) / REACH_GRID for j in range(REACH_GRID)]
    tried = {}

    def measure(j: int) -> float:
        if j not in tried:
            codes = ends_at(reaches[j])                                          # [F, 2, Z]
            yaw = L.yaw(ctx.decode(codes.reshape(-1, codes.shape[-1]))).view(-1, 2)
            covers = float(((yaw.min(1).values <= low) & (yaw.max(1).values >= high)).float().mean())
            gain = float(((yaw[:, 1] - yaw[:, 0]) / (2 * reaches[j])).median())
            tried[j] = {"covers": covers, "gain": gain, "low": float(yaw[:, 0].median()),
                        "high": float(yaw[:, 1].median()), "faces": len(yaw)}
        return tried[j]["covers"]

    j, note = len(reaches) - 1, None
    if measure(j) >= REACH_COVER:
        lo, hi = 0, j                                   # the smallest index that covers lies in lo..hi
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if measure(mid) >= REACH_COVER else (mid + 1, hi)
        j = hi
    else:
        note = (f"no reach up to the cap {cap:.3g} makes the views of {REACH_COVER:.0%} of the probe faces span "
                f"p10..p90 of held-out yaw; at the cap they do for {tried[j]['covers']:.0%}")
    if tried[j]["gain"] <= 0:
        note = (f"the direction does not turn the decoded probe faces (median landmark yaw per unit of reach "
                f"{tried[j]['gain']:+.4f}): the views go the largest reach, {cap:.3g}")
        j = len(reaches) - 1
        measure(j)
    order = sorted(tried)
    return {"reach": reaches[j], "covers_share": tried[j]["covers"], "gain": tried[j]["gain"], "note": note,
            "probe_faces": tried[j]["faces"],
            "grid": {"reach": [reaches[i] for i in order], "covers_share": [tried[i]["covers"] for i in order],
                     "median_yaw_low_end": [tried[i]["low"] for i in order],
                     "median_yaw_high_end": [tried[i]["high"] for i in order]}}


@torch.no_grad()
def attribute_directions(labels, mu: torch.Tensor):
    """(mean code with minus without each attribute `[A, Z]`, the directions of the identity attributes
    that enough faces have and lack (`[K, Z]`, or None)) from the training faces' codes `mu`."""
    y, m = labels.train[labels.train_has], mu[labels.train_has]
    pos, neg = y.float().sum(0).clamp_min(1), (~y).float().sum(0).clamp_min(1)
    directions = (y.float().T @ m) / pos[:, None] - ((~y).float().T @ m) / neg[:, None]   # [A, Z]
    both = (y.sum(0) >= 5) & ((~y).sum(0) >= 5)
    kept = [directions[a] for a, n in enumerate(labels.names) if n in M.IDENTITY_ATTRIBUTES and both[a]]
    return directions, torch.stack(kept) if kept else None


def identity_label_columns(labels) -> list[str]:
    """The identity attributes (measures.IDENTITY_ATTRIBUTES) with at least MIN_CLASS_FACES labelled
    training faces with and without them."""
    y = labels.train[labels.train_has]
    return [n for a, n in enumerate(labels.names) if n in M.IDENTITY_ATTRIBUTES
            and int(y[:, a].sum()) >= MIN_CLASS_FACES and int((~y[:, a]).sum()) >= MIN_CLASS_FACES]


def posterior_draws(mu: torch.Tensor, logvar: torch.Tensor, draws: int, seed: int = 0) -> torch.Tensor:
    """`draws` codes z = mu + exp(logvar / 2) eps per face, face by face: `[N * draws, Z]`."""
    eps = torch.randn(len(mu), draws, mu.shape[1], generator=torch.Generator().manual_seed(seed))
    return (mu[:, None] + (0.5 * logvar[:, None]).exp() * eps).reshape(-1, mu.shape[1])


@torch.no_grad()
def fit_interfacegan(ctx, train, mu_tr, logvar_tr, labels, mu_val, yaw_val) -> dict:
    """The InterFaceGAN directions (pose.fit_yaw_normal, pose.conditional_direction): ridge regression of
    the landmark yaw of up to INTERFACEGAN_FACES training photos on codes drawn from their posteriors
    (INTERFACEGAN_DRAWS per face); its conditional form with the identity attributes' normals (fitted
    the same way on every labelled training face, one draw each) projected out, when there are labels.

    Why draws and not the posterior means: InterFaceGAN fits a hyperplane in a latent space where codes
    are spread as the generator takes them (an isotropic Gaussian). The means of a beta-VAE are not:
    in its collapsed units (KL ~ 0) they vary by a hair, yet follow the yaw, so a regression on them
    puts its weight there (on vae_beta_4 99 % of the normal's squared length lay in the 107 units that
    carry nothing, 0.09 std of the codes along it) and moving along that normal does not turn the
    decoded face. Codes drawn from the posterior are spread as the decoder takes them: in a collapsed
    unit they are noise, and the fit leaves it alone (4 %).
    Returns {method: fit} for those that could be fitted (fit: direction, yaw_normal, centre,
    coordinate_std (of training codes along the direction), fit statistics)."""
    n = min(len(train), INTERFACEGAN_FACES)
    yaw_tr = L.yaw(train[:n])
    codes = posterior_draws(mu_tr[:n], logvar_tr[:n], INTERFACEGAN_DRAWS)
    normal = P.fit_yaw_normal(codes, yaw_tr.repeat_interleave(INTERFACEGAN_DRAWS))
    if normal is None:
        note = ("the training faces' codes do not predict their landmark yaw (no variance, or no linear relation): "
                "the interfacegan directions are left out")
        ctx.say(f"note: {note}")
        return {"interfacegan_note": note}
    predicted = (mu_val[:len(yaw_val)] - normal["centre"]) @ normal["normal"] * normal["yaw_per_unit"]
    resid = (yaw_val - predicted).pow(2).mean()
    held_r2 = float(1 - resid / yaw_val.var(unbiased=False).clamp_min(1e-12)) if len(yaw_val) > 1 else float("nan")
    base = {"yaw_normal": normal["normal"], "centre": normal["centre"],
            "fit": {"model": f"ridge regression of the training photos' landmark yaw on {INTERFACEGAN_DRAWS} codes drawn "
                             "from each photo's posterior (penalty by leave-one-out error)",
                    "faces": n, "penalty": normal["penalty"], "loo_r2": normal["loo_r2"],
                    "held_out_r2_of_posterior_means": held_r2, "held_out_faces": len(yaw_val),
                    "yaw_per_unit": normal["yaw_per_unit"]}}
    fits = {"interfacegan": {**base, "direction": normal["normal"]}}
    names = identity_label_columns(labels) if labels is not None else []
    if names:
        has = labels.train_has
        cols = [labels.names.index(a) for a in names]
        normals = P.attribute_normals(posterior_draws(mu_tr[has], logvar_tr[has], 1, seed=1), labels.train[has][:, cols])
        cond = P.conditional_direction(normal["normal"], normals)
        fits["interfacegan_conditional"] = {**base, "direction": cond["direction"], "identity_attributes": names,
                                            "identity_normals": normals, "cosine_with_plain": cond["cosine_with_plain"]}
    elif labels is None:
        ctx.say("note: no attribute labels: only the plain interfacegan direction is fitted (its conditional form "
                "projects out the identity attributes' directions, fitted on labelled codes)")
    else:
        ctx.say(f"note: too few labelled training faces with and without each identity attribute (at least "
                f"{MIN_CLASS_FACES} of each): no interfacegan_conditional direction")
    for fit in fits.values():
        t = (mu_tr - fit["centre"]) @ fit["direction"]
        fit["coordinate_std"] = float(t.std()) if len(t) > 1 else 1.0
    return fits


def fit_identity_bend(ctx, fit: dict, train: torch.Tensor, reach: float) -> dict | None:
    """interfacegan_calibrated: the conditional path bent so that the decoded views keep the identity.

    Projecting the identity attributes' normals out of the yaw direction keeps their *linear* scores
    in code space, but the decoder does not follow them far from the codes it was trained on: on
    vae_beta_4 the views at either end of the path look darker-haired and less male to the attribute
    classifier (an even function of the step, which no straight direction can cancel). The bend adds
    s * odd + s^2 * even, both in the span of the identity normals (fit['identity_normals']), fitted by
    Adam on BEND_FACES training faces: at the views s = +-reach, +-reach / 2 of their paths, each
    confident identity prediction of the attribute classifier (probability >= 0.8 or <= 0.2 on the
    face's reconstruction) is kept BEND_MARGIN logits on its side (squared hinge). Fitted with the
    classifier on training faces, so its flip share on held-out faces is measured on faces it never
    saw, by the instrument it was fitted with (dlib's descriptor is the independent check).
    Returns {bend_odd, bend_even, bend_fit} or None without a classifier or identity attributes."""
    clf, names = ctx.classifier(), ctx.identity_attributes()
    if clf is None or not names or "identity_normals" not in fit:
        return None
    k = [clf.names.index(a) for a in names]
    normals = fit["identity_normals"].to(ctx.device)
    model, net = ctx.model.eval(), clf.net.eval()

    def logits(z):
        return net(torch.sigmoid(model.decode(z.to(ctx.device)).float()))[:, k]

    with torch.no_grad():
        mu = ctx.encode_faces(train[:BEND_FACES])
        base = P.interfacegan_codes(mu, fit, torch.zeros(1))[:, 0].to(ctx.device)
        ref = logits(mu)
    sure = ((ref.sigmoid() >= 0.8) | (ref.sigmoid() <= 0.2)).float()
    steps = torch.tensor([-1.0, -0.5, 0.5, 1.0], device=ctx.device) * reach
    d = fit["direction"].to(ctx.device)
    a = torch.zeros(len(normals), device=ctx.device, requires_grad=True)
    b = torch.zeros(len(normals), device=ctx.device, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=0.05)
    g = torch.Generator().manual_seed(0)
    frozen = [q for q in (*model.parameters(), *net.parameters()) if q.requires_grad]
    for q in frozen:
        q.requires_grad_(False)
    batch = min(BEND_BATCH, len(mu))
    n_steps = min(BEND_STEPS, max(BEND_MIN_STEPS, math.ceil(BEND_PASSES * len(mu) / batch)))
    losses = []
    try:
        with torch.enable_grad():   # the analyses run under no_grad; this fit needs gradients
            for _ in progress(range(n_steps), desc="identity bend", unit="step"):
                i = torch.randint(0, len(mu), (batch,), generator=g).to(ctx.device)
                s = steps[None, :, None]
                z = base[i][:, None] + s * (d + b @ normals) + s ** 2 / reach * (a @ normals)
                out = logits(z.reshape(-1, z.shape[-1])).view(len(i), len(steps), -1)
                loss = (torch.relu(BEND_MARGIN - torch.sign(ref[i])[:, None] * out) ** 2 * sure[i][:, None]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.detach().item())
    finally:
        for q in frozen:
            q.requires_grad_(True)
    a, b = a.detach(), b.detach()
    return {"bend_odd": (b @ normals).cpu(), "bend_even": (a @ normals / reach).cpu(),
            "bend_fit": {"faces": len(mu), "steps": n_steps, "reach_fitted_at": reach, "identity_attributes": names,
                         "loss_first_5_steps": sum(losses[:5]) / len(losses[:5]),
                         "loss_last_5_steps": sum(losses[-5:]) / len(losses[-5:])}}


@torch.no_grad()
def compute_analysis(ctx, train: torch.Tensor, val: torch.Tensor) -> dict:
    """Everything the analyses need from data (`ctx`: a FaceContext), small enough to keep beside the
    checkpoint, so the tasks also run without data: where the codes of training and held-out faces lie,
    the held-out photos' landmark yaw, the directions that turn a face (yaw_fit from the units'
    measured yaw responses; the InterFaceGAN directions fitted to the training photos' landmark yaw),
    each with the reach at which the views span the held-out photos' p10..p90 of yaw (`calibrate_reach`),
    one direction per attribute. Yaw is landmark yaw (exercise2/landmarks.py) throughout."""
    L.require()   # a UserError with the pip command when dlib or its models are missing
    mu_val, logvar_val = ctx.encode_all(val)
    mu_tr, logvar_tr = ctx.encode_all(train)
    mu_tr_flip = ctx.encode_faces(train, flipped=True)
    yaw_val = L.yaw(val[:YAW_HELD_OUT_FACES])
    p10, p50, p90 = (float(v) for v in torch.quantile(yaw_val, torch.tensor([0.1, 0.5, 0.9])))
    glob = P.fit_global_axis(mu_tr, mu_tr_flip)
    scale = mu_tr.std(0) if len(mu_tr) > 1 else torch.ones(mu_tr.shape[1])
    units = informative_units(kl_per_unit(mu_tr, logvar_tr).mean(0), scale).nonzero().flatten().tolist()
    probe = mu_tr[:probe_faces_per_unit(len(units))]
    gradient, yaw_units, rule = yaw_responses(ctx, probe, units, scale)
    labels = ctx.labels()
    directions, keep = attribute_directions(labels, mu_tr) if labels is not None else (None, None)
    yaw_fit = P.yaw_direction(gradient, scale, keep)
    cal_mu, cal_flip = mu_tr[:REACH_PROBE_FACES], mu_tr_flip[:REACH_PROBE_FACES]
    cal = calibrate_reach(ctx, lambda r: P.rotation_codes("yaw_fit", cal_mu, cal_flip, {"yaw_fit": yaw_fit, "yaw_reach": r},
                                                          views=2), YAW_MAX_STEPS, p10, p90)
    if cal["note"]:
        ctx.say(f"note: yaw_fit: {cal['note']}")
    fits = fit_interfacegan(ctx, train, mu_tr, logvar_tr, labels, mu_val, yaw_val)
    def calibrate(method: str, fit: dict) -> None:
        cap = YAW_MAX_STEPS * fit["coordinate_std"]
        fit["calibration"] = calibrate_reach(ctx, lambda r, f=fit: P.interfacegan_codes(cal_mu, f, torch.tensor([-r, r])),
                                             cap, p10, p90)
        fit["reach"], fit["reach_cap"] = fit["calibration"]["reach"], cap
        if fit["calibration"]["note"]:
            ctx.say(f"note: {method}: {fit['calibration']['note']}")

    for method in [m for m in P.INTERFACEGAN_METHODS if m in fits]:
        calibrate(method, fits[method])
    if "interfacegan_conditional" in fits:
        cond = fits["interfacegan_conditional"]
        bent = fit_identity_bend(ctx, cond, train, cond["reach"])
        if bent is None:
            ctx.say("note: no attribute classifier or no identity attribute it reads reliably: no interfacegan_calibrated path")
        else:
            fits["interfacegan_calibrated"] = {**cond, **bent}
            calibrate("interfacegan_calibrated", fits["interfacegan_calibrated"])
    coordinate = (mu_val - glob["centre"]) @ glob["axis"]
    out = {
        "mu_mean": mu_val.mean(0), "mu_std": mu_val.std(0) if len(mu_val) > 1 else torch.ones(mu_val.shape[1]),
        "kl_per_unit": kl_per_unit(mu_val, logvar_val).mean(0), "example_codes": mu_val[:16].clone(),
        "code_mean_train": mu_tr.mean(0),
        "code_cov_train": torch.atleast_2d(torch.cov(mu_tr.double().T)).float() if len(mu_tr) > 1 else torch.diag(scale ** 2),
        "yaw_instrument": YAW_INSTRUMENT,
        "yaw_fit": yaw_fit, "yaw_gain": cal["gain"], "yaw_reach": cal["reach"], "yaw_reach_note": cal["note"],
        "yaw_calibration": cal, "yaw_units": yaw_units, "yaw_probe_faces_per_unit": len(probe),
        "yaw_direction_rule": rule, "yaw_percentiles_held_out": [p10, p50, p90], "yaw_held_out_faces": len(yaw_val),
        "global_axis": glob, "axis_reach": 2.5 * float(coordinate.std()) if len(coordinate) > 1 else 1.0,
        "faces": {"train": len(train), "held_out": len(val)}, **fits,
    }
    if directions is not None:
        out["attribute_names"] = labels.names
        out["attribute_directions"] = directions
    return out
