"""Character LSTM as in the sheet's figure: one-hot input -> nn.LSTM -> nn.Linear to logits (training with
locked dropout runs nn.LSTM's layers one at a time, with its weights; activation regularisation adds a
penalty on the last layer's outputs to the training loss)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from utils.dropout import Dropout, dropout as cheap_dropout


class CharLSTM(nn.Module):
    """`forward(idx, state)` takes character indices `[B, T]` and the LSTM state `(h, c)` (None =
    zeros) and returns logits `[B, T, V]` and the new state, so generation feeds one character at a
    time without recomputing the prefix."""

    max_context = None  # the state carries the whole past
    carries_state = True  # training.carry_state: the state after one window starts the next
    config_keys = ("d_lstm", "num_lstm_layers", "dropout", "weight_drop", "locked_dropout", "activation_reg",
                   "temporal_activation_reg")  # model.* keys from_config reads

    def __init__(self, d_one_hot: int, d_lstm: int = 512, num_lstm_layers: int = 1, dropout: float = 0.0,
                 weight_drop: float = 0.0, locked_dropout: bool = False, activation_reg: float = 0.0,
                 temporal_activation_reg: float = 0.0):
        super().__init__()
        if not 0 <= weight_drop < 1:
            raise ValueError(f"model.weight_drop must lie in [0, 1), got {weight_drop!r}")
        for key, value in (("activation_reg", activation_reg), ("temporal_activation_reg", temporal_activation_reg)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"model.{key} must be a finite number >= 0, got {value!r}")
        if not isinstance(locked_dropout, bool):
            raise ValueError(f"model.locked_dropout must be true or false, got {locked_dropout!r}")
        self.d_one_hot = d_one_hot
        self.weight_drop = weight_drop
        # dropout between the layers and before the head: one mask per value (False) or one per window and
        # unit, the same at every time step (locked or "variational" dropout, Gal & Ghahramani 2016; the
        # recurrence itself is left to weight_drop, as in AWD-LSTM)
        self.locked_dropout = locked_dropout
        # AR and TAR (AWD-LSTM, Merity et al. 2018): activation_reg * mean(dropped output^2) keeps the last
        # layer's outputs small, temporal_activation_reg * mean((h_t+1 - h_t)^2) on the undropped outputs keeps
        # them from jumping from one character to the next; the training loop adds `penalty`, set by each
        # training pass, to its loss (and clears it)
        self.activation_reg, self.temporal_activation_reg = float(activation_reg), float(temporal_activation_reg)
        self.penalty: torch.Tensor | None = None
        self.lstm = nn.LSTM(d_one_hot, d_lstm, num_lstm_layers, batch_first=True,
                            dropout=dropout if num_lstm_layers > 1 else 0.0)
        self.drop = Dropout(dropout)
        self.head = nn.Linear(d_lstm, d_one_hot)

    @classmethod
    def from_config(cls, model_cfg: dict, d_one_hot: int) -> "CharLSTM":
        return cls(d_one_hot, model_cfg.get("d_lstm", 512), model_cfg.get("num_lstm_layers", 1),
                   model_cfg.get("dropout", 0.0), model_cfg.get("weight_drop", 0.0),
                   model_cfg.get("locked_dropout", False), model_cfg.get("activation_reg", 0.0),
                   model_cfg.get("temporal_activation_reg", 0.0))

    def context_description(self) -> str:
        return "unbounded (recurrent state)"

    def forward(self, idx: torch.Tensor, state=None):
        x = F.one_hot(idx, self.d_one_hot).float()  # [B, T, V]
        locked = self.training and self.locked_dropout and self.drop.p > 0
        if locked:
            h, state = self.locked_layers(x, state)
            out = cheap_dropout(h, self.drop.p, mask_shape=(h.shape[0], 1, h.shape[2]))
        else:
            if self.training and self.weight_drop > 0:
                # DropConnect on the recurrent weights (AWD-LSTM, Merity et al. 2018): one mask per batch,
                # the same at every time step, so the recurrence itself is regularised
                h, state = functional_call(self.lstm, self.dropped_weights(), (x, state))
            else:
                h, state = self.lstm(x, state)       # [B, T, d_lstm]
            out = self.drop(h)
        self.penalty = self.activation_penalty(h, out) if self.training else None
        return self.head(out), state                 # [B, T, V]

    def activation_penalty(self, h: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor | None:
        """AR on the dropped outputs plus TAR on the undropped ones (None when both are off)."""
        if not (self.activation_reg or self.temporal_activation_reg):
            return None
        penalty = self.activation_reg * dropped.float().pow(2).mean()
        if h.shape[1] > 1:
            h = h.float()  # the difference in fp32, also under bf16 autocast
            penalty = penalty + self.temporal_activation_reg * (h[:, 1:] - h[:, :-1]).pow(2).mean()
        return penalty

    def dropped_weights(self) -> dict:
        """The LSTM's parameters by name, the recurrent matrices with weight drop applied (training)."""
        drop = self.weight_drop if self.training else 0.0
        return {name: cheap_dropout(w, drop) if name.startswith("weight_hh") else w
                for name, w in self.lstm.named_parameters()}

    def locked_layers(self, x: torch.Tensor, state):
        """Training pass with locked dropout: the layers one at a time (the same weights as `self.lstm`,
        weight drop applied), each layer's output but the last (which `forward` drops before the head) times
        a mask of shape [B, 1, H] drawn once per window. Returns the last layer's outputs and the state.
        `torch.lstm` is the op nn.LSTM itself calls (not in PyTorch's documented API). The split costs
        little: a training step at the chapter's batch took 1.01 times a plain one, element-wise dropout at
        the same rate 1.05 times (scripts/step_cost.py, report/results/text/chapter/levers5/step_cost.json)."""
        weights = self.dropped_weights()
        if state is None:
            zeros = x.new_zeros(self.lstm.num_layers, x.shape[0], self.lstm.hidden_size)
            state = (zeros, zeros)
        hs, cs = [], []
        for layer in range(self.lstm.num_layers):
            params = [weights[f"{kind}_l{layer}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            # arguments: has_biases, num_layers, dropout, train, bidirectional, batch_first
            x, h, c = torch.lstm(x, (state[0][layer:layer + 1], state[1][layer:layer + 1]), params,
                                 self.lstm.bias, 1, 0.0, True, False, True)  # x: [B, T, H]
            if layer < self.lstm.num_layers - 1:
                x = cheap_dropout(x, self.drop.p, mask_shape=(x.shape[0], 1, x.shape[2]))
            hs.append(h)
            cs.append(c)
        return x, (torch.cat(hs), torch.cat(cs))

    @torch.no_grad()
    def step(self, idx: torch.Tensor, state):
        """One new character per sequence, `[B]`, for generation: logits `[B, 1, V]` and the new state.
        The LSTM equations written out (inference only: no dropout), because nn.LSTM's per-call cost
        dominates at batch 1: the shipped LSTM generated 1,330 to 1,581 against 207 to 231 characters/s
        through forward (side by side in one process, medians of 4 runs, 2 threads, AMD EPYC without
        AVX512). The one-hot product W_ih @ x is a column look-up. Same numbers as forward (tested)."""
        hs, cs = state                                                   # [L, B, H] each
        new_h, new_c = [], []
        for layer in range(self.lstm.num_layers):
            w_ih, w_hh = getattr(self.lstm, f"weight_ih_l{layer}"), getattr(self.lstm, f"weight_hh_l{layer}")
            bias = getattr(self.lstm, f"bias_ih_l{layer}") + getattr(self.lstm, f"bias_hh_l{layer}")
            x_part = w_ih.t()[idx] if layer == 0 else F.linear(new_h[-1], w_ih)  # [B, 4H]
            gates = torch.addmm(x_part + bias, hs[layer], w_hh.t())             # [B, 4H]: i, f, g, o
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * cs[layer] + torch.sigmoid(i) * torch.tanh(g)
            new_h.append(torch.sigmoid(o) * torch.tanh(c))
            new_c.append(c)
        return self.head(new_h[-1])[:, None], (torch.stack(new_h), torch.stack(new_c))
