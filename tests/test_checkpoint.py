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


def test_atomic_text_writes_are_unique_synced_and_leave_the_umask_alone(tmp_path, monkeypatch):
    from utils.checkpoint import atomic_write_text, write_json

    synced, umask_calls = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(os, "umask", lambda *a: umask_calls.append(a) or 0o022)
    path = tmp_path / "out" / "summary.json"
    # a stale temporary file of the old fixed name must not be taken for ours
    path.parent.mkdir()
    (path.parent / "summary.json.tmp").write_text("stale")
    write_json({"a": 1}, path)
    atomic_write_text("hello", tmp_path / "note.txt")
    assert path.read_text() == '{\n  "a": 1\n}\n' and (tmp_path / "note.txt").read_text() == "hello"
    assert len(synced) == 2, "text writes must reach the disk before the rename"
    assert umask_calls == [], "the umask must not be swapped process-wide"
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json", "summary.json.tmp"]
    assert os.stat(path).st_mode & 0o044
