"""What every face analysis works with, in one object (`FaceContext`): the model with its encode and
decode helpers, the faces (training and held-out, loaded when first asked for), their attribute labels,
the attribute classifier, and the analysis statistics.

The statistics (analysis.py; yaw measured with dlib's landmarks, landmarks.py) come from, in this
order: the model folder's analysis.pt when it was computed from the same faces, attribute file,
classifier and weights (its key matches); the cache under --cache_dir (same key); a fresh computation
from the data (then kept in the cache). Without data: the model folder's
analysis.pt, else the statistics stored in the checkpoint. The key is a hash of content (the weights,
the ordered image names, the bytes of the attribute file and of the classifier, ANALYSIS_VERSION),
never of file times. The shipped checkpoints/ are read, never written.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from exercise2 import landmarks
from exercise2 import measures as M
from exercise2.analysis import ANALYSIS_VERSION, TRAVERSAL_STEP, compute_analysis, traversal
from exercise2.attributes import find_attribute_file, match_attributes
from exercise2.classifier import CLASSIFIER_NAME, AttributeClassifier, load_classifier
from exercise2.dataset import load_face, load_faces_and_names, split_faces, to_float
from utils.checkpoint import atomic_save, atomic_write_text
from utils.errors import UserError
from utils.paths import repo_path
from utils.runs import SHIPPED_DIR, trained_model_dir


def write_summary(summary: dict, path: Path, digits: int = 4) -> None:
    """A summary as strict JSON (NaN and inf become null; a value JSON cannot hold is an error)."""
    text = json.dumps(M.round_floats(summary, digits), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_text(text + "\n", path)


def state_key(state: dict) -> str:
    """sha1 of a state dict's names, dtypes, shapes and values (whatever the memory layout)."""
    h = hashlib.sha1()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _file_sha1(path: Path | None) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest() if path is not None and Path(path).is_file() else "-"


@dataclass
class FaceLabels:
    """Attributes of the training and held-out faces (bool [N, A]) and which faces have them."""
    names: list[str]
    train: torch.Tensor
    train_has: torch.Tensor
    val: torch.Tensor
    val_has: torch.Tensor


