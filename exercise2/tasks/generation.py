"""random_generation: decode z ~ N(0, I); beside them samples from where real codes lie and
reconstructions, and how face-like each set is: the Frechet distance of the classifier's features of
each set to those of held-out photos, like for like (`FRECHET_PROTOCOL`)."""
from __future__ import annotations

import math

import torch

from exercise2 import measures as M
from exercise2.context import write_summary
from exercise2.dataset import to_float
from exercise2.drawing import save_grid

FRECHET_FACES = 1000   # images per set at most (each half of the held-out faces must hold as many)
FRECHET_PROTOCOL = (
    "every set holds the same number N of images, each compared with the photos of one half of the held-out "
    "faces (the reference, N photos): reconstructions are of the photos of the OTHER held-out half (unpaired: no "
    "reference photo's own reconstruction is in the set); training_photos: N random training photos (the noise "
    "floor of two sets of real photos); samples_from_fitted_code_distribution: decodes of codes drawn from a "
    "full-covariance Gaussian fitted to the posterior means of the training faces; samples_from_prior: decodes "
    "of z ~ N(0, I)")


def gaussian_samples(mean: torch.Tensor, cov: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n codes from N(mean, cov), `cov` a full covariance `[Z, Z]` (through its eigendecomposition, so a
    nearly singular one, e.g. of collapsed units, is fine)."""
    evals, evecs = torch.linalg.eigh(cov.double())
    eps = torch.randn(n, len(mean), generator=gen, dtype=torch.float64)
    return (mean.double() + (eps * evals.clamp_min(0).sqrt()) @ evecs.T).float()


def fitted_codes(ctx, st: dict, n: int, gen: torch.Generator) -> tuple[torch.Tensor, str]:
    """n codes from a Gaussian fitted to where real codes lie: full covariance of the training faces'
    posterior means; statistics of an older version keep only the held-out codes' per-unit spread
    (said in a note). Returns (codes, description)."""
    if "code_cov_train" in st:
        return (gaussian_samples(st["code_mean_train"], st["code_cov_train"], n, gen),
                f"full-covariance Gaussian of the posterior means of {st['faces']['train']:,} training faces")
    ctx.say("note: these statistics predate the training codes' covariance: the fitted samples come from a diagonal "
            "Gaussian of the held-out codes (run once with the face data to recompute them)")
    z = st["mu_mean"] + st["mu_std"] * torch.randn(n, st["mu_std"].shape[0], generator=gen)
    return z, "diagonal Gaussian of the held-out faces' posterior means (older statistics)"


@torch.no_grad()
def run(ctx) -> dict:
    args = ctx.args
    out = ctx.task_dir("random_generation")
    gen = torch.Generator().manual_seed(args.seed)
    st = ctx.analysis()
    z_dim = st["mu_std"].shape[0]
    nrow = max(1, int(math.sqrt(args.num_samples)))
    save_grid(ctx.decode(torch.randn(args.num_samples, z_dim, generator=gen)), out / "samples_from_prior.png", nrow)
    # The same number of samples from a Gaussian fitted to where real codes lie: if these look like
    # faces and the prior samples do not, the decoder is fine and the prior is the problem.
    codes, fitted_from = fitted_codes(ctx, st, args.num_samples, gen)
    save_grid(ctx.decode(codes), out / "samples_from_fitted_code_distribution.png", nrow)
    faces, source = ctx.held_out_or_decoded(8)
    save_grid(torch.cat([faces, ctx.decode(ctx.encode_faces(faces))]), out / "reconstructions.png", len(faces))
    mu_std, kl_units = st["mu_std"], st["kl_per_unit"]
    summary = {
        "num_samples": args.num_samples, "seed": args.seed,
        "mean_posterior_kl_nats": float(kl_units.sum()), "code_mean_norm": float(st["mu_mean"].norm()),
        "code_std_per_unit": {"min": float(mu_std.min()), "median": float(mu_std.median()), "max": float(mu_std.max())},
        "units_with_code_std_within_0.5_to_2": int(((mu_std > 0.5) & (mu_std < 2)).sum()),
        "units_wider_than_prior": int((mu_std > 2).sum()), "units_narrower_than_prior": int((mu_std < 0.5).sum()),
        "fitted_code_distribution": fitted_from,
        "reconstructions_of": source, "statistics_source": st.get("source"),
        "files": ["samples_from_prior.png", "samples_from_fitted_code_distribution.png", "reconstructions.png"],
    }
    fd = frechet_distances(ctx, gen)
    if fd:
        summary["frechet_distance"] = fd
    write_summary(summary, out / "summary.json")
    report(summary, out, z_dim)
    return summary


def frechet_split(n_val: int, n_train: int, gen: torch.Generator, most: int = FRECHET_FACES) -> dict:
    """Indices of equal-size sets: `reference` and `reconstructed`, two disjoint halves of a random
    order of the held-out faces, and `training`, random training faces; N = min(most, n_val // 2, n_train)."""
    n = min(most, n_val // 2, n_train)
    order = torch.randperm(n_val, generator=gen)
    return {"reference": order[:n], "reconstructed": order[n:2 * n], "training": torch.randperm(n_train, generator=gen)[:n]}


@torch.no_grad()
def frechet_distances(ctx, gen: torch.Generator) -> dict | None:
    """Frechet distances of the classifier's features of four image sets to those of held-out photos,
    like for like (FRECHET_PROTOCOL)."""
    clf, data = ctx.classifier(), ctx.faces(required=False)
    if clf is None or data is None:
        ctx.say("note: no Frechet distance: it needs the face data and the attribute classifier")
        return None
    train, val = data
    split = frechet_split(len(val), len(train), gen)
    n = len(split["reference"])
    if n < 2:
        ctx.say(f"note: no Frechet distance: {len(val)} held-out faces, and it needs two halves of at least 2")
        return None
    st = ctx.analysis()
    z_dim = st["mu_std"].shape[0]
    codes, fitted_from = fitted_codes(ctx, st, n, gen)
    ref = clf.predict(to_float(val[split["reference"]]), features=True)
    sets = {"training_photos": to_float(train[split["training"]]),
            "reconstructions": ctx.decode(ctx.encode_faces(val[split["reconstructed"]])),
            "samples_from_fitted_code_distribution": ctx.decode(codes),
            "samples_from_prior": ctx.decode(torch.randn(n, z_dim, generator=gen))}
    out = {"protocol": FRECHET_PROTOCOL, "reference_faces": n, "images_per_set": n,
           "features": "attribute classifier, pooled last block (256)", "fitted_code_distribution": fitted_from}
    out.update({k: M.frechet_distance(clf.predict(v, features=True), ref) for k, v in sets.items()})
    return out


def report(summary: dict, out, z_dim: int) -> None:
    mu_std = summary["code_std_per_unit"]
    print(f"decoded {summary['num_samples']} samples z ~ N(0, I) -> {out / 'samples_from_prior.png'}; reconstructions "
          f"of {summary['reconstructions_of']} -> reconstructions.png")
    print(f"where real faces' codes lie: per-unit std of the posterior means {mu_std['min']:.2f} .. {mu_std['median']:.2f} "
          f"(median) .. {mu_std['max']:.2f} (the prior has 1); {summary['units_with_code_std_within_0.5_to_2']}/{z_dim} "
          f"units within 0.5..2; mean KL to the prior {summary['mean_posterior_kl_nats']:.1f} nats per face.")
    if summary["units_wider_than_prior"]:
        print(f"  -> {summary['units_wider_than_prior']} units spread wider than the prior (typical for beta = 0, "
              "which never pulls codes towards N(0, I)): prior samples miss where faces are encoded. Compare "
              "samples_from_fitted_code_distribution.png, drawn from where the codes really lie.")
    fd = summary.get("frechet_distance")
    if fd:
        print(f"how face-like (Frechet distance of classifier features to {fd['reference_faces']} photos of one held-out "
              "half; every set as large, reconstructions of the other half; lower is closer):")
        for key in ("training_photos", "reconstructions", "samples_from_fitted_code_distribution", "samples_from_prior"):
            print(f"  {key.replace('_', ' '):40s} {fd[key]:8.2f}")
