"""random_generation: decode z ~ N(0, I); beside them samples from where real codes lie and
reconstructions, and how face-like each set is (Frechet distance of the classifier's features to
held-out photos)."""
from __future__ import annotations

import math

import torch

from exercise2 import measures as M
from exercise2.context import write_summary
from exercise2.dataset import to_float
from exercise2.drawing import save_grid


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
    fitted = ctx.decode(st["mu_mean"] + st["mu_std"] * torch.randn(args.num_samples, z_dim, generator=gen))
    save_grid(fitted, out / "samples_from_fitted_code_distribution.png", nrow)
    faces, source = ctx.held_out_or_decoded(8)
    save_grid(torch.cat([faces, ctx.decode(ctx.encode_faces(faces))]), out / "reconstructions.png", len(faces))
    mu_std, kl_units = st["mu_std"], st["kl_per_unit"]
    summary = {
        "num_samples": args.num_samples, "seed": args.seed,
        "mean_posterior_kl_nats": float(kl_units.sum()), "code_mean_norm": float(st["mu_mean"].norm()),
        "code_std_per_unit": {"min": float(mu_std.min()), "median": float(mu_std.median()), "max": float(mu_std.max())},
        "units_with_code_std_within_0.5_to_2": int(((mu_std > 0.5) & (mu_std < 2)).sum()),
        "units_wider_than_prior": int((mu_std > 2).sum()), "units_narrower_than_prior": int((mu_std < 0.5).sum()),
        "reconstructions_of": source, "statistics_source": st.get("source"),
        "files": ["samples_from_prior.png", "samples_from_fitted_code_distribution.png", "reconstructions.png"],
    }
    fd = frechet_distances(ctx, gen)
    if fd:
        summary["frechet_distance"] = fd
    write_summary(summary, out / "summary.json")
    report(summary, out, z_dim)
    return summary


def frechet_distances(ctx, gen: torch.Generator) -> dict | None:
    """Frechet distances of the classifier's features of four image sets to those of held-out photos."""
    clf, data = ctx.classifier(), ctx.faces(required=False)
    if clf is None or data is None:
        print("note: no Frechet distance: it needs the face data and the attribute classifier")
        return None
    train, val = data
    n = min(len(val), 1000)
    st = ctx.analysis()
    z_dim = st["mu_std"].shape[0]
    ref = clf.predict(to_float(val[:n]), features=True)
    sets = {"training_photos": to_float(train[torch.randperm(len(train), generator=gen)[:n]]),
            "reconstructions": ctx.decode(ctx.encode_faces(val[:n])),
            "samples_from_fitted_code_distribution": ctx.decode(st["mu_mean"] + st["mu_std"] * torch.randn(n, z_dim, generator=gen)),
            "samples_from_prior": ctx.decode(torch.randn(n, z_dim, generator=gen))}
    out = {"reference_faces": n, "features": "attribute classifier, pooled last block (256)"}
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
        print(f"how face-like (Frechet distance of classifier features to {fd['reference_faces']} held-out photos; "
              "lower is closer):")
        for key in ("training_photos", "reconstructions", "samples_from_fitted_code_distribution", "samples_from_prior"):
            print(f"  {key.replace('_', ' '):40s} {fd[key]:8.2f}")
