"""The classical yardstick for the text models: a character n-gram model with interpolated Kneser-Ney smoothing.

    python exercise1/ngram.py --dataset text --max_order 10

fits orders 1..max_order on the training stream of a prepared data set and scores each on exactly
the characters `exercise1.evaluation.evaluate` scores: every character of the held-out stream
(`data.val`, held-out lines joined by "\\n") but its first, each predicted from the characters
before it in that stream (across line ends, as the neural models see them; the context is only
cut at the start of the stream). It prints the ladder (order, bits and nats per character) and
writes it to `<data_dir>/<dataset>/ngram_ladder.json`.

The model of order N (Chen & Goodman's interpolated Kneser-Ney with one discount per order):

    P_N(w | h) = max(c(hw) - D, 0) / c(h.) + D * N1+(h.) / c(h.) * P_{N-1}(w | h')

with raw counts c at the highest order and continuation counts c(hw) = N1+(.hw) (the number of
distinct characters seen before hw; the start of the training stream counts as one) at the orders
below it; h' is h without its first character, c(h.) = sum_w c(hw), N1+(h.) the number of
characters seen after h. A context never seen (or seen only at the end of the stream) passes its
whole mass to the order below. Order 1 interpolates with the uniform distribution over the
alphabet, so every character has a positive probability. The discount of an order is
D = n1 / (n1 + 2 n2) with n1, n2 the number of n-grams of that order whose count (raw at the
highest order, continuation below) is exactly 1 or 2 (0.5 when there is no n-gram seen once).

N-grams are never encoded as one big integer (which overflows int64 for large alphabets and
orders): the code of an n-gram is rank(its first n-1 characters among the distinct (n-1)-grams) *
V + its last character, so every code stays below (stream length) * V; counting is np.unique,
looking up held-out n-grams np.searchsorted.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any working directory

import numpy as np  # noqa: E402

from utils.errors import UserError, cli  # noqa: E402

LN2 = math.log(2.0)
MAX_ORDER = 10
LADDER_FILE = "ngram_ladder.json"


def _discount(counts: np.ndarray) -> float:
    n1 = int(np.count_nonzero(counts == 1))
    n2 = int(np.count_nonzero(counts == 2))
    return n1 / (n1 + 2 * n2) if n1 > 0 else 0.5


class _Level:
    """The statistics of one order k (context length k - 1), with raw and continuation counts."""

    def __init__(self, codes, raw, cont, n_contexts: int, V: int):
        self.codes = codes                              # sorted distinct k-gram codes (context rank * V + char)
        self.raw = raw.astype(np.float64)               # c(hw)
        self.cont = cont.astype(np.float64)             # N1+(.hw)
        ctx = codes // V
        self.raw_total = np.bincount(ctx, weights=self.raw, minlength=n_contexts)    # c(h.)
        self.cont_total = np.bincount(ctx, weights=self.cont, minlength=n_contexts)
        self.types = np.bincount(ctx, minlength=n_contexts).astype(np.float64)       # N1+(h.), same set for both
        self.raw_D = _discount(raw)
        self.cont_D = _discount(cont)

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Index of each code among this order's n-grams, -1 where it was never seen."""
        if len(self.codes) == 0:
            return np.full(codes.shape, -1, dtype=np.int64)
        idx = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        return np.where(self.codes[idx] == codes, idx, -1)


