"""Exercise 2: beta-VAEs on 64x64 faces, with the course's command line.

    python exercise2/main.py --beta 0 --ckpt_name vae_beta_0            # train into runs/vae_beta_0/
    python exercise2/main.py --beta 0 --ckpt_name vae_beta_0 --resume   # continue that run from its last.pt
    python exercise2/main.py --task random_generation --ckpt_name vae_beta_0
    python exercise2/main.py --task latent_analysis --ckpt_name vae_beta_4
    python exercise2/main.py --task rotate --ckpt_name vae_beta_4 [--image face.jpg]
    python exercise2/main.py --task edit --attribute Smiling --ckpt_name vae_beta_4 [--image face.jpg]

The analyses measure with the attribute classifier in face_attributes/ (looked up as the models are,
below: the shipped checkpoints/face_attributes/ unless you retrained it with python exercise2/classifier.py)
and, where the faces have them, CelebA's attribute labels.

Training writes <ckpt_dir>/<ckpt_name>/ (default runs/<ckpt_name>/) and refuses a folder that already
holds a run: continue it with --resume, replace it with --overwrite, or pick another --ckpt_name. The
tasks read the model from <ckpt_dir>/<ckpt_name>/ when --ckpt_dir is given, else from runs/<ckpt_name>/
when you trained it there, else from the shipped checkpoints/<ckpt_name>/ (never written). They write
only under <output_dir>/<ckpt_name>/<task>/ and the statistics cache (--cache_dir).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any working directory

import torch  # noqa: E402

from utils.arguments import non_negative_float, non_negative_int, positive_float, positive_int  # noqa: E402
from utils.device import DEVICE_CHOICES  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402

TASKS = ("train", "random_generation", "latent_analysis", "rotate", "edit")


def str2bool(value: str) -> bool:
    if value.lower() in ("true", "t", "yes", "y", "1"):
        return True
    if value.lower() in ("false", "f", "no", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def channels(value: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 4 comma-separated integers, got {value!r}") from None
    if len(out) != 4 or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected 4 positive comma-separated integers, got {value!r}")
    return out


def unit_interval(value: str) -> float:
    """A number in [0, 1) (Adam's betas)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value!r}") from None
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--task", default="train", choices=TASKS, help="what to do (default: train)")
    a("--seed", type=int, default=1, help="random seed (default: 1)")
    a("--cuda", type=str2bool, default=True, help="use CUDA when available (course flag; --device overrides it)")
    a("--device", default=None, choices=DEVICE_CHOICES, help="auto | cpu | cuda (default: auto, or cpu with --cuda false)")
    a("--max_iter", type=positive_float, default=12000,
      help="training iterations in all (default: 12000, about 15 min at batch 64 on 2 CPU cores; the course had 1e6)")
    a("--max_minutes", type=positive_float, default=None, help="also stop after this many minutes of training in all (resumed parts included)")
    a("--batch_size", type=positive_int, default=64, help="images per iteration, over all processes (default: 64)")
    a("--z_dim", type=positive_int, default=128, help="latent units (default: 128; the course had 32, see README)")
    a("--beta", type=non_negative_float, default=4.0, help="weight of the KL term; 0 = plain autoencoder (default: 4)")
    a("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: 1e-3; the course had 1e-4)")
    a("--lr_schedule", default="cosine", choices=("cosine", "constant"),
      help="cosine: decay the learning rate to a tenth over --max_iter or --max_minutes (default: cosine)")
    a("--beta1", type=unit_interval, default=0.9, help="Adam beta1 (default: 0.9)")
    a("--beta2", type=unit_interval, default=0.999, help="Adam beta2 (default: 0.999)")
    a("--dset_dir", default="data", help="data root (default: data)")
    a("--dataset", default="CelebA", help="folder under dset_dir, ImageFolder layout (default: CelebA)")
    a("--image_size", type=int, default=64, choices=(64,), help="image side in pixels: the network is built for 64")
    a("--num_workers", type=non_negative_int, default=2, help="threads that decode images on the first run (default: 2)")
    a("--cache_dir", default="data/cache",
      help="where decoded faces and the analysis statistics computed from them are cached ('' to disable; default: data/cache)")
    a("--save_output", type=str2bool, default=True, help="write images and plots (default: true)")
    a("--output_dir", default="outputs", help="output root (default: outputs)")
    a("--display_step", type=positive_int, default=500, help="iterations between console summaries (default: 500)")
    a("--save_step", type=positive_int, default=1000, help="iterations between checkpoints and figures (default: 1000)")
    a("--ckpt_dir", default=None,
      help="checkpoint root. Training writes <ckpt_dir>/<ckpt_name>/ (default: runs/); the tasks read it from there, "
           "by default from runs/<ckpt_name>/ if you trained it, else the shipped checkpoints/<ckpt_name>/")
    a("--resume", action="store_true", help="train: continue the run in <ckpt_dir>/<ckpt_name>/ from its last.pt "
      "(with the optimiser state) up to --max_iter iterations in all")
    a("--overwrite", action="store_true", help="train: remove the run already in <ckpt_dir>/<ckpt_name>/ and start anew")
    a("--ckpt_name", default=None, help="checkpoint name (default: vae_beta_<beta>)")
    a("--attr_file", default=None,
      help="CelebA attribute file (default: <dset_dir>/<dataset>/list_attr_celeba.txt or .../Anno/list_attr_celeba.txt)")
    a("--image", default=None, help="rotate / edit: a face photo of any size (default: held-out faces)")
    a("--rotation_method", default="interfacegan_calibrated",
      choices=("interfacegan_calibrated", "interfacegan_conditional", "interfacegan", "yaw_fit", "mirror_path", "global_axis"),
      help="rotate: interfacegan = along the normal of a linear model of landmark yaw in code space (InterFaceGAN); "
           "interfacegan_conditional = that normal with the identity attributes' normals projected out; "
           "interfacegan_calibrated (default) = the conditional path bent along those normals so the attribute "
           "classifier keeps training faces' identity (falls back to the conditional, then the plain one, without "
           "labels or classifier); yaw_fit = along the direction the units' measured landmark-yaw responses span; "
           "mirror_path = towards the code of the mirrored face and past it; global_axis = first principal axis of "
           "face-minus-mirror codes")
    a("--attribute", default=None, help="edit: the attribute to add or remove, e.g. Smiling, Eyeglasses, Blond_Hair")
    a("--num_samples", type=positive_int, default=64, help="random_generation: images to decode (default: 64)")
    a("--max_units", type=positive_int, default=10, help="latent_analysis: units shown in the traversal grids (default: 10)")
    a("--num_faces", type=positive_int, default=4, help="latent_analysis / rotate / edit: faces to show (default: 4)")
    a("--channels", type=channels, default=[32, 32, 64, 64], help="conv channels at 32, 16, 8, 4 px (default: 32,32,64,64)")
    a("--no_batchnorm", action="store_true", help="build the network without batch normalisation")
    a("--bf16", action="store_true", help="train under bf16 autocast (fast on CUDA Ampere+ and CPUs with AMX or AVX512-BF16; emulated, slow, elsewhere)")
    a("--threads", type=positive_int, default=None, help="CPU threads for torch (default: torch's choice)")
    return p


@cli
def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.explicit = {a[2:].split("=")[0] for a in argv if a.startswith("--")}  # flags given, not defaulted
    if args.max_iter < 1:
        raise UserError(f"--max_iter must be at least 1, got {args.max_iter:g}")
    if args.ckpt_name is None:
        args.ckpt_name = f"vae_beta_{args.beta:g}"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from exercise2.solver import Solver

    solver = Solver(args)
    if args.task == "train":
        solver.train()
    elif args.task == "random_generation":
        solver.generate_from_latent()
    elif args.task == "latent_analysis":
        solver.latent_analysis()
    elif args.task == "rotate":
        solver.rotate()
    else:
        solver.edit()


if __name__ == "__main__":
    main()
