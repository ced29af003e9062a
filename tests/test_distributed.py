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
    out = run_script(*TORCHRUN, *common, "--max_iter", 8, "--resume")
    assert out.stdout.count("resuming d from last.pt at iteration 4") == 1  # printed by rank 0 only
    assert torch.load(tmp_path / "ck/d/last.pt", weights_only=True)["iteration"] == 8


SLOW_RANK = '''
import os, time
if os.environ.get("RANK") == "1":  # this rank's clock runs 1.7 times faster: as if it had waited
    _real, _t0 = time.perf_counter, time.perf_counter()
    time.perf_counter = lambda: _t0 + 1.7 * (_real() - _t0)
if os.environ.get("RANK") is not None:  # after every optimiser step: learning rate and a parameter checksum
    import torch
    def _log(opt, args, kwargs):
        total = sum(float(p.double().sum()) for g in opt.param_groups for p in g["params"])
        with open(os.path.join(os.environ["STEP_LOG_DIR"], "rank" + os.environ["RANK"] + ".txt"), "a") as f:
            f.write(repr(opt.param_groups[0]["lr"]) + " " + repr(total) + "\\n")
    from torch.optim.optimizer import register_optimizer_step_post_hook
    register_optimizer_step_post_hook(_log)
'''


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
@pytest.mark.parametrize("script", ["text", "vae"])
def test_ddp_replicas_stay_equal_under_a_time_budget_with_one_slow_rank(script, tiny_text, face_dir, tmp_path):  # noqa: F811
    """Each rank used to compute the learning rate from its own clock: a rank that waited (e.g. on
    rank 0's checkpoint writes) got other learning rates and its replica drifted from the others."""
    import os
    import subprocess

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_RANK)
    (tmp_path / "log").mkdir()
    if script == "text":
        args = [REPO / "exercise1/lstm/train.py", "--text", tiny_text, "--data_dir", tmp_path / "data", "--batch_size", 8,
                "--seq_len", 32, "--device", "cpu", "--ckpt_dir", tmp_path / "ck", "--max_minutes", 0.08, "--fp32",
                "--set", *TINY_SETTINGS["lstm"], "training.sample_length=5"]
    else:
        args = [REPO / "exercise2/main.py", "--dset_dir", face_dir, "--dataset", "Faces", "--ckpt_dir", tmp_path / "ck",
                "--output_dir", tmp_path / "out", "--cache_dir", "", "--batch_size", 8, "--display_step", 1000,
                "--save_step", 1000, "--channels", "8,8,16,16", "--z_dim", 6, "--device", "cpu", "--save_output", "false",
                "--max_minutes", 0.05, "--max_iter", 100000]
    env = {"OMP_NUM_THREADS": "1", "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
           "PYTHONPATH": str(tmp_path / "site"), "STEP_LOG_DIR": str(tmp_path / "log")}
    proc = subprocess.run([sys.executable, *TORCHRUN, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ranks = [(tmp_path / "log" / f"rank{r}.txt").read_text().splitlines() for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) > 3  # both stopped at the same step
    for step, (a, b) in enumerate(zip(*ranks)):
        lr_a, sum_a = map(float, a.split())
        lr_b, sum_b = map(float, b.split())
        assert lr_a == lr_b, f"step {step}: learning rates {lr_a} and {lr_b} differ between the ranks"
        assert abs(sum_a - sum_b) <= 1e-6 * max(1.0, abs(sum_a)), f"step {step}: the replicas drifted apart"
