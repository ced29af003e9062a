"""The command lines of the text models: train.py (`train_main`) and test.py (`test_main`), shared by
the three architectures; the library they call is training.py, generation.py and evaluation.py."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from exercise1.config import TRAINING_DEFAULTS, apply_overrides, minutes_arg
from exercise1.data import load_text_data
from exercise1.data_preparation import txt_to_numpy
from exercise1.evaluation import evaluate
from exercise1.generation import generate
from exercise1.models import count_parameters, default_config_path, load_text_model, read_config
from exercise1.training import train
from utils.device import DEVICE_CHOICES, resolve_device
from utils.distributed import barrier, init_distributed
from utils.arguments import non_negative_int, positive_float, positive_int
from utils.errors import UserError, cli
from utils.helper_functions import decode, encode
from utils.paths import repo_path
from utils.runs import RUNS_DIR, SHIPPED_DIR, trained_model_dir


def build_train_parser(arch: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"Train the character-level {arch.upper()} on prepared one-hot data (see README.md). A new run "
                    f"goes to {RUNS_DIR}/<name>/ (the shipped models in {SHIPPED_DIR}/ are never written).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", default=str(default_config_path(arch)), help="JSON config (course keys)")
    p.add_argument("--dataset", default=None, help="prepared data set (folder under --data_dir); default: config dataset.name")
    p.add_argument("--data_dir", default=None, help="folder holding prepared data sets; default: config dataset.data_dir or data")
    p.add_argument("--text", default=None, help="a UTF-8 text to prepare on the fly (one paragraph per line)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs (one epoch = as many characters as the training split)")
    p.add_argument("--max_minutes", type=minutes_arg, default=None,
                   help="stop cleanly after this much training time (> 0) and save; 'none' = no time limit "
                        "(default: config training.max_minutes)")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (config training.learning_rate)")
    p.add_argument("--batch_size", type=positive_int, default=None, help="windows per step (global, over all processes)")
    p.add_argument("--seq_len", type=positive_int, default=None, help="characters per training window")
    p.add_argument("--name", default=None, help="model name: the run goes to <ckpt_dir>/<name>/; default: config model.name")
    p.add_argument("--ckpt_dir", default=RUNS_DIR, help="root folder of training runs")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true",
                     help="continue the run in <ckpt_dir>/<name>/ from its last.pt; repeat the flags it was started "
                          "with (its config.json holds them): only --epochs, --max_minutes, --patience, how often it "
                          "evaluates and --bf16/--fp32 may change")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run in <ckpt_dir>/<name>/ (its files are deleted first); without it a fresh "
                          "run refuses a folder that holds files")
    p.add_argument("--patience", type=non_negative_int, default=None,
                   help="after this many held-out evaluations without a better loss, go back to the best weights, "
                        "anneal the learning rate (training.anneal_share of the steps done) and stop; 0 = never "
                        f"(default: config training.patience or {TRAINING_DEFAULTS['patience']})")
    p.add_argument("--seed", type=int, default=0, help="random seed (initialisation and batches)")
    p.add_argument("--device", default=None, choices=DEVICE_CHOICES, help="default: config general.device or auto")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--bf16", action="store_true",
                      help="train under bf16 autocast (default: config training.bf16, 'auto' = where the hardware "
                           "has native bf16: CUDA Ampere+, CPUs with AMX or AVX512-BF16)")
    prec.add_argument("--fp32", action="store_true", help="train in plain fp32")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config entries, e.g. model.d_lstm=256 (values are JSON); they win over the size "
                        "rule, and small_text.chars=0 turns the rule off")
    return p


def train_main(arch: str, argv=None) -> None:
    @cli
    def main():
        args = build_train_parser(arch).parse_args(argv)
        if args.threads:
            torch.set_num_threads(args.threads)
        config, fixed = apply_overrides(read_config(repo_path(args.config)), args)
        if args.text:  # prepare on the fly; the data set is named after the text unless --dataset says otherwise
            # Under torchrun only rank 0 writes the files (ranks writing one folder at once delete each
            # other's samples); the others wait for it.
            info, _ = init_distributed(resolve_device(config["general"].get("device", "auto")))
            if info.is_main:
                txt_to_numpy(args.text, config["dataset"].get("data_dir", "data"), args.dataset)
            barrier(info)
            config["dataset"]["name"] = args.dataset or repo_path(args.text).stem
        final = train(arch, config, ckpt_dir=args.ckpt_dir, resume=args.resume, seed=args.seed, fixed=fixed,
                      overwrite=args.overwrite)
        if final.get("val_bpc") is not None:
            print(f"done ({final['stopped']}): best held-out {final['best_val_bpc']:.3f} bpc; checkpoint "
                  f"{final['checkpoint']}")

    main()


def build_test_parser(arch: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=(f"Generate text with a trained character-level {arch.upper()}. Without --prompt it follows the "
                     "course: take a held-out line, feed its first teacher_forcing_steps characters, generate "
                     "closed_loop_steps more, and print prompt, true continuation and model continuation."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--name", default=arch, help="model name: loads <ckpt_dir>/<name>/<name>.pt")
    p.add_argument("--ckpt_dir", default=None,
                   help=f"checkpoint root folder (default: {RUNS_DIR}/ if you trained <name> there, else the shipped "
                        f"{SHIPPED_DIR}/)")
    p.add_argument("--prompt", default=None, help="text to continue (needs no data, only the checkpoint)")
    p.add_argument("--length", type=int, default=None, help="characters to generate (default: config closed_loop_steps)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="sampling temperature (lower = safer; 0 = always the most likely character, as --greedy)")
    p.add_argument("--top_k", type=int, default=None, help="sample only among the k most likely characters")
    p.add_argument("--greedy", action="store_true", help="always take the most likely character (the template's argmax)")
    p.add_argument("--num_samples", type=int, default=1, help="independent samples")
    p.add_argument("--seed", type=int, default=0, help="random seed (sampling and the choice of held-out line)")
    p.add_argument("--dataset", default=None, help="prepared data set for the held-out line and metrics (default: the one trained on)")
    p.add_argument("--data_dir", default=None, help="folder holding prepared data sets (default: the one trained with)")
    p.add_argument("--line", type=int, default=None, help="which held-out line to use (default: random with --seed)")
    p.add_argument("--no_eval", action="store_true", help="skip the held-out bits-per-character evaluation")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="device")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results as the last line")
    return p


def test_main(arch: str | None, argv=None) -> None:
    @cli
    def main():
        args = build_test_parser(arch or "text").parse_args(argv)
        if args.num_samples < 1 or (args.length is not None and args.length < 0):
            raise UserError("--num_samples must be >= 1 and --length >= 0")
        if args.temperature < 0:
            raise UserError(f"--temperature must be >= 0 (0 = always the most likely character, like --greedy), "
                            f"got {args.temperature:g}")
        if args.top_k is not None and args.top_k < 1:
            raise UserError(f"--top_k must be >= 1, got {args.top_k}")
        device = resolve_device(args.device)
        folder = trained_model_dir(args.name, args.ckpt_dir, f"{args.name}.pt")
        model, config, alphabet, ckpt = load_text_model(folder.parent, args.name, arch)
        print(f"model: {folder / (args.name + '.pt')}", file=sys.stderr)
        model.to(device)
        testing = config.get("testing", {})
        length = args.length if args.length is not None else testing.get("closed_loop_steps", 100)
        result = {"name": args.name, "arch": ckpt["arch"], "parameters": count_parameters(model),
                  "context": model.context_description()}

        data = None
        ds = config.get("dataset", {})
        folder = repo_path(args.data_dir or ds.get("data_dir", "data")) / (args.dataset or ds.get("name", "text"))
        explicit_data = args.dataset is not None or args.data_dir is not None
        if args.prompt is None or explicit_data:
            if (folder / "alphabet.npy").is_file():
                data = load_text_data(folder)
                if data.alphabet.tolist() != alphabet.tolist():
                    raise UserError(f"the alphabet of {folder} ({len(data.alphabet)} characters) differs from the one "
                                    f"{args.name} was trained on ({len(alphabet)}): use the data set it was trained on")
            elif args.prompt is None or explicit_data:
                raise UserError(f"no prepared data in {folder}: give --prompt TEXT to generate without data, or prepare "
                                "the data first (python exercise1/data_preparation.py --text data/text.txt)")

        if data is not None and not args.no_eval:
            seq_len = config.get("training", {}).get("seq_len", 128)
            metrics = evaluate(model, torch.from_numpy(data.val), seq_len, device)
            result.update({k: metrics[k] for k in ("bpc", "loss_nats", "accuracy")})
            print(f"held-out: {metrics['loss_nats']:.4f} nats/char, {metrics['bpc']:.4f} bits/char, "
                  f"next-character accuracy {metrics['accuracy']:.3f} ({metrics['chars']:,} characters)")

        gen = torch.Generator().manual_seed(args.seed)
        truth = None
        if args.prompt is not None:
            prompt_text = args.prompt if args.prompt else "\n"
            if not any(c.isupper() for c in alphabet.tolist()):  # trained on lowercased text (the course's default)
                prompt_text = prompt_text.lower()
            prompt = torch.from_numpy(encode(prompt_text, alphabet))
        else:
            tf = testing.get("teacher_forcing_steps", 30)
            rng = np.random.default_rng(args.seed)
            lines = data.val_lines
            if args.line is not None and not 0 <= args.line < len(lines):
                raise UserError(f"--line must lie in 0..{len(lines) - 1} (held-out lines)")
            line = lines[args.line] if args.line is not None else lines[rng.integers(len(lines))]
            prompt = torch.from_numpy(line[:tf].copy())
            prompt_text = decode(prompt.numpy(), alphabet)
            truth = decode(line[tf:tf + length], alphabet)

        t0 = time.perf_counter()
        out = generate(model, prompt.to(device), length, args.temperature, args.top_k, args.greedy,
                       args.num_samples, gen)
        seconds = time.perf_counter() - t0
        samples = [decode(row.cpu().numpy(), alphabet) for row in out]
        print(f"Prompt: {prompt_text}")
        if truth is not None:
            print(f"True:   {truth}")
        for i, s in enumerate(samples):
            print(f"Model{'' if len(samples) == 1 else f' {i + 1}'}: {s}")
        result.update(sample=samples[0], samples=samples, prompt=prompt_text,
                      chars_per_second=out.numel() / max(seconds, 1e-9))
        if truth is not None:
            result["true_continuation"] = truth
        print(f"({out.numel()} characters in {seconds:.2f} s, {result['chars_per_second']:.0f} characters/s)",
              file=sys.stderr)
        if args.json:
            print(json.dumps(result, ensure_ascii=False))

    main()
