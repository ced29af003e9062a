"""edit (beyond the sheet): move faces along an attribute's direction in code space (mean code of
training faces with the attribute minus without) and measure what changes: that attribute, the
others, identity."""
from __future__ import annotations

import json

import numpy as np
import torch

from exercise2 import measures as M
from exercise2.context import write_summary
from exercise2.drawing import labelled_grid
from utils.errors import UserError

EDIT_STEPS = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])  # multiples of the attribute direction
EDIT_FACES = 200


def attribute_direction(ctx, attribute: str | None) -> tuple[torch.Tensor, str | None]:
    """(the code direction of --attribute, where it comes from), or a UserError that says what is missing."""
    st = ctx.analysis()
    if "attribute_directions" not in st:  # faces without labels: the directions stored beside this model
        stored = ctx.stored_analysis() or {}
        if "attribute_directions" not in stored or stored.get("iteration") != ctx.iteration:
            raise UserError("--task edit needs attribute directions: run it with face data that has "
                            "list_attr_celeba.txt (or --attr_file)")
        ctx.say(f"note: these faces have no attribute labels: the attribute directions are those stored in "
                f"{ctx.model_dir / 'analysis.pt'} ({stored.get('source')})")
        st = stored
    names = st["attribute_names"]
    if not attribute:
        raise UserError(f"--task edit needs --attribute NAME, one of: {', '.join(names)}")
    if attribute not in names:
        raise UserError(f"unknown attribute {attribute!r}; choose one of: {', '.join(names)}")
    return st["attribute_directions"][names.index(attribute)], st.get("source")


@torch.no_grad()
def run(ctx) -> dict:
    args = ctx.args
    direction, direction_source = attribute_direction(ctx, args.attribute)
    out = ctx.task_dir("edit")
    faces, source = ctx.faces_to_show(args.num_faces)
    clf = ctx.classifier()
    a = clf.names.index(args.attribute) if clf and args.attribute in clf.names else None
    strips, labels = [], []
    for i, z in enumerate(ctx.encode_faces(faces)):
        views = ctx.decode(z[None] + EDIT_STEPS[:, None] * direction[None])
        strips.append(torch.cat([faces[i:i + 1], views]))
        text = [f"face {i + 1}"]
        if a is not None:
            p = clf.predict(views)[:, a]
            text += [f"p({args.attribute})", f"{p[0]:.2f} -> {p[-1]:.2f}"]
        labels.append("\n".join(text))
    columns = ["photo"] + [f"{s:+.1f}" for s in EDIT_STEPS.tolist()]
    labelled_grid(strips, labels, f"{ctx.name}: {args.attribute}, steps along (mean code with - without)",
                  columns, label_width=190).save(out / f"edit_{args.attribute}.png")
    summary = {"source": source, "attribute": args.attribute, "steps": EDIT_STEPS.tolist(),
               "direction_norm": float(direction.norm()), "direction_from": direction_source,
               "files": [f"edit_{args.attribute}.png"]}
    if a is not None:
        summary["measured"] = measure_edit(ctx, direction, args.attribute)
    # one summary.json for every attribute edited so far with this checkpoint
    previous = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    attributes = previous.get("attributes", {}) if isinstance(previous.get("attributes"), dict) else {}
    write_summary({"attributes": {**attributes, args.attribute: summary}}, out / "summary.json")
    report(summary, len(faces), out)
    return summary


def measure_edit(ctx, direction: torch.Tensor, attribute: str) -> dict:
    """Over EDIT_FACES faces: the attribute's mean probability per step, how the other measured
    attributes change from step -1 to +1, and how many confident identity predictions flip (the
    identity attributes of this VAE, the edited one left out)."""
    clf = ctx.classifier()
    faces, source = ctx.held_out_or_decoded(EDIT_FACES)
    mu = ctx.encode_faces(faces)
    probs = torch.stack([clf.predict(ctx.decode(mu + s * direction[None])) for s in EDIT_STEPS.tolist()], 1)  # [F, S, A]
    minus, plus = EDIT_STEPS.tolist().index(-1.0), EDIT_STEPS.tolist().index(1.0)
    others = [n for n in ctx.measured_attributes() if n != attribute]
    change = {n: float((probs[:, plus, clf.names.index(n)] - probs[:, minus, clf.names.index(n)]).mean()) for n in others}
    identity = [n for n in ctx.identity_attributes() if n != attribute]
    k = [clf.names.index(n) for n in identity]
    ref = clf.predict(ctx.decode(mu))[:, k]
    return {"faces": len(faces), "faces_source": source,
            "target_probability_by_step": probs[:, :, clf.names.index(attribute)].mean(0).tolist(),
            "target_reliable_on_this_vae": attribute in ctx.measured_attributes(),
            "other_changes": change, "other_changes_top": dict(sorted(change.items(), key=lambda kv: -abs(kv[1]))[:5]),
            "other_mean_abs_change": float(np.mean([abs(v) for v in change.values()])) if change else float("nan"),
            "identity": M.identity_flips(probs[:, :, k], ref), "identity_attributes": identity}


def report(summary: dict, n_faces: int, out) -> None:
    attribute = summary["attribute"]
    print(f"edited {n_faces} {summary['source']} along {attribute} -> {out / summary['files'][0]}")
    m = summary.get("measured")
    if m:
        steps = "  ".join(f"{s:+.1f}: {p:.2f}" for s, p in zip(summary["steps"], m["target_probability_by_step"]))
        print(f"mean p({attribute}) over {m['faces']} {m['faces_source']} by step: {steps}")
        print("other attributes that change most from step -1 to +1: "
              + (", ".join(f"{n} {v:+.2f}" for n, v in m["other_changes_top"].items()) or "-"))
        print(f"confident identity predictions that flip: {m['identity']['flipped']}/{m['identity']['confident_predictions']}")
