"""model.members > 1: several models of one architecture trained side by side as one ensemble."""
import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, run_script
from exercise1.ensemble import Ensemble
from exercise1.generation import generate
from exercise1.models import ARCHITECTURES, build_model
from utils.errors import UserError

V = 11
CONFIGS = {
    "lstm": {"d_lstm": 24, "num_lstm_layers": 2},
    "tcn": {"channels": [16, 16, 16], "kernel_size": 3},
    "transformer": {"d_model": 32, "n_heads": 4, "linear_layer_size": 48, "num_layers": 2, "context_length": 40},
}


def ensemble(arch, members=2, **extra):
    torch.manual_seed(0)
    return build_model(arch, {"model": {**CONFIGS[arch], **extra, "members": members}}, V)


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_prediction_is_the_mean_of_the_members_distributions_and_causal(arch):
    model = ensemble(arch, 3).eval()
    assert isinstance(model, Ensemble) and len(model.members) == 3
    x = torch.randint(0, V, (2, 30))
    with torch.no_grad():
        out, _ = model(x)
        alone = [F.softmax(m(x)[0], -1) for m in model.members]
        x2 = x.clone()
        x2[:, 17:] = (x2[:, 17:] + 1) % V
        out2, _ = model(x2)
    assert torch.allclose(out.exp(), sum(alone) / 3, atol=1e-6)
    assert not torch.allclose(alone[0], alone[1])  # members start from their own weights
    assert torch.allclose(out[:, :17], out2[:, :17], atol=1e-5) and not torch.allclose(out[:, 17], out2[:, 17])
    assert model.max_context == model.members[0].max_context
    assert "ensemble of 3 members" in model.context_description()


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_incremental_generation_equals_the_full_forward(arch):
    """`step` (each member's kept state) gives the same numbers as one pass over the whole sequence."""
    model = ensemble(arch).eval()
    x = torch.randint(0, V, (2, 25))
    with torch.no_grad():
        full, _ = model(x)
        init = model.init_state(2, "cpu")
        logits, state = model(x[:, :5], init if any(s is not None for s in init) else None)
        steps = [logits]
        for t in range(5, 25):
            logits, state = model.step(x[:, t], state)
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-4)
    # the shared generation routine on the kept states: greedy = the argmax of the mixture over the whole prefix
    greedy = generate(model, x[0, :4], 20, greedy=True)[0].tolist()
    seq = x[0, :4].tolist()
    with torch.no_grad():
        for _ in range(20):
            seq.append(model(torch.tensor([seq]))[0][0, -1].argmax().item())
    assert greedy == seq[4:]


def test_each_member_learns_on_its_own_loss():
    """train_step averages the members' own losses (and their activation penalties): member k's gradient is
    1/K of the one it would get trained alone on the same batch."""
    from exercise1.training import train_step
    model = ensemble("lstm", 2, dropout=0.0, activation_reg=1.0, temporal_activation_reg=0.5).train()
    x = torch.randint(0, V, (3, 13))
    solo = copy.deepcopy(model.members[1])
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss, state = train_step(model, model, opt, x[:, :-1], x[:, 1:], 1e9, torch.device("cpu"), False)
    assert model.penalty is None and len(state) == 2
    solo_opt = torch.optim.SGD(solo.parameters(), lr=0.0)
    solo_loss, _ = train_step(solo, solo, solo_opt, x[:, :-1], x[:, 1:], 1e9, torch.device("cpu"), False)
    assert torch.allclose(model.members[1].lstm.weight_hh_l0.grad, solo.lstm.weight_hh_l0.grad / 2, atol=1e-6)
    with torch.no_grad():
        model.eval()
        alone = [F.cross_entropy(m(x[:, :-1])[0].flatten(0, 1), x[:, 1:].flatten()) for m in model.members]
    assert math.isclose(loss.item(), sum(a.item() for a in alone) / 2, rel_tol=1e-5)
    assert math.isclose(alone[1].item(), solo_loss.item(), rel_tol=1e-5)


def test_soft_targets_reach_every_member():
    from exercise1.training import train_step
    x = torch.randint(0, V, (3, 13))
    soft = torch.softmax(torch.randn(3, 12, V), -1)
    grads = []
    for weight in (0.0, 0.5):
        model = ensemble("tcn", 2).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        train_step(model, model, opt, x[:, :-1], x[:, 1:], 1e9, torch.device("cpu"), False, soft=soft,
                   soft_weight=weight)
        grads.append([p.grad.clone() for p in model.members[1].parameters()])
    assert not all(torch.allclose(a, b) for a, b in zip(*grads))


