"""The cheap CPU dropout (utils/dropout.py): the rate, the scale, the gradient, evaluation and seeds."""
import pytest
import torch
import torch.nn.functional as F

from exercise1.models import build_model
from utils.dropout import LEVELS, Dropout, cpu_mask, dropout


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_rate_and_scale(p):
    torch.manual_seed(0)
    mask = cpu_mask((512, 1031), p, torch.float32)          # an odd size: the last 64-bit draw is cut
    dropped = round(p * LEVELS)
    assert mask.unique().tolist() == pytest.approx([0.0, LEVELS / (LEVELS - dropped)])
    n = mask.numel()
    rate = (mask == 0).float().mean().item()
    assert abs(rate - dropped / LEVELS) < 5 * (p * (1 - p) / n) ** 0.5, f"dropped {rate:.4f}, asked {p}"
    assert mask.mean().item() == pytest.approx(1.0, abs=5 * (p / (1 - p) / n) ** 0.5)   # expectation kept


def test_levels_are_uniform_over_all_16_bits():
    """Every 16-bit level equally often (a biased draw, e.g. a sign bit never set, would drop too few)."""
    torch.manual_seed(1)
    levels = torch.empty(1 << 20, dtype=torch.int64).random_(-(1 << 63), None).view(torch.int16)
    counts = torch.bincount((levels.long() + LEVELS // 2) >> 12, minlength=16).float()  # 16 bands of 4,096 levels
    expected = levels.numel() / 16
    assert ((counts - expected).abs() < 5 * expected ** 0.5).all(), counts


def test_output_and_gradient_follow_one_mask():
    torch.manual_seed(2)
    x = torch.randn(64, 77, requires_grad=True)
    y = dropout(x, 0.4)
    kept = y != 0
    scale = LEVELS / (LEVELS - round(0.4 * LEVELS))
    assert torch.allclose(y[kept], x[kept] * scale)
    g = torch.randn_like(y)
    y.backward(g)
    assert torch.allclose(x.grad, torch.where(kept, g * scale, 0.0))


@pytest.mark.parametrize("p", [0.5, 1e-6, 1 - 1e-6])  # the cheap mask, and PyTorch's for rates near 0 or 1
def test_a_mask_shape_shares_one_mask_along_its_size_1_dimensions(p):
    torch.manual_seed(3)
    out = dropout(torch.ones(64, 9, 6), p, mask_shape=(64, 1, 6))
    assert out.shape == (64, 9, 6) and (out == out[:, :1]).all()
    if p == 0.5:
        assert (out == 0).any() and (out != 0).any()
    with pytest.raises(ValueError, match="does not broadcast"):
        dropout(torch.ones(4, 9, 6), 0.5, mask_shape=(4, 2, 6))


def test_evaluation_and_zero_rate_are_the_identity_and_seeds_repeat():
    x = torch.randn(8, 16)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    layer = Dropout(0.5).eval()
    assert torch.equal(layer(x), x)
    layer.train()
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), a) and not torch.equal(a, x)
    assert torch.equal(dropout(x, 1.0), F.dropout(x, 1.0))   # outside (0, 1): PyTorch's own
    assert torch.equal(dropout(torch.ones(1000), 0.999995), torch.zeros(1000))  # rounds to 1: PyTorch's own, no 1/0
    with pytest.raises(ValueError):
        Dropout(1.5)


@pytest.mark.parametrize("arch,model", [("lstm", {"d_lstm": 32, "num_lstm_layers": 2, "dropout": 0.3, "weight_drop": 0.3}),
                                        ("tcn", {"channels": [16, 16], "dropout": 0.3}),
                                        ("transformer", {"d_model": 32, "n_heads": 2, "linear_layer_size": 64,
                                                         "num_layers": 2, "context_length": 32, "dropout": 0.3})])
