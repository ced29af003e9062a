"""The Solver of the course's exercise 2: model, optimiser and checkpoints, and the tasks, each in its
own module:

    train                 beta-VAE training with held-out evaluation, grids, curves  (training.py)
    generate_from_latent  decode z ~ N(0, I); how face-like the samples are           (tasks/generation.py)
    latent_analysis       what each unit encodes, labelled traversals, MIG            (tasks/latent.py)
    rotate                turn a face left and right; three methods compared          (tasks/rotation.py)
    edit                  move a face along an attribute's direction (beyond the sheet) (tasks/edit.py)

What the tasks share (encode/decode helpers, faces, labels, classifier, analysis statistics) is one
FaceContext (context.py); the statistics are computed in analysis.py, measured with measures.py and
classifier.py, drawn by drawing.py.

Where models are (utils/runs.py): training writes <ckpt_dir>/<ckpt_name>/, by default
runs/<ckpt_name>/, and refuses a folder that holds a run unless --resume (continue from last.pt) or
--overwrite (replace it). The tasks read <ckpt_dir>/<ckpt_name>/ when --ckpt_dir is given, else
runs/<ckpt_name>/ when a model was trained there, else the shipped checkpoints/<ckpt_name>/.
"""
from __future__ import annotations

import torch

from exercise2 import training
from exercise2.context import FaceContext, state_key, write_summary
from exercise2.model import ARCH_KEYS, BetaVAE, load_vae_checkpoint
from exercise2.tasks import edit, generation, latent, rotation
from utils.checkpoint import atomic_save, load_state_dict_float32
from utils.device import resolve_device
from utils.distributed import barrier, init_distributed
from utils.errors import UserError
from utils.paths import repo_path
from utils.runs import RUNS_DIR, clear_run_dir, start_run_dir, trained_model_dir

ARCH_FLAGS = (("z_dim", "z_dim"), ("channels", "channels"), ("no_batchnorm", "batchnorm"), ("image_size", "image_size"))


