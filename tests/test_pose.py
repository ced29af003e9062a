"""Head pose and turned faces (exercise2/pose.py): the yaw measure, the rotation methods, the InterFaceGAN fits,
and the descriptor-based identity measures (exercise2/measures.py)."""
import numpy as np
import pytest
import torch

from exercise2 import measures as M
from exercise2 import pose as P


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
    yaw = P.yaw_measure(faces)
    assert torch.all(yaw[1:] > yaw[:-1]), yaw                                  # ordered
    assert abs(yaw[2]) < 0.01
    assert torch.allclose(P.yaw_measure(faces.flip(-1)), -yaw, atol=1e-6)     # exactly antisymmetric
    # the same holds for grey-level changes and at another image size
    big = torch.stack([turned_face(s, size=96) for s in (-0.05, 0.05)])
    assert P.yaw_measure(big)[0] < 0 < P.yaw_measure(big)[1]


def test_yaw_direction_and_rotation_codes_of_each_method():
    gen = torch.Generator().manual_seed(0)
    z = 6
    scale = torch.tensor([1.0, 2.0, 0.5, 1.0, 0.01, 1.0])
    gradient = torch.tensor([0.0, 0.02, 0.01, 0.0, 0.0, 0.0])       # units 1 and 2 turn the face
    fit = P.yaw_direction(gradient, scale)
    assert fit["move"][[0, 3, 4, 5]].abs().max() == 0                 # the others stay put
    assert torch.isclose((fit["move"] / scale).norm(), torch.tensor(1.0))  # one step = unit length in std space
    # keeping a direction out: the move becomes orthogonal to it (in std space)
    keep = torch.zeros(1, z)
    keep[0, 2] = 1.0
    kept = P.yaw_direction(gradient, scale, keep)
    assert abs(float(kept["move"][2])) < 1e-6 and kept["share_removed_by_keep"] > 0
    # codes: unit 1 carries yaw (its sign flips in the mirror), the rest is identity
    mu = torch.randn(50, z, generator=gen)
    mu_flip = mu.clone()
    mu_flip[:, 1] = -mu[:, 1]
    glob = P.fit_global_axis(mu, mu_flip)
    assert abs(abs(float(glob["axis"][1])) - 1) < 1e-4
    e1 = torch.eye(z)[1]
    ifg = {"direction": e1, "yaw_normal": e1, "centre": torch.zeros(z), "reach": 2.0}
    stats = {"yaw_fit": P.yaw_direction(torch.tensor([0.0, 0.02, 0, 0, 0, 0]), scale), "yaw_reach": 2.0,
             "global_axis": glob, "axis_reach": 3.0, "interfacegan": ifg, "interfacegan_conditional": ifg,
             "interfacegan_calibrated": {**ifg, "bend_odd": 0.1 * torch.eye(z)[2], "bend_even": 0.05 * torch.eye(z)[3]}}
    others = [0, 2, 3, 4, 5]
    for method in P.ROTATION_METHODS:
        if method == "interfacegan_calibrated":
            continue
        codes = P.rotation_codes(method, mu[:4], mu_flip[:4], stats, views=5)
        assert codes.shape == (4, 5, z)
        assert torch.allclose(codes[..., others], mu[:4, None, others].expand(4, 5, len(others)), atol=1e-4), method
    yf = P.rotation_codes("yaw_fit", mu[:4], mu_flip[:4], stats, views=5)
    # from the frontal code (yaw unit at 0, the midpoint of face and mirror) by -2..+2 steps of 2 std
    assert torch.allclose(yf[:, :, 1], torch.linspace(-4, 4, 5).expand(4, 5), atol=1e-5)
    mp = P.rotation_codes("mirror_path", mu[:4], mu_flip[:4], stats, views=4)   # t = -1, 0, 1, 2
    assert torch.allclose(mp[:, 1], mu[:4]) and torch.allclose(mp[:, 2], mu_flip[:4], atol=1e-6)
    assert torch.allclose(P.mirrored_codes("yaw_fit", mu[:4], mu_flip[:4], stats), mu_flip[:4], atol=1e-5)
    assert torch.allclose(P.mirrored_codes("global_axis", mu[:4], mu_flip[:4], stats), mu_flip[:4], atol=1e-4)
    assert P.mirrored_codes("mirror_path", mu[:4], mu_flip[:4], stats) is None
    assert torch.allclose(P.mirrored_codes("interfacegan", mu[:4], mu_flip[:4], stats), mu_flip[:4], atol=1e-5)
    # the calibrated path: the interfacegan views plus s * bend_odd + s^2 * bend_even (s: the step from the frontal code)
    bent = P.rotation_codes("interfacegan_calibrated", mu[:4], mu_flip[:4], stats, views=5)
    plain = P.rotation_codes("interfacegan", mu[:4], mu_flip[:4], stats, views=5)
    s_ = torch.linspace(-2, 2, 5)
    assert torch.allclose(bent[..., 2] - plain[..., 2], 0.1 * s_.expand(4, 5), atol=1e-5)
    assert torch.allclose(bent[..., 3] - plain[..., 3], 0.05 * s_.pow(2).expand(4, 5), atol=1e-5)
    assert torch.allclose(bent[..., [0, 1, 4, 5]], plain[..., [0, 1, 4, 5]])
    # its mirrored code: the view at the face's own step, reflected (unit 1 negated), plus the bend there
    m = P.mirrored_codes("interfacegan_calibrated", mu[:4], mu_flip[:4], stats)
    assert torch.allclose(m[:, 1], mu_flip[:4, 1], atol=1e-5)
    assert torch.allclose(m[:, 2], mu[:4, 2] - 0.1 * mu[:4, 1], atol=1e-5)
    assert torch.allclose(m[:, 3], mu[:4, 3] + 0.05 * mu[:4, 1] ** 2, atol=1e-5)


