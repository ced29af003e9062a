import os

import pytest
import torch

from utils.checkpoint import atomic_save, load_checkpoint
from utils.errors import UserError


def test_atomic_save_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "sub" / "m.pt"
    atomic_save({"model": {"w": torch.ones(3)}}, path)
    atomic_save({"model": {"w": torch.zeros(3)}}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.zeros(3))
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]
    assert os.stat(path).st_mode & 0o044  # readable like any file the user writes, not 0600


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.pt"
    atomic_save({"model": {"w": torch.ones(2)}}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"model": Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_load_refuses_arbitrary_pickles_and_foreign_files(tmp_path):
    from argparse import Namespace  # any class outside the weights-only allow-list

    torch.save({"model": {}, "obj": Namespace(a=1)}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="could not read checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")  # weights_only=True refuses unknown classes
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a checkpoint of this project"):
        load_checkpoint(tmp_path / "other.pt")
