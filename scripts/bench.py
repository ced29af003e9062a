"""One benchmark of the whole kit: data preparation, training throughput, generation speed and the
held-out bits per character reached after a fixed short budget.

    python scripts/bench.py --text data/text.txt --dset_dir data --budget_minutes 1

Writes outputs/bench/bench.json and prints a table (markdown).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from utils.arguments import positive_float, positive_int  # noqa: E402
from utils.device import device_name  # noqa: E402
from utils.errors import cli  # noqa: E402
from utils.paths import repo_path  # noqa: E402


def bench_generation(model, n: int = 1000, repeats: int = 5) -> list[float]:
    """Characters/s of `repeats` generations of n characters at batch 1 (a shared host varies
    from one second to the next, so one figure says little)."""
    from exercise1.generation import generate
    prompt = torch.tensor([1, 2, 3])
    generate(model, prompt, 20)  # warm-up
    speeds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate(model, prompt, n, temperature=0.8, generator=torch.Generator().manual_seed(0))
        speeds.append(n / (time.perf_counter() - t0))
    return speeds


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default="data/text.txt", help="text for exercise 1 (default: %(default)s)")
    p.add_argument("--dset_dir", default="data", help="root holding CelebA/ for exercise 2 (default: %(default)s)")
    p.add_argument("--budget_minutes", type=positive_float, default=1.0, help="training time per text model (default: 1)")
    p.add_argument("--vae_minutes", type=positive_float, default=0.5, help="training time for the VAE throughput (default: 0.5)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", default="outputs/bench/bench.json", help="result file (default: %(default)s)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from exercise1.data_preparation import txt_to_numpy
    from exercise1.models import default_config_path, load_text_model, read_config
    from exercise1.training import train

    result = {"machine": {"platform": platform.platform(), "processor": device_name(torch.device("cpu")),
                          "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "budget_minutes": args.budget_minutes, "text": {}}
    tmp = Path(tempfile.mkdtemp(prefix="bench_"))
    t0 = time.perf_counter()
    folder = txt_to_numpy(args.text, tmp / "data", "bench")
    result["data_preparation_seconds"] = time.perf_counter() - t0
    for arch in ("lstm", "tcn", "transformer"):
        config = read_config(default_config_path(arch))
        config["training"]["max_minutes"] = args.budget_minutes
        config["training"]["sample_length"] = 50
        config["dataset"] = {"name": folder.name, "data_dir": str(folder.parent)}
        config["general"]["device"] = args.device
        config["model"]["name"] = arch
        final = train(arch, config, ckpt_dir=tmp / "ck")
        model, *_ = load_text_model(tmp / "ck", arch)
        speeds = bench_generation(model)
        result["text"][arch] = {"parameters": final["parameters"], "train_chars_per_second": final["chars_per_second"],
                                "held_out_bpc": final["best_val_bpc"],
                                "generation_chars_per_second": statistics.median(speeds),
                                "generation_chars_per_second_runs": speeds}
    faces_dir = repo_path(args.dset_dir) / "CelebA"
    if faces_dir.is_dir():
        from exercise2.main import build_parser
        from exercise2.solver import Solver
        vae_args = build_parser().parse_args([])
        vae_args = Namespace(**{**vars(vae_args), "dset_dir": str(repo_path(args.dset_dir)), "ckpt_dir": str(tmp / "ck"),
                                "output_dir": str(tmp / "out"), "ckpt_name": "bench_vae", "max_iter": 10 ** 6,
                                "max_minutes": args.vae_minutes, "save_output": False, "device": args.device,
                                "display_step": 10 ** 6, "save_step": 10 ** 6})
        summary = Solver(vae_args).train()
        result["vae"] = {"images_per_second": summary["images_per_second"], "batch_size": vae_args.batch_size,
                         "z_dim": vae_args.z_dim, "minutes": args.vae_minutes}
    out = repo_path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\ndata preparation: {result['data_preparation_seconds']:.2f} s")
    print(f"| model | parameters | training chars/s | held-out bpc after {args.budget_minutes:g} min | "
          "generation chars/s (batch 1): median (range) of 5 |")
    print("| --- | --- | --- | --- | --- |")
    for arch, r in result["text"].items():
        print(f"| {arch} | {r['parameters']:,} | {r['train_chars_per_second']:,.0f} | {r['held_out_bpc']:.3f} | "
              f"{r['generation_chars_per_second']:,.0f} ({min(r['generation_chars_per_second_runs']):,.0f} to "
              f"{max(r['generation_chars_per_second_runs']):,.0f}) |")
    if "vae" in result:
        print(f"| beta-VAE (batch {result['vae']['batch_size']}) | | {result['vae']['images_per_second']:,.0f} images/s | | |")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
