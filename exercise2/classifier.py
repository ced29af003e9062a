"""The measuring instrument of the face analyses: a small CNN that predicts CelebA's 40 attributes.

    python exercise2/classifier.py --dset_dir data                 # train, evaluate, write runs/face_attributes/
    python exercise2/classifier.py --dset_dir data --evaluate_only # re-measure the classifier in use

It writes <ckpt_dir>/face_attributes/ (default: runs/; --ckpt_dir checkpoints --overwrite replaces the shipped one)
and reads the VAEs of --vaes, and with --evaluate_only the classifier, as every task reads a model:
from <ckpt_dir>/<name>/ when --ckpt_dir is given, else runs/<name>/ when trained there, else the
shipped checkpoints/<name>/.

It trains on the training split only (the last 10 % of the sorted files stay held out, as for the
VAEs). VAE decodes are blurry, and a classifier that has only seen sharp photos misjudges them, so
each training batch mixes sharp photos, photos blurred by a random amount and reconstructions of the
same training photos by the beta-VAEs named with --vaes. The summary reports held-out AUC and accuracy
against the majority-class baseline on photos and on each VAE's reconstructions of held-out faces, and
which attributes it predicts well enough on reconstructions to be used as a measure.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any working directory

import torch
import torch.nn.functional as F
from torch import nn

from exercise2.attributes import Attributes, find_attribute_file, match_attributes
from exercise2.dataset import load_faces_and_names, split_faces, to_float
from exercise2.measures import auc_matrix, round_floats
from exercise2.pose import blur
from exercise2.model import load_vae
from utils.checkpoint import atomic_save, load_checkpoint, load_state_dict_float32, state_dict_to, write_json
from utils.device import DEVICE_CHOICES, resolve_device
from utils.errors import UserError, cli
from utils.paths import repo_path
from utils.progress import progress
from utils.arguments import non_negative_int, positive_float, positive_int
from utils.runs import RUNS_DIR, clear_run_dir, start_run_dir, trained_model_dir

CLASSIFIER_NAME = "face_attributes"
RELIABLE_AUC = 0.80  # an attribute measures a VAE's decodes only from this held-out AUC on its reconstructions


def down(c_in, c_out):
    """4x4 convolution with stride 2: halves the resolution."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def same(c):
    """3x3 convolution at the same resolution."""
    return nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))


class AttributeNet(nn.Module):
    """~0.9M parameters; a training step on 128 faces takes ~0.3 s on 2 CPU cores."""

    def __init__(self, n_attributes: int, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            down(3, w),                          # B, w, 32, 32
            down(w, 2 * w), same(2 * w),         # B, 2w, 16, 16
            down(2 * w, 4 * w), same(4 * w),     # B, 4w, 8, 8
            down(4 * w, 8 * w),                  # B, 8w, 4, 4
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # B, 8w: the features of the Frechet distance
        )
        self.head = nn.Linear(8 * w, n_attributes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # B, A logits


class AttributeClassifier:
    """A trained AttributeNet with its attribute names and measured reliability, for the analyses."""

    def __init__(self, net: AttributeNet, names: list[str], reliable: dict[str, list[str]], device=None):
        self.net = net.eval()
        self.names = names
        self.reliable = reliable  # VAE name -> attributes predicted well on its reconstructions
        self.device = device or torch.device("cpu")

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 256, features: bool = False) -> torch.Tensor:
        """Probabilities `[N, A]` (or features `[N, D]`) of float images `[N, 3, 64, 64]` in [0, 1]."""
        out = []
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(self.device).float()
            out.append((self.net.features(x) if features else torch.sigmoid(self.net(x))).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.names))

    def attributes_for(self, vae_name: str) -> tuple[list[str], str | None]:
        """(attributes to measure on this VAE's decodes, the VAE whose list they are): those reliable on
        its reconstructions; for a VAE the classifier was not measured on, those of the beta = 4 VAE (a
        middle ground) or else of the first VAE measured; ([], None) when it was measured on none. The
        caller says when the list is another VAE's."""
        if vae_name in self.reliable:
            return self.reliable[vae_name], vae_name
        stand_in = "vae_beta_4" if "vae_beta_4" in self.reliable else next(iter(self.reliable), None)
        return (self.reliable[stand_in], stand_in) if stand_in else ([], None)


