"""The one generation routine of the three character models, and the shared `test.py`.

Generation feeds the prompt once, then one character at a time, reusing the model's state: the
LSTM's (h, c), the Transformer's key/value cache, the TCN's per-layer input queues. A Transformer
whose context is full is re-fed the last half of its context (its positions are absolute).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from exercise1.data import load_text_data
from exercise1.evaluation import evaluate
from exercise1.models import count_parameters, load_text_model
from utils.device import DEVICE_CHOICES, resolve_device
from utils.errors import UserError, cli
from utils.helper_functions import decode, encode
from utils.paths import repo_path


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, greedy: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Next-character indices `[B]` from logits `[B, V]`."""
    if greedy or temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.inference_mode()
def generate(model, prompt: torch.Tensor, length: int, temperature: float = 1.0, top_k: int | None = None,
             greedy: bool = False, num_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """`length` characters `[num_samples, length]` that continue the prompt indices `[P]` (P >= 1)."""
    was_training = model.training
    model.eval()
    ctx = getattr(model, "max_context", None)
    tokens = prompt.reshape(1, -1).expand(num_samples, -1)  # [N, P]
    history = [tokens]
    feed = tokens[:, -ctx:] if ctx else tokens
    init_state = getattr(model, "init_state", None)  # models with a preallocated state (the Transformer's cache)
    logits, state = model(feed, init_state(num_samples, prompt.device) if init_state else None)
    used = feed.shape[1]
    out = []
    for i in range(length):
        nxt = sample_next(logits[:, -1], temperature, top_k, greedy, generator)  # [N]
        out.append(nxt)
        if i == length - 1:
            break
        history.append(nxt[:, None])
        if ctx and used + 1 > ctx:  # context full: start again from the recent half
            recent = torch.cat(history, dim=1)[:, -(ctx // 2):]
            history = [recent]
            logits, state = model(recent, init_state(num_samples, prompt.device) if init_state else None)
            used = recent.shape[1]
        else:
            logits, state = model.step(nxt, state)  # one character on the kept state: no recomputation
            used += 1
    model.train(was_training)
    return torch.stack(out, dim=1) if out else tokens.new_zeros(num_samples, 0)


def build_arg_parser(arch: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=(f"Generate text with a trained character-level {arch.upper()}. Without --prompt it follows the "
                     "course: take a held-out line, feed its first teacher_forcing_steps characters, generate "
                     "closed_loop_steps more, and print prompt, true continuation and model continuation."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--name", default=arch, help="model name: loads <ckpt_dir>/<name>/<name>.pt")
    p.add_argument("--ckpt_dir", default="checkpoints", help="checkpoint root folder")
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
        args = build_arg_parser(arch or "text").parse_args(argv)
        if args.num_samples < 1 or (args.length is not None and args.length < 0):
            raise UserError("--num_samples must be >= 1 and --length >= 0")
        if args.temperature < 0:
            raise UserError(f"--temperature must be >= 0 (0 = always the most likely character, like --greedy), "
                            f"got {args.temperature:g}")
        if args.top_k is not None and args.top_k < 1:
            raise UserError(f"--top_k must be >= 1, got {args.top_k}")
        device = resolve_device(args.device)
        model, config, alphabet, ckpt = load_text_model(repo_path(args.ckpt_dir), args.name, arch)
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