class KneserNey:
    """Interpolated Kneser-Ney character model of order `order` (context of `order - 1` characters).

    `fit(train, V)` counts n-grams of every order up to `order`; `prob(context)` is the predictive
    distribution `[V]` after a context; `score(stream)` the log-probability (nats) of each of
    `stream[1:]` predicted from the characters before it. `prob` and `score` take `order=` to use a
    lower order from the same fit (the ladder fits once)."""

    def __init__(self, order: int):
        if not isinstance(order, (int, np.integer)) or order < 1:
            raise UserError(f"the n-gram order must be a whole number >= 1, got {order!r}")
        self.order = int(order)
        self.V = 0
        self.levels: list[_Level] = []

    # -- counting ---------------------------------------------------------------------------------
    def fit(self, train, alphabet_size: int) -> "KneserNey":
        s = np.asarray(train, dtype=np.int64).ravel()
        V = int(alphabet_size)
        if V < 1:
            raise UserError(f"the alphabet size must be >= 1, got {V}")
        if len(s) and (s.min() < 0 or s.max() >= V):
            raise UserError(f"character indices must lie in 0..{V - 1}")
        self.V, T = V, len(s)
        # rank[i] = rank of the (k-1)-gram starting at i among the distinct (k-1)-grams; one empty gram
        rank, n_prev = np.zeros(T + 1, dtype=np.int64), 1
        grams = []  # per order k: (codes, inverse, counts) over the k-grams starting at 0..T-k
        for k in range(1, self.order + 1):
            m = max(T - k + 1, 0)
            code = rank[:m] * V + s[k - 1:k - 1 + m]
            codes, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
            grams.append((codes, inverse.ravel(), counts, n_prev))
            rank, n_prev = inverse.ravel(), len(codes)
        self.levels = []
        for k in range(1, self.order + 1):
            codes, inverse, counts, n_ctx = grams[k - 1]
            cont = np.zeros(len(codes), dtype=np.int64)
            if len(codes):
                cont[inverse[0]] += 1  # the k-gram at the start of the stream: its left context is the start
                m = len(inverse) - 1  # distinct (left character, k-gram) pairs, counted per k-gram
                if m > 0:
                    pair = np.sort(s[:m] * len(codes) + inverse[1:])  # distinct by sorting: numpy's
                    pair = pair[np.r_[True, pair[1:] != pair[:-1]]]       # hashed np.unique is ~10x slower here
                    cont += np.bincount(pair % len(codes), minlength=len(codes))
            self.levels.append(_Level(codes, counts, cont, n_ctx, V))
        return self

    # -- prediction -------------------------------------------------------------------------------
    def _order(self, order):
        if not self.levels:
            raise RuntimeError("call fit() first")
        order = self.order if order is None else int(order)
        if not 1 <= order <= self.order:
            raise ValueError(f"order must lie in 1..{self.order}, got {order}")
        return order

    def _probs(self, ctx_ranks: list[np.ndarray], w: np.ndarray, order: int) -> np.ndarray:
        """P(w | context) where ctx_ranks[j] is the rank of the last j context characters (-1: unseen)."""
        p = np.full(w.shape, 1.0 / self.V)
        for k in range(1, order + 1):
            lv, r = self.levels[k - 1], ctx_ranks[k - 1]
            top = k == order
            count, total, D = (lv.raw, lv.raw_total, lv.raw_D) if top else (lv.cont, lv.cont_total, lv.cont_D)
            known = r >= 0
            rr = np.where(known, r, 0)
            tot = total[rr] if len(total) else np.zeros(w.shape)
            known &= tot > 0
            idx = lv.lookup(rr * self.V + w)
            c = np.where(idx >= 0, count[idx], 0.0) if len(count) else np.zeros(w.shape)
            types = lv.types[rr] if len(lv.types) else np.zeros(w.shape)
            safe = np.where(known, tot, 1.0)
            p = np.where(known, np.maximum(c - D, 0.0) / safe + D * types / safe * p, p)
        return p

    def _stream_ranks(self, s: np.ndarray, order: int) -> list[np.ndarray]:
        """ranks[j][p]: rank of the j-gram s[p:p+j] among the training j-grams, -1 if never seen."""
        L = len(s)
        ranks = [np.zeros(L + 1, dtype=np.int64)]
        for j in range(1, order):
            prev, m = ranks[-1], max(L - j + 1, 0)
            cur = self.levels[j - 1].lookup(np.where(prev[:m] >= 0, prev[:m], 0) * self.V + s[j - 1:j - 1 + m])
            ranks.append(np.where(prev[:m] >= 0, cur, -1))
        return ranks

    def prob(self, context, order: int | None = None) -> np.ndarray:
        """The predictive distribution `[V]` after the character indices `context` (only the last
        order - 1 characters matter; a shorter context uses what it has)."""
        order = self._order(order)
        ctx = np.asarray(context, dtype=np.int64).ravel()[-(order - 1):] if order > 1 else np.zeros(0, np.int64)
        ranks = self._stream_ranks(ctx, order)
        n = len(ctx)
        ctx_ranks = [np.full(self.V, ranks[j][n - j] if j <= n else -1, dtype=np.int64) for j in range(order)]
        return self._probs(ctx_ranks, np.arange(self.V), order)

    def score(self, stream, order: int | None = None) -> np.ndarray:
        """Log-probability in nats `[len(stream) - 1]` of each of stream[1:], predicted from the
        characters before it in `stream` (the targets `evaluate` scores)."""
        order = self._order(order)
        s = self._checked(stream)
        return np.log(self._probs(self._context_ranks(s, np.arange(1, len(s)), order), s[1:], order))

    def distributions(self, stream, targets, order: int | None = None, chunk: int = 16384) -> np.ndarray:
        """The predictive distributions `[len(targets), V]` for the positions `targets` of `stream`,
        each from the characters before it in `stream` (position 0: no context). The same arithmetic as
        `_probs` for all V characters at once: per order, the n-grams of a context are one contiguous run of
        the sorted codes, found by two binary searches (`chunk` rows at a time bounds the memory)."""
        order = self._order(order)
        if not isinstance(chunk, (int, np.integer)) or chunk < 1:
            raise ValueError(f"chunk must be a whole number of rows >= 1, got {chunk!r}")
        s = self._checked(stream)
        t = np.asarray(targets, dtype=np.int64)
        ctx_ranks = self._context_ranks(s, t, order)
        out = np.empty((len(t), self.V))
        for a in range(0, len(t), chunk):
            out[a:a + chunk] = self._all_probs([r[a:a + chunk] for r in ctx_ranks], order)
        return out

    def _all_probs(self, ctx_ranks: list[np.ndarray], order: int) -> np.ndarray:
        """`_probs` for every character: `[len(ctx_ranks[0]), V]`."""
        n, V = len(ctx_ranks[0]), self.V
        p = np.full((n, V), 1.0 / V)
        for k in range(1, order + 1):
            lv, r = self.levels[k - 1], ctx_ranks[k - 1]
            count, total, D = (lv.raw, lv.raw_total, lv.raw_D) if k == order else (lv.cont, lv.cont_total, lv.cont_D)
            if len(total) == 0:
                continue
            known = r >= 0
            rr = np.where(known, r, 0)
            tot = total[rr]
            known &= tot > 0
            lo = np.searchsorted(lv.codes, rr * V)
            length = np.where(known, np.searchsorted(lv.codes, rr * V + V) - lo, 0)
            c = np.zeros((n, V))
            rows = np.repeat(np.arange(n), length)
            at = np.arange(len(rows)) - np.repeat(np.cumsum(length) - length, length) + np.repeat(lo, length)
            c[rows, lv.codes[at] % V] = count[at]
            safe = np.where(known, tot, 1.0)[:, None]
            p = np.where(known[:, None], np.maximum(c - D, 0.0) / safe + D * lv.types[rr][:, None] / safe * p, p)
        return p

    def _checked(self, stream) -> np.ndarray:
        s = np.asarray(stream, dtype=np.int64).ravel()
        if len(s) and (s.min() < 0 or s.max() >= self.V):
            raise UserError(f"character indices must lie in 0..{self.V - 1}")
        return s

    def _context_ranks(self, s: np.ndarray, t: np.ndarray, order: int) -> list[np.ndarray]:
        """ctx_ranks[j][i]: rank of the j characters before position t[i] of s (-1: unseen, or cut by the start)."""
        ranks = self._stream_ranks(s, order)
        ctx_ranks = [np.zeros(len(t), dtype=np.int64)]
        for j in range(1, order):  # the j characters before t start at t - j; none before the stream start
            start = t - j
            ok = start >= 0
            ctx_ranks.append(np.where(ok, ranks[j][np.maximum(start, 0)] if len(ranks[j]) else -1, -1))
        return ctx_ranks