def classifier_path(ckpt_dir: str | Path = "checkpoints") -> Path:
    return repo_path(ckpt_dir) / CLASSIFIER_NAME / f"{CLASSIFIER_NAME}.pt"


def load_classifier(ckpt_dir: str | Path = "checkpoints", device=None, required: bool = False) -> AttributeClassifier | None:
    path = classifier_path(ckpt_dir)
    if not path.is_file():
        if required:
            raise UserError(f"no attribute classifier at {path}: train it with python exercise2/classifier.py --dset_dir data")
        return None
    ckpt = load_checkpoint(path)
    if "attribute_names" not in ckpt:
        raise UserError(f"{path} is not an attribute classifier of this project")
    net = AttributeNet(len(ckpt["attribute_names"]), ckpt["config"]["width"])
    load_state_dict_float32(net, ckpt["model"])
    device = device or torch.device("cpu")
    return AttributeClassifier(net.to(device), ckpt["attribute_names"], ckpt.get("reliable", {}), device)


# ---------------------------------------------------------------------------------------- training
def random_blur(x: torch.Tensor, gen: torch.Generator, max_sigma: float = 1.5) -> torch.Tensor:
    """Blur each image of `[B, 3, H, W]` with its own sigma in [0, max_sigma] (a few groups of sigmas)."""
    out = x.clone()
    sigmas = torch.rand(len(x), generator=gen) * max_sigma
    for lo in torch.arange(0.25, max_sigma, 0.25):
        pick = (sigmas >= lo) & (sigmas < lo + 0.25)
        if pick.any():
            b = x[pick]
            out[pick] = blur(b.reshape(-1, 1, *b.shape[-2:]), float(lo) + 0.125).reshape(b.shape)
    return out


@torch.no_grad()
def reconstruct(vae, faces: torch.Tensor, device, batch: int = 256) -> torch.Tensor:
    """uint8 reconstructions (from the posterior mean) of uint8 faces."""
    vae.eval()
    out = []
    for i in progress(range(0, len(faces), batch), desc="reconstructing", leave=False, disable=len(faces) < 2000):
        mu, _ = vae.encode(to_float(faces[i:i + batch]).to(device))
        out.append((torch.sigmoid(vae.decode(mu)) * 255).round().to(torch.uint8).cpu())
    return torch.cat(out)


