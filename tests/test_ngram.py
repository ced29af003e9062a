"""The character n-gram yardstick (exercise1/ngram.py): interpolated Kneser-Ney, its ladder and CLI."""
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REPO, run_script
from exercise1.ngram import KneserNey, ladder

A, B, C, D = range(4)  # alphabet a, b, c, d; d never occurs in training


def hand_model(order=2):
    return KneserNey(order).fit([A, B, A, C, A, B], 4)  # "abacab"


def test_distribution_sums_to_one_for_every_order_and_unseen_contexts():
    rng = np.random.default_rng(0)
    V = 7
    train = rng.integers(0, V - 1, size=400)  # the last character never occurs
    model = KneserNey(10).fit(train, V)
    for order in range(1, 11):
        for length in (0, 1, 3, 9, 15):
            for _ in range(5):
                ctx = rng.integers(0, V, size=length)  # random: mostly never seen at high orders
                p = model.prob(ctx, order=order)
                assert p.shape == (V,)
                assert np.all(p > 0)
                assert p.sum() == pytest.approx(1.0, abs=1e-12)
        seen = train[100:100 + order - 1]  # a context that occurs in training
        assert model.prob(seen, order=order).sum() == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_order_2():
    m = hand_model()
    # bigrams of "abacab": ab 2, ba 1, ac 1, ca 1 -> n1 = 3, n2 = 1, D2 = 3 / (3 + 2) = 0.6
    # unigram continuation counts (distinct left characters, the stream start counts as one):
    #   a: {start, b, c} = 3, b: {a} = 1, c: {a} = 1 (total 5, 3 types); n1 = 2, n2 = 0 -> D1 = 1
    #   P1(w) = max(N1+(.w) - 1, 0) / 5 + 1 * 3/5 * 1/4
    p1 = {A: 2 / 5 + 3 / 20, B: 3 / 20, C: 3 / 20, D: 3 / 20}
    assert [m.levels[1].raw_D, m.levels[0].cont_D] == pytest.approx([0.6, 1.0])
    # after "a": c(a.) = 3 (ab 2, ac 1), N1+(a.) = 2
    expect_a = [0.6 * 2 / 3 * p1[A], (2 - 0.6) / 3 + 0.6 * 2 / 3 * p1[B], (1 - 0.6) / 3 + 0.6 * 2 / 3 * p1[C],
                0.6 * 2 / 3 * p1[D]]
    assert m.prob([A]) == pytest.approx(expect_a, abs=1e-12)
    assert expect_a == pytest.approx([0.22, 0.52666666, 0.19333333, 0.06])
    # after "b": only "ba" (the final b has no successor): c(b.) = 1, N1+(b.) = 1
    expect_b = [(1 - 0.6) / 1 + 0.6 * p1[A], 0.6 * p1[B], 0.6 * p1[C], 0.6 * p1[D]]
    assert m.prob([B]) == pytest.approx(expect_b, abs=1e-12)
    assert m.prob([C, B]) == pytest.approx(expect_b, abs=1e-12)  # only the last order - 1 characters matter
    # after "d" (never seen): the whole mass goes to the unigram continuation distribution
    assert m.prob([D]) == pytest.approx([p1[w] for w in range(4)], abs=1e-12)
    # order 1 on its own uses raw counts: a 3, b 2, c 1 (total 6, 3 types) -> D = 1 / (1 + 2) = 1/3
    d = 1 / 3
    expect_1 = [(3 - d) / 6 + d * 3 / 6 / 4, (2 - d) / 6 + d * 3 / 6 / 4, (1 - d) / 6 + d * 3 / 6 / 4, d * 3 / 6 / 4]
    assert m.prob([], order=1) == pytest.approx(expect_1, abs=1e-12)
    # score: each of stream[1:] from the characters before it (the first from nothing: order 1 has no
    # context, order 2 backs off to the unigram continuation distribution)
    logp = m.score([A, B, D, A])
    assert logp == pytest.approx(np.log([expect_a[B], expect_b[D], p1[A]]), abs=1e-12)


