"""The statistics of the face analyses, as pure functions (no model, no files): rank statistics
(AUC), mutual information and MIG, a linear probe, a Frechet distance between feature sets,
identity flips and face-descriptor distances across views. Yaw and face descriptors are measured in
`landmarks.py`, the codes of turned faces made in `pose.py`, the figures drawn in `drawing.py` and
`landmark_drawing.py`.

Conventions: codes are float tensors `[N, Z]`, labels bool `[N, A]`, images float `[N, 3, H, W]`
in [0, 1].
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# Attributes that belong to the person, not to the moment (pose, expression, lighting, make-up): a
# rotation that flips one of these has changed who is shown.
IDENTITY_ATTRIBUTES = ("Male", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Bald", "Eyeglasses",
                       "Wearing_Hat", "Bangs", "Mustache", "Goatee", "No_Beard", "Pale_Skin", "Young")


# ---------------------------------------------------------------------------------------- ranks
def ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N along dim 0 of `[N, ...]`, as doubles; tied values all get the mean of the ranks they
    occupy (mid-ranks: three values tied for ranks 4, 5 and 6 all get 5)."""
    flat = x.flatten(1) if x.dim() > 1 else x.view(-1, 1)
    n = len(flat)
    values, order = flat.sort(dim=0, stable=True)
    pos = torch.arange(n, device=x.device).view(-1, 1).expand_as(order)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[1:] = values[1:] != values[:-1]                                 # first of each run of equal values
    ends = torch.ones_like(starts)
    ends[:-1] = starts[1:]                                                 # last of each run
    first = torch.where(starts, pos, torch.zeros_like(pos)).cummax(0).values
    last = torch.where(ends, pos, torch.full_like(pos, n)).flip(0).cummin(0).values.flip(0)
    r = torch.empty(flat.shape, dtype=torch.float64, device=x.device)
    r.scatter_(0, order, (first + last).double() / 2 + 1)
    return r.view(x.shape)


