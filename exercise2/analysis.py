"""The statistics every analysis needs from the data, computed once per model and data (`FaceContext`
keeps and caches them): where the codes of held-out faces lie, the directions that turn a face, one
direction per attribute. And the definitions the analyses share: an informative unit, a traversal.
"""
from __future__ import annotations

import math

import torch

from exercise2 import measures as M
from exercise2 import pose as P
from exercise2.dataset import to_float
from exercise2.pose import yaw_measure
from exercise2.model import kl_per_unit
from utils.progress import progress

ANALYSIS_VERSION = "3"  # change it when compute_analysis changes: stored statistics are then recomputed
ACTIVE_VARIANCE = 0.01  # a unit is active if its posterior mean varies across faces (Burda et al. 2016)
INFORMATIVE_KL = 0.1    # nats: with 128 units many pass the variance test while carrying ~0.01 nats each
TRAVERSAL_STEP = 2.0    # std of a unit's codes: the per-unit measures compare the ends of a +-2 std traversal
YAW_MARGIN = 1.5        # views reach 1.5x the larger of the held-out yaw's 10th/90th percentile
YAW_PROBE_FACES = 128   # training faces on which the yaw response of each unit is measured
YAW_MAX_STEPS = 4.0     # views stay within 4 std (along the yaw direction) of the frontal code
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


def chunked(fn, images, size: int = 1000) -> torch.Tensor:
    """fn over chunks of an image tensor (or an iterable of chunks), concatenated."""
    parts = images if not torch.is_tensor(images) else (images[i:i + size] for i in range(0, len(images), size))
    return torch.cat([fn(p) for p in parts])


def to_float_chunks(images: torch.Tensor, size: int = 1000):
    return (to_float(images[i:i + size]) for i in range(0, len(images), size))


@torch.no_grad()
def yaw_responses(ctx, probe: torch.Tensor, units: list[int], scale: torch.Tensor):
    """How much the decoded yaw moves per std of each unit (from its +-2 std traversal on the probe
    faces): (gradient `[Z]`, the units with a clear response (|t| >= YAW_MIN_T), the rule used).
    A unit that also changes who is shown (an identity attribute's mean probability by
    YAW_UNIT_MAX_IDENTITY_CHANGE or more over +-2 std) does not join the gradient, however much it
    turns the face."""
    clf = ctx.classifier()
    identity = [clf.names.index(n) for n in ctx.identity_attributes()] if clf else []
    gradient = torch.zeros(len(scale))
    yaw_units = {}
    for j in progress(units, desc="yaw per unit", unit="unit", leave=False, disable=len(units) < 16):
        down, up = ctx.traversal_ends(probe, j, scale)
        diff = (yaw_measure(up) - yaw_measure(down)) / (2 * TRAVERSAL_STEP)
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
def attribute_directions(labels, mu: torch.Tensor):
    """(mean code with minus without each attribute `[A, Z]`, the directions of the identity attributes
    that enough faces have and lack (`[K, Z]`, or None)) from the training faces' codes `mu`."""
    y, m = labels.train[labels.train_has], mu[labels.train_has]
    pos, neg = y.float().sum(0).clamp_min(1), (~y).float().sum(0).clamp_min(1)
    directions = (y.float().T @ m) / pos[:, None] - ((~y).float().T @ m) / neg[:, None]   # [A, Z]
    both = (y.sum(0) >= 5) & ((~y).sum(0) >= 5)
    kept = [directions[a] for a, n in enumerate(labels.names) if n in M.IDENTITY_ATTRIBUTES and both[a]]
    return directions, torch.stack(kept) if kept else None


@torch.no_grad()
def compute_analysis(ctx, train: torch.Tensor, val: torch.Tensor) -> dict:
    """Everything the analyses need from data (`ctx`: a FaceContext), small enough to keep beside the
    checkpoint, so the tasks also run without data: where the codes of held-out faces lie, the
    directions that turn a face (fitted on mirror pairs of training faces, calibrated so the views span
    the held-out faces' yaw, at most YAW_MAX_STEPS = 4 std along the direction), one direction per
    attribute."""
    mu_val, logvar_val = ctx.encode_all(val)
    mu_tr, logvar_tr = ctx.encode_all(train)
    mu_tr_flip = ctx.encode_faces(train, flipped=True)
    yaw_val = chunked(yaw_measure, to_float_chunks(val))
    p10, p50, p90 = (float(v) for v in torch.quantile(yaw_val, torch.tensor([0.1, 0.5, 0.9])))
    glob = P.fit_global_axis(mu_tr, mu_tr_flip)
    scale = mu_tr.std(0) if len(mu_tr) > 1 else torch.ones(mu_tr.shape[1])
    units = informative_units(kl_per_unit(mu_tr, logvar_tr).mean(0), scale).nonzero().flatten().tolist()
    probe, probe_flip = mu_tr[:YAW_PROBE_FACES], mu_tr_flip[:YAW_PROBE_FACES]
    gradient, yaw_units, rule = yaw_responses(ctx, probe, units, scale)
    labels = ctx.labels()
    directions, keep = attribute_directions(labels, mu_tr) if labels is not None else (None, None)
    yaw_fit = P.yaw_direction(gradient, scale, keep)
    # how far along the direction the views must go to reach the held-out faces' yaw: the median yaw
    # per step over a +-2 step move of the probe faces
    ends = P.rotation_codes("yaw_fit", probe, probe_flip, {"yaw_fit": yaw_fit, "yaw_reach": TRAVERSAL_STEP}, views=2)
    delivered = yaw_measure(ctx.decode(ends.reshape(-1, ends.shape[-1]))).view(-1, 2)
    gain = float(((delivered[:, 1] - delivered[:, 0]) / (2 * TRAVERSAL_STEP)).median())
    target = max(abs(p10), abs(p90))
    reach_note = None
    if gain > 0:
        reach = min(YAW_MAX_STEPS, YAW_MARGIN * target / gain)
    else:
        reach = YAW_MAX_STEPS
        reach_note = (f"the yaw direction does not turn the decoded probe faces (median yaw per step {gain:+.4f}): "
                      f"the views go the largest reach, {YAW_MAX_STEPS:g} steps")
        ctx.say(f"note: {reach_note}")
    coordinate = (mu_val - glob["centre"]) @ glob["axis"]
    out = {
        "mu_mean": mu_val.mean(0), "mu_std": mu_val.std(0) if len(mu_val) > 1 else torch.ones(mu_val.shape[1]),
        "kl_per_unit": kl_per_unit(mu_val, logvar_val).mean(0), "example_codes": mu_val[:16].clone(),
        "yaw_fit": yaw_fit, "yaw_gain": gain, "yaw_reach": reach, "yaw_reach_note": reach_note, "yaw_units": yaw_units,
        "yaw_direction_rule": rule, "yaw_percentiles_held_out": [p10, p50, p90],
        "global_axis": glob, "axis_reach": 2.5 * float(coordinate.std()) if len(coordinate) > 1 else 1.0,
        "faces": {"train": len(train), "held_out": len(val)},
    }
    if directions is not None:
        out["attribute_names"] = labels.names
        out["attribute_directions"] = directions
    return out