def test_unseen_context_backs_off_to_the_lower_order():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 5, size=300)
    model = KneserNey(4).fit(train, 6)
    grams3 = {tuple(train[i:i + 3]) for i in range(len(train) - 2)}
    grams2 = {tuple(train[i:i + 2]) for i in range(len(train) - 1)}
    ctx = next(c for c in ((x, y, z) for x in range(6) for y in range(5) for z in range(5))
               if c not in grams3 and c[1:] in grams2)
    p = model.prob(list(ctx))
    assert p == pytest.approx(model.prob(list(ctx[1:])), abs=1e-14)  # the context without its first character
    assert not np.allclose(p, model.prob(list(ctx[2:])))  # ... which itself was seen, so it does not back off further
    # the character 5 never occurs: a context holding it is unseen at every order above 1
    assert model.prob([5, 5, 5]) == pytest.approx(model.prob([]), abs=1e-14)


def test_score_matches_prob_and_orders_beyond_the_stream_length():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 4, size=200)
    held = rng.integers(0, 5, size=30)
    model = KneserNey(5).fit(train, 5)
    logp = model.score(held)
    assert logp.shape == (29,)
    for t in range(1, 30):
        assert logp[t - 1] == pytest.approx(math.log(model.prob(held[:t])[held[t]]), abs=1e-12)
    for n in (0, 1, 3):  # a training stream shorter than the order (or empty)
        tiny = KneserNey(10).fit(train[:n], 5)
        for order in (1, 5, 10):
            assert tiny.prob(held[:7], order=order).sum() == pytest.approx(1.0, abs=1e-12)
            assert np.all(np.isfinite(tiny.score(held, order=order)))
    assert np.all(np.isfinite(model.score(held[:3], order=5)))  # held-out stream shorter than the order too
    assert model.score(held[:1]).shape == (0,)


def test_large_alphabet_does_not_overflow():
    rng = np.random.default_rng(3)
    V = 5000  # 5000**10 would overflow int64 as one base-V code
    train = rng.integers(0, 30, size=2000)
    model = KneserNey(10).fit(np.concatenate([train, train]), V)
    assert model.prob(train[:9]).sum() == pytest.approx(1.0, abs=1e-12)
    assert model.prob(train[:9]).argmax() == train[9]  # a repeated text is predicted from long contexts


def test_ladder_reports_every_order():
    rng = np.random.default_rng(4)
    base = rng.integers(0, 6, size=50)
    data = SimpleNamespace(alphabet=np.array(list("abcdef\n")), train=np.tile(base, 20), val=np.tile(base, 2))
    out = ladder(data, max_order=6)
    assert [o["order"] for o in out["orders"]] == list(range(1, 7))
    assert out["train_chars"] == 1000 and out["held_out_chars"] == 99
    for o in out["orders"]:
        assert o["bpc"] == pytest.approx(o["nats"] / math.log(2))
    best = min(out["orders"], key=lambda o: o["bpc"])
    assert (out["best_order"], out["best_bpc"]) == (best["order"], best["bpc"])
    assert out["orders"][-1]["bpc"] < out["orders"][0]["bpc"]  # a repeated text: long contexts help


def test_cli_writes_the_ladder(tiny_text, tmp_path):
    data_dir = tmp_path / "prepared"
    run_script(REPO / "exercise1/data_preparation.py", "--text", tiny_text, "--name", "tiny", "--data_dir", data_dir)
    proc = run_script(REPO / "exercise1/ngram.py", "--dataset", "tiny", "--data_dir", data_dir, "--max_order", "12",
                      "--json", cwd=tmp_path)
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    written = json.loads((data_dir / "tiny" / "ngram_ladder.json").read_text())
    assert printed["orders"] == written["orders"] and len(written["orders"]) == 12
    assert written["best_order"] in range(1, 13) and math.isfinite(written["best_bpc"])
    assert "best: order" in proc.stdout

    missing = run_script(REPO / "exercise1/ngram.py", "--dataset", "nothing", "--data_dir", data_dir, check=False)
    assert missing.returncode == 2 and "data_preparation.py" in missing.stderr and "Traceback" not in missing.stderr
    helped = run_script(REPO / "exercise1/ngram.py", "--help")
    for flag in ("--dataset", "--data_dir", "--max_order", "--json"):
        assert flag in helped.stdout


