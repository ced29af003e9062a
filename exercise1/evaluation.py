"""Held-out loss of a text model: nats and bits per character, each character predicted from as
much context as the model can use."""
from __future__ import annotations

import copy
import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


LSTM_WARMUP = 1024  # characters of context a lane of the LSTM reads before it is scored


@torch.no_grad()
def evaluate(model, stream: torch.Tensor, seq_len: int, device, lanes: int = 16, per_char: bool = False) -> dict:
    """Held-out loss with every character predicted from as much context as the model can use.

    The targets are cut into `lanes` contiguous pieces processed side by side. Each lane after the
    first starts reading earlier than its first scored character, by the context the model can use
    (the TCN's receptive field, the Transformer's window, LSTM_WARMUP characters for the LSTM), so a
    lane boundary costs no context; every character is scored exactly once, the tail included. The
    LSTM and the TCN carry their state from chunk to chunk; the Transformer slides a window of its
    whole context with a stride of half of it, so every scored character has at least context/2
    predecessors (all it can see, up to its window). Returns the mean negative log-likelihood in nats,
    bits per character and next-character accuracy; with `per_char`, also "losses": the loss in nats
    of every target `stream[1:]`, in stream order (`[len(stream) - 1]`, on the CPU)."""
    was_training = model.training
    model.eval()
    n = len(stream) - 1                                                      # characters to predict
    lanes = max(1, min(lanes, n // max(seq_len, 1)))
    per = -(-n // lanes)
    ctx = getattr(model, "max_context", None)
    warm = ctx if ctx is not None else getattr(model, "receptive_field", None) or LSTM_WARMUP
    bounds = [(i * per, min((i + 1) * per, n)) for i in range(lanes)]
    starts = [max(0, a - warm) for a, _ in bounds]
    length = max(b - s for (_, b), s in zip(bounds, starts))
    x = torch.zeros(lanes, length, dtype=stream.dtype)                      # [lanes, L] (zero padded)
    y = torch.zeros(lanes, length, dtype=stream.dtype)
    scored = torch.zeros(lanes, length, dtype=torch.bool)                   # which targets count
    for i, ((a, b), s) in enumerate(zip(bounds, starts)):
        x[i, : b - s] = stream[s:b]
        y[i, : b - s] = stream[s + 1:b + 1]
        scored[i, a - s:b - s] = True
    x, y, scored = x.to(device), y.to(device), scored.to(device)
    nll, correct = 0.0, 0
    every = torch.zeros(lanes, length, device=device) if per_char else None   # [lanes, L] nats

    def score(logits, t0, t1):
        nonlocal nll, correct
        logits, target, mask = logits.float(), y[:, t0:t1], scored[:, t0:t1]
        losses = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view_as(target)
        if every is not None:
            every[:, t0:t1] = losses
        nll += losses[mask].sum().item()
        correct += ((logits.argmax(-1) == target) & mask).sum().item()

    if ctx is None:  # recurrent state or convolution queues: carry them along the stream
        state = None
        for t in range(0, length, seq_len):
            logits, state = model(x[:, t:t + seq_len], state)
            score(logits, t, t + logits.shape[1])
    else:
        stride = max(1, ctx // 2)
        for t in range(0, length, stride):
            begin = max(0, t + stride - ctx)
            logits, _ = model(x[:, begin:t + stride])
            score(logits[:, t - begin:], t, t + logits.shape[1] - (t - begin))
    model.train(was_training)
    loss = nll / n
    out = {"loss_nats": loss, "bpc": loss / LN2, "accuracy": correct / n, "chars": n}
    if every is not None:
        out["losses"] = every[scored].cpu()  # row-major: lane after lane, i.e. in stream order
    return out


def detached(state):
    """A model's state (tensors in tuples and lists, or None) cut from the autograd graph."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detached(s) for s in state)
    return state


def dynamic_segment(model, segment: int) -> int:
    """The segment `dynamic_losses` reads between two updates: `segment`, for a model of limited context
    (the Transformer) at most half of it."""
    ctx = getattr(model, "max_context", None)
    return segment if ctx is None else max(1, min(segment, ctx // 2))


def dynamic_losses(model, stream: torch.Tensor, lr: float, decay: float = 0.0, segment: int = 64,
                   clip: float = 1.0, device="cpu") -> torch.Tensor:
    """Dynamic evaluation (Krause et al. 2018, their SGD form): the held-out stream is read once, in
    order, `segment` characters at a time (`dynamic_segment`); each segment is first scored, then the
    model takes one gradient step on that segment's mean loss, theta <- theta - lr * g (g clipped to norm
    `clip`), then theta <- theta + decay * (theta_0 - theta) (back towards the trained weights), so it
    adapts to the text it has already been scored on and never to a character before predicting it. A
    copy of `model` adapts; `model` itself is left as it was. The LSTM and the TCN carry their state from
    segment to segment (gradients stop at a segment's start); the Transformer sees a window of its whole
    context ending with the segment, placed as `evaluate` places it. With lr = decay = 0 (no steps) this
    is `evaluate(..., lanes=1)` (for the Transformer when the segment is half its context, `evaluate`'s
    stride). An ensemble (exercise1/ensemble.py) adapts all its members on the loss of their mixture, the
    prediction it is scored by, with one clip for all. Returns the loss in nats of every target `stream[1:]`
    (`[len(stream) - 1]`, on the CPU)."""
    model = copy.deepcopy(model).to(device).eval()  # eval: no dropout while reading; gradients still flow
    params = [p for p in model.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    ctx = getattr(model, "max_context", None)
    segment = dynamic_segment(model, segment)
    steps = lr > 0 or decay > 0
    x, y = stream[:-1].to(device)[None], stream[1:].to(device)
    out = torch.empty(len(y))
    state = None
    # cuDNN's LSTM has no backward pass in eval mode, and train mode would switch its dropout on: without cuDNN
    no_cudnn = torch.backends.cudnn.flags(enabled=False) if x.is_cuda and steps else nullcontext()
    with no_cudnn, torch.set_grad_enabled(steps):
        for a in range(0, len(y), segment):
            b = min(a + segment, len(y))
            if ctx is None:
                logits, state = model(x[:, a:b], state)
                state = detached(state)
            else:
                begin = max(0, a + segment - ctx)  # evaluate's window: the whole context before the segment's end
                logits = model(x[:, begin:b])[0][:, a - begin:]
            losses = F.cross_entropy(logits[0].float(), y[a:b], reduction="none")
            out[a:b] = losses.detach().cpu()
            if steps:
                model.zero_grad(set_to_none=True)
                if lr > 0:
                    losses.mean().backward()
                    torch.nn.utils.clip_grad_norm_(params, clip)
                with torch.no_grad():
                    for p, p0 in zip(params, start):
                        if p.grad is not None:
                            p.add_(p.grad, alpha=-lr)
                        if decay:
                            p.add_(p0 - p, alpha=decay)
    return out
