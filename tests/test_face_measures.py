"""The instruments of the face analyses, on data made here: attribute files, AUC, MIG, the probe,
the yaw measure, the Frechet distance, identity flips, the rotation codes, the classifier's training."""
import json

import numpy as np
import pytest
import torch

from conftest import run_script
from exercise2 import measures as M
from exercise2.attributes import find_attribute_file, match_attributes, parse_attribute_file
from exercise2.classifier import AttributeNet, random_blur
from utils.errors import UserError

NAMES = ["Smiling", "Male", "Eyeglasses"]


def write_attr_file(path, files, values, names=NAMES, count=None):
    lines = [str(len(files) if count is None else count), " ".join(names)]
    lines += [f"{f} " + " ".join(f"{v:2d}" for v in row) for f, row in zip(files, values)]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------- attribute files
def test_attribute_file_is_matched_by_name_not_position(tmp_path):
    files = ["000003.jpg", "000001.jpg", "000002.jpg"]
    values = [[1, -1, -1], [-1, 1, -1], [1, 1, 1]]
    path = write_attr_file(tmp_path / "list_attr_celeba.txt", files, values)
    # images in another order, one of them without attributes
    attrs = match_attributes(path, ["000001.jpg", "000002.jpg", "000003.jpg", "000009.jpg"])
    assert attrs.names == NAMES
    assert attrs.matched.tolist() == [0, 1, 2]
    assert attrs.values.tolist() == [[False, True, False], [True, True, True], [True, False, False]]
    assert attrs.column("Male").tolist() == [True, True, False]
    with pytest.raises(UserError, match="unknown attribute"):
        attrs.column("Wings")


def test_attribute_file_is_found_beside_or_under_anno(tmp_path):
    assert find_attribute_file(tmp_path) is None
    (tmp_path / "Anno").mkdir()
    write_attr_file(tmp_path / "Anno" / "list_attr_celeba.txt", ["a.jpg"], [[1, 1, 1]])
    assert find_attribute_file(tmp_path).parent.name == "Anno"
    with pytest.raises(UserError, match="not found"):
        find_attribute_file(tmp_path, tmp_path / "missing.txt")


@pytest.mark.parametrize("mutate, message", [
    (lambda lines: lines[:2] + ["a.jpg 1 -1"] + lines[3:], "expected a file name and 3 values"),
    (lambda lines: lines[:2] + ["a.jpg 1 0 1"] + lines[3:], "must be 1 or -1"),
    (lambda lines: ["two"] + lines[1:], "expected the number of images"),
    (lambda lines: ["5"] + lines[1:], "announces 5 images but 2 rows follow"),
    (lambda lines: lines[:1], "fewer than 2 lines"),
])
def test_malformed_attribute_files_are_clear_errors(tmp_path, mutate, message):
    path = write_attr_file(tmp_path / "a.txt", ["a.jpg", "b.jpg"], [[1, 1, 1], [-1, -1, -1]])
    path.write_text("\n".join(mutate(path.read_text().splitlines())) + "\n")
    with pytest.raises(UserError, match=message):
        parse_attribute_file(path)


def test_attribute_file_of_other_images_is_an_error(tmp_path):
    path = write_attr_file(tmp_path / "a.txt", ["a.jpg"], [[1, 1, 1]])
    with pytest.raises(UserError, match="lists none of the 2 images"):
        match_attributes(path, ["x.jpg", "y.jpg"])


# ---------------------------------------------------------------------------------------- statistics
def auc_by_definition(scores, labels):
    """P(score of a positive > score of a negative) + 1/2 P(tie), over all positive-negative pairs."""
    out = torch.empty(scores.shape[1], labels.shape[1], dtype=torch.float64)
    for j in range(scores.shape[1]):
        for a in range(labels.shape[1]):
            pos, neg = scores[labels[:, a], j], scores[~labels[:, a], j]
            out[j, a] = ((pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()).mean()
    return out


def test_auc_matches_its_definition():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 3, generator=gen)
    labels = torch.rand(200, 2, generator=gen) < 0.3
    assert torch.allclose(M.auc_matrix(scores, labels), auc_by_definition(scores, labels), atol=1e-12, rtol=0)
    assert torch.isnan(M.auc_matrix(scores, torch.zeros(200, 1, dtype=torch.bool))).all()