# ---------------------------------------------------------------------------------------- InterFaceGAN
def planted_codes(n=600, z=12, seed=0):
    """Codes with units of different spreads, a planted yaw direction and three identity directions."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randn(n, z, generator=gen) * torch.linspace(0.3, 3.0, z)
    yaw_dir = torch.randn(z, generator=gen)
    yaw_dir /= yaw_dir.norm()
    yaw = 0.05 * codes @ yaw_dir + 0.02 + 0.01 * torch.randn(n, generator=gen)
    identity = torch.randn(3, z, generator=gen)
    labels = (codes @ identity.T + 0.3 * torch.randn(n, 3, generator=gen)) > 0
    return codes, yaw, yaw_dir, labels


def test_interfacegan_fit_recovers_a_planted_yaw_direction():
    codes, yaw, yaw_dir, _ = planted_codes()
    fit = P.fit_yaw_normal(codes, yaw)
    assert float(fit["normal"] @ yaw_dir) > 0.99                       # the direction, pointing to larger yaw
    assert abs(float(fit["normal"].norm()) - 1) < 1e-5
    assert fit["yaw_per_unit"] == pytest.approx(0.05, rel=0.05) and fit["loo_r2"] > 0.9
    assert abs(float(0.05 * fit["centre"] @ yaw_dir + 0.02)) < 2e-3    # the fitted yaw is 0 at the centre
    # ridge: the leave-one-out penalty shrinks noise; several targets at once give the same fits
    many = P.ridge_fit(codes, torch.stack([yaw, 2 * yaw], 1))
    assert torch.allclose(many["weights"][1], 2 * many["weights"][0], rtol=1e-3, atol=1e-6)
    assert torch.allclose(many["weights"][0], P.ridge_fit(codes, yaw)["weights"], atol=1e-6)
    assert P.fit_yaw_normal(codes, torch.zeros(len(codes))) is None   # nothing to fit
    # the views: from the face's frontal code (fitted yaw 0) by each step along the normal
    steps = torch.linspace(-2, 2, 5)
    views = P.interfacegan_codes(codes[:3], {**fit, "direction": fit["normal"], "yaw_normal": fit["normal"]}, steps)
    coordinate = (views - fit["centre"]) @ fit["normal"]
    assert torch.allclose(coordinate, steps.expand(3, 5), atol=1e-4)
    assert torch.allclose(views - views[:, :1], (steps - steps[0])[None, :, None] * fit["normal"], atol=1e-4)


def test_conditional_direction_is_orthogonal_to_the_identity_normals():
    codes, yaw, yaw_dir, labels = planted_codes()
    normals = P.attribute_normals(codes, labels)
    assert normals.shape == (3, codes.shape[1]) and torch.allclose(normals.norm(dim=1), torch.ones(3), atol=1e-5)
    plain = P.fit_yaw_normal(codes, yaw)["normal"]
    cond = P.conditional_direction(plain, normals)
    assert (normals @ cond["direction"]).abs().max() < 1e-5            # InterFaceGAN's conditional manipulation
    assert abs(float(cond["direction"].norm()) - 1) < 1e-5
    assert cond["cosine_with_plain"] == pytest.approx(float(cond["direction"] @ plain), abs=1e-5)
    assert 0 < cond["cosine_with_plain"] < 1
    # along it the fitted yaw moves by cos per unit; the views still start where the fitted yaw is 0
    fit = {"direction": cond["direction"], "yaw_normal": plain, "centre": torch.zeros(codes.shape[1])}
    views = P.interfacegan_codes(codes[:4], fit, torch.tensor([-1.0, 0.0, 1.0]))
    coordinate = views @ plain
    assert torch.allclose(coordinate[:, 1], torch.zeros(4), atol=1e-4)
    assert torch.allclose(coordinate[:, 2] - coordinate[:, 1], torch.full((4,), cond["cosine_with_plain"]), atol=1e-4)
    # the identity attributes' linear read-out does not move along the views
    assert torch.allclose((views[:, 2] - views[:, 0]) @ normals.T, torch.zeros(4, 3), atol=1e-4)


def test_descriptor_separation_and_identity():
    gen = torch.Generator().manual_seed(0)
    people = torch.randn(30, 8, generator=gen)
    recon = people + 0.1 * torch.randn(30, 8, generator=gen)
    sep = M.descriptor_separation(people, recon)
    assert sep["auc_own_vs_other_reconstructions"] > 0.99 and sep["faces"] == 30
    assert sep["median_distance_photo_to_own_reconstruction"] < sep["median_distance_between_reconstructions"]
    blind = M.descriptor_separation(people, torch.randn(30, 8, generator=gen))
    assert 0.35 < blind["auc_own_vs_other_reconstructions"] < 0.65      # a descriptor that cannot tell
    # views: the first stays near its face, the second drifts to another face
    views = torch.stack([recon + 0.05, recon.roll(1, 0)], 1)            # [F, 2, D]
    ident = M.descriptor_identity(views, recon, sep["median_distance_between_reconstructions"])
    near, drifted = ident["median_distance_by_view"]
    assert near < 0.2 < sep["median_distance_between_reconstructions"] / 2 and drifted > 5 * near
    # every first view is closer than the yardstick, about half of the second (other faces, median distance)
    assert 0.6 < ident["closer_than_other_faces_share"] < 0.9
    assert ident["faces_with_every_view_closer"] == pytest.approx(2 * ident["closer_than_other_faces_share"] - 1, abs=1e-6)
