import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
torch.set_num_threads(1)

TINY_TEXT = "\n".join(
    [
        "The Water of the Wondrous Isles — a tale of Birdalone.",
        "x",  # one character: skipped
        "",
        "‘Whither goest thou?’ said she; and he answered: ‘to the wood.’",
        "Therein was neither highway nor byway, nor wood-reeve nor way-warden.",
    ]
    + [f"line {i}: the wood-wife laughed and said, well, sweet, thou shalt not see me." for i in range(40)]
)

TINY_SETTINGS = {
    "lstm": ["model.d_lstm=32", "model.num_lstm_layers=2", "model.dropout=0.0",
             "model.weight_drop=0.0"],  # the config has dropout (and weight drop on small texts)
    "tcn": ["model.channels=[16,16,16]", "model.kernel_size=2"],
    "transformer": ["model.d_model=32", "model.n_heads=2", "model.linear_layer_size=64", "model.num_layers=2",
                    "model.context_length=64"],
}


def run_script(*args, cwd=None, check=True):
    """Run a repository script with this Python; returns the CompletedProcess (text mode)."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd or REPO, capture_output=True, text=True,
                          env={"OMP_NUM_THREADS": "1", "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin"}, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def tiny_text(tmp_path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path
