import math

import pytest
import torch
import torch.nn.functional as F

from exercise1.evaluation import evaluate
from exercise1.generation import generate
from exercise1.models import ARCHITECTURES, build_model
from utils.errors import UserError

V = 11
CONFIGS = {
    "lstm": {"d_lstm": 24, "num_lstm_layers": 2},
    "tcn": {"channels": [16, 16, 16], "kernel_size": 3},
    "tcn_gated": {"channels": [16, 16, 16], "kernel_size": 3, "activation": "gated"},
    "tcn_channeldrop": {"channels": [16, 16, 16], "kernel_size": 3, "channel_dropout": 0.2},
    "transformer": {"d_model": 32, "n_heads": 4, "linear_layer_size": 48, "num_layers": 2, "context_length": 40},
    "transformer_none": {"d_model": 32, "n_heads": 4, "linear_layer_size": 48, "num_layers": 2, "context_length": 40,
                         "positional_encoding": "none"},
    "transformer_sin": {"d_model": 32, "n_heads": 4, "linear_layer_size": 48, "num_layers": 2, "context_length": 40,
                        "positional_encoding": "sinusoidal"},
    "transformer_alibi": {"d_model": 32, "n_heads": 4, "linear_layer_size": 48, "num_layers": 2, "context_length": 40,
                          "positional_encoding": "none", "alibi": 1.0},
    "transformer_learnedalibi": {"d_model": 32, "n_heads": 4, "linear_layer_size": 48, "num_layers": 2,
                                 "context_length": 40, "alibi": 0.5},
}


def make(name):
    torch.manual_seed(0)
    arch = name.split("_")[0]
    return build_model(arch, {"model": CONFIGS[name]}, V).eval()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_causal_no_output_sees_the_future(name):
    model = make(name)
    x = torch.randint(0, V, (3, 30))
    t = 17
    x2 = x.clone()
    x2[:, t:] = (x2[:, t:] + 1) % V
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(x2)
    assert a.shape == (3, 30, V)
    assert torch.allclose(a[:, :t], b[:, :t], atol=1e-5), "an output before t changed when the input at t changed"
    assert not torch.allclose(a[:, t], b[:, t], atol=1e-5), "the output at t ignores the input at t"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_causal_under_cpu_bf16_autocast(name):
    """Training on CPUs with native bf16 takes other kernels (the Transformer: explicit attention)."""
    from utils.device import bf16_native
    if name == "lstm" and not bf16_native(torch.device("cpu")):
        pytest.skip("oneDNN has no bf16 LSTM kernel on CPUs without AVX512-BF16/AMX (and bf16 'auto' never uses one there)")
    model = make(name)
    x = torch.randint(0, V, (3, 30))
    x2 = x.clone()
    x2[:, 17:] = (x2[:, 17:] + 1) % V
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a, _ = model(x)
        b, _ = model(x2)
    assert torch.equal(a[:, :17], b[:, :17])
    with torch.no_grad():
        exact, _ = model(x)
    assert (a.float() - exact).abs().max() < 0.1, "bf16 logits far from the fp32 ones"


def test_explicit_bf16_attention_matches_the_fused_kernel():
    from exercise1.transformer.modules import attention
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 9, 8).unbind(0)
    # all 9 positions (causal), one new query after 8 cached keys, 3 new queries after 6 cached keys
    for qq in (q, q[:, :, -1:], q[:, :, -3:]):
        ref = attention(qq, k, v, 0.0)  # fp32: PyTorch's fused kernel
        got = attention(qq.bfloat16(), k.bfloat16(), v.bfloat16(), 0.0)  # the explicit CPU bf16 path
        assert got.dtype == torch.bfloat16
        assert (got.float() - ref).abs().max() < 0.05
    # and the causal structure is the one a full pass has: the last 3 queries as part of all 9
    assert torch.allclose(attention(q[:, :, -3:], k, v, 0.0), attention(q, k, v, 0.0)[:, :, -3:], atol=1e-5)