@pytest.mark.parametrize("members", [0, -1, 1.5, "2", True, None, 17])
def test_members_must_be_a_whole_number_from_1_to_16(members):
    with pytest.raises(UserError, match="model.members"):
        build_model("lstm", {"model": {**CONFIGS["lstm"], "members": members}}, V)


def test_a_bad_member_count_through_train_py_is_a_clean_error(tiny_text, tmp_path):
    proc = run_script(REPO / "exercise1/lstm/train.py", "--text", tiny_text, "--data_dir", tmp_path / "data",
                      "--ckpt_dir", tmp_path / "ck", "--device", "cpu", "--set", "model.members=0", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "model.members must be" in proc.stderr


def test_a_bad_value_at_the_size_rules_small_end_is_named_where_it_is_set():
    """The size rule blends small_text values into model.* and training.*; an error names small_text."""
    from exercise1.config import training_config
    from exercise1.models import check_model_keys
    config = {"model": {**CONFIGS["lstm"], "members": 1},
              "small_text": {"chars": 100, "full_chars": 1000, "model": {"members": 0}}}
    with pytest.raises(UserError, match=r"^small_text\.model\.members must be"):
        check_model_keys("lstm", config)
    config = {"model": {}, "training": {"ema_steps": 0},
              "small_text": {"chars": 100, "full_chars": 1000, "training": {"ema_steps": -3}}}
    with pytest.raises(UserError, match=r"^small_text\.training\.ema_steps"):
        training_config(config, 5000)  # even on a text the small end does not reach
    config["training"]["grad_clip"] = -1.0  # a bad value of the config's own is named as its own
    with pytest.raises(UserError, match=r"^training\.grad_clip"):
        training_config(config, 5000)


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_one_member_is_the_plain_model(arch):
    assert type(ensemble(arch, 1)) is ARCHITECTURES[arch]


def tiny_lstm(tmp_path, members):
    from exercise1.models import default_config_path, read_config
    config = read_config(default_config_path("lstm"))
    config.pop("small_text", None)
    config["model"].update(d_lstm=16, num_lstm_layers=1, members=members)
    config["training"].update(batch_size=8, seq_len=16, max_minutes=None, epochs=2, min_eval_steps=1, patience=0,
                              warmup_steps=2, sample_length=10, ema_steps=5)
    config["dataset"].update(name="tiny", data_dir=str(tmp_path / "data"))
    config["general"]["device"] = "cpu"
    return config


def test_an_ensemble_trains_saves_and_loads(tiny_text, tmp_path):
    """A tiny LSTM ensemble through the shared loop: its checkpoint loads as the same ensemble."""
    from exercise1.data import load_text_data
    from exercise1.data_preparation import txt_to_numpy
    from exercise1.evaluation import evaluate
    from exercise1.models import load_text_model
    from exercise1.training import train
    txt_to_numpy(tiny_text, tmp_path / "data")
    final = train("lstm", tiny_lstm(tmp_path, members=2), ckpt_dir=tmp_path / "ck")
    model, cfg, alphabet, _ = load_text_model(tmp_path / "ck", "lstm")
    assert isinstance(model, Ensemble) and cfg["model"]["members"] == 2
    val = torch.from_numpy(load_text_data(tmp_path / "data" / "tiny").val)
    assert math.isclose(evaluate(model, val, 16, "cpu")["bpc"], final["best_val_bpc"], rel_tol=1e-4)
    # scripts/ngram_mixture.py: each member alone beside the ensemble
    run_script(REPO / "scripts/ngram_mixture.py", tmp_path / "ck" / "lstm", "--data_dir", tmp_path / "data",
               "--dataset", "tiny", "--out", tmp_path / "mix.json")
    row = json.loads((tmp_path / "mix.json").read_text())["rows"]["lstm"]
    members = [evaluate(m, val, 16, "cpu")["bpc"] for m in model.members]
    assert math.isclose(row["bpc"], final["best_val_bpc"], rel_tol=1e-4)
    assert row["member_bpc"] == [pytest.approx(b, rel=1e-6) for b in members]
    # a mixture of distributions is never worse than its members' mean log-loss (Jensen)
    assert row["bpc"] <= sum(members) / 2 + 1e-9
