"""The one generation routine of the three character models (the command line of test.py is in cli.py).

Generation feeds the prompt once, then one character at a time, reusing the model's state: the
LSTM's (h, c), the Transformer's key/value cache, the TCN's per-layer input queues. A Transformer
whose context is full is re-fed the last half of its context (its positions are absolute).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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
