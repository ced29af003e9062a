"""latent_analysis: what each latent unit encodes. Units ranked by KL (beta > 0, informative units
only) or by how much the decoded face changes (beta = 0, where every unit carries information), each
named by the attributes the classifier sees change along its traversal, by the attribute its code
predicts best on held-out faces, by yaw and pixel measures; labelled traversal grids; disentanglement
(MIG among the informative units on codes drawn from q(z|x), against a permutation null; best single
unit against a linear probe)."""
from __future__ import annotations

import math

import numpy as np
import torch

from exercise2 import measures as M
from exercise2.analysis import INFORMATIVE_KL, informative_units, traversal
from exercise2.classifier import RELIABLE_AUC
from exercise2.context import write_summary
from exercise2.drawing import labelled_grid, save_views_gif, signed_attribute
from exercise2.landmarks import yaw as landmark_yaw
from utils.progress import progress

MIG_BOOTSTRAP = 50      # resamples of the held-out faces for MIG's standard error
MIG_BINS = 10           # equal-frequency bins of each unit's codes for MI
MIG_PERMUTATIONS = 50   # shuffles of the faces' attribute rows for MIG's null (what codes that carry nothing score)
MEASURE_FACES = 64      # faces whose traversals are measured per unit
MAX_MEASURED_UNITS = 48
TRAVERSAL_VALUES = torch.linspace(-3, 3, 9)  # in std of the unit's codes across held-out faces
NAMED_CHANGE = 0.1      # a classifier probability change (or |AUC - 0.5|) that names a unit
# landmark yaw (exercise2/landmarks.py; held-out photos span about -0.2..+0.19 from p10 to p90): a unit whose
# +-2 std traversal moves the decoded faces' mean yaw this much "turns the head"
YAW_UNIT_CHANGE = 0.05


@torch.no_grad()
def unit_effects(ctx, mu: torch.Tensor, units: list[int], names: list[str]) -> list[dict]:
    """For each unit: decode every face with the unit at -2 and +2 std of its codes and measure the
    difference: classifier probabilities of the attributes `names`, yaw, and pixel measures for what no
    attribute covers (left-right antisymmetry: pose or side lighting; background against face, per
    pixel; brightness; warmth)."""
    st, clf = ctx.analysis(), ctx.classifier()
    idx = [clf.names.index(n) for n in names] if clf else []
    background = ~M.face_ellipse(ctx.image_size)
    rows = []
    for unit in progress(units, desc="traversals", unit="unit", leave=False, disable=len(units) < 16):
        img_down, img_up = ctx.traversal_ends(mu, unit, st["mu_std"])
        d = img_up - img_down                                   # [F, 3, 64, 64]
        mag = d.abs().mean(1).mean(0)                           # [64, 64]
        anti = (d - d.flip(-1)).pow(2).sum().item()
        sym = (d + d.flip(-1)).pow(2).sum().item()
        row = {"unit": unit, "kl": float(st["kl_per_unit"][unit]), "mean_abs_change": mag.mean().item(),
               "yaw_change": float((landmark_yaw(img_up) - landmark_yaw(img_down)).mean()),
               "left_right_antisymmetry": anti / max(anti + sym, 1e-12),
               "background_ratio": float(mag[background].mean() / mag[~background].mean().clamp_min(1e-12)),
               "brightness_shift": d.mean().item(), "warmth_shift": (d[:, 0].mean() - d[:, 2].mean()).item()}
        if idx:
            dp = (clf.predict(img_up)[:, idx] - clf.predict(img_down)[:, idx]).mean(0)
            row["classifier_change"] = {n: float(dp[k]) for k, n in enumerate(names)}
        rows.append(row)
    return rows


def rank_units(ctx, mu: torch.Tensor) -> tuple[list[int], str]:
    """(units in the order they are shown, the rule): by KL among the informative units (beta > 0), by
    the decoded change of a +-2 std traversal (beta = 0)."""
    st = ctx.analysis()
    if ctx.beta == 0:
        change = torch.stack([(up - down).abs().mean() for down, up in
                              (ctx.traversal_ends(mu, u, st["mu_std"]) for u in range(mu.shape[1]))])
        return [int(i) for i in torch.argsort(change, descending=True)], \
            "decoded change (beta = 0: every unit carries information, KL does not rank them)"
    order = [int(i) for i in torch.argsort(st["kl_per_unit"], descending=True)]
    informative = informative_units(st["kl_per_unit"], st["mu_std"])
    ranked = [i for i in order if informative[i]]
    if ranked:
        return ranked, f"KL (informative units: > {INFORMATIVE_KL} nats)"
    ctx.say("note: no latent unit is informative (posterior collapse: train longer or lower beta); showing the 4 "
            "units with the largest KL anyway")
    return order[:4], "KL (no informative unit: the 4 units with the largest KL)"