class FaceContext:
    """The model, the faces, labels, classifier and analysis statistics of one VAE (see the module)."""

    def __init__(self, args, model, device, *, config: dict, model_dir: Path, model_key: str,
                 stored_stats: dict | None = None, iteration: int = 0, is_main: bool = True):
        self.args, self.model, self.device, self.is_main = args, model, device, is_main
        self.name = args.ckpt_name
        self.config = config
        self.beta = float(config.get("beta", args.beta))
        self.image_size = config["image_size"]
        self.model_dir = model_dir
        self.model_key = model_key
        self.stored_stats = stored_stats
        self.iteration = iteration
        self._faces = None
        self._names: list[str] | None = None
        self._analysis: dict | None = None
        self._labels: FaceLabels | None | bool = False   # False: not looked for yet
        self._classifier: AttributeClassifier | None | bool = False
        self._measured: list[str] | None = None
        self.measured_from: str | None = None   # the VAE whose reliable attributes are measured
        self._classifier_file: Path | None = None
        if args.task == "train":   # the statistics written after training measure yaw with dlib: say so before
            landmarks.require()    # training, not after it (a UserError with the pip command)

    def say(self, text: str) -> None:
        if self.is_main:
            print(text)

    def task_dir(self, task: str) -> Path:
        """<output_dir>/<ckpt_name>/<task>/, the only folder a task writes (besides the cache)."""
        out = repo_path(self.args.output_dir) / self.name / task
        out.mkdir(parents=True, exist_ok=True)
        return out

    # ------------------------------------------------------------------ the model
    def batch(self, images: torch.Tensor) -> torch.Tensor:
        return to_float(images).to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def encode_all(self, images: torch.Tensor, batch: int = 256):
        """(posterior means, log-variances) of uint8 faces, on the CPU."""
        self.model.eval()
        mus, logvars = [], []
        for i in range(0, len(images), batch):
            mu, logvar = self.model.encode(self.batch(images[i:i + batch]))
            mus.append(mu.float().cpu())
            logvars.append(logvar.float().cpu())
        return torch.cat(mus), torch.cat(logvars)

    @torch.no_grad()
    def encode_faces(self, images: torch.Tensor, flipped: bool = False) -> torch.Tensor:
        """Posterior means of uint8 or float faces (mirrored first if `flipped`)."""
        images = images.flip(-1) if flipped else images
        if images.is_floating_point():
            images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        return self.encode_all(images)[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Images in [0, 1] of codes `[N, Z]`, on the CPU."""
        self.model.eval()
        return torch.cat([torch.sigmoid(self.model.decode(z[i:i + batch].to(self.device)).float()).cpu()
                          for i in range(0, len(z), batch)])

    def decode_views(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `[F, V, Z]` -> images `[F, V, 3, H, W]`."""
        images = self.decode(codes.reshape(-1, codes.shape[-1]))
        return images.view(*codes.shape[:2], *images.shape[1:])

    def traversal_ends(self, mu: torch.Tensor, unit: int, std: torch.Tensor, k: float = TRAVERSAL_STEP):
        """(images at -k, images at +k std of `unit`) for each face code of `mu`."""
        views = self.decode_views(traversal(mu, unit, [-k, k], std))
        return views[:, 0], views[:, 1]

    # ------------------------------------------------------------------ the data
    def dataset_folder(self) -> Path:
        return repo_path(self.args.dset_dir) / self.args.dataset

    def faces(self, required: bool = True):
        """(train, held-out) uint8 tensors, or None when no data is there and it is not required."""
        if self._faces is None:
            folder = self.dataset_folder()
            if not folder.is_dir() and not required:
                return None
            cache = repo_path(self.args.cache_dir) if self.args.cache_dir else None
            faces, self._names = load_faces_and_names(folder, self.image_size, cache, self.args.num_workers,
                                                      verbose=self.is_main)
            if len(faces) < 2:
                raise UserError(f"{folder} holds {len(faces)} image: at least 2 are needed (one is held out)")
            self._faces = split_faces(faces)
        return self._faces

    def labels(self) -> FaceLabels | None:
        """CelebA attributes of the training and held-out faces, matched by file name; None (with one
        line that says why) when there are none."""
        if self._labels is not False:
            return self._labels
        self._labels = None
        data = self.faces(required=False)
        folder = self.dataset_folder()
        path = find_attribute_file(folder, self.args.attr_file) if data is not None else None
        if data is None:
            why = f"no face data at {folder}"
        elif path is None:
            why = f"no list_attr_celeba.txt in {folder} or {folder / 'Anno'} (pass --attr_file)"
        else:
            attrs = match_attributes(path, self._names)
            n, n_train = len(self._names), len(data[0])
            values = torch.zeros(n, len(attrs.names), dtype=torch.bool)
            has = torch.zeros(n, dtype=torch.bool)
            values[attrs.matched] = torch.from_numpy(attrs.values)
            has[attrs.matched] = True
            self._labels = FaceLabels(attrs.names, values[:n_train], has[:n_train], values[n_train:], has[n_train:])
            self.say(f"attributes: {len(attrs.matched):,} of {n:,} faces matched by file name in {path}")
            return self._labels
        self.say(f"note: the attribute-based measures are left out: {why}")
        return None

    def held_out_or_decoded(self, n: int):
        """n real held-out faces if the data is there, else faces the model decodes from codes of real
        faces kept with the statistics. Returns (float images in [0, 1], description)."""
        data = self.faces(required=False)
        if data is not None:
            return to_float(data[1][:n]), "held-out faces"
        codes = self.analysis()["example_codes"][:n]  # at most the distinct stored codes
        return self.decode(codes), "faces decoded by the model from stored codes (no data found)"

    def read_image(self, image: str) -> torch.Tensor:
        """--image as a float face `[1, 3, H, W]`, or a UserError that says why not."""
        path = Path(image).expanduser()
        if not path.is_file():
            raise UserError(f"--image {path} not found")
        try:
            face = load_face(path, self.image_size)
        except Exception as err:  # PIL raises many kinds for unreadable files
            raise UserError(f"cannot read --image {path} as an image: {err}") from None
        return to_float(torch.from_numpy(face.copy()).permute(2, 0, 1)[None])

    def faces_to_show(self, n: int):
        """--image if given, else `held_out_or_decoded(n)`: (float images, description)."""
        if self.args.image:
            return self.read_image(self.args.image), f"--image {self.args.image}"
        return self.held_out_or_decoded(n)

    # ------------------------------------------------------------------ the classifier
    def classifier_file(self) -> Path:
        """The classifier the measures use: <ckpt_dir>/face_attributes/ (or runs/ when trained there)
        if it holds one, else the shipped checkpoints/face_attributes/ (said in a note)."""
        if self._classifier_file is None:
            filename = f"{CLASSIFIER_NAME}.pt"
            own = trained_model_dir(CLASSIFIER_NAME, self.args.ckpt_dir, filename) / filename
            shipped = repo_path(SHIPPED_DIR) / CLASSIFIER_NAME / filename
            if own != shipped and not own.is_file():
                self.say(f"note: no attribute classifier at {own}: using the shipped {shipped}")
            self._classifier_file = own if own.is_file() else shipped
        return self._classifier_file

    def classifier(self) -> AttributeClassifier | None:
        if self._classifier is False:
            path = self.classifier_file()
            self._classifier = load_classifier(path.parent.parent, self.device)
            if self._classifier is None:
                self.say(f"note: no attribute classifier ({path}): the measures that use it are left out; "
                         "train it with python exercise2/classifier.py")
            else:
                self.say(f"attribute classifier: {path}")
        return self._classifier

    def measured_attributes(self) -> list[str]:
        """The attributes the classifier reads reliably on this VAE's decodes (with a note when the
        classifier was not measured on this VAE and another VAE's list stands in)."""
        if self._measured is None:
            clf = self.classifier()
            self._measured, used = clf.attributes_for(self.name) if clf else ([], None)
            if clf and used != self.name:
                self.say(f"note: the classifier was not measured on {self.name}'s reconstructions: using "
                         + (f"{used}'s list of reliable attributes ({len(self._measured)})" if used else "no attribute"))
            self.measured_from = used
        return self._measured

    def identity_attributes(self) -> list[str]:
        """The identity attributes (measures.IDENTITY_ATTRIBUTES) the classifier reads reliably on this VAE."""
        return [n for n in M.IDENTITY_ATTRIBUTES if n in self.measured_attributes()]

    # ------------------------------------------------------------------ the analysis statistics
    def data_key(self) -> str:
        """What the statistics are computed from (see the module): a hash of contents."""
        folder = self.dataset_folder()
        parts = [ANALYSIS_VERSION, self.name, self.model_key, json.dumps(self.config, sort_keys=True),
                 hashlib.sha1("\n".join(self._names).encode()).hexdigest(),
                 _file_sha1(find_attribute_file(folder, self.args.attr_file)), _file_sha1(self.classifier_file())]
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]

    def renew(self, model_key: str, iteration: int) -> None:
        """The model's weights changed (training): statistics are looked up anew for these."""
        self.model_key, self.iteration, self._analysis = model_key, iteration, None

    def analysis(self) -> dict:
        if self._analysis is None:
            self._analysis = self._find_analysis()
        return self._analysis

    def compute_analysis(self) -> dict:
        """The statistics from the data (needs it), with their key and source."""
        train, val = self.faces()
        stats = compute_analysis(self, train, val)
        stats.update(source=f"{len(train) + len(val):,} faces of {self.args.dataset}", data_key=self.data_key(),
                     iteration=self.iteration)
        return stats

    def stored_analysis(self) -> dict | None:
        """The model folder's analysis.pt (read, never written by a task), or None."""
        path = self.model_dir / "analysis.pt"
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None

    def _find_analysis(self) -> dict:
        data = self.faces(required=False)
        path = self.model_dir / "analysis.pt"
        stored = self.stored_analysis()
        if data is not None:
            key = self.data_key()
            if stored is not None and stored.get("data_key") == key:
                self.say(f"analysis statistics: {path} (computed from these faces and this model)")
                return stored
            cache = repo_path(self.args.cache_dir) / f"analysis_{self.name}_{key}.pt" if self.args.cache_dir else None
            if cache is not None and cache.is_file():
                self.say(f"analysis statistics: {cache}")
                return torch.load(cache, map_location="cpu", weights_only=True)
            stats = self.compute_analysis()
            if cache is not None and self.is_main:
                try:
                    atomic_save(stats, cache)
                    self.say(f"analysis statistics computed from the data, kept in {cache}")
                except OSError as err:
                    self.say(f"note: could not keep the analysis statistics in {cache}: {err}")
            return stats
        if stored is not None:
            if stored.get("iteration") != self.iteration:
                self.say(f"note: {path} was computed at iteration {stored.get('iteration')}, the checkpoint is at "
                         f"{self.iteration}; pass the face data (--dset_dir) to compute them anew")
            self.say(f"analysis statistics: {path} (no face data at {self.dataset_folder()})")
            return stored
        if self.stored_stats is not None:
            self.say("analysis statistics: those stored in the checkpoint (no face data, no analysis.pt)")
            return checkpoint_statistics(self.stored_stats)
        raise UserError(f"no face data found at {self.dataset_folder()} and no analysis statistics in {path}: "
                        "pass --dset_dir/--dataset of the faces")


def checkpoint_statistics(st: dict) -> dict:
    """The statistics a checkpoint stores under latent_stats, in the form of analysis.pt: a checkpoint
    of this version stores the whole analysis dict; an older one (the shipped VAEs) its first mirror
    axis only."""
    if "global_axis" in st:
        return {**st, "source": "statistics stored in the checkpoint"}
    return {"mu_mean": st["mu_mean"], "mu_std": st["mu_std"], "kl_per_unit": st["kl_per_unit"],
            "example_codes": st["example_codes"], "source": "statistics stored in the checkpoint",
            "global_axis": {"axis": st["yaw_axis"], "centre": torch.zeros_like(st["yaw_axis"]),
                            "explained": st.get("yaw_explained", float("nan"))},
            "axis_reach": 2.5 * st["yaw_scale"]}
