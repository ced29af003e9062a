import json

import numpy as np
import pytest

from exercise1.data_preparation import txt_to_npy, txt_to_numpy
from utils.errors import UserError
from utils.helper_functions import (char_to_one_hot, decode, encode, one_hot_to_char, one_hot_to_string,
                                    string_to_one_hot)
from exercise1.data import load_text_data, random_windows


def test_one_hot_round_trip():
    alphabet = np.array(sorted(set("hello wörld‘’\n")), dtype="<U1")
    for ch in alphabet:
        vec = char_to_one_hot(ch, alphabet)
        assert vec.shape == (len(alphabet),) and vec.sum() == 1
        assert one_hot_to_char(vec, alphabet) == ch
    text = "hello wörld ‘hello’\n"
    assert decode(encode(text, alphabet), alphabet) == text
    matrix = string_to_one_hot(text, alphabet)
    assert matrix.shape == (len(text), len(alphabet)) and matrix.dtype == np.bool_
    assert one_hot_to_string(matrix, alphabet) == text


def test_unknown_character_is_a_clear_error():
    with pytest.raises(UserError, match="'Q'"):
        encode("abQ", np.array(list("ab"), dtype="<U1"))
    with pytest.raises(UserError, match="not in the alphabet"):
        char_to_one_hot("z", ["a", "b"])


def test_txt_to_numpy_writes_course_files(tiny_text, tmp_path):
    assert txt_to_npy is txt_to_numpy
    out = txt_to_numpy(tiny_text, tmp_path / "data")
    assert out == tmp_path / "data" / "tiny"
    lines = [l.lower() for l in tiny_text.read_text(encoding="utf-8").split("\n") if len(l) > 1]
    samples = sorted(out.glob("sample_*.npy"))
    assert len(samples) == len(lines) == 43
    assert samples[0].name == "sample_0000.npy"
    alphabet = np.load(out / "alphabet.npy")
    assert "\n" in alphabet and "‘" in alphabet and "—" in alphabet and "T" not in alphabet
    assert list(alphabet) == sorted(alphabet)
    for f, line in zip(samples, lines):
        m = np.load(f)
        assert m.shape == (len(line), len(alphabet)) and m.dtype == np.bool_
        assert one_hot_to_string(m, alphabet) == line
    split = json.loads((out / "split.json").read_text())
    assert sorted(split["train"] + split["val"]) == list(range(43)) and len(split["val"]) == 4


def test_keep_case_and_stale_samples_are_replaced(tiny_text, tmp_path):
    out = txt_to_numpy(tiny_text, tmp_path, keep_case=True)
    assert "T" in np.load(out / "alphabet.npy")
    tiny_text.write_text("short text one\nshort text two\n", encoding="utf-8")
    txt_to_numpy(tiny_text, tmp_path)
    assert len(list(out.glob("sample_*.npy"))) == 2


def test_split_is_deterministic_and_streams_join_lines(tiny_text, tmp_path):
    a = txt_to_numpy(tiny_text, tmp_path / "a")
    b = txt_to_numpy(tiny_text, tmp_path / "b")
    assert (a / "split.json").read_text() == (b / "split.json").read_text()
    data = load_text_data(a)
    text = decode(data.train, data.alphabet)
    assert text.endswith("\n") and text.count("\n") == 39
    assert decode(data.val_lines[0], data.alphabet) + "\n" in decode(data.val, data.alphabet)


def test_windows_are_shifted_by_one():
    import torch
    stream = torch.arange(100)
    x, y = random_windows(stream, 8, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 10) and torch.equal(y, x + 1)


def test_missing_and_empty_texts(tmp_path):
    with pytest.raises(UserError, match="not found"):
        txt_to_numpy(tmp_path / "nope.txt", tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\na\n", encoding="utf-8")
    with pytest.raises(UserError, match="no line longer than one character"):
        txt_to_numpy(empty, tmp_path)
    with pytest.raises(UserError, match="no prepared data set"):
        load_text_data(tmp_path / "missing")


def test_a_bad_val_fraction_leaves_a_prepared_data_set_as_it_was(tiny_text, tmp_path):
    """Defect found in review: the old samples were deleted and new ones written before the split rejected
    the value, leaving a folder whose split.json no longer matched its samples."""
    import pytest

    from exercise1.data_preparation import txt_to_numpy
    from utils.errors import UserError
    folder = txt_to_numpy(tiny_text, tmp_path / "data")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    other = tmp_path / "other.txt"
    other.write_text("short\nlines here\nand more\n", encoding="utf-8")
    with pytest.raises(UserError):
        txt_to_numpy(other, tmp_path / "data", name=folder.name, val_fraction=2.0)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
