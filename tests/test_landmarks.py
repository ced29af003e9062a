"""exercise2/landmarks.py: dlib's landmarks, landmark yaw and face descriptor on faces decoded by the
shipped beta = 0 VAE from its stored example codes (no face data needed), and the error that says
what to install when the packages are missing. The dlib tests are skipped without dlib."""
import importlib.util
import sys

import pytest
import torch

from exercise2 import landmarks as lm
from utils.errors import UserError
from utils.paths import repo_path

FACES = [0, 2, 3, 14]   # example codes decoded to faces turned right, left, frontal, left


@pytest.fixture(scope="module")
def faces():
    """float [4, 3, 64, 64] faces decoded from `example_codes` of the shipped beta = 0 VAE."""
    pytest.importorskip("dlib")
    try:
        lm.require()
    except UserError as err:
        pytest.skip(str(err))
    from exercise2.model import load_vae
    folder = repo_path("checkpoints/vae_beta_0")
    codes = torch.load(folder / "analysis.pt", map_location="cpu", weights_only=True)["example_codes"][FACES]
    with torch.no_grad():
        return torch.sigmoid(load_vae(folder / "vae_beta_0.pt").decode(codes.float()))


def test_landmarks_shape_and_place(faces):
    points = lm.landmarks(faces)
    assert points.shape == (len(faces), 68, 2) and points.dtype == torch.float32
    assert torch.isfinite(points).all()
    inner = points[:, 17:]                                     # brows, nose, eyes, mouth
    assert (inner >= -0.5).all() and (inner <= 63.5).all()
    assert (points >= -4.5).all() and (points <= 67.5).all()   # the chin may touch the lower edge
    eyes_y = points[:, 36:48, 1].mean(1)
    assert (eyes_y < points[:, 30, 1]).all() and (points[:, 30, 1] < points[:, 48:68, 1].mean(1)).all()
    assert (points[:, 36:42, 0].mean(1) < points[:, 42:48, 0].mean(1)).all()   # image-left eye on the left
    # uint8 input gives the same points as its float version
    as_uint8 = faces.mul(255).round().to(torch.uint8)
    assert torch.allclose(lm.landmarks(as_uint8), lm.landmarks(as_uint8.float() / 255))


def test_yaw_antisymmetric_under_mirroring(faces):
    raw = lm.landmark_yaw(lm.landmarks(faces, symmetric=False))
    raw_mirror = lm.landmark_yaw(lm.landmarks(faces.flip(-1), symmetric=False))
    assert raw.abs().max() > 0.1                               # the test faces include turned ones
    assert (raw + raw_mirror).abs().max() < 0.06               # dlib alone: nearly antisymmetric
    assert torch.sign(raw[raw.abs() > 0.1]).eq(-torch.sign(raw_mirror[raw.abs() > 0.1])).all()
    # the shipped estimate (points averaged with the mirror's) is antisymmetric by construction
    y, y_mirror = lm.yaw(faces), lm.yaw(faces.flip(-1))
    assert torch.allclose(y, -y_mirror, atol=1e-4)
    assert torch.allclose(lm.mirror_points(lm.landmarks(faces.flip(-1)), 64), lm.landmarks(faces), atol=1e-4)


def test_yaw_sign_convention():
    """Pure geometry: a face whose nose moves to image right gets a larger (positive) yaw."""
    p = torch.zeros(1, 68, 2)
    p[0, 36:42] = torch.tensor([22.0, 33.0])
    p[0, 42:48] = torch.tensor([42.0, 33.0])
    for i, (a, b) in enumerate(lm.CHEEK_PAIRS):
        p[0, a] = torch.tensor([12.0 + i, 35.0 + 4 * i])
        p[0, b] = torch.tensor([52.0 - i, 35.0 + 4 * i])
    p[0, 27:36, 0], p[0, 27:36, 1] = 32.0, 42.0
    assert abs(float(lm.landmark_yaw(p)[0])) < 1e-6 and abs(float(lm.nose_eye_yaw(p)[0])) < 1e-6
    p[0, 27:36, 0] += 4.0
    assert float(lm.landmark_yaw(p)[0]) == pytest.approx(4 / 38, abs=1e-5)  # 4 px of a face 38 px wide (mean of pairs)
    assert float(lm.nose_eye_yaw(p)[0]) == pytest.approx(0.2, abs=1e-5)    # 4 px of 20 px between the eyes
    mirrored = lm.mirror_points(p, 64)
    assert float(lm.landmark_yaw(mirrored)[0]) == pytest.approx(-4 / 38, abs=1e-5)