def measure(clf: AttributeClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Held-out AUC and accuracy per attribute of float images against bool labels."""
    probs = clf.predict(images)
    auc = auc_matrix(probs, labels).diagonal()
    acc = ((probs >= 0.5) == labels).float().mean(0)
    return {name: {"auc": float(auc[a]), "accuracy": float(acc[a])} for a, name in enumerate(clf.names)}


def load_labelled_faces(args) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Attributes]:
    """(train faces, train labels, held-out faces, held-out labels, attributes) of the faces that have attributes."""
    folder = repo_path(args.dset_dir) / args.dataset
    faces, names = load_faces_and_names(folder, 64, repo_path(args.cache_dir) if args.cache_dir else None, args.num_workers)
    path = find_attribute_file(folder, args.attr_file)
    if path is None:
        raise UserError(f"no attribute file (list_attr_celeba.txt) in {folder} or {folder / 'Anno'}: the classifier "
                        "needs CelebA's attributes; pass --attr_file PATH")
    attrs = match_attributes(path, names)
    labelled = torch.zeros(len(faces), dtype=torch.bool)
    labelled[attrs.matched] = True
    labels = torch.zeros(len(faces), len(attrs.names), dtype=torch.bool)
    labels[attrs.matched] = torch.from_numpy(attrs.values)
    n_train = len(split_faces(faces)[0])
    train_idx = torch.nonzero(labelled[:n_train]).flatten()
    val_idx = torch.nonzero(labelled[n_train:]).flatten() + n_train
    if len(train_idx) < 2 or len(val_idx) < 2:
        raise UserError(f"only {len(train_idx)} training and {len(val_idx)} held-out faces have attributes: too few")
    return faces[train_idx], labels[train_idx], faces[val_idx], labels[val_idx], attrs


def train(args) -> dict:
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train_x, train_y, val_x, val_y, attrs = load_labelled_faces(args)
    out = start_run_dir(repo_path(args.ckpt_dir or RUNS_DIR) / CLASSIFIER_NAME, resume=False,
                        overwrite=args.overwrite, name_flag="--ckpt_dir", can_resume=False)
    names = attrs.names
    vaes = {}
    for name in args.vaes:
        folder = trained_model_dir(name, args.ckpt_dir, f"{name}.pt")
        if (folder / f"{name}.pt").is_file():
            vaes[name] = load_vae(folder / f"{name}.pt").to(device)
        else:
            print(f"note: no VAE checkpoint {folder / (name + '.pt')}: not used")
    recon_train = {} if args.evaluate_only else {name: reconstruct(vae, train_x, device) for name, vae in vaes.items()}
    print(f"attribute classifier: {len(train_x):,} training / {len(val_x):,} held-out faces, {len(names)} attributes "
          f"({attrs.source})" + ("" if args.evaluate_only else
          f"; batches mix photos, blurred photos and reconstructions by {', '.join(vaes) or 'no VAE'}"))
    net = AttributeNet(len(names), args.width).to(device)
    clf = AttributeClassifier(net, names, {}, device)
    if not args.evaluate_only:
        opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
        steps = args.steps or args.epochs * math.ceil(len(train_x) / args.batch_size)
        pos_rate = train_y.float().mean(0).clamp(0.01, 0.99)
        with torch.no_grad():  # start from the base rates: the first steps then learn features, not priors
            net.head.bias.copy_(torch.log(pos_rate / (1 - pos_rate)).to(device))
        sources = [None, "blur", *recon_train]
        start = time.perf_counter()
        bar = progress(range(steps), desc="train classifier", unit="step", dynamic_ncols=True)
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            idx = torch.randint(0, len(train_x), (args.batch_size,), generator=gen)
            which = torch.randint(0, len(sources), (args.batch_size,), generator=gen)
            x = to_float(train_x[idx])
            for s, source in enumerate(sources):
                pick = which == s
                if source == "blur":
                    x[pick] = random_blur(x[pick], gen)
                elif source is not None:
                    x[pick] = to_float(recon_train[source][idx[pick]])
            flip = torch.rand(args.batch_size, generator=gen) < 0.5  # the attributes do not change in a mirror
            x[flip] = x[flip].flip(-1)
            net.train()
            loss = F.binary_cross_entropy_with_logits(net(x.to(device)), train_y[idx].float().to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if args.max_minutes and time.perf_counter() - start > args.max_minutes * 60:
                print(f"time budget reached after {step + 1} of {steps} steps")
                break
        train_minutes = (time.perf_counter() - start) / 60
    else:
        source = trained_model_dir(CLASSIFIER_NAME, args.ckpt_dir, f"{CLASSIFIER_NAME}.pt")
        print(f"re-measuring the classifier in {source}")
        shipped = load_classifier(source.parent, device, required=True)
        shipped_ckpt = load_checkpoint(source / f"{CLASSIFIER_NAME}.pt")
        shipped_config = shipped_ckpt["config"]
        clf.net = net = shipped.net
        previous = source / "summary.json"
        train_minutes = json.loads(previous.read_text()).get("train_minutes") if previous.is_file() else None
    net.eval()
    # held-out measurements: photos, blurred photos, and each VAE's reconstructions of the held-out faces
    val_f = to_float(val_x)
    results = {"photos": measure(clf, val_f, val_y),
               "blurred photos (sigma 1)": measure(clf, blur(val_f.reshape(-1, 1, 64, 64), 1.0).reshape(val_f.shape), val_y)}
    for name, vae in vaes.items():
        results[f"reconstructions by {name}"] = measure(clf, to_float(reconstruct(vae, val_x, device)), val_y)
    base = {name: max(float(val_y[:, a].float().mean()), 1 - float(val_y[:, a].float().mean())) for a, name in enumerate(names)}
    enough = {name: min(int(val_y[:, a].sum()), int((~val_y[:, a]).sum())) >= 20 for a, name in enumerate(names)}
    reliable = {vae: [n for n in names if enough[n] and results[f"reconstructions by {vae}"][n]["auc"] >= RELIABLE_AUC]
                for vae in vaes}
    clf.reliable = reliable
    summary = {"held_out_faces": len(val_x), "training_faces": len(train_x), "attribute_file": attrs.source,
               "reliable_auc_threshold": RELIABLE_AUC, "train_minutes": train_minutes,
               "config": shipped_config if args.evaluate_only else
               {"width": args.width, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                "seed": args.seed, "mix": ["photos", "blurred photos (sigma 0-1.5)"] + [f"reconstructions by {v}" for v in vaes]},
               "majority_baseline_accuracy": base,
               "mean_auc": {k: float(torch.tensor([v[n]["auc"] for n in names]).nanmean()) for k, v in results.items()},
               "reliable_on_reconstructions": reliable, "per_attribute": results}
    if args.overwrite:
        clear_run_dir(out)
    if not args.evaluate_only:
        atomic_save({"model": state_dict_to(net.state_dict(), torch.float16), "attribute_names": names,
                     "reliable": reliable, "config": summary["config"]}, out / f"{CLASSIFIER_NAME}.pt")
    else:  # only the reliability lists change
        atomic_save({**shipped_ckpt, "reliable": reliable}, out / f"{CLASSIFIER_NAME}.pt")
    write_json(round_floats(summary), out / "summary.json")
    print(f"\n{'attribute':20s} {'base acc':>8s} " + " ".join(f"{k[:22]:>22s}" for k in results))
    for n in names:
        print(f"{n:20s} {base[n]:8.3f} " + " ".join(f"  acc {v[n]['accuracy']:.3f} auc {v[n]['auc']:.3f}" for v in results.values()))
    print("mean AUC: " + ", ".join(f"{k} {v:.3f}" for k, v in summary["mean_auc"].items()))
    for vae, attrs_ok in reliable.items():
        print(f"reliable on {vae}'s reconstructions (AUC >= {RELIABLE_AUC}): {len(attrs_ok)}: {', '.join(attrs_ok)}")
    print(f"written to {out}")
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--dset_dir", default="data", help="data root (default: data)")
    a("--dataset", default="CelebA", help="folder under dset_dir with the images (default: CelebA)")
    a("--attr_file", default=None, help="attribute file (default: <dataset>/list_attr_celeba.txt or <dataset>/Anno/...)")
    a("--cache_dir", default="data/cache", help="decoded-face cache ('' to disable; default: data/cache)")
    a("--num_workers", type=non_negative_int, default=2, help="threads that decode images on the first run (default: 2)")
    a("--ckpt_dir", default=None, help="where the classifier goes, <ckpt_dir>/face_attributes/ (default: runs/), and "
      "where the VAEs are read (default: runs/<name>/ when trained there, else the shipped checkpoints/<name>/)")
    a("--vaes", nargs="*", default=["vae_beta_0", "vae_beta_4", "vae_beta_20"],
      help="VAE checkpoints whose reconstructions join the training mix and are measured (default: the three shipped)")
    a("--overwrite", action="store_true", help="replace a classifier already in <ckpt_dir>/face_attributes/")
    a("--epochs", type=positive_int, default=12, help="passes over the training faces (default: 12)")
    a("--steps", type=positive_int, default=None, help="train this many steps instead of --epochs passes")
    a("--max_minutes", type=positive_float, default=None, help="stop after this many minutes of training")
    a("--batch_size", type=positive_int, default=128, help="images per step (default: 128)")
    a("--lr", type=positive_float, default=2e-3, help="AdamW learning rate, cosine decay (default: 2e-3)")
    a("--width", type=positive_int, default=32, help="channels of the first block; doubled per block (default: 32)")
    a("--seed", type=int, default=1, help="random seed (default: 1)")
    a("--device", default="auto", choices=DEVICE_CHOICES, help="auto | cpu | cuda (default: auto)")
    a("--threads", type=positive_int, default=None, help="CPU threads for torch (default: torch's choice)")
    a("--evaluate_only", action="store_true", help="measure the shipped classifier again instead of training")
    return p


@cli
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train(args)


if __name__ == "__main__":
    main()