def test_auc_counts_ties_as_half_and_ranks_are_mid_ranks():
    assert M.ranks(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
    assert M.ranks(torch.tensor([[1.0, 5.0], [1.0, 5.0]])).tolist() == [[1.5, 1.5], [1.5, 1.5]]
    gen = torch.Generator().manual_seed(0)
    n = 300
    labels = torch.rand(n, 2, generator=gen) < 0.4
    scores = torch.stack([labels[:, 0].float() * (torch.rand(n, generator=gen) < 0.7),   # binary: many ties
                          torch.randint(0, 3, (n,), generator=gen).float(),               # three levels
                          torch.randn(n, generator=gen).round(),                          # rounded
                          torch.zeros(n)], 1)                                             # all tied
    auc = M.auc_matrix(scores, labels)
    assert torch.allclose(auc, auc_by_definition(scores, labels), atol=1e-12, rtol=0)
    assert (auc[3] == 0.5).all()
    # the answer does not depend on the order of the faces (sorted by label: ties broken by order would
    # put every negative below every positive)
    order = labels[:, 0].argsort()
    assert torch.allclose(M.auc_matrix(scores[order], labels[order]), auc, atol=1e-12, rtol=0)
    # nor does the information of a constant unit: its one bin carries none
    assert M.mutual_information(scores[order][:, 3:], labels[order]).abs().max() < 1e-12


def test_mig_is_one_for_a_unit_that_is_the_attribute_and_near_zero_for_noise():
    gen = torch.Generator().manual_seed(0)
    n = 2000
    y = torch.rand(n, 2, generator=gen) < torch.tensor([0.5, 0.2])
    codes = torch.randn(n, 6, generator=gen)
    codes[:, 2] = y[:, 0].float() + 0.01 * torch.randn(n, generator=gen)   # unit 2 is attribute 0
    codes[:, 4] = y[:, 1].float() + 0.01 * torch.randn(n, generator=gen)   # unit 4 is attribute 1
    res = M.mig(codes, y, ["a", "b"])
    assert res["mig"] > 0.95, res
    assert res["per_attribute"]["a"]["unit"] == 2 and res["per_attribute"]["b"]["unit"] == 4
    noise = M.mig(torch.randn(n, 6, generator=gen), y, ["a", "b"])
    assert noise["mig"] < 0.02, noise
    # the same information in two units: no gap
    codes[:, 3] = codes[:, 2]
    assert M.mig(codes, y, ["a", "b"])["per_attribute"]["a"]["mig"] < 0.05


def collapsed_unit_codes(n=2000, seed=0):
    """Posterior means and log-variances of three units: 0 carries the attribute noisily (posterior std
    0.1), 1 is collapsed (posterior std 1, KL ~ 3e-7 nats) but its mean is a tiny multiple of the
    attribute (rank-perfect), 2 is informative and unrelated."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand(n, 1, generator=gen) < 0.5
    a = y[:, 0].double()
    mu = torch.stack([a + 0.7 * torch.randn(n, generator=gen, dtype=torch.float64),
                      1e-3 * (a + 0.01 * torch.randn(n, generator=gen, dtype=torch.float64)),
                      torch.randn(n, generator=gen, dtype=torch.float64)], 1)
    logvar = (2 * torch.tensor([0.1, 1.0, 0.1], dtype=torch.float64).log()).expand(n, 3)
    return mu, logvar, y


def test_mig_ignores_collapsed_units_given_a_mask_or_the_posterior_spread():
    mu, logvar, y = collapsed_unit_codes()
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).mean(0)
    assert kl[1] < 1e-6 and kl[[0, 2]].min() > 2
    # on the means alone the collapsed unit wins (equal-frequency bins ignore its tiny scale)
    plain = M.mig(mu, y, ["a"])["per_attribute"]["a"]
    assert plain["unit"] == 1 and plain["mi_top"] > 0.6
    for kwargs in ({"informative": kl > 0.1}, {"informative": [0, 2]}, {"logvar": logvar},
                   {"logvar": logvar, "informative": kl > 0.1}):
        res = M.mig(mu, y, ["a"], **kwargs)
        per = res["per_attribute"]["a"]
        assert per["unit"] == 0, (kwargs, res)
        assert 0.15 < per["mi_top"] < 0.3 and per["mi_second"] < 0.01, (kwargs, res)
    assert M.mig(mu, y, ["a"], informative=kl > 0.1)["units_compared"] == 2
    assert M.mig(mu, y, ["a"], logvar=logvar)["sampled_from_posterior"]
    # sampling: the collapsed unit's draws carry (almost) nothing
    drawn = M.mig(mu, y, ["a"], logvar=logvar, informative=[1])["per_attribute"]["a"]
    assert drawn["mi_top"] < 0.01
    none = M.mig(mu, y, ["a"], informative=[])
    assert none["mig"] == 0 and none["per_attribute"]["a"]["unit"] is None
    with pytest.raises(ValueError):
        M.mig(mu, y, ["a"], informative=torch.tensor([True, False]))


def test_mig_against_its_permutation_null():
    gen = torch.Generator().manual_seed(0)
    n = 2000
    y = torch.rand(n, 2, generator=gen) < torch.tensor([0.5, 0.2])
    noise = torch.randn(n, 6, generator=gen)
    res = M.mig(noise, y, ["a", "b"], bootstrap=20, permutations=50)
    assert 0 < res["mig"] < 0.01 and 0 < res["null"]["mean"] < 0.01     # the estimator's floor is not 0
    lo, hi = res["mig_minus_null_interval"]
    assert lo < 0 < hi and abs(res["mig_minus_null"]) < 0.005, res
    assert res["p_value"] > 0.05 and res["null"]["quantile"] > res["null"]["mean"]
    null = M.mig_null(noise, y, permutations=50, generator=torch.Generator().manual_seed(1))
    assert null["permutations"] == 50 and abs(null["mean"] - res["null"]["mean"]) < 3 * null["std"] / 50 ** 0.5 + 1e-3
    clean = torch.randn(n, 6, generator=gen)
    clean[:, 2] = y[:, 0].float() + 0.01 * torch.randn(n, generator=gen)
    clean[:, 4] = y[:, 1].float() + 0.01 * torch.randn(n, generator=gen)
    res = M.mig(clean, y, ["a", "b"], bootstrap=20, permutations=50)
    assert res["mig_minus_null_interval"][0] > 0.9 and res["p_value"] == 1 / 51, res
    assert res["mig"] > M.mig_null(clean, y, permutations=50)["quantile"] + 0.9


def test_single_unit_against_linear_probe():
    gen = torch.Generator().manual_seed(1)
    n = 1500
    y = torch.rand(n, 2, generator=gen) < 0.5
    codes = torch.randn(n, 5, generator=gen)
    codes[:, 1] -= 2 * y[:, 0].float()                      # one unit, negative sign
    codes[:, 3] += y[:, 1].float()                          # attribute b spread over two units
    codes[:, 4] += y[:, 1].float()
    res = M.single_unit_vs_probe(codes[:1000], y[:1000], codes[1000:], y[1000:], ["a", "b"])
    assert res["a"]["unit"] == 1 and res["a"]["sign"] == -1 and res["a"]["unit_auc"] > 0.9
    assert res["a"]["probe_auc"] > 0.9
    assert res["b"]["probe_auc"] > res["b"]["unit_auc"] + 0.03  # the probe combines both units


def test_frechet_distance():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 4, generator=gen)
    b = torch.randn(4000, 4, generator=gen)
    assert M.frechet_distance(a, b) < 0.05
    assert abs(M.frechet_distance(a, b + 2.0) - 16.0) < 0.5     # |mean difference|^2 = 4 * 2^2
    assert abs(M.frechet_distance(a, 3 * b) - 16.0) < 1.0       # 4 * (3 - 1)^2


def with_moments(n, mean, cov, seed):
    """n samples whose sample mean and covariance (N - 1) are exactly `mean`, `cov`."""
    x = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x - x.mean(0)
    white = torch.linalg.solve_triangular(torch.linalg.cholesky(torch.atleast_2d(torch.cov(x.T))), x.T, upper=False).T
    return white @ torch.linalg.cholesky(cov).T + mean


def sym_sqrt(s):
    vals, vecs = torch.linalg.eigh(s)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T


def test_frechet_distance_of_full_covariances_that_do_not_commute():
    s1 = torch.tensor([[4.0, 1.9], [1.9, 1.0]], dtype=torch.float64)      # correlated one way
    s2 = torch.tensor([[1.0, -0.9], [-0.9, 1.0]], dtype=torch.float64)     # and the other
    m1, m2 = torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([1.0, -1.0], dtype=torch.float64)
    assert not torch.allclose(s1 @ s2, s2 @ s1)
    a, b = with_moments(500, m1, s1, 0), with_moments(700, m2, s2, 1)
    assert torch.allclose(torch.cov(a.T), s1) and torch.allclose(b.mean(0), m2)
    # 2 x 2: the eigenvalues l1, l2 of S1 S2 give tr (S1 S2)^(1/2) = sqrt(l1) + sqrt(l2)
    #        = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2))
    cross = ((s1 @ s2).trace() + 2 * (torch.linalg.det(s1) * torch.linalg.det(s2)).sqrt()).sqrt()
    expected = float((m1 - m2).pow(2).sum() + s1.trace() + s2.trace() - 2 * cross)
    fd = M.frechet_distance(a, b)
    assert abs(fd - expected) < 1e-9, (fd, expected)
    # the commuting shortcut tr(S1^(1/2) S2^(1/2)) and the root of S1 S2's diagonal are off by > 0.1 here
    # (matched to 1e-9 above), so this test tells them apart; on commuting covariances (the test above)
    # they give the right number
    for wrong in ((sym_sqrt(s1) @ sym_sqrt(s2)).trace(), (s1 @ s2).diagonal().clamp_min(0).sqrt().sum()):
        assert abs(float((m1 - m2).pow(2).sum() + s1.trace() + s2.trace() - 2 * wrong) - fd) > 0.1
    # 5 dimensions, random full covariances, against the eigenvalues of the non-symmetric S1 S2
    gen = torch.Generator().manual_seed(3)
    ga, gb = (torch.randn(5, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    s1, s2 = ga @ ga.T + 0.1 * torch.eye(5, dtype=torch.float64), gb @ gb.T + 0.1 * torch.eye(5, dtype=torch.float64)
    zero, one = torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    a, b = with_moments(400, zero, s1, 4), with_moments(400, one, s2, 5)
    eig = torch.linalg.eigvals(s1 @ s2)
    assert eig.imag.abs().max() < 1e-8 * eig.real.abs().max()
    expected = float(5 + s1.trace() + s2.trace() - 2 * eig.real.clamp_min(0).sqrt().sum())
    assert abs(M.frechet_distance(a, b) - expected) < 1e-8 * expected
    assert abs(M.frechet_distance(a, b) - M.frechet_distance(b, a)) < 1e-8 * expected   # symmetric
    assert abs(M.frechet_distance(a, a)) < 1e-8 * expected
    # one feature: (mean difference)^2 + (std difference)^2
    x = with_moments(300, torch.tensor([1.0], dtype=torch.float64), torch.tensor([[4.0]], dtype=torch.float64), 6)
    assert abs(M.frechet_distance(x, 3 * x) - (2.0 ** 2 + (6.0 - 2.0) ** 2)) < 1e-9


def test_round_floats_writes_strict_json():
    data = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.234567, (2, 0.5)], "c": {"d": np.float32(0.123456)},
            "e": np.float64("nan"), "f": np.int64(3), "g": None, "h": True, "i": "x"}
    out = M.round_floats(data)
    assert out == {"a": None, "b": [None, None, 1.2346, [2, 0.5]], "c": {"d": 0.1235}, "e": None, "f": 3,
                   "g": None, "h": True, "i": "x"}
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_identity_flips_and_yaw_span():
    ref = torch.tensor([[0.9, 0.1, 0.6]])                   # the third is not confident
    views = torch.tensor([[[0.9, 0.1, 0.2], [0.4, 0.1, 0.9]]])  # the first flips in view 2
    res = M.identity_flips(views, ref)
    assert res["confident_predictions"] == 2 and res["flipped"] == 1 and res["flip_share"] == 0.5
    span = M.yaw_span(torch.tensor([[-0.1, 0.0, 0.1], [-0.01, 0.0, 0.01]]), -0.05, 0.05)
    assert span["covers_target_share"] == 0.5


# ---------------------------------------------------------------------------------------- yaw
def test_classifier_training_step_learns_and_blur_keeps_shape():
    torch.manual_seed(0)
    net = AttributeNet(2, width=4)
    x = torch.rand(16, 3, 64, 64)
    y = torch.stack([x[:, 0].mean((1, 2)) > 0.5, x[:, 2].mean((1, 2)) > 0.5], 1).float()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert net.features(x).shape == (16, 32)
    blurred = random_blur(x, torch.Generator().manual_seed(0))
    assert blurred.shape == x.shape and blurred.std() < x.std()


def test_classifier_script_trains_and_reports(tmp_path):
    from test_vae import face_like
    from PIL import Image
    sub = tmp_path / "Faces" / "img"
    sub.mkdir(parents=True)
    files, values = [], []
    for i in range(40):
        smiling = i % 2 == 0
        img = face_like(64, 64, seed=i)
        if smiling:
            img[40:46, 20:44] = 255  # a bright 'smile'
        Image.fromarray(img).save(sub / f"{i:06d}.jpg")
        files.append(f"{i:06d}.jpg")
        values.append([1 if smiling else -1, -1 if i % 3 else 1, -1])
    write_attr_file(tmp_path / "Faces" / "list_attr_celeba.txt", files[::-1], values[::-1])  # another order
    out = run_script("exercise2/classifier.py", "--dset_dir", tmp_path, "--dataset", "Faces", "--cache_dir", "",
                     "--ckpt_dir", tmp_path / "ck", "--vaes", "--epochs", 2, "--batch_size", 16, "--width", 4,
                     "--device", "cpu")
    assert "mean AUC" in out.stdout
    summary = json.loads((tmp_path / "ck" / "face_attributes" / "summary.json").read_text())
    assert summary["training_faces"] == 36 and summary["held_out_faces"] == 4
    assert set(summary["majority_baseline_accuracy"]) == set(NAMES)
    assert (tmp_path / "ck" / "face_attributes" / "face_attributes.pt").is_file()
    proc = run_script("exercise2/classifier.py", "--dset_dir", tmp_path, "--dataset", "Nothing", "--cache_dir", "",
                      "--ckpt_dir", tmp_path / "ck", check=False)
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr


def test_flip_share_difference_is_paired_over_faces():
    """Flip share of path a minus path b on the same faces, with a paired bootstrap interval."""
    ref = torch.tensor([[0.9, 0.1], [0.95, 0.5], [0.1, 0.9], [0.9, 0.9]])      # 7 confident predictions
    same = ref[:, None].expand(4, 3, 2).clone()
    a = same.clone()
    a[0, 1, 0] = 0.2            # face 0 flips its first attribute in one view
    a[2, 2, 1] = 0.3            # face 2 flips its second
    a[1, 0, 1] = 0.0            # not confident on face 1: does not count
    d = M.flip_share_difference(a, same, ref, resamples=200)
    assert d["difference"] == pytest.approx(2 / 7)
    assert d["ci95"][0] <= 2 / 7 <= d["ci95"][1] and d["ci95"][0] >= 0
    assert M.flip_share_difference(same, same, ref)["ci95"] == [0.0, 0.0]
    # several paths b (random directions): their flips per face are averaged
    both = M.flip_share_difference(a, [same, a], ref, resamples=200)
    assert both["difference"] == pytest.approx(1 / 7)