class Solver:
    def __init__(self, args):
        self.args = args
        want = args.device if args.device else ("auto" if args.cuda else "cpu")
        self.dist, self.device = init_distributed(resolve_device(want))
        self.is_main = self.dist.is_main
        self.output_root = repo_path(args.output_dir) / args.ckpt_name
        self.iteration = 0
        self.history: dict[str, list] = {"iteration": [], "train_recon": [], "train_kl": [], "val_recon": [],
                                         "val_kl": [], "val_psnr": [], "minutes": []}
        self.latent_stats: dict | None = None
        self.summary: dict = {}
        self.train_seconds = 0.0
        self.best = {"val_loss": float("inf"), "iteration": 0}  # held-out loss (recon + beta KL) of <ckpt_name>.pt
        ckpt = self._open_run() if args.task == "train" else self._open_model()
        self.arch = self._architecture(ckpt)
        try:
            self.model = BetaVAE(self.arch["z_dim"], tuple(self.arch["channels"]), self.arch["batchnorm"],
                                 self.arch["image_size"])
        except ValueError as err:
            raise UserError(str(err)) from None
        self.model.to(self.device, memory_format=torch.channels_last)
        self.optim = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
        if ckpt is not None:
            self._restore(ckpt)
        trained = args.task != "train"
        self.ctx = FaceContext(args, self.model, self.device, config=ckpt["config"] if trained else self.config(),
                               model_dir=self.ckpt_folder, model_key=state_key(ckpt["model"]) if trained else "",
                               stored_stats=self.latent_stats, iteration=self.iteration, is_main=self.is_main)

    # ------------------------------------------------------------------ where the model is
    def _open_run(self) -> dict | None:
        """The run folder of a training: checked before anything is written; last.pt with --resume."""
        args = self.args
        if args.resume and args.overwrite:
            raise UserError("--resume continues the run in the folder, --overwrite replaces it: pass one of them")
        self.ckpt_folder = repo_path(args.ckpt_dir or RUNS_DIR) / args.ckpt_name
        start_run_dir(self.ckpt_folder, resume=args.resume, overwrite=args.overwrite, name_flag="--ckpt_name")
        if args.overwrite and self.is_main:
            clear_run_dir(self.ckpt_folder)
        barrier(self.dist)
        if not args.resume:
            return None
        path = self.ckpt_folder / "last.pt"
        if not path.is_file():
            raise UserError(f"--resume: no last.pt in {self.ckpt_folder} to continue from; start a new run without "
                            "--resume (with --overwrite if the folder holds files)")
        return load_vae_checkpoint(path)

    def _open_model(self) -> dict:
        """The trained model a task reads (utils.runs.trained_model_dir), said in one line."""
        args, name = self.args, self.args.ckpt_name
        self.ckpt_folder = trained_model_dir(name, args.ckpt_dir, f"{name}.pt")
        path = self.ckpt_folder / f"{name}.pt"
        if not path.is_file():
            where = f"{self.ckpt_folder.parent}" + ("" if args.ckpt_dir else f" (nor in {repo_path(RUNS_DIR)})")
            raise UserError(f"no checkpoint named {name!r} in {where}: train it first (python exercise2/main.py "
                            f"--beta {args.beta:g} --ckpt_name {name}) or pass --ckpt_dir/--ckpt_name of an existing one")
        if self.is_main:
            print(f"model: {path}")
        return load_vae_checkpoint(path)

    def _architecture(self, ckpt: dict | None) -> dict:
        """The flags' architecture for a new run; the checkpoint's otherwise, where an architecture flag
        given on the command line that disagrees with it is an error (not silently overridden)."""
        a = self.args
        arch = {"z_dim": a.z_dim, "channels": list(a.channels), "batchnorm": not a.no_batchnorm, "image_size": a.image_size}
        if ckpt is None:
            return arch
        stored = {k: list(ckpt["config"][k]) if k == "channels" else ckpt["config"][k] for k in ARCH_KEYS}
        given = getattr(a, "explicit", set())
        clash = [f"--{flag} {arch[key]} (it has {stored[key]})" for flag, key in ARCH_FLAGS
                 if flag in given and arch[key] != stored[key]]
        if clash:
            raise UserError(f"checkpoint {a.ckpt_name!r} in {self.ckpt_folder.parent} was built otherwise: "
                            f"{'; '.join(clash)}. Use another --ckpt_name for a new model, or drop those flags "
                            "to use this one")
        return stored

    # ------------------------------------------------------------------ checkpoints
    def _restore(self, ckpt: dict) -> None:
        load_state_dict_float32(self.model, ckpt["model"])
        self.iteration = int(ckpt.get("iteration", 0))
        self.history = ckpt.get("history", self.history)
        self.latent_stats = ckpt.get("latent_stats")
        self.summary = ckpt.get("summary", {})
        self.train_seconds = float(ckpt.get("train_seconds", 0.0))
        self.best = ckpt.get("best", self.best)
        if self.args.task != "train":
            return
        if "optimizer" in ckpt:
            self.optim.load_state_dict(ckpt["optimizer"])
            for group in self.optim.param_groups:
                group["lr"] = self.args.lr
        trained_beta = ckpt["config"].get("beta")
        if self.is_main and trained_beta is not None and trained_beta != self.args.beta:
            print(f"note: {self.args.ckpt_name} was trained with beta={trained_beta:g}; continuing with beta={self.args.beta:g}")
        if self.is_main:
            print(f"resuming {self.args.ckpt_name} from last.pt at iteration {self.iteration}")

    def config(self) -> dict:
        a = self.args
        return {**self.arch, "beta": a.beta, "lr": a.lr, "beta1": a.beta1, "beta2": a.beta2, "batch_size": a.batch_size,
                "dataset": a.dataset, "seed": a.seed, "likelihood": "gaussian (squared error summed over pixels)"}

    def _state(self) -> dict:
        model = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return {"model": model, "config": self.config(), "iteration": self.iteration, "history": self.history,
                "latent_stats": self.latent_stats, "summary": self.summary, "train_seconds": self.train_seconds,
                "best": self.best}

    def model_key(self) -> str:
        """The content key of the weights as <ckpt_name>.pt stores them (see FaceContext.data_key)."""
        return state_key(self._state()["model"])

    def save_checkpoint(self) -> None:
        """last.pt: the latest state with the optimiser, what --resume continues from."""
        if self.is_main:
            atomic_save({**self._state(), "optimizer": self.optim.state_dict()}, self.ckpt_folder / "last.pt")

    def save_best(self) -> None:
        """<ckpt_name>.pt: the model of the best held-out loss so far (as for the text models), without
        optimiser state; the analyses load it."""
        if self.is_main:
            atomic_save(self._state(), self.ckpt_folder / f"{self.args.ckpt_name}.pt")
            write_summary({"config": self.config(), "iteration": self.iteration, **self.summary},
                          self.ckpt_folder / "summary.json", digits=8)

    # ------------------------------------------------------------------ the tasks
    def train(self) -> dict:
        return training.train(self)

    def generate_from_latent(self) -> dict:
        return generation.run(self.ctx)

    def latent_analysis(self) -> dict:
        return latent.run(self.ctx)

    def rotate(self) -> dict:
        return rotation.run(self.ctx)

    def edit(self) -> dict:
        return edit.run(self.ctx)