def test_models_drop_in_training_only(arch, model):
    """The text models use it: training passes differ from evaluation (which is deterministic) and
    from each other, and gradients reach every weight."""
    torch.manual_seed(4)
    net = build_model(arch, {"model": model}, 11)
    x = torch.randint(0, 11, (3, 20))
    net.eval()
    with torch.no_grad():
        e1, e2 = net(x)[0], net(x)[0]
    assert torch.equal(e1, e2)
    net.train()
    t1, t2 = net(x)[0], net(x)[0]
    assert not torch.allclose(t1, e1) and not torch.allclose(t1, t2)
    t1.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_dropout_cost_script_profiles_the_masks(tmp_path):
    """scripts/dropout_cost.py: at the chapter's settings the TCN's masks are all cheap ones (no
    bernoulli_ left in its step), and both masks and both attention forms are timed."""
    import json

    from conftest import REPO, run_script
    out = tmp_path / "cost.json"
    run_script(REPO / "scripts/dropout_cost.py", "--archs", "tcn", "--repeats", "1", "--profiled_steps", "1",
               "--threads", "1", "--out", out)
    cost = json.loads(out.read_text())
    assert cost["cheap_mask"] and set(cost["masks"]) == {"pytorch", "cheap"}
    assert set(cost["attention"]["dropout 0.1"]) == {"fused_ms", "explicit_cheap_ms"}
    tcn = cost["steps"]["tcn"]
    assert tcn["dropout"] == 0.3 and tcn["ms_per_step"] > 0
    assert tcn["mask_share"]["aten::bernoulli_"] == 0 and tcn["mask_share"]["aten::random_"] > 0


def test_the_models_draw_the_cheap_mask_on_the_cpu(monkeypatch):
    """Every element-wise dropout of the three text models (the LSTM's weight drop and output, the TCN's
    activations, the Transformer's embeddings, residual branches and attention weights) goes through
    cpu_mask: counted per training pass."""
    import utils.dropout as cheap
    calls = []
    real = cheap.cpu_mask
    monkeypatch.setattr(cheap, "cpu_mask", lambda *a: calls.append(a[0]) or real(*a))
    x = torch.randint(0, 11, (2, 12))
    expected = {"lstm": 3, "tcn": 4, "transformer": 1 + 2 * 3}   # weight_hh of 2 layers + output; 2 blocks x 2; embed + 2 x 3
    for arch, model in [("lstm", {"d_lstm": 16, "num_lstm_layers": 2, "dropout": 0.3, "weight_drop": 0.3}),
                        ("tcn", {"channels": [8, 8], "dropout": 0.3}),
                        ("transformer", {"d_model": 16, "n_heads": 2, "linear_layer_size": 32, "num_layers": 2,
                                         "context_length": 16, "dropout": 0.3})]:
        calls.clear()
        build_model(arch, {"model": model}, 11).train()(x)
        assert len(calls) == expected[arch], (arch, calls)


@pytest.mark.parametrize("past", [0, 5])
def test_explicit_attention_with_dropout_equals_the_fused_call(monkeypatch, past):
    """The explicit CPU form taken with dropout (its mask made the identity) gives the fused call's numbers,
    for a plain causal window and for queries after cached keys (T < S); the future never leaks."""
    import exercise1.transformer.modules as tm
    monkeypatch.setattr(tm, "cheap_dropout", lambda w, p: w)
    torch.manual_seed(5)
    q = torch.randn(2, 3, 7, 8)
    k, v = torch.randn(2, 3, 7 + past, 8), torch.randn(2, 3, 7 + past, 8)
    mine = tm.attention(q, k, v, 0.1)
    allowed = torch.ones(7, 7 + past, dtype=torch.bool).tril(diagonal=past)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed if past else None, is_causal=not past)
    assert torch.allclose(mine, fused, atol=1e-5)
    v2 = v.clone()
    v2[:, :, -1] += 100.0                                    # the last key's value: only the last query may see it
    assert torch.allclose(tm.attention(q, k, v2, 0.1)[:, :, :-1], mine[:, :, :-1], atol=1e-5)
