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
def test_auc_matches_its_definition():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 3, generator=gen)
    labels = torch.rand(200, 2, generator=gen) < 0.3
    auc = M.auc_matrix(scores, labels)
    for j in range(3):
        for a in range(2):
            pos, neg = scores[labels[:, a], j], scores[~labels[:, a], j]
            expected = (pos[:, None] > neg[None]).double().mean()
            assert abs(auc[j, a] - expected) < 1e-9
    assert torch.isnan(M.auc_matrix(scores, torch.zeros(200, 1, dtype=torch.bool))).all()


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


def test_identity_flips_and_yaw_span():
    ref = torch.tensor([[0.9, 0.1, 0.6]])                   # the third is not confident
    views = torch.tensor([[[0.9, 0.1, 0.2], [0.4, 0.1, 0.9]]])  # the first flips in view 2
    res = M.identity_flips(views, ref)
    assert res["confident_predictions"] == 2 and res["flipped"] == 1 and res["flip_share"] == 0.5
    span = M.yaw_span(torch.tensor([[-0.1, 0.0, 0.1], [-0.01, 0.0, 0.01]]), -0.05, 0.05)
    assert span["covers_target_share"] == 0.5


# ---------------------------------------------------------------------------------------- yaw
def turned_face(shift: float, size=64, seed=0):
    """A face drawn with eyes at fixed places (as in aligned crops) and nose, mouth and outline moved
    sideways by `shift` (in image widths), as a turned head looks."""
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    img = np.zeros((size, size)) + 0.3 + 0.02 * rng.standard_normal((size, size))
    cx = 0.5 + shift
    img[((yy - 0.6) / 0.36) ** 2 + ((xx - cx) / 0.27) ** 2 < 1] = 0.75
    for ex in (0.38, 0.62):                                   # eyes: fixed
        img[((yy - 0.52) / 0.03) ** 2 + ((xx - ex) / 0.05) ** 2 < 1] = 0.15
    img[(np.abs(xx - (cx + 0.3 * shift)) < 0.025) & (yy > 0.55) & (yy < 0.7)] = 0.5   # nose
    img[((yy - 0.78) / 0.025) ** 2 + ((xx - cx) / 0.09) ** 2 < 1] = 0.35                  # mouth
    return torch.tensor(img, dtype=torch.float32).expand(3, size, size).clone()


def test_yaw_measure_flips_sign_in_a_mirror_and_orders_turned_faces():
    shifts = [-0.06, -0.03, 0.0, 0.03, 0.06]
    faces = torch.stack([turned_face(s, seed=i) for i, s in enumerate(shifts)])
    yaw = M.yaw_measure(faces)
    assert torch.all(yaw[1:] > yaw[:-1]), yaw                                  # ordered
    assert abs(yaw[2]) < 0.01
    assert torch.allclose(M.yaw_measure(faces.flip(-1)), -yaw, atol=1e-6)     # exactly antisymmetric
    # the same holds for grey-level changes and at another image size
    big = torch.stack([turned_face(s, size=96) for s in (-0.05, 0.05)])
    assert M.yaw_measure(big)[0] < 0 < M.yaw_measure(big)[1]


def test_yaw_direction_and_rotation_codes_of_each_method():
    gen = torch.Generator().manual_seed(0)
    z = 6
    scale = torch.tensor([1.0, 2.0, 0.5, 1.0, 0.01, 1.0])
    gradient = torch.tensor([0.0, 0.02, 0.01, 0.0, 0.0, 0.0])       # units 1 and 2 turn the face
    fit = M.yaw_direction(gradient, scale)
    assert fit["move"][[0, 3, 4, 5]].abs().max() == 0                 # the others stay put
    assert torch.isclose((fit["move"] / scale).norm(), torch.tensor(1.0))  # one step = unit length in std space
    # keeping a direction out: the move becomes orthogonal to it (in std space)
    keep = torch.zeros(1, z)
    keep[0, 2] = 1.0
    kept = M.yaw_direction(gradient, scale, keep)
    assert abs(float(kept["move"][2])) < 1e-6 and kept["share_removed_by_keep"] > 0
    # codes: unit 1 carries yaw (its sign flips in the mirror), the rest is identity
    mu = torch.randn(50, z, generator=gen)
    mu_flip = mu.clone()
    mu_flip[:, 1] = -mu[:, 1]
    glob = M.fit_global_axis(mu, mu_flip)
    assert abs(abs(float(glob["axis"][1])) - 1) < 1e-4
    stats = {"yaw_fit": M.yaw_direction(torch.tensor([0.0, 0.02, 0, 0, 0, 0]), scale), "yaw_reach": 2.0,
             "global_axis": glob, "axis_reach": 3.0}
    others = [0, 2, 3, 4, 5]
    for method in M.ROTATION_METHODS:
        codes = M.rotation_codes(method, mu[:4], mu_flip[:4], stats, views=5)
        assert codes.shape == (4, 5, z)
        assert torch.allclose(codes[..., others], mu[:4, None, others].expand(4, 5, len(others)), atol=1e-4), method
    yf = M.rotation_codes("yaw_fit", mu[:4], mu_flip[:4], stats, views=5)
    # from the frontal code (yaw unit at 0, the midpoint of face and mirror) by -2..+2 steps of 2 std
    assert torch.allclose(yf[:, :, 1], torch.linspace(-4, 4, 5).expand(4, 5), atol=1e-5)
    mp = M.rotation_codes("mirror_path", mu[:4], mu_flip[:4], stats, views=4)   # t = -1, 0, 1, 2
    assert torch.allclose(mp[:, 1], mu[:4]) and torch.allclose(mp[:, 2], mu_flip[:4], atol=1e-6)
    assert torch.allclose(M.mirrored_codes("yaw_fit", mu[:4], mu_flip[:4], stats), mu_flip[:4], atol=1e-5)
    assert torch.allclose(M.mirrored_codes("global_axis", mu[:4], mu_flip[:4], stats), mu_flip[:4], atol=1e-4)
    assert M.mirrored_codes("mirror_path", mu[:4], mu_flip[:4], stats) is None


def test_labelled_grid_draws_every_row():
    rows = [torch.rand(5, 3, 16, 16) for _ in range(3)]
    img = M.labelled_grid(rows, ["unit 1\n+Smiling +0.40", "unit 2", "unit 3"], "title", list("abcde"), scale=2, label_width=100)
    assert img.size == (100 + 5 * (32 + 2), 30 + 24 + 3 * (32 + 2))


# ---------------------------------------------------------------------------------------- classifier
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