@torch.no_grad()
def run(ctx) -> dict:
    args = ctx.args
    out = ctx.task_dir("latent_analysis")
    st = ctx.analysis()
    faces, source = ctx.held_out_or_decoded(max(args.num_faces, MEASURE_FACES))
    mu = ctx.encode_faces(faces)
    names = ctx.measured_attributes()
    ranked, ranking = rank_units(ctx, mu[:16])
    measured = ranked[:MAX_MEASURED_UNITS]
    table = unit_effects(ctx, mu[:MEASURE_FACES], measured, names)
    summary = {"source": source, "ranking": ranking, "measured_attributes": names,
               "measured_attributes_of": ctx.measured_from, "attributes_note": None,
               "traversal_values_in_code_std": TRAVERSAL_VALUES.tolist(), "statistics_source": st.get("source")}
    labels, data = ctx.labels(), ctx.faces(required=False)
    disentanglement = None
    if labels is not None:
        val_mu, val_logvar = (t[labels.val_has] for t in ctx.encode_all(data[1]))
        val_y = labels.val[labels.val_has]
        auc_names = [n for n in labels.names if n in names]
        summary["code_auc_rule"] = "the attributes the classifier reads reliably on this VAE's decodes"
        if not auc_names:
            auc_names = labels.names
            summary["code_auc_rule"] = "every labelled attribute (the classifier reads none reliably on this VAE)"
            ctx.say(f"note: code AUC over {summary['code_auc_rule']}")
        summary["code_auc_attributes"] = auc_names
        auc = M.auc_matrix(val_mu[:, measured], val_y[:, [labels.names.index(n) for n in auc_names]])  # [units, A]
        for r, row in enumerate(table):
            row["code_auc"] = {n: float(auc[r, k]) for k, n in enumerate(auc_names) if not math.isnan(auc[r, k])}
        train_mu = ctx.encode_faces(data[0])[labels.train_has]
        disentanglement = measure_disentanglement(ctx, train_mu, labels.train[labels.train_has], val_mu, val_y, labels.names,
                                                  informative=informative_units(st["kl_per_unit"], st["mu_std"]),
                                                  val_logvar=val_logvar)
    else:
        summary["attributes_note"] = "no attribute labels: code AUC and MIG left out"
    for row in table:
        row["description"] = describe_unit(row)
    shown = measured[: args.max_units]
    files = traversal_figures(ctx, mu, shown, table, out)
    summary.update({
        "kl_per_unit_ranked": [{"unit": int(i), "kl": float(st["kl_per_unit"][i])}
                               for i in torch.argsort(st["kl_per_unit"], descending=True)],
        "units_ranked": ranked, "units_in_grids": shown, "units": table, "disentanglement": disentanglement,
        "files": files,
        "layout": "traversal_face*.png: one row per unit (label: unit, KL or decoded change, the attributes "
                  "whose classifier probability changes most along it (at +2 std minus at -2 std), the "
                  "attribute its code predicts best on held-out faces (AUC; below 0.5: the code falls as the "
                  "attribute appears), what no attribute covers), columns: code -3..+3 std of that unit "
                  "across faces"})
    write_summary(summary, out / "summary.json")
    report(ctx, summary, out)
    return summary


