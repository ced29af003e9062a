"""torchrun with 2 CPU processes (gloo) gives the same training as one process."""
import sys

import pytest
import torch

from conftest import REPO, TINY_SETTINGS, run_script
from test_vae import face_dir  # noqa: F401  (fixture)

TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_text_ddp_matches_single_process(tiny_text, tmp_path):
    common = ["--text", tiny_text, "--data_dir", tmp_path / "data", "--epochs", 1, "--batch_size", 8, "--seq_len", 32,
              "--device", "cpu", "--seed", 3, "--set", *TINY_SETTINGS["lstm"], "training.sample_length=5",
              "--fp32"]  # bf16 rounds one batch of 8 and two averaged batches of 4 differently
    run_script(REPO / "exercise1/lstm/train.py", "--ckpt_dir", tmp_path / "one", *common)
    run_script(*TORCHRUN, REPO / "exercise1/lstm/train.py", "--ckpt_dir", tmp_path / "two", *common)
    one = torch.load(tmp_path / "one/lstm/last.pt", weights_only=True)
    two = torch.load(tmp_path / "two/lstm/last.pt", weights_only=True)
    assert one["state"]["step"] == two["state"]["step"] > 1
    for key in one["model"]:
        assert torch.allclose(one["model"][key], two["model"][key], atol=1e-5), key
    # only rank 0 wrote the log: one line per epoch, not two
    assert (tmp_path / "two/lstm/train_log.txt").read_text().count("held-out") == 1


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_vae_ddp_trains_and_resumes(face_dir, tmp_path):  # noqa: F811
    common = [REPO / "exercise2/main.py", "--dset_dir", face_dir, "--dataset", "Faces", "--ckpt_dir", tmp_path / "ck",
              "--output_dir", tmp_path / "out", "--cache_dir", "", "--batch_size", 8, "--display_step", 4,
              "--save_step", 4, "--channels", "8,8,16,16", "--z_dim", 6, "--device", "cpu", "--ckpt_name", "d",
              "--save_output", "false"]
    run_script(*TORCHRUN, *common, "--max_iter", 4)
    out = run_script(*TORCHRUN, *common, "--max_iter", 8)
    assert out.stdout.count("resuming d from last.pt at iteration 4") == 1  # printed by rank 0 only
    assert torch.load(tmp_path / "ck/d/last.pt", weights_only=True)["iteration"] == 8
