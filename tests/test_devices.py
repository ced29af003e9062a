"""Device handling: CPU fallback here; the CUDA paths run where a GPU is present and skip elsewhere."""
import json

import pytest
import torch

from conftest import REPO, TINY_SETTINGS, run_script
from test_vae import face_dir  # noqa: F401  (fixture)
from utils.device import autocast, bf16_native, device_name, resolve_device, use_bf16
from utils.errors import UserError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_device_choice_and_fallback():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("CPU").type == "cpu"  # the course's config values
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="running on the CPU"):
            assert resolve_device("GPU").type == "cpu"
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu")
    cpu = torch.device("cpu")
    with autocast(cpu, enabled=False):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with autocast(cpu, enabled=True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_bf16_setting(monkeypatch):
    cpu = torch.device("cpu")
    assert not use_bf16(cpu, False) and not use_bf16(cpu, "off")
    assert use_bf16(cpu, "auto") == bf16_native(cpu)
    monkeypatch.setattr("utils.device.bf16_native", lambda device: False)
    assert not use_bf16(cpu, "auto")  # auto never picks emulated bf16
    with pytest.warns(UserWarning, match="no native bf16"):
        assert use_bf16(cpu, True)  # asked for explicitly: on, with a warning


@pytest.mark.parametrize("flag, expected", [("--bf16", "bf16 autocast"), ("--fp32", "(fp32)")])
def test_text_training_precision_flags(flag, expected, tiny_text, tmp_path):
    out = run_script(REPO / "exercise1/tcn/train.py", "--text", tiny_text, "--data_dir", tmp_path / "data", "--epochs", 1,
                     "--batch_size", 4, "--seq_len", 16, "--ckpt_dir", tmp_path / "ck", flag, "--threads", 1,
                     "--set", *TINY_SETTINGS["tcn"])
    assert expected in out.stdout + out.stderr
    assert f"[{device_name(torch.device('cpu')).split(',')[0]}" in out.stdout + out.stderr  # the log names the hardware
    if flag == "--bf16" and not bf16_native(torch.device("cpu")):
        assert "no native bf16" in out.stderr


@cuda
@pytest.mark.parametrize("arch", ["lstm", "tcn", "transformer"])
def test_text_training_on_cuda_with_bf16_loads_on_cpu(arch, tiny_text, tmp_path):
    run_script(REPO / f"exercise1/{arch}/train.py", "--text", tiny_text, "--data_dir", tmp_path / "data", "--epochs", 2,
               "--batch_size", 8, "--seq_len", 32, "--ckpt_dir", tmp_path / "ck", "--device", "cuda", "--bf16",
               "--set", *TINY_SETTINGS[arch])
    ckpt = torch.load(tmp_path / "ck" / arch / f"{arch}.pt", map_location="cpu", weights_only=True)
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())
    out = run_script(REPO / f"exercise1/{arch}/test.py", "--ckpt_dir", tmp_path / "ck", "--device", "cpu", "--prompt",
                     "the", "--length", 20, "--json")
    assert len(json.loads(out.stdout.strip().splitlines()[-1])["sample"]) == 20


@cuda
def test_vae_training_on_cuda_then_analysis_on_cpu(face_dir, tmp_path):  # noqa: F811
    common = [REPO / "exercise2/main.py", "--dset_dir", face_dir, "--dataset", "Faces", "--ckpt_dir", tmp_path / "ck",
              "--output_dir", tmp_path / "out", "--cache_dir", "", "--batch_size", 8, "--channels", "8,8,16,16",
              "--z_dim", 6, "--ckpt_name", "g"]
    run_script(*common, "--max_iter", 10, "--device", "cuda", "--bf16")
    run_script(*common, "--task", "rotate", "--device", "cpu")
    assert (tmp_path / "out" / "g" / "rotate" / "rotation.png").is_file()