def measure_disentanglement(ctx, train_mu, train_y, val_mu, val_y, all_names: list[str], *, informative=None,
                            val_logvar: torch.Tensor | None = None) -> dict | None:
    """MIG and best single unit against a linear probe, over the attributes the classifier reads on
    every VAE's decodes (where none is: over every attribute with both classes, said in a note).

    MIG is estimated among the `informative` units only (bool mask `[Z]`; None: every unit) on one draw
    z ~ q(z|x) per held-out face (with `val_logvar`; else on the posterior means), against a permutation
    null: a collapsed unit (KL ~ 0) whose mean still follows an attribute cannot win an attribute, and
    MIG - null says how far the code is above what codes that carry nothing score. The former estimator
    (posterior means, every unit, no null) is kept for comparison, with the attributes whose top unit
    it finds among the units that are not informative."""
    clf = ctx.classifier()
    read_by_all = set.intersection(*(set(v) for v in clf.reliable.values())) if clf and clf.reliable else set()
    both = (val_y.sum(0) >= 5) & ((~val_y).sum(0) >= 5) & (train_y.sum(0) >= 5) & ((~train_y).sum(0) >= 5)
    usable = [n for a, n in enumerate(all_names) if both[a]]   # MI and AUC need both classes
    if not usable:
        ctx.say("note: no attribute has at least 5 faces with and 5 without it in both splits: MIG left out")
        return None
    common = [n for n in usable if n in read_by_all]
    rule = f"read reliably (AUC >= {RELIABLE_AUC}) by the classifier on the reconstructions of every VAE it was measured on"
    if not common:
        common, rule = usable, "every attribute with both classes (none is read reliably on every VAE's decodes)"
        ctx.say(f"note: MIG over {rule}")
    cols = [all_names.index(n) for n in common]
    all_cols = [all_names.index(n) for n in usable]
    if informative is not None:
        informative = torch.as_tensor(informative, dtype=torch.bool)
        if not informative.any():
            ctx.say("note: no latent unit is informative: MIG is 0 (no unit competes)")

    def estimate(columns, names):
        return M.mig(val_mu, val_y[:, columns], names, MIG_BINS, bootstrap=MIG_BOOTSTRAP, informative=informative,
                     logvar=val_logvar, permutations=MIG_PERMUTATIONS, generator=torch.Generator().manual_seed(0))

    means = M.mig(val_mu, val_y[:, all_cols], usable, MIG_BINS)           # the former estimator, for comparison
    not_informative = [n for n, v in means["per_attribute"].items()
                       if informative is not None and v["unit"] is not None and not informative[v["unit"]]]
    probe = M.single_unit_vs_probe(train_mu, train_y[:, cols], val_mu, val_y[:, cols], common)
    return {"attributes": common, "attributes_rule": rule,
            "mig_estimator": ("among the informative units" if informative is not None else "among every unit")
                             + (", on one draw z ~ q(z|x) per held-out face" if val_logvar is not None
                                else ", on the posterior means")
                             + f", {MIG_BINS} equal-frequency bins; null: {MIG_PERMUTATIONS} shuffles of the "
                               f"faces' attribute rows; interval: MIG - null +- 1.96 bootstrap std ({MIG_BOOTSTRAP} resamples)",
            "informative_units": None if informative is None else informative.nonzero().flatten().tolist(),
            "mig": estimate(cols, common),
            "mig_all_attributes": estimate(all_cols, usable),
            "mig_posterior_means_all_units": {"mig": means["mig"], "units_compared": means["units_compared"],
                                              "attributes_won_by_a_unit_not_informative": not_informative},
            "single_unit_vs_probe": probe,
            "mean_single_unit_auc": float(np.mean([v["unit_auc"] for v in probe.values()])),
            "mean_probe_auc": float(np.mean([v["probe_auc"] for v in probe.values()])),
            "held_out_faces": len(val_mu)}


def traversal_figures(ctx, mu, shown: list[int], table: list[dict], out) -> list[str]:
    """One labelled grid (and GIF) per face: a row per unit from -3 to +3 std of its codes."""
    std = ctx.analysis()["mu_std"]
    by_unit = {r["unit"]: r for r in table}
    files = []
    for f in range(min(ctx.args.num_faces, len(mu))):
        rows = [ctx.decode_views(traversal(mu[f:f + 1], unit, TRAVERSAL_VALUES, std))[0] for unit in shown]
        labels = []
        for unit in shown:
            row = by_unit[unit]
            head = f"unit {unit}  " + (f"change {row['mean_abs_change']:.3f}" if ctx.beta == 0 else f"KL {row['kl']:.2f}")
            labels.append("\n".join([head] + row["description"]["lines"]))
        title = f"{ctx.name}: face {f + 1}, each row one unit from -3 to +3 std of its codes"
        labelled_grid(rows, labels, title, [f"{v:+.1f}" for v in TRAVERSAL_VALUES.tolist()],
                      label_width=340).save(out / f"traversal_face{f + 1}.png")
        save_views_gif(torch.stack(rows), out / f"traversal_face{f + 1}.gif", nrow=min(8, len(rows)))
        files += [f"traversal_face{f + 1}.png", f"traversal_face{f + 1}.gif"]
    return files