def ladder(data, max_order: int = MAX_ORDER) -> dict:
    """Fit once on `data.train` and score orders 1..max_order on `data.val` (a TextData)."""
    if not isinstance(max_order, (int, np.integer)) or not 1 <= max_order <= 50:
        raise UserError(f"--max_order must be a whole number in 1..50, got {max_order!r}")
    V = len(data.alphabet)
    held_out = len(data.val) - 1
    if held_out < 1:
        raise UserError("the held-out stream has fewer than 2 characters: nothing to score; prepare the data with "
                        "more lines or a larger --val_fraction")
    t0 = time.perf_counter()
    model = KneserNey(max_order).fit(data.train, V)
    orders = []
    for k in range(1, max_order + 1):
        nats = float(-model.score(data.val, order=k).mean())
        orders.append({"order": k, "bpc": nats / LN2, "nats": nats})
    best = min(orders, key=lambda o: o["bpc"])
    return {"model": "interpolated Kneser-Ney, one discount per order", "orders": orders,
            "best_order": best["order"], "best_bpc": best["bpc"], "best_nats": best["nats"],
            "train_chars": int(len(data.train)), "held_out_chars": held_out, "alphabet_size": V,
            "seconds": time.perf_counter() - t0}


def cross_fitted(train, alphabet_size: int, max_order: int = MAX_ORDER, folds: int = 5) -> dict:
    """Kneser-Ney predictions for every character of the training stream by a model that never counted
    it: the stream is cut into `folds` contiguous parts, and each part is predicted (from the characters
    before it in the stream) by a model fitted on the other parts joined. The order is the one whose
    cross-fitted loss on the training stream is lowest, so the held-out stream is never looked at.
    Returns {probs: [N, V] float32 (row t: P(train[t] = . | train[:t])), order, bpc (per order 1..max_order),
    seconds}: the teacher for `training.ngram_distill`."""
    t0 = time.perf_counter()
    s = np.asarray(train, dtype=np.int64).ravel()
    n, V = len(s), int(alphabet_size)
    if n < 2 * folds:
        raise UserError(f"the training text ({n} characters) is too short to cut into {folds} parts")
    bounds = np.linspace(0, n, folds + 1).astype(np.int64)
    fits = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        model = KneserNey(max_order).fit(np.concatenate([s[:a], s[b:]]), V)
        lo = max(0, a - max_order + 1)  # the characters before the part give its first contexts
        fits.append((model, lo, a, b))
    bits = np.zeros(max_order)
    for model, lo, a, b in fits:
        seg = s[lo:b]
        t = np.arange(a - lo, b - lo)
        ctx_ranks = model._context_ranks(seg, t, max_order)  # order k reads the first k of them
        for k in range(1, max_order + 1):
            bits[k - 1] -= np.log2(model._probs(ctx_ranks, seg[t], k)).sum()
    bpc = bits / n
    order = int(np.argmin(bpc)) + 1
    probs = np.empty((n, V), dtype=np.float32)
    for model, lo, a, b in fits:
        probs[a:b] = model.distributions(s[lo:b], np.arange(a - lo, b - lo), order)
    return {"probs": probs, "order": order, "bpc": [float(x) for x in bpc], "seconds": time.perf_counter() - t0}