def test_alibi_slopes_and_bias_by_hand():
    from exercise1.transformer.modules import alibi_bias, alibi_slopes
    assert alibi_slopes(4).tolist() == [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8]
    # 6 heads: the 4-head slopes, then every other one of the 8-head slopes (2^-1, 2^-3)
    assert alibi_slopes(6).tolist() == [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]
    bias = alibi_bias(torch.tensor([0.5]), 2, 3)  # the last 2 of 3 positions
    inf = float("-inf")
    assert bias.tolist() == [[[-0.5, 0.0, inf], [-1.0, -0.5, 0.0]]]


def test_alibi_attention_leans_to_near_keys_in_both_attention_forms():
    """With zero queries the scores are the bias alone: weights exp(-m d) / sum, computed by hand;
    the fused kernel (fp32, no dropout) and the explicit form (dropout on the CPU) agree."""
    from exercise1.transformer.modules import alibi_bias, alibi_slopes, attention
    m, T = 0.5, 4
    bias = alibi_bias(torch.tensor([m]), T, T)
    q = torch.zeros(1, 1, T, 8)
    k = torch.randn(1, 1, T, 8)
    v = torch.arange(T, dtype=torch.float32)[None, None, :, None].expand(1, 1, T, 8)
    w = torch.exp(-m * torch.arange(T - 1, -1, -1, dtype=torch.float32))  # last query: distances 3, 2, 1, 0
    expected_last = (w * torch.arange(T)).sum() / w.sum()
    fused = attention(q, k, v, 0.0, bias)
    assert torch.allclose(fused[0, 0, -1], expected_last.expand(8), atol=1e-6)
    assert torch.allclose(fused[0, 0, 0], torch.zeros(8)), "the first query sees only key 0"
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 9, 8).unbind(0)
    slopes = alibi_slopes(4)
    bias = alibi_bias(slopes, 9, 9)
    # dropout > 0 on the CPU selects the explicit form; at p = 1e-9 F.dropout drops a value with chance ~1e-6
    explicit = attention(q, k, v, 1e-9, bias)
    assert torch.allclose(explicit, attention(q, k, v, 0.0, bias), atol=1e-5)
    last3 = attention(q[:, :, -3:], k, v, 0.0, alibi_bias(slopes, 3, 9))
    assert torch.allclose(last3, explicit[:, :, -3:], atol=1e-5), "cached keys: the same as the full pass"
    bf16 = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), 0.0, bias)  # the explicit form without dropout
    assert (bf16.float() - explicit).abs().max() < 0.05


def test_model_alibi_scales_the_slopes_and_0_is_the_plain_transformer():
    from exercise1.transformer.modules import alibi_slopes
    from utils.errors import UserError
    scaled = make("transformer_learnedalibi")  # model.alibi = 0.5
    assert torch.equal(scaled.slopes, 0.5 * alibi_slopes(4))
    plain_cfg = {k: v for k, v in CONFIGS["transformer_learnedalibi"].items() if k != "alibi"}
    torch.manual_seed(0)
    plain = build_model("transformer", {"model": plain_cfg}, V).eval()
    torch.manual_seed(0)
    off = build_model("transformer", {"model": {**plain_cfg, "alibi": 0.0}}, V).eval()
    assert off.slopes is None and off.state_dict().keys() == plain.state_dict().keys() == scaled.state_dict().keys()
    x = torch.randint(0, V, (2, 30))
    with torch.no_grad():
        assert torch.equal(off(x)[0], plain(x)[0])        # off: the model without the key (old checkpoints)
        assert not torch.allclose(scaled(x)[0], plain(x)[0], atol=1e-4)  # the same weights: the biases change it
    for bad in (-1.0, "x", float("inf"), True):
        with pytest.raises(UserError, match="model.alibi"):
            build_model("transformer", {"model": {**plain_cfg, "alibi": bad}}, V)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_incremental_equals_full_forward(name):
    model = make(name)
    x = torch.randint(0, V, (2, 35))
    with torch.inference_mode():
        full, _ = model(x)
        init = getattr(model, "init_state", None)
        state = init(2, "cpu") if init else None
        first, state = model(x[:, :5], state)  # a prompt of 5, then one character at a time: step()
        steps = [first]
        for t in range(5, 35):
            logits, state = model.step(x[:, t], state)
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-4)


