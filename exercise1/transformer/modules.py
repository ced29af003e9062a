"""Decoder-only character Transformer with a causal mask and a key/value cache for generation.

`positional_encoding` is "none" (what the course template has: attention alone is blind to order,
only the causal mask hints at position), "learned" (a trained vector per position) or
"sinusoidal" (fixed sines and cosines, Vaswani et al. 2017). `alibi` > 0 adds ALiBi's linear biases
(Press et al. 2022) on top, scaled by it: each head subtracts slope x distance from its attention
scores, so from the first step every head leans towards the nearest characters, some steeply, some
hardly (`positional_encoding` "none" with `alibi` 1 is ALiBi as published).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from utils.dropout import Dropout, dropout as cheap_dropout

POSITIONAL_ENCODINGS = ("none", "learned", "sinusoidal")


EMBED_STD = 0.02  # GPT-2's initial scale of embeddings and weights


def sinusoidal_table(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table  # [n, d]


class KVCache:
    """Keys and values of the positions seen so far, in buffers of the full context length, so a
    new character writes one column instead of copying the whole cache."""

    def __init__(self, batch: int, n_heads: int, capacity: int, d_head: int, device, dtype):
        self.k = torch.empty(batch, n_heads, capacity, d_head, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor):
        end = self.length + k.shape[2]
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]  # [B, H, T_past + T, Dh]


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's head slopes (Press et al. 2022): 2^(-8/n), 2^(-16/n), ... for n heads, n a power of two;
    otherwise those of the power of two below, then every other slope of the one above."""
    def powers(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]
    below = 2 ** int(math.floor(math.log2(n_heads)))
    return torch.tensor(powers(below) + powers(2 * below)[0::2][: n_heads - below])


def alibi_bias(slopes: torch.Tensor, T: int, S: int) -> torch.Tensor:
    """`[H, T, S]` additive scores for the last T of S positions: -slope x distance to each earlier key,
    -inf for later keys (the causal mask is part of it)."""
    distance = torch.arange(S - T, S, device=slopes.device)[:, None] - torch.arange(S, device=slopes.device)[None, :]
    bias = -slopes[:, None, None] * distance.clamp(min=0)
    return bias.masked_fill(distance < 0, float("-inf"))


def attention(q, k, v, dropout: float, bias: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v, causal: the T queries are the last T of the S key positions, so
    query i may attend keys 0 .. S - T + i (S = T: plain causal; T = 1: every cached key). `bias`
    (`[H, T, S]`, ALiBi's) carries the causal mask itself.

    PyTorch's fused CPU kernel is slow in bf16 (its backward took 44% of a training step here), so
    bf16 on the CPU takes the explicit form, whose matrix products use the CPU's bf16 units (AMX, AVX512-BF16):
    training steps 1.75x faster than fp32 on both hosts measured. With dropout on the CPU the fused call
    falls back to PyTorch's own explicit form with its slow mask: the explicit form here with the cheap mask
    (utils/dropout.py) took 21 ms against 30 ms forward and backward at dropout 0.1 (fp32, 16 x 4 heads x
    128 positions, 2 threads, AMD EPYC; scripts/dropout_cost.py); without dropout the fused kernel is
    faster (13 ms against 17)."""
    T, S = q.shape[-2], k.shape[-2]
    plain = bias is None and (T == S or T == 1)  # causal by is_causal, or every cached key
    allowed = None if plain or bias is not None else torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
    if not (q.device.type == "cpu" and (q.dtype == torch.bfloat16 or dropout > 0)):
        mask = bias.to(q.dtype) if bias is not None else allowed
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=plain and T > 1, dropout_p=dropout)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if bias is not None:
        scores = scores.float() + bias  # in fp32: the slopes need not be exact in bf16
    elif T == S and T > 1:
        allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = cheap_dropout(torch.softmax(scores.float(), dim=-1), dropout).to(v.dtype)
    return weights @ v


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        assert d_model % n_heads == 0, f"d_model={d_model} must be divisible by n_heads={n_heads}"
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, cache=None, bias=None):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x [B, H, T, Dh]
        if cache is not None:
            k, v = cache.append(k, v)  # [B, H, T_past + T, Dh]
        y = attention(q, k, v, self.dropout if self.training else 0.0, bias)
        y = y.transpose(1, 2).reshape(B, T, D)  # [B, T, D]
        return self.proj(y), cache


class Block(nn.Module):
    """Pre-LayerNorm decoder block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(approximate="tanh"), nn.Linear(d_ff, d_model), Dropout(dropout))
        self.drop = Dropout(dropout)

    def forward(self, x, cache=None, bias=None):
        a, cache = self.attn(self.ln1(x), cache, bias)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), cache