def test_mixture_with_the_ngram_is_cross_fitted_and_never_worse_than_its_parts_at_their_weights():
    """The mixture row: weight w on the neural model, 1 - w on the n-gram; each half of the held-out
    stream is scored with the weight that is best on the other half."""
    from exercise1.ngram import cross_fitted_mixture, mixture_bits
    rng = np.random.default_rng(0)
    nn = rng.uniform(0.1, 3.0, 400)                 # nats of the true character
    ng = np.log(rng.uniform(0.05, 0.9, 400))        # n-gram log probabilities
    assert np.allclose(mixture_bits(nn, ng, 1.0), nn / np.log(2))
    assert np.allclose(mixture_bits(nn, ng, 0.0), -ng / np.log(2))
    half = mixture_bits(nn, ng, 0.5)                # by hand: -log2((e^-nn + p) / 2)
    assert np.allclose(half, -np.log2((np.exp(-nn) + np.exp(ng)) / 2))
    mix = cross_fitted_mixture(nn, ng)
    assert mix["bpc_at_half"] == pytest.approx(half.mean())
    assert len(mix["weights"]) == 2 and all(0 <= w <= 1 for w in mix["weights"])
    # cross-fitted (each half scored with the other half's best weight): here no better than the best single
    # weight chosen in hindsight on the whole stream, and close to it
    from exercise1.ngram import MIX_WEIGHTS
    oracle = min(mixture_bits(nn, ng, w).mean() for w in MIX_WEIGHTS)
    assert oracle - 1e-12 <= mix["bpc"] <= oracle + 0.02
    # two models that are each sure where the other is not: the mixture beats both by far
    even = np.arange(400) % 2 == 0
    nn2, ng2 = np.where(even, 0.1, 3.0), np.where(even, np.log(0.05), np.log(0.9))
    mix2 = cross_fitted_mixture(nn2, ng2)
    assert mix2["bpc"] < 0.5 * min(nn2.mean(), -ng2.mean()) / np.log(2) and mix2["weights"] == [0.5, 0.5]
    # the same model twice: nothing to gain
    same = cross_fitted_mixture(nn, -nn)
    assert same["bpc"] == pytest.approx(nn.mean() / np.log(2))


def test_distributions_agree_with_score_and_sum_to_one():
    rng = np.random.default_rng(4)
    train = rng.integers(0, 5, size=300)
    held = rng.integers(0, 5, size=40)
    model = KneserNey(4).fit(train, 5)
    t = np.arange(0, 40)
    dist = model.distributions(held, t)
    assert dist.shape == (40, 5) and np.allclose(dist.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(np.log(dist[np.arange(1, 40), held[1:]]), model.score(held), atol=1e-12)
    assert np.allclose(dist[0], model.prob([]))  # position 0: no context
    for order in range(1, 5):  # every row, not only the target's column, is the distribution after its context
        rows = model.distributions(held, t, order=order)
        for i in range(40):
            assert np.allclose(rows[i], model.prob(held[:i], order=order), rtol=0, atol=1e-12), (order, i)
    assert np.array_equal(model.distributions(held, t, chunk=7), dist)  # rows computed in chunks: the same
    short = KneserNey(4).fit(train[:2], 5)  # orders above the text's length: empty levels back off
    assert np.allclose(short.distributions(held, t)[5], short.prob(held[:5]), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="chunk"):
        model.distributions(held, t, chunk=0)


def test_cross_fitted_predicts_each_part_by_a_model_that_never_counted_it():
    from exercise1.ngram import cross_fitted
    rng = np.random.default_rng(5)
    train = rng.integers(0, 3, size=400)
    train[250:260] = 3  # a character only one part holds: the model predicting that part never saw it
    out = cross_fitted(train, 4, max_order=3, folds=4)
    probs, order = out["probs"], out["order"]
    assert probs.shape == (400, 4) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert order == int(np.argmin(out["bpc"])) + 1 and len(out["bpc"]) == 3
    # by hand for the third part (200..300): a model of the other parts, contexts from the stream before
    other = KneserNey(3).fit(np.concatenate([train[:200], train[300:]]), 4)
    for t in (200, 201, 255, 299):
        assert np.allclose(probs[t], other.prob(train[:t], order=order), atol=1e-6)
    held_out_bits = -np.log2(probs[np.arange(400), train]).mean()
    assert held_out_bits == pytest.approx(min(out["bpc"]), abs=1e-4)
    assert probs[255, 3] < 0.2  # it never counted the run of 3s it predicts
    fitted_on_all = KneserNey(3).fit(train, 4)
    assert fitted_on_all.prob(train[:255], order=order)[3] > 0.5  # a model that counted them is sure
