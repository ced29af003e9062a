import json
from argparse import Namespace

import numpy as np
import pytest
import torch
from PIL import Image

import conftest  # noqa: F401  (puts the repository on sys.path)
from exercise2.dataset import load_face, load_face_folder, split_faces
from exercise2.main import build_parser
from exercise2.model import BetaVAE, kl_per_unit, vae_loss
from utils.errors import UserError



def face_like(h, w, seed=0):
    """A smooth synthetic 'face': a bright ellipse on a darker background, with noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    ell = ((yy - h * 0.55) / (h * 0.3)) ** 2 + ((xx - w / 2) / (w * 0.25)) ** 2 < 1
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3)) + rng.uniform(20, 80, 3)
    img[ell] = rng.uniform(150, 230, 3)
    return np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def face_dir(tmp_path):
    root = tmp_path / "faces"
    sub = root / "Faces" / "img"
    sub.mkdir(parents=True)
    modes = ["RGB", "L", "P", "RGBA"]
    sizes = [(109, 89), (218, 178), (120, 120), (70, 50)]
    for i in range(24):
        img = Image.fromarray(face_like(*sizes[i % 4], seed=i)).convert(modes[i % 4])
        img.save(sub / f"{i:06d}.{'png' if modes[i % 4] in ('P', 'RGBA') else 'jpg'}")
    (sub / "readme.txt").write_text("not an image")
    (sub / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def test_faces_load_from_mixed_files_and_crop_relative_to_size(face_dir, tmp_path):
    faces = load_face_folder(face_dir / "Faces", 64, cache_dir=tmp_path / "cache")
    assert faces.shape == (24, 3, 64, 64) and faces.dtype == torch.uint8
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert torch.equal(load_face_folder(face_dir / "Faces", 64, cache_dir=tmp_path / "cache"), faces)  # from the cache
    train, val = split_faces(faces)
    assert len(train) == 22 and len(val) == 2 and torch.equal(val, faces[-2:])
    # the same picture at full and half size gives (nearly) the same 64x64 face
    big = face_like(218, 178, seed=5)
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(big).resize((89, 109), Image.LANCZOS).save(tmp_path / "half.png")
    diff = np.abs(load_face(tmp_path / "big.png").astype(float) - load_face(tmp_path / "half.png").astype(float))
    assert diff.mean() < 6


def test_empty_or_missing_folders_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="no images"):
        load_face_folder(tmp_path / "empty")
    with pytest.raises(UserError, match="not found"):
        load_face_folder(tmp_path / "missing")


def test_shapes():
    model = BetaVAE(z_dim=10, channels=(8, 8, 16, 16))
    x = torch.rand(5, 3, 64, 64)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 10)
    assert model.decode(mu).shape == (5, 3, 64, 64)
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(7, 5), torch.randn(7, 5)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    assert torch.allclose(kl_per_unit(mu, logvar), torch.distributions.kl_divergence(q, p), atol=1e-5)
    logits, x = torch.randn(7, 3, 64, 64), torch.rand(7, 3, 64, 64)
    total, recon, kl = vae_loss(logits, x, mu, logvar, beta=3.0)
    assert torch.isclose(total, recon + 3.0 * kl)
    assert torch.isclose(recon, ((torch.sigmoid(logits) - x) ** 2).sum() / 7)


def solver_args(face_dir, tmp_path, **kw):
    args = build_parser().parse_args([])
    args = Namespace(**{**vars(args), "dset_dir": str(face_dir), "dataset": "Faces", "ckpt_dir": str(tmp_path / "ck"),
                        "output_dir": str(tmp_path / "out"), "cache_dir": "", "batch_size": 8, "display_step": 10,
                        "save_step": 10, "device": "cpu", "channels": [8, 8, 16, 16], "z_dim": 8, **kw})
    args.ckpt_name = args.ckpt_name or f"b{args.beta:g}"
    return args


def test_beta_changes_the_trained_kl(face_dir, tmp_path):
    from exercise2.solver import Solver
    kls = {}
    for beta in (0.0, 20.0):
        torch.manual_seed(0)
        solver = Solver(solver_args(face_dir, tmp_path, beta=beta, max_iter=40, save_output=False))
        kls[beta] = solver.train()["held_out_kl"]
    assert kls[20.0] < 0.5 * kls[0.0], kls


def cli(capsys, *argv, code=0) -> str:
    """exercise2/main.py in this process (no interpreter start-up): its stdout, with stderr when it is
    to fail with exit code `code`; never a traceback."""
    from exercise2.main import main

    capsys.readouterr()
    if code:
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in argv])
        assert exit_info.value.code == code
    else:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return out.out + (out.err if code else "")


def test_train_resume_and_every_task(face_dir, tmp_path, capsys):
    common = ["--dset_dir", face_dir, "--dataset", "Faces", "--ckpt_dir", tmp_path / "ck", "--output_dir", tmp_path / "out",
              "--cache_dir", "", "--batch_size", 8, "--display_step", 5, "--save_step", 5, "--channels", "8,8,16,16",
              "--z_dim", 6, "--device", "cpu", "--ckpt_name", "m"]
    cli(capsys, "--beta", 4, "--max_iter", 10, *common)
    ck = tmp_path / "ck" / "m"
    assert (ck / "m.pt").is_file() and (ck / "last.pt").is_file()
    state = torch.load(ck / "last.pt", map_location="cpu", weights_only=True)
    assert state["iteration"] == 10 and "optimizer" in state
    best = torch.load(ck / "m.pt", weights_only=True)
    assert "optimizer" not in best
    # m.pt is the model of the best held-out loss (as for the text models), last.pt the latest state
    h = best["history"]
    losses = [r + 4 * k for r, k in zip(h["val_recon"], h["val_kl"])]
    assert best["iteration"] == h["iteration"][losses.index(min(losses))]
    out = cli(capsys, "--beta", 4, "--max_iter", 15, *common, "--resume")
    assert "resuming m from last.pt at iteration 10" in out
    assert torch.load(ck / "last.pt", weights_only=True)["iteration"] == 15
    summary = json.loads((tmp_path / "out" / "m" / "train" / "summary.json").read_text())
    assert {"held_out_psnr_db", "held_out_kl", "active_units", "images_per_second", "kl_per_unit"} <= set(summary)
    assert summary["held_out_psnr_db"] > 0 and 0 <= summary["informative_units"] <= summary["active_units"] <= 6
    assert {"reconstructions.png", "loss_curves.png"} <= {p.name for p in (tmp_path / "out" / "m" / "train").iterdir()}

    for task, files in (("random_generation", ["samples_from_prior.png", "samples_from_fitted_code_distribution.png"]),
                        ("latent_analysis", ["traversal_face1.png", "traversal_face1.gif"]),
                        ("rotate", ["rotation.png", "rotation.gif"])):
        cli(capsys, "--task", task, "--num_faces", 2, "--num_samples", 9, *common)
        folder = tmp_path / "out" / "m" / task
        for name in files + ["summary.json"]:
            assert (folder / name).is_file(), (task, name)
    result = json.loads((tmp_path / "out" / "m" / "rotate" / "summary.json").read_text())
    assert result["method"] == "interfacegan"
    assert set(result["comparison"]["methods"]) == {"interfacegan", "yaw_fit", "mirror_path", "global_axis",
                                                    "random_control"}
    assert "mirror_gap_closed" in result["comparison"]["methods"]["yaw_fit"]
    # a photo of any size for rotate; and the analyses without any data (faces decoded from stored codes)
    Image.fromarray(face_like(300, 250)).save(tmp_path / "me.jpg")
    cli(capsys, "--task", "rotate", "--image", tmp_path / "me.jpg", *common)
    nodata = [c if c != face_dir else tmp_path / "nowhere" for c in common]
    assert "decoded by the model" in cli(capsys, "--task", "latent_analysis", "--num_faces", 1, *nodata)
    cli(capsys, "--task", "rotate", *nodata)


def test_user_mistakes(face_dir, tmp_path, capsys):
    def fails(*args, msg):
        assert msg in cli(capsys, *args, code=2)

    (tmp_path / "empty" / "E").mkdir(parents=True)
    fails("--dset_dir", tmp_path / "empty", "--dataset", "E", "--ckpt_dir", tmp_path / "ck", msg="no images")
    fails("--task", "rotate", "--ckpt_dir", tmp_path / "ck", "--ckpt_name", "nothing", msg="no checkpoint named")
    fails("--beta", "-1", msg="argument --beta: expected a number >= 0")
    fails("--task", "dance", msg="invalid choice")
    common = ["--dset_dir", face_dir, "--dataset", "Faces", "--ckpt_dir", tmp_path / "ck", "--output_dir", tmp_path / "o",
              "--cache_dir", "", "--batch_size", 8, "--channels", "8,8,16,16", "--z_dim", 4, "--ckpt_name", "m", "--device", "cpu"]
    cli(capsys, "--max_iter", 2, *common)
    # resuming or analysing with other architecture flags than the checkpoint's: refused, not overridden
    fails("--max_iter", 4, *common, "--z_dim", 8, "--resume", msg="--z_dim 8 (it has 4)")
    fails("--task", "rotate", *common, "--channels", "8,8,16,32", msg="was built otherwise")
    fails("--task", "rotate", "--image", tmp_path / "missing.jpg", *common, msg="not found")
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    fails("--task", "rotate", "--image", tmp_path / "bad.jpg", *common, msg="cannot read --image")
    (tmp_path / "ck" / "x").mkdir()
    torch.save({"model": {}, "arch": "lstm", "alphabet": ["a"], "config": {}}, tmp_path / "ck" / "x" / "x.pt")
    fails("--task", "rotate", "--ckpt_dir", tmp_path / "ck", "--ckpt_name", "x", msg="not a beta-VAE checkpoint")


def test_analyses_with_attributes_name_units_and_edit(face_dir, tmp_path, capsys):
    """With an attribute file beside the faces: unit names from code AUCs, MIG, the edit task; a
    malformed file is a clear error; without the file the attribute parts are left out with a note."""
    sub = face_dir / "Faces" / "img"
    names = sorted(p.name for p in sub.iterdir() if p.name[0].isdigit())
    rows = [f"{n} {' '.join('1' if (i + a) % 2 else '-1' for a in range(3))}" for i, n in enumerate(names)]
    attr = face_dir / "Faces" / "list_attr_celeba.txt"
    attr.write_text(f"{len(rows)}\nSmiling Male Eyeglasses\n" + "\n".join(rows[::-1]) + "\n")
    common = ["--dset_dir", face_dir, "--dataset", "Faces", "--ckpt_dir", tmp_path / "ck", "--output_dir", tmp_path / "out",
              "--cache_dir", "", "--batch_size", 8, "--channels", "8,8,16,16", "--z_dim", 4, "--device", "cpu",
              "--ckpt_name", "m", "--beta", 0]
    cli(capsys, "--max_iter", 5, *common)
    assert (tmp_path / "ck" / "m" / "analysis.pt").is_file()
    out = cli(capsys, "--task", "latent_analysis", "--num_faces", 1, *common)
    assert "attributes: 24 of 24 faces matched by file name" in out
    summary = json.loads((tmp_path / "out" / "m" / "latent_analysis" / "summary.json").read_text())
    assert summary["ranking"].startswith("decoded change")       # beta = 0
    assert len(summary["units"]) == 4
    changes = [u["mean_abs_change"] for u in summary["units"]]
    assert changes == sorted(changes, reverse=True)
    cli(capsys, "--task", "edit", "--attribute", "Smiling", "--num_faces", 2, *common)
    assert (tmp_path / "out" / "m" / "edit" / "edit_Smiling.png").is_file()
    assert "unknown attribute 'Wings'" in cli(capsys, "--task", "edit", "--attribute", "Wings", *common, code=2)
    # a malformed attribute file
    attr.write_text(f"{len(rows)}\nSmiling Male Eyeglasses\n" + "\n".join(rows[:-1] + [names[-1] + " 1 2 1"]) + "\n")
    assert "must be 1 or -1" in cli(capsys, "--task", "latent_analysis", *common, code=2)
    # no attribute file: every analysis still runs, the attribute parts are left out with one line
    attr.unlink()
    out = cli(capsys, "--task", "latent_analysis", "--num_faces", 1, *common)
    assert "attribute-based measures are left out: no list_attr_celeba.txt" in out
    summary = json.loads((tmp_path / "out" / "m" / "latent_analysis" / "summary.json").read_text())
    assert summary["disentanglement"] is None and "code_auc" not in summary["units"][0]
    # grey, non-square photo for rotate
    Image.fromarray(face_like(90, 140)).convert("L").save(tmp_path / "grey.png")
    cli(capsys, "--task", "rotate", "--image", tmp_path / "grey.png", *common)


def test_face_cache_is_keyed_by_the_crop(face_dir, tmp_path, monkeypatch):
    """A cache made with other crop settings must not be reused (its key used to ignore them)."""
    import exercise2.dataset as dataset

    first = load_face_folder(face_dir / "Faces", 64, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(dataset, "CROP_FRACTION", 0.6)
    second = load_face_folder(face_dir / "Faces", 64, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    assert not torch.equal(first, second)