class CharTransformer(nn.Module):
    """`forward(idx, state)`: indices `[B, T]` -> logits `[B, T, V]`; `state` is the per-layer
    key/value cache (None = start). Sequences are limited to `context_length` positions."""

    def __init__(self, d_one_hot: int, d_model: int = 256, n_heads: int = 8, linear_layer_size: int = 512,
                 num_layers: int = 4, context_length: int = 256, positional_encoding: str = "learned",
                 dropout: float = 0.0, alibi: float = 0.0):
        super().__init__()
        if positional_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(f"positional_encoding must be one of {POSITIONAL_ENCODINGS}, got {positional_encoding!r}")
        if isinstance(alibi, bool) or not isinstance(alibi, (int, float)) or not (math.isfinite(alibi) and alibi >= 0):
            raise ValueError(f"model.alibi (the scale of ALiBi's slopes, 0 = off) must be a finite number >= 0, got {alibi!r}")
        self.d_one_hot = d_one_hot
        self.max_context = context_length
        self.positional_encoding = positional_encoding
        # An embedding is the linear map of a one-hot vector, computed as a table look-up.
        self.embed = nn.Embedding(d_one_hot, d_model)
        if positional_encoding == "learned":
            self.pos = nn.Parameter(torch.randn(context_length, d_model) * EMBED_STD)
        elif positional_encoding == "sinusoidal":
            # Scaled to the embeddings' initial size (RMS 0.02, like the learned positions). The bare
            # table (entries +-1) is 35x larger than the 0.02-scale character embeddings and drowns
            # them: 3.07 bpc after 2 minutes here, worse than no positions at all (2.59).
            table = sinusoidal_table(context_length, d_model) * (EMBED_STD * math.sqrt(2))
            self.register_buffer("pos", table, persistent=False)
        else:
            self.pos = None
        if alibi > 0:
            self.register_buffer("slopes", alibi * alibi_slopes(n_heads), persistent=False)
        else:
            self.slopes = None
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, linear_layer_size, dropout) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, d_one_hot)
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2: residual branches start small, so deep stacks begin near identity
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, std=EMBED_STD / math.sqrt(2 * num_layers))

    @staticmethod
    def _init_weights(module):
        # GPT-2 initialisation. PyTorch's default N(0, 1) embedding would drown the 0.02-scale learned
        # positions, and the model then sits on a plateau, blind to order, for minutes.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=EMBED_STD)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    config_keys = ("d_model", "n_heads", "linear_layer_size", "num_layers", "context_length", "positional_encoding",
                   "dropout", "alibi")  # the model.* keys from_config reads

    @classmethod
    def from_config(cls, m: dict, d_one_hot: int) -> "CharTransformer":
        return cls(d_one_hot, m.get("d_model", 256), m.get("n_heads", 8), m.get("linear_layer_size", 512),
                   m.get("num_layers", 4), m.get("context_length", 256), m.get("positional_encoding", "learned"),
                   m.get("dropout", 0.0), m.get("alibi", 0.0))

    def context_description(self) -> str:
        alibi = "" if self.slopes is None else f" and ALiBi's biases (steepest slope {self.slopes.max().item():.3g})"
        return f"context of {self.max_context} characters, positional encoding '{self.positional_encoding}'{alibi}"

    def init_state(self, batch: int, device) -> list[KVCache]:
        """An empty key/value cache per layer, for generation (training passes no state)."""
        attn = self.blocks[0].attn
        d_model = self.embed.embedding_dim
        return [KVCache(batch, attn.n_heads, self.max_context, d_model // attn.n_heads, device, self.embed.weight.dtype)
                for _ in self.blocks]

    def forward(self, idx: torch.Tensor, state=None):
        B, T = idx.shape
        past = 0 if state is None else state[0].length
        if past + T > self.max_context:
            raise ValueError(f"sequence of {past + T} positions exceeds context_length={self.max_context}")
        x = self.embed(idx)                                   # [B, T, D]
        if self.pos is not None:
            x = x + self.pos[past:past + T]
        x = self.drop(x)
        bias = None if self.slopes is None else alibi_bias(self.slopes, T, past + T)  # [H, T, past + T]
        caches = state if state is not None else [None] * len(self.blocks)
        new_state = []
        for block, cache in zip(self.blocks, caches):
            x, cache = block(x, cache, bias)
            new_state.append(cache)
        return self.head(self.ln_f(x)), new_state             # [B, T, V]

    def step(self, idx: torch.Tensor, state: list[KVCache]):
        """One new character per sequence, `[B]`, after those in the key/value cache: logits `[B, 1, V]`
        and the cache. The general forward pass does it: a hand-written one-position path was only
        1.16x faster on the shipped model (656 against 564 characters/s, side by side in one process,
        medians of 4 runs of 100, 2 threads, AMD EPYC without AVX512), too little to keep a second
        copy of the network."""
        return self.forward(idx[:, None], state)