def auc_matrix(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AUC of each score column for each label column: `[N, Z]`, bool `[N, A]` -> `[Z, A]`.
    P(score of a positive > score of a negative) + 1/2 P(tie) (Mann-Whitney U / (n_pos n_neg), from
    mid-ranks): 0.5 = no relation, 1 = the score ranks every positive above every negative, 0 = the
    reverse; a score that ties everything (a constant) gets 0.5. NaN where a label has only one class."""
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
    """Each unit's values -> equal-frequency bin indices 0..bins-1: `[N, Z]` -> long `[N, Z]`.
    The bin is floor((mid-rank - 1) bins / N), so equal values share a bin: a unit with few distinct
    values fills fewer (and unequal) bins, a constant unit one bin (and carries no information)."""
    return ((ranks(codes) - 1) * bins / len(codes)).long().clamp_(0, bins - 1)


def _bin_onehot(codes: torch.Tensor, bins: int) -> torch.Tensor:
    """`[N, Z]` -> double `[N, Z, bins]`: each value's equal-frequency bin, one-hot."""
    return F.one_hot(quantile_bins(codes, bins), bins).double()


def _mi_from_onehot(onehot: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Plug-in I(bin of unit j; y_a) in nats from one-hot bins `[N, Z, B]` and labels `[N, A]`: `[Z, A]`."""
    n = len(onehot)
    y = labels.double()                                                  # [N, A]
    p_bin = onehot.mean(0)[:, :, None]                                   # [Z, B, 1]
    joint1 = torch.einsum("nzb,na->zba", onehot, y) / n                  # p(bin, y=1)  [Z, B, A]
    joint0 = p_bin - joint1                                              # p(bin, y=0)
    p1 = y.mean(0)[None, None]                                           # [1, 1, A]

    def term(joint, p_y):
        ratio = joint / (p_bin * p_y).clamp_min(1e-300)
        return torch.where(joint > 0, joint * ratio.clamp_min(1e-300).log(), torch.zeros_like(joint))

    return (term(joint1, p1) + term(joint0, 1 - p1)).sum(1)


def mutual_information(codes: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> torch.Tensor:
    """Plug-in estimate of I(z_j; y_a) in nats from equal-frequency bins of each unit: `[Z, A]`.

    It is biased upwards. For a unit independent of y, 2 N times the estimate is about chi-square with
    bins - 1 degrees of freedom: mean (bins - 1) / (2 N) nats, spread sqrt(2 (bins - 1)) / (2 N). To first
    order in 1/N the bias is the same, (bins - 1) / (2 N), for every unit whose bins all hold both
    classes of y (equal-frequency bins give every unit the same bin sizes); it is smaller for a unit
    whose bins separate the classes (empty bin-class cells) or that has tied values (fewer bins). So in
    MIG's gap (top minus second MI) the shared bias cancels only on average and only between two units
    of that kind: the noise does not (the top two of many estimates are picked for being large, so the
    gap of units that carry nothing is > 0 on average; `mig_null` measures it), an attribute held by one
    unit alone loses about (bins - 1) / (2 N) of its gap, and the division by H(y) scales all of this up
    for rare attributes (small H(y))."""
    return _mi_from_onehot(_bin_onehot(codes, bins), labels)


def _unit_index(informative, z: int) -> torch.Tensor:
    """The units that compete in MIG: all (None), a bool mask `[Z]`, or unit indices."""
    if informative is None:
        return torch.arange(z)
    sel = torch.as_tensor(informative)
    if sel.dtype == torch.bool:
        if sel.shape != (z,):
            raise ValueError(f"informative mask has shape {tuple(sel.shape)}, expected ({z},)")
        return sel.nonzero().flatten()
    sel = sel.long().flatten()
    if len(sel) and (sel.min() < 0 or sel.max() >= z):
        raise ValueError(f"informative unit indices must lie in 0..{z - 1}")
    return sel


def _posterior_sample(codes: torch.Tensor, logvar, generator: torch.Generator) -> torch.Tensor:
    """z = mu + exp(logvar / 2) eps (one draw per face) when `logvar` is given, else the codes."""
    if logvar is None:
        return codes
    eps = torch.randn(codes.shape, generator=generator, dtype=torch.float64).to(codes.device)
    return codes.double() + (0.5 * logvar.double()).exp() * eps


def _gaps(mi: torch.Tensor, h: torch.Tensor):
    """[Z, A] MI, [A] entropies -> per attribute (top MI - second MI) / H, top MI, second MI, top unit
    (positions in mi; None without units)."""
    if mi.shape[0] == 0:
        zero = torch.zeros_like(h)
        return zero, zero, zero, None
    top = mi.topk(min(2, mi.shape[0]), dim=0)
    second = top.values[1] if mi.shape[0] > 1 else torch.zeros_like(h)
    return (top.values[0] - second) / h, top.values[0], second, top.indices[0]


def _null_draws(codes, labels, bins, permutations, generator) -> torch.Tensor:
    """Mean MIG over attributes (all units of `codes` compete) for `permutations` shuffles of the faces'
    label rows: `[permutations]`."""
    onehot = _bin_onehot(codes, bins)                                   # the bins do not depend on the labels
    h = binary_entropy(labels)
    draws = [_gaps(_mi_from_onehot(onehot, labels[torch.randperm(len(labels), generator=generator)]), h)[0].mean()
             for _ in range(permutations)]
    return torch.stack(draws) if draws else torch.zeros(0, dtype=torch.float64)


def _null_summary(draws: torch.Tensor, q: float) -> dict:
    nan = float("nan")
    return {"mean": float(draws.mean()) if len(draws) else nan, "std": float(draws.std()) if len(draws) > 1 else nan,
            "quantile": float(torch.quantile(draws, q)) if len(draws) else nan, "q": q, "permutations": len(draws)}


def mig_null(codes: torch.Tensor, labels: torch.Tensor, bins: int = 10, permutations: int = 100,
             generator: torch.Generator | None = None, informative=None, logvar=None, q: float = 0.95) -> dict:
    """MIG (mean over attributes) when codes and attributes are independent, from `permutations`
    shuffles of which face has which label row (the attributes stay together): what the estimator gives
    for a code that carries nothing, with these faces, units, bins and label frequencies.
    `informative`, `logvar`: as in `mig` (with `logvar` the codes are drawn once, before the shuffles).
    Returns {mean, std, quantile (the q-quantile), q, permutations}."""
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    z = _posterior_sample(codes, logvar, gen)[:, _unit_index(informative, codes.shape[1])]
    return _null_summary(_null_draws(z, labels, bins, permutations, gen), q)


def mig(codes: torch.Tensor, labels: torch.Tensor, names: list[str], bins: int = 10, bootstrap: int = 0, *,
        informative=None, logvar: torch.Tensor | None = None, permutations: int = 0,
        generator: torch.Generator | None = None) -> dict:
    """Mutual information gap (Chen et al. 2018) with attributes as the factors: for each attribute,
    (the largest minus the second largest I(z_j; y)) / H(y), then the mean over attributes.
    1 = each attribute lives in one unit alone; 0 = it is spread over units (or absent). Returns {mig,
    bins, faces, units_compared, sampled_from_posterior, per_attribute: {name: {mig, unit, mi_top,
    mi_second, entropy}}} and the entries below. Even codes that carry nothing score above 0 (see
    `mutual_information`): `permutations` measures how far.

    MI is estimated on the codes with equal-frequency bins, which ignore scale: a collapsed unit of a
    beta-VAE (KL ~ 0: posterior std ~ 1, mean moving by a tiny amount) whose mean still follows an
    attribute looks as informative as a unit that carries it. Two remedies, usable together:
    `informative`  bool mask `[Z]` or unit indices: only these units compete (e.g. KL > 0.1 nats);
                   'unit' stays the index among all units (None where none competes; MIG then 0)
    `logvar`       `[N, Z]` posterior log-variances (`codes` being the means): MI is estimated on one draw
                   z = mu + exp(logvar / 2) eps per face, so a unit whose posterior spread swamps the
                   spread of its means carries nothing
    `bootstrap` > 0: bootstrap_std, the std of the mean MIG over that many resamples of the faces, and
    bootstrap_interval, their 2.5 and 97.5 percentiles.
    `permutations` > 0: null = `mig_null` of these codes (what independent codes score), mig_minus_null,
    p_value = (1 + #null draws >= mig) / (1 + permutations), and with `bootstrap` mig_minus_null_interval
    = mig_minus_null +- 1.96 bootstrap_std.
    The draws, resamples and shuffles use `generator` in that order (default: seeded with 0)."""
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sampled = _posterior_sample(codes, logvar, gen)
    idx = _unit_index(informative, codes.shape[1])
    z = sampled[:, idx]
    mi = mutual_information(z, labels, bins)                      # [units, A]
    h = binary_entropy(labels)
    gap, top_mi, second, top_unit = _gaps(mi, h)
    per = {name: {"mig": float(gap[a]), "unit": None if top_unit is None else int(idx[top_unit[a]]),
                  "mi_top": float(top_mi[a]), "mi_second": float(second[a]), "entropy": float(h[a])}
           for a, name in enumerate(names)}
    out = {"mig": float(gap.mean()), "bins": bins, "faces": len(codes), "units_compared": len(idx),
           "sampled_from_posterior": logvar is not None, "per_attribute": per}
    if bootstrap:
        draws = torch.tensor([mig(z[i], labels[i], names, bins)["mig"]
                              for i in (torch.randint(0, len(z), (len(z),), generator=gen) for _ in range(bootstrap))],
                             dtype=torch.float64)
        out["bootstrap_std"] = float(draws.std())
        out["bootstrap_interval"] = torch.quantile(draws, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    if permutations:
        null = _null_draws(z, labels, bins, permutations, gen)
        out["null"] = _null_summary(null, 0.95)
        out["mig_minus_null"] = out["mig"] - out["null"]["mean"]
        out["p_value"] = (1 + int((null >= out["mig"]).sum())) / (1 + permutations)
        if bootstrap:
            half = 1.96 * out["bootstrap_std"]
            out["mig_minus_null_interval"] = [out["mig_minus_null"] - half, out["mig_minus_null"] + half]
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


def face_ellipse(size: int = 64) -> torch.Tensor:
    """bool `[size, size]`: the central ellipse where an aligned face crop holds the face."""
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return ((yy / size - 0.58) / 0.36) ** 2 + ((xx / size - 0.5) / 0.3) ** 2 <= 1


# ---------------------------------------------------------------------------------------- feature distance
def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets `[N, D]`, `[M, D]` (the FID formula:
    |mu_a - mu_b|^2 + tr(Ca + Cb - 2 (Ca Cb)^(1/2)), sample covariances with N - 1).
    tr (Ca Cb)^(1/2) is the sum of the square roots of the eigenvalues of Ca Cb, taken from the symmetric
    positive semi-definite Ca^(1/2) Cb Ca^(1/2), which has the same eigenvalues (symmetric eigensolvers
    only, so it stays real and stable). Ca and Cb need not commute; tr(Ca^(1/2) Cb^(1/2)), which equals it
    only when they do, is not used."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))   # D = 1: cov gives a scalar
    va, vecs = torch.linalg.eigh(ca)
    sqrt_a = vecs @ torch.diag(va.clamp_min(0).sqrt()) @ vecs.T
    m = sqrt_a @ cb @ sqrt_a
    mid = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + ca.trace() + cb.trace() - 2 * mid)


# ---------------------------------------------------------------------------------------- views
def _flipped(probs_views: torch.Tensor, reference: torch.Tensor, confident: float):
    """(flipped, confident) bool `[F, A]`: which predictions of the reference `[F, A]` are confident
    (>= confident or <= 1 - confident) and change side of 0.5 in any view of `probs_views` `[F, V, A]`."""
    sure = (reference >= confident) | (reference <= 1 - confident)
    return ((probs_views >= 0.5) != (reference >= 0.5)[:, None]).any(1) & sure, sure


def identity_flips(probs_views: torch.Tensor, reference: torch.Tensor, confident: float = 0.8, names=None) -> dict:
    """Across views of each face, how many confident identity predictions change side.
    `probs_views` `[F, V, A]` classifier probabilities of each view, `reference` `[F, A]` those of the
    face's own reconstruction. An attribute is confident for a face where the reference probability is
    >= confident or <= 1 - confident; it flips if any view predicts the other side of 0.5. With
    `names`, per_attribute gives [flipped, confident] for each."""
    flipped, sure = _flipped(probs_views, reference, confident)          # [F, A] each
    n = int(sure.sum())
    out = {"confident_predictions": n, "flipped": int(flipped.sum()),
            "flip_share": float(flipped.sum()) / n if n else float("nan"),
            "faces_with_any_flip": float(flipped.any(1).float().mean()) if len(flipped) else float("nan")}
    if names is not None:
        out["per_attribute"] = {name: [int(flipped[:, a].sum()), int(sure[:, a].sum())] for a, name in enumerate(names)}
    return out


def flip_share_difference(probs_a: torch.Tensor, probs_b, reference: torch.Tensor,
                          confident: float = 0.8, resamples: int = 1000, seed: int = 0) -> dict:
    """Flip share along path a minus along path b on the same faces (`identity_flips`' inputs, `[F, V, A]`
    each; `probs_b` may be a list of several paths b, e.g. random directions, whose flips per face are
    averaged), with a 95 % interval from a paired bootstrap over faces: {difference, ci95, resamples}."""
    def per_face(probs):
        return _flipped(probs, reference, confident)[0].sum(1).double()         # flips per face

    sure = _flipped(probs_a, reference, confident)[1]
    fa = per_face(probs_a)
    fb = torch.stack([per_face(b) for b in (probs_b if isinstance(probs_b, (list, tuple)) else [probs_b])]).mean(0)
    n = sure.sum(1).double()
    if float(n.sum()) == 0:
        return {"difference": float("nan"), "ci95": [float("nan"), float("nan")], "resamples": 0}
    idx = torch.randint(0, len(n), (resamples, len(n)), generator=torch.Generator().manual_seed(seed))
    boot = (fa[idx].sum(1) - fb[idx].sum(1)) / n[idx].sum(1).clamp_min(1)
    lo, hi = torch.quantile(boot, torch.tensor([0.025, 0.975], dtype=boot.dtype)).tolist()
    return {"difference": float((fa.sum() - fb.sum()) / n.sum()), "ci95": [lo, hi], "resamples": resamples}


def descriptor_separation(photo: torch.Tensor, recon: torch.Tensor) -> dict:
    """Whether a face descriptor (e.g. dlib's, `[N, D]` of N photos and of their reconstructions, row i
    of each the same face) tells a face's own reconstruction from other faces' reconstructions: the
    AUC that d(photo i, recon i) < d(photo i, recon j) over all pairs i != j (ties count one half; 0.5:
    it cannot tell), the median distances, and the median distance between different faces'
    reconstructions (the yardstick of `descriptor_identity`)."""
    n = len(photo)
    off = ~torch.eye(n, dtype=torch.bool)
    d = torch.cdist(photo.double(), recon.double())
    own, cross = d.diagonal(), d[off]
    scores = -torch.cat([own, cross])[:, None]                       # nearer = higher score
    positive = torch.cat([torch.ones(n), torch.zeros(len(cross))]).bool()[:, None]
    between = torch.cdist(recon.double(), recon.double())[off]
    nan = float("nan")
    return {"faces": n, "auc_own_vs_other_reconstructions": float(auc_matrix(scores, positive)[0, 0]) if n > 1 else nan,
            "median_distance_photo_to_own_reconstruction": float(own.median()) if n else nan,
            "median_distance_photo_to_other_reconstructions": float(cross.median()) if len(cross) else nan,
            "median_distance_between_reconstructions": float(between.median()) if len(between) else nan}


def descriptor_identity(view_desc: torch.Tensor, own_desc: torch.Tensor, reference: float) -> dict:
    """How far each view of a face stays from the face: descriptors of the views `[F, V, D]`, of the
    face's own reconstruction `[F, D]`; `reference`: the median descriptor distance between different
    faces' reconstructions. A view closer to its own reconstruction than `reference` is nearer to its
    face than a typical other face is."""
    dist = (view_desc.double() - own_desc.double()[:, None]).norm(dim=-1)          # [F, V]
    closer = dist < reference
    return {"faces": len(dist), "views": dist.shape[1], "reference_distance": float(reference),
            "closer_than_other_faces_share": float(closer.float().mean()),
            "faces_with_every_view_closer": float(closer.all(1).float().mean()),
            "median_distance_to_own_reconstruction": float(dist.median()),
            "median_distance_by_view": dist.median(0).values.tolist()}


def yaw_span(view_yaw: torch.Tensor, low: float, high: float) -> dict:
    """`view_yaw` `[F, V]`: per face the range its views cover, against the target [low, high]
    (e.g. the 10th and 90th percentile of real faces' yaw)."""
    lo, hi = view_yaw.min(1).values, view_yaw.max(1).values
    covers = (lo <= low) & (hi >= high)
    span = (hi - lo) / max(high - low, 1e-12)
    return {"faces": len(view_yaw), "covers_target_share": float(covers.float().mean()),
            "span_over_target_median": float(span.median()), "view_yaw_min_median": float(lo.median()),
            "view_yaw_max_median": float(hi.median())}


def round_floats(obj, digits: int = 4):
    """Nested dicts/lists/tuples with floats rounded (for summary.json files a person reads); NaN and
    +-inf become None (JSON null, so `json.dumps(..., allow_nan=False)` takes the result) and numpy
    scalars Python numbers."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return round(obj, digits) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj
