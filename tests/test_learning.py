"""The measures of what a text model learned (exercise1/learning.py)."""
import numpy as np
import pytest
import torch

from exercise1.learning import char_kinds, context_use, loss_by_kind, ngram_equivalent, sample_statistics
from exercise1.models import build_model


def test_every_target_has_exactly_one_kind():
    alphabet = np.array(sorted(set("\n ab,.")))
    stream = np.array([list(alphabet).index(c) for c in "ab ab,\nba."])
    kinds = char_kinds(stream, alphabet)
    assert kinds["word_start"].tolist() == [0, 0, 1, 0, 0, 0, 1, 0, 0]   # targets "b ab,\nba." (first char never)
    assert kinds["word_inner"].tolist() == [1, 0, 0, 1, 0, 0, 0, 1, 0]
    assert (sum(m.astype(int) for m in kinds.values()) == 1).all()
    by = loss_by_kind(torch.arange(9, dtype=torch.float), kinds)
    assert by["newline"]["bpc"] == pytest.approx(5 / np.log(2)) and by["space"]["share"] == pytest.approx(1 / 9)


def test_sample_statistics_count_known_words_without_the_cut_ends():
    stats = sample_statistics("xq the knight rode into the wode and zz", {"the", "knight", "rode", "into", "and"})
    assert stats["words"] == 7 and stats["known_word_share"] == pytest.approx(6 / 7)   # "wode" is not a word
    assert stats["mean_word_length"] == pytest.approx(np.mean([3, 6, 4, 4, 3, 4, 3]))
    assert sample_statistics("one", set())["known_word_share"] is None


@pytest.mark.parametrize("arch, model", [("lstm", {"d_lstm": 16, "num_lstm_layers": 1}),
                                         ("transformer", {"d_model": 16, "n_heads": 2, "linear_layer_size": 32,
                                                          "num_layers": 1, "context_length": 8})])
def test_context_use_sees_exactly_k_characters(arch, model):
    torch.manual_seed(0)
    net = build_model(arch, {"model": model}, 7).eval()
    stream = torch.randint(0, 7, (200,))
    rows = context_use(net, stream, "cpu", lengths=(1, 2, 4, 8, 16), targets=50)
    assert [r["context"] for r in rows] == ([1, 2, 4, 8] if arch == "transformer" else [1, 2, 4, 8, 16])
    # with k = 1 the prediction of position t depends on stream[t - 1] only
    pos = torch.linspace(max(r["context"] for r in rows), 199, 50).long().unique()
    logits, _ = net(stream[pos - 1][:, None])
    expected = torch.nn.functional.cross_entropy(logits[:, -1], stream[pos]).item() / np.log(2)
    assert rows[0]["bpc"] == pytest.approx(expected, rel=1e-5)


def test_ngram_equivalent_is_the_highest_order_beaten():
    ladder = {"orders": [{"order": 1, "bpc": 4.0}, {"order": 2, "bpc": 3.0}, {"order": 3, "bpc": 2.5}], "best_bpc": 2.5}
    assert ngram_equivalent(2.9, ladder)["order"] == 2
    assert ngram_equivalent(2.4, ladder) == {"order": 3, "beats_best_order": True, "ladder_best_bpc": 2.5}
    assert ngram_equivalent(5.0, ladder)["order"] == 0
    bumpy = {"orders": [{"order": 1, "bpc": 3.0}, {"order": 2, "bpc": 2.0}, {"order": 3, "bpc": 2.1}], "best_bpc": 2.0}
    assert ngram_equivalent(2.05, bumpy)["order"] == 1   # beats order 3 but not order 2