def test_descriptor_distances(faces):
    face = faces[:1]
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    d = lm.descriptors(torch.cat([face, face, face.flip(-1), noise, face.flip(-2)]))
    assert d.shape == (5, 128) and torch.isfinite(d).all()
    dist = lm.descriptor_distance(d[0], d)
    assert dist[1] < 1e-5                                      # the same image twice
    assert dist[2] < 0.4                                       # its mirror: the same person to dlib
    assert dist[2] < dist[3:].min()                            # nearer than noise or the face upside down


def test_figures_draw_the_points_on_every_face_at_print_size(faces, tmp_path):
    """rotate's figures: every face with its landmarks (the red points landmark_yaw reads), fonts of at
    least 7 pt at the printed size, which fits an A4 page's text width."""
    import numpy as np
    from PIL import Image

    from exercise2.landmark_drawing import DPI, MAX_HEIGHT_CM, TEXT_WIDTH_CM, face_grid, yaw_check_figure
    points = lm.landmarks(faces)
    layout = face_grid([faces, faces.flip(-1)], tmp_path / "grid.png", points=[points, lm.mirror_points(points, 64)],
                       row_labels=["face\nviews", "mirrored"], cell_titles=[["a"] * 4, ["b"] * 4],
                       column_labels=list("wxyz"), title="a title")
    assert layout["font_pt"] >= 7 and layout["width_cm"] <= TEXT_WIDTH_CM + 1e-6 and layout["height_cm"] <= MAX_HEIGHT_CM
    img = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).astype(int)
    assert abs(img.shape[1] - layout["width_cm"] / 2.54 * DPI) <= 2
    tile = layout["tile_cm"] / layout["width_cm"] * img.shape[1]
    red = (img[..., 0] > 200) & (img[..., 1] < 90) & (img[..., 2] < 90)
    label_px = img.shape[1] - 4 * tile - 4 * 0.06 / layout["width_cm"] * img.shape[1]
    for c in range(4):                                   # red points on the faces of every column
        x0 = int(label_px + c * (img.shape[1] - label_px) / 4)
        assert red[:, x0:x0 + int(tile)].sum() > 10, c
    # many rows (defect: 14 rows of 9 views squeezed the tiles below the width of their yaw titles, which
    # then ran into each other): the tiles stay as wide as a title, the figure grows taller instead
    many = face_grid([faces[:3]] * 13, tmp_path / "many.png", row_labels=["interfacegan\nface 1"] * 13,
                     cell_titles=[["+0.26"] * 3] * 13, title="a title")
    assert many["tile_cm"] >= many["cell_title_cm"] > 5 * 0.14 and many["width_cm"] <= TEXT_WIDTH_CM + 1e-6
    yaw = lm.landmark_yaw(points)
    yaw_check_figure(faces, points, yaw, tmp_path / "check.png")
    assert Image.open(tmp_path / "check.png").size[0] <= TEXT_WIDTH_CM / 2.54 * DPI + 2


def test_missing_packages_say_what_to_install(monkeypatch):
    lm._models.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(lm.importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(UserError, match="pip install dlib-bin face-recognition-models"):
        lm.landmarks(torch.zeros(1, 3, 64, 64))
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "dlib", None)             # `import dlib` fails
    if importlib.util.find_spec("face_recognition_models") is not None:
        with pytest.raises(UserError, match="pip install dlib-bin face-recognition-models"):
            lm.descriptors(torch.zeros(1, 3, 64, 64))
    lm._models.cache_clear()