def test_tcn_receptive_field_matches_the_formula_and_the_shipped_config():
    model = build_model("tcn", {"model": {"channels": [8] * 4, "kernel_size": 3}}, V).eval()
    assert model.receptive_field == 1 + 2 * 2 * (1 + 2 + 4 + 8)  # 61
    x = torch.randint(0, V, (1, 100))
    x2 = x.clone()
    x2[0, 99 - 61] = (x2[0, 99 - 61] + 1) % V  # just outside the receptive field of the last output
    with torch.no_grad():
        assert torch.allclose(model(x)[0][0, -1], model(x2)[0][0, -1])
    from exercise1.models import default_config_path, read_config
    shipped = build_model("tcn", read_config(default_config_path("tcn")), V)
    assert shipped.receptive_field >= 128


@pytest.mark.parametrize("name", ["lstm", "tcn", "transformer", "transformer_none", "transformer_alibi",
                                  "transformer_learnedalibi"])
def test_generate_beyond_the_context_and_reproducibly(name):
    model = make(name)
    prompt = torch.tensor([1, 2, 3])
    a = generate(model, prompt, 100, temperature=1.0, top_k=5, num_samples=3, generator=torch.Generator().manual_seed(1))
    b = generate(model, prompt, 100, temperature=1.0, top_k=5, num_samples=3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 100) and torch.equal(a, b) and int(a.max()) < V
    g = generate(model, prompt, 20, greedy=True)
    with torch.no_grad():  # greedy continuation = argmax of the full forward pass at each step
        seq = torch.cat([prompt, g[0]])[None]
        logits = model(seq[:, :-1])[0][0, 2:]
    assert torch.equal(logits.argmax(-1), g[0])


def test_all_architectures_registered():
    assert set(ARCHITECTURES) == {"lstm", "tcn", "transformer"}


@pytest.mark.parametrize("name", ["lstm", "tcn", "transformer", "transformer_learnedalibi"])
def test_evaluate_scores_each_character_with_its_full_context(name):
    import math
    import torch.nn.functional as F
    from exercise1.evaluation import evaluate
    model = make(name)
    stream = torch.randint(0, V, (301,))
    with torch.no_grad():
        if name.startswith("transformer"):  # sliding windows of the context (40), stride 20: recompute by hand
            nll = 0.0
            for t in range(0, 300, 20):
                begin = max(0, t + 20 - 40)
                logits = model(stream[None, begin:t + 20])[0][0, t - begin:]
                nll += F.cross_entropy(logits, stream[t + 1:t + 21], reduction="sum").item()
            expected = nll / 300
        else:  # state carried through the whole stream = one forward pass over all of it
            expected = F.cross_entropy(model(stream[None, :-1])[0][0], stream[1:]).item()
    got = evaluate(model, stream, seq_len=32, device="cpu", lanes=1)
    assert got["chars"] == 300 and math.isclose(got["loss_nats"], expected, rel_tol=1e-4)
    assert math.isclose(got["bpc"], got["loss_nats"] / math.log(2))


@pytest.mark.parametrize("name", ["lstm", "tcn"])
def test_evaluation_scores_every_character_with_full_context_whatever_the_lanes(name):
    """Lanes used to restart without context and to drop the tail that did not fill a lane."""
    from exercise1.evaluation import evaluate

    model = make(name)
    stream = torch.randint(0, V, (603,), generator=torch.Generator().manual_seed(1))  # 602 targets: no even split
    one = evaluate(model, stream, seq_len=32, device="cpu", lanes=1)
    many = evaluate(model, stream, seq_len=32, device="cpu", lanes=7)
    assert one["chars"] == many["chars"] == 602
    # the TCN's receptive field and the LSTM's warm-up (longer than this stream) give each lane its full
    # context, so the lanes change nothing
    assert abs(one["loss_nats"] - many["loss_nats"]) < 1e-5
    assert abs(one["accuracy"] - many["accuracy"]) < 1e-9
    # and the loss is the mean over all targets of a plain full-sequence forward pass
    with torch.no_grad():
        logits, _ = model(stream[None, :-1])
    full = torch.nn.functional.cross_entropy(logits[0].float(), stream[1:]).item()
    assert abs(one["loss_nats"] - full) < 1e-4