MIX_WEIGHTS = np.linspace(0.0, 1.0, 21)   # weights of the neural model tried by `cross_fitted_mixture`


def mixture_bits(nn_nats: np.ndarray, ngram_log_probs: np.ndarray, weight: float) -> np.ndarray:
    """Bits of each character under weight * P_nn + (1 - weight) * P_ngram, from the neural model's loss
    (nats, of the true character) and the n-gram's log probability of it, on the same characters."""
    p = weight * np.exp(-np.asarray(nn_nats, dtype=np.float64)) + (1 - weight) * np.exp(ngram_log_probs)
    return -np.log(p) / LN2


def cross_fitted_mixture(nn_nats: np.ndarray, ngram_log_probs: np.ndarray) -> dict:
    """A mixture with the n-gram model scored without tuning on the characters it is scored on: the
    held-out stream is cut in two halves, each half is scored with the weight (of MIX_WEIGHTS) that is
    best on the other half. Returns {bpc, weights (the two chosen), bpc_at_half (weight 0.5)}."""
    n = len(nn_nats)
    halves = (slice(0, n // 2), slice(n // 2, n))
    bits, weights = [], []
    for score, fit in (halves, halves[::-1]):
        best = min(MIX_WEIGHTS, key=lambda w: mixture_bits(nn_nats[fit], ngram_log_probs[fit], w).mean())
        weights.append(round(float(best), 3))
        bits.append(mixture_bits(nn_nats[score], ngram_log_probs[score], best))
    return {"bpc": float(np.concatenate(bits).mean()), "weights": weights,
            "bpc_at_half": float(mixture_bits(nn_nats, ngram_log_probs, 0.5).mean())}


@cli
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="text",
                   help="prepared data set name, the folder <data_dir>/<dataset> (default: %(default)s)")
    p.add_argument("--data_dir", default="data", help="folder holding prepared data sets (default: %(default)s)")
    p.add_argument("--max_order", type=int, default=MAX_ORDER,
                   help="highest n-gram order; the ladder reports every order 1..max_order (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the ladder as one JSON object on the last line")
    args = p.parse_args(argv)

    from exercise1.data import load_text_data  # imports torch: only after --help
    from utils.checkpoint import write_json
    from utils.paths import repo_path

    folder = repo_path(args.data_dir) / args.dataset
    data = load_text_data(folder)
    result = ladder(data, args.max_order)
    result["dataset"] = args.dataset
    print(f"character n-gram (interpolated Kneser-Ney) on {folder}: {result['train_chars']:,} training / "
          f"{result['held_out_chars']:,} held-out characters, alphabet of {result['alphabet_size']}")
    print(f"{'order':>5}  {'bpc':>7}  {'nats':>7}")
    for o in result["orders"]:
        mark = "  <- best" if o["order"] == result["best_order"] else ""
        print(f"{o['order']:>5}  {o['bpc']:7.4f}  {o['nats']:7.4f}{mark}")
    out = folder / LADDER_FILE
    write_json(result, out)
    print(f"best: order {result['best_order']}, {result['best_bpc']:.4f} bits/char "
          f"({result['seconds']:.2f} s); wrote {out}")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