def top_effects(effects: dict | None, k: int, centre: float) -> str:
    if not effects:
        return "-"
    best = sorted(effects.items(), key=lambda kv: -abs(kv[1] - centre))[:k]
    return ", ".join(f"{n} {v:+.2f}" if centre == 0 else f"{n} {v:.2f}" for n, v in best)


def describe_unit(row: dict) -> dict:
    """Words for a unit from its measures: the attributes that change along it (classifier, |change|
    >= NAMED_CHANGE = 0.1), the attribute its code predicts best (AUC, |AUC - 0.5| >= 0.1), yaw, and
    pixel measures where no attribute covers the change."""
    lines = []
    change = row.get("classifier_change") or {}
    strong = sorted(((n, v) for n, v in change.items() if abs(v) >= NAMED_CHANGE), key=lambda kv: -abs(kv[1]))[:2]
    lines += [f"{n} {v:+.2f}" for n, v in strong]
    auc = row.get("code_auc") or {}
    if auc:
        n, v = max(auc.items(), key=lambda kv: abs(kv[1] - 0.5))
        if abs(v - 0.5) >= NAMED_CHANGE:
            lines.append(f"code: {n} AUC {v:.2f}")
    other = []
    if abs(row["yaw_change"]) >= YAW_UNIT_CHANGE:
        other.append(f"turns head (yaw {row['yaw_change']:+.3f})")
    elif row["left_right_antisymmetry"] > 0.6:
        other.append("left-right: side lighting or hair parting")
    if row["background_ratio"] > 1.5:  # changes the background more than the face, per pixel
        other.append("background")
    if abs(row["brightness_shift"]) > 0.03:
        other.append("brighter" if row["brightness_shift"] > 0 else "darker")
    if abs(row["warmth_shift"]) > 0.03:
        other.append("warmer (redder)" if row["warmth_shift"] > 0 else "cooler (bluer)")
    lines += other[:2]
    if not lines:
        lines.append("small or unnamed change")
    return {"lines": lines[:5], "other": ", ".join(other) or "-",
            "top_attribute": signed_attribute(*strong[0]) if strong else None}


def report(ctx, summary: dict, out) -> None:
    print(f"latent units of {ctx.name} ranked by {summary['ranking']}: {len(summary['units_ranked'])} units; "
          f"traversals of {summary['source']}")
    print(f"{'unit':>4} {'KL':>7} {'change':>7} {'yaw':>6}  {'traversal: classifier change':32s} {'code AUC':24s} other")
    for row in summary["units"][: max(ctx.args.max_units, 16)]:
        print(f"{row['unit']:4d} {row['kl']:7.2f} {row['mean_abs_change']:7.3f} {row['yaw_change']:+6.3f}  "
              f"{top_effects(row.get('classifier_change'), 2, centre=0.0):32s} "
              f"{top_effects(row.get('code_auc'), 1, centre=0.5):24s} {row['description']['other']}")
    d = summary["disentanglement"]
    if d:
        print(f"MIG ({d['mig_estimator']}):")
        for key, what in (("mig", f"{len(d['attributes'])} attributes ({d['attributes_rule']})"),
                          ("mig_all_attributes", f"all {len(d['mig_all_attributes']['per_attribute'])} with both classes")):
            m = d[key]
            lo, hi = m["mig_minus_null_interval"]
            print(f"  over {what}: MIG {m['mig']:.3f} (bootstrap std {m['bootstrap_std']:.3f}), null {m['null']['mean']:.3f}, "
                  f"MIG - null {m['mig_minus_null']:+.3f} [{lo:+.3f}, {hi:+.3f}], p = {m['p_value']:.3f}; "
                  f"{m['units_compared']} units compete")
        old = d["mig_posterior_means_all_units"]
        won = old["attributes_won_by_a_unit_not_informative"]
        print(f"  former estimator (posterior means, all {old['units_compared']} units, no null): {old['mig']:.3f}; "
              f"a unit that is not informative is the top unit of {len(won)} of "
              f"{len(d['mig_all_attributes']['per_attribute'])} attributes")
        print(f"best single unit vs linear probe on all units (held-out AUC, mean over those attributes): "
              f"{d['mean_single_unit_auc']:.3f} vs {d['mean_probe_auc']:.3f}")
    print(f"files in {out}")