@pytest.mark.parametrize("name", ["lstm", "tcn", "transformer", "transformer_learnedalibi"])
def test_dynamic_evaluation_without_steps_is_evaluate_and_adapts_only_on_what_it_has_scored(name):
    """lr = 0: the score of `evaluate` with one lane, character by character. With lr > 0: the model
    changes (later losses differ) but never learns a character before predicting it: changing the
    character at t leaves every earlier loss as it was, and the model given in stays untouched."""
    from exercise1.evaluation import dynamic_losses

    model = make(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stream = torch.randint(0, V, (311,), generator=torch.Generator().manual_seed(2))  # a partial last segment
    plain = dynamic_losses(model, stream, lr=0.0, segment=20)
    assert plain.shape == (310,)
    assert math.isclose(plain.mean().item(), evaluate(model, stream, seq_len=32, device="cpu", lanes=1)["loss_nats"],
                        rel_tol=1e-5)
    adapted = dynamic_losses(model, stream, lr=0.5, decay=0.01, segment=20)
    assert torch.allclose(adapted[:20], plain[:20], atol=1e-6), "the first segment is scored before any step"
    assert not torch.allclose(adapted[20:], plain[20:], atol=1e-4), "the steps changed nothing"
    # steps down the gradient: a text read four times is predicted better on its fourth reading than without
    # steps (a step up the gradient, or on the wrong characters, makes it worse)
    repeat = torch.cat([stream[:100]] * 4 + [stream[:1]])
    gain = (dynamic_losses(model, repeat, lr=0.3, segment=20)[300:].mean()
            - dynamic_losses(model, repeat, lr=0.0, segment=20)[300:].mean())
    assert gain < -0.005
    t = 137
    changed = stream.clone()
    changed[t] = (changed[t] + 1) % V
    other = dynamic_losses(model, changed, lr=0.5, decay=0.01, segment=20)
    assert torch.allclose(other[:t - 1], adapted[:t - 1], atol=1e-6), "a loss before t saw the character at t"
    assert not torch.allclose(other[t - 1:], adapted[t - 1:], atol=1e-4)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "the given model was changed"


def test_dynamic_evaluation_chooses_each_halfs_setting_on_the_other_half():
    """scripts/dynamic_eval.py: the second half is scored with the setting best on the first half of the
    same pass, the first half with the setting best on the pass over the second half alone; a setting
    that diverged is never chosen."""
    import importlib.util
    from conftest import REPO
    spec = importlib.util.spec_from_file_location("dynamic_eval", REPO / "scripts" / "dynamic_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    a, b, nan = (0.1, 0.0), (0.3, 0.0), (1.0, 0.0)
    full = {a: torch.tensor([0.0, 0.0, 1.0, 1.0]), b: torch.tensor([1.0, 1.0, 0.0, 0.0]),
            nan: torch.tensor([float("nan"), 0.0, 0.0, 0.0])}
    tail = {a: torch.tensor([1.0, 1.0]), b: torch.tensor([0.0, 0.0]), nan: torch.tensor([float("nan"), 0.0])}
    got = module.cross_fitted(full, tail, 4)
    # each half scored with its own best setting would give 0 nats
    assert got["bpc"] == pytest.approx(1 / math.log(2))
    assert got["first_half"] == {"lr": 0.3, "decay": 0.0} and got["second_half"] == {"lr": 0.1, "decay": 0.0}


def test_transformer_evaluation_scores_the_tail():
    from exercise1.evaluation import evaluate

    model = make("transformer")
    stream = torch.randint(0, V, (603,), generator=torch.Generator().manual_seed(1))
    assert evaluate(model, stream, seq_len=32, device="cpu", lanes=7)["chars"] == 602


@pytest.mark.parametrize("module", ["cli", "config", "data", "data_preparation", "evaluation", "generation", "models",
                                    "ngram", "training",
                                    "lstm.modules", "tcn.modules", "transformer.modules"])
def test_each_exercise1_module_imports_on_its_own(module):
    """Dependencies point one way (no cycles hidden by function-local imports): each module imports
    first, in a fresh interpreter."""
    import subprocess
    import sys

    from conftest import REPO
    proc = subprocess.run([sys.executable, "-c", f"import exercise1.{module}"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["lstm", "tcn", "transformer"])
def test_per_character_losses_are_in_stream_order_and_average_to_the_loss(name):
    model = make(name)
    stream = torch.randint(0, V, (300,))
    out = evaluate(model, stream, 32, "cpu", lanes=4, per_char=True)
    assert out["losses"].shape == (299,)
    assert math.isclose(out["losses"].mean().item(), out["loss_nats"], rel_tol=1e-5)
    # the first target is predicted from one character: the same as the model's first output
    logits, _ = model(stream[None, :1])
    first = F.cross_entropy(logits[0, -1:], stream[1:2]).item()
    assert math.isclose(out["losses"][0].item(), first, rel_tol=1e-4)


def test_lstm_weight_drop_regularises_the_recurrence_in_training_only():
    torch.manual_seed(0)
    model = build_model("lstm", {"model": {"d_lstm": 16, "num_lstm_layers": 2, "weight_drop": 0.5}}, V)
    x = torch.randint(0, V, (2, 12))
    model.train()
    a, _ = model(x)
    b, _ = model(x)
    assert not torch.allclose(a, b), "two training passes drew the same recurrent mask"
    a.sum().backward()
    assert model.lstm.weight_hh_l0.grad.abs().sum() > 0 and model.lstm.weight_ih_l1.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        plain = torch.nn.functional.linear(model.lstm(torch.nn.functional.one_hot(x, V).float())[0],
                                           model.head.weight, model.head.bias)
        assert torch.allclose(model(x)[0], plain, atol=1e-6), "weight drop changed an evaluation"


def test_tcn_channel_dropout_drops_whole_channels_in_training_only():
    torch.manual_seed(0)
    cfg = {"channels": [16, 16], "kernel_size": 3}
    model = build_model("tcn", {"model": {**cfg, "channel_dropout": 0.5}}, V)
    plain = build_model("tcn", {"model": cfg}, V)
    plain.load_state_dict(model.state_dict())  # dropout adds no weights: the same model without it
    seen = {}
    model.blocks[0].conv2.register_forward_pre_hook(lambda mod, args: seen.update(x=args[0]))
    x = torch.randint(0, V, (4, 20))
    model.eval()
    with torch.no_grad():
        model(x)
        kept, seen = seen.pop("x"), {}
        assert torch.equal(model(x)[0], plain(x)[0]), "channel dropout changed an evaluation"
        seen.clear()
        model.train()
        model(x)
    dropped = seen["x"]                                    # [B, C, T] after the activation and the dropout
    active = kept.abs() > 1e-6
    ratio = torch.where(active, dropped / torch.where(active, kept, 1.0), torch.nan)
    per_channel = torch.nanmean(ratio, dim=2)              # [B, C]: 0 (dropped) or 1 / (1 - p) = 2 (kept)
    spread = (ratio - per_channel[..., None]).abs()[active].max()
    assert spread < 1e-4, "a channel was dropped at some steps of a window and kept at others"
    known = ~per_channel.isnan()
    dropped, kept_ = (per_channel.abs() < 1e-4) & known, ((per_channel - 2).abs() < 1e-4) & known
    assert (dropped | kept_)[known].all(), "a channel was scaled by something else than 0 or 1 / (1 - p)"
    assert (dropped.any(dim=1) & kept_.any(dim=1)).any(), "no window dropped some channels and kept others"
    assert not (dropped.all(dim=0) | kept_.all(dim=0)).all(), "every channel shared one mask across the batch"


@pytest.mark.parametrize("key", ["dropout", "channel_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_tcn_rejects_a_dropout_rate_outside_0_1(key, rate):
    with pytest.raises(UserError, match=key):
        build_model("tcn", {"model": {"channels": [8], key: rate}}, V)


def test_lstm_locked_dropout_draws_one_mask_per_window_and_unit(monkeypatch):
    """Locked dropout runs the layers one at a time with the same weights: with its masks made the identity
    a training pass equals the evaluation pass, from a given state too; weight drop still draws its masks
    (one per recurrent matrix), then each layer asks for one mask of shape [B, 1, H]."""
    import utils.dropout as cheap
    torch.manual_seed(0)
    model = build_model("lstm", {"model": {"d_lstm": 16, "num_lstm_layers": 2, "dropout": 0.5, "weight_drop": 0.3,
                                           "locked_dropout": True}}, V)
    x = torch.randint(0, V, (3, 12))
    start = (torch.randn(2, 3, 16), torch.randn(2, 3, 16))
    model.eval()
    with torch.no_grad():
        plain = [model(x, s) for s in (None, start)]
    model.train()
    shapes = []
    monkeypatch.setattr(cheap, "cpu_mask", lambda shape, p, dtype: shapes.append(tuple(shape)) or torch.ones(shape))
    for s, (logits, (h, c)) in zip((None, start), plain):
        shapes.clear()
        out, (h2, c2) = model(x, s)
        assert shapes == [(64, 16), (64, 16), (3, 1, 16), (3, 1, 16)]
        assert torch.allclose(out, logits, atol=1e-5) and torch.allclose(h2, h, atol=1e-5) and torch.allclose(c2, c, atol=1e-5)
    monkeypatch.undo()
    seen = {}
    model.head.register_forward_hook(lambda m, inp, out: seen.update(h=inp[0]))
    a, _ = model(x)
    a.sum().backward()
    assert not torch.allclose(a, plain[0][0]) and all(p.grad is not None for p in model.parameters())
    zero = seen["h"] == 0                                     # [B, T, H]: a dropped unit is zero at every step
    assert zero.any() and (zero.all(dim=1) | ~zero.any(dim=1)).all()


def test_lstm_activation_regularisation_is_the_awd_lstm_penalty_and_reaches_the_loss(monkeypatch):
    """AR = alpha * mean(dropped output^2), TAR = beta * mean((h_t+1 - h_t)^2) on the last layer's undropped
    outputs (read through hooks; with locked dropout every mask made 2, so the last layer's outputs are half
    the head's input); set by training passes only, None when off; the shared train step adds it, so the same
    batch gives another gradient with it than without, and then clears it (the model stays deep-copyable)."""
    import copy

    import utils.dropout as cheap
    from exercise1.training import train_step
    torch.manual_seed(0)
    x = torch.randint(0, V, (3, 12))
    for locked in (False, True):
        model = build_model("lstm", {"model": {"d_lstm": 16, "num_lstm_layers": 2, "dropout": 0.5,
                                               "locked_dropout": locked, "activation_reg": 2.0,
                                               "temporal_activation_reg": 1.0}}, V).train()
        seen = {}
        model.head.register_forward_hook(lambda m, inp, out: seen.update(dropped=inp[0]))
        if locked:
            monkeypatch.setattr(cheap, "cpu_mask", lambda shape, p, dtype: torch.full(tuple(shape), 2.0))
        else:
            model.lstm.register_forward_hook(lambda m, inp, out: seen.update(h=out[0]))
        model(x)
        monkeypatch.undo()
        dropped = seen["dropped"]
        h = dropped / 2 if locked else seen["h"]
        assert not torch.equal(h, dropped)
        expected = 2.0 * dropped.pow(2).mean() + 1.0 * (h[:, 1:] - h[:, :-1]).pow(2).mean()
        assert torch.allclose(model.penalty, expected)
        model.eval()
        model(x)
        assert model.penalty is None
    off = build_model("lstm", {"model": {"d_lstm": 16, "dropout": 0.0}}, V).train()
    off(x)
    assert off.penalty is None
    grads = []
    for reg in (0.0, 5.0):
        torch.manual_seed(1)
        m = build_model("lstm", {"model": {"d_lstm": 16, "dropout": 0.0, "activation_reg": reg}}, V)
        opt = torch.optim.SGD(m.parameters(), lr=0.0)
        train_step(m, m, opt, x[:, :-1], x[:, 1:], 1e9, torch.device("cpu"), False)
        grads.append(m.lstm.weight_ih_l0.grad.clone())
        assert m.penalty is None
        copy.deepcopy(m)
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize("key", ["activation_reg", "temporal_activation_reg"])
@pytest.mark.parametrize("value", [-1.0, "2", True, float("nan"), float("inf")])
def test_lstm_rejects_an_activation_regularisation_that_is_not_a_number_at_least_0(key, value):
    with pytest.raises(UserError, match=key):
        build_model("lstm", {"model": {key: value}}, V)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_lstm_rejects_a_locked_dropout_that_is_not_a_bool(value):
    with pytest.raises(UserError, match="locked_dropout must be true or false"):
        build_model("lstm", {"model": {"locked_dropout": value}}, V)
