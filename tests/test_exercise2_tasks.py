"""Exercise 2's runs and tasks: where models are written and read, what the tasks leave untouched, what
their summaries hold, and the notes that replace silent fallbacks. Tiny models on tiny synthetic faces."""
import hashlib
import json
import math
from types import SimpleNamespace

import pytest
import torch

from conftest import REPO, run_script
from test_vae import cli, face_dir  # noqa: F401  (fixture)
from utils.runs import trained_model_dir

MAIN = REPO / "exercise2" / "main.py"
TINY = ["--batch_size", 4, "--channels", "4,4,4,4", "--z_dim", 4, "--device", "cpu", "--display_step", 1,
        "--save_step", 2, "--max_iter", 2, "--threads", 1]


def setup(face_dir, tmp_path, name="m", cache=""):  # noqa: F811
    return ["--dset_dir", face_dir, "--dataset", "Faces", "--ckpt_dir", tmp_path / "ck", "--output_dir",
            tmp_path / "out", "--cache_dir", cache, "--ckpt_name", name, *TINY]


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def strict_json(path):
    """The file as JSON, refusing NaN and Infinity (which the report's json() cannot read)."""
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def with_attributes(face_dir):  # noqa: F811
    sub = face_dir / "Faces" / "img"
    names = sorted(p.name for p in sub.iterdir() if p.name[0].isdigit())
    rows = [f"{n} {' '.join('1' if (i + a) % 2 else '-1' for a in range(3))}" for i, n in enumerate(names)]
    (face_dir / "Faces" / "list_attr_celeba.txt").write_text(f"{len(rows)}\nSmiling Male Eyeglasses\n" + "\n".join(rows) + "\n")
    return face_dir


# ---------------------------------------------------------------------------------------- runs
def test_a_fresh_run_refuses_a_used_folder_resume_continues_overwrite_replaces(face_dir, tmp_path, capsys):  # noqa: F811
    common = setup(face_dir, tmp_path)
    cli(capsys, *common)
    ck = tmp_path / "ck" / "m"
    before = snapshot(ck)
    proc = run_script(MAIN, *common, check=False)  # the course's command again: refused, nothing touched
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert all(flag in proc.stderr for flag in ("--resume", "--overwrite", "--ckpt_name")), proc.stderr
    assert snapshot(ck) == before
    out = cli(capsys, *common, "--resume", "--max_iter", 4)
    assert "resuming m from last.pt at iteration 2" in out
    assert torch.load(ck / "last.pt", weights_only=True)["iteration"] == 4
    (ck / "stale.txt").write_text("from the old run")
    cli(capsys, *common, "--overwrite")
    assert not (ck / "stale.txt").exists()
    assert torch.load(ck / "last.pt", weights_only=True)["iteration"] == 2
    assert "no last.pt" in cli(capsys, *setup(face_dir, tmp_path, name="new"), "--resume", code=2)
    assert "pass one of them" in cli(capsys, *common, "--resume", "--overwrite", code=2)


def test_default_run_folder_is_runs_and_tasks_look_in_runs_then_the_shipped_folder(face_dir, tmp_path, monkeypatch,
                                                                                   capsys):  # noqa: F811
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    monkeypatch.chdir(work)  # runs/ resolves here; checkpoints/ (not here) to the repository's shipped one
    shipped = REPO / "checkpoints"
    before = snapshot(shipped)
    data = ["--dset_dir", face_dir, "--dataset", "Faces", "--output_dir", tmp_path / "out", "--cache_dir", ""]
    out = cli(capsys, *data, *TINY, "--ckpt_name", "m")  # no --ckpt_dir: the course's command
    own = (work / "runs" / "m").resolve()
    assert {"m.pt", "last.pt", "analysis.pt", "summary.json"} <= {p.name for p in own.iterdir()}
    assert str(own) in out
    assert trained_model_dir("m", None, "m.pt") == own
    assert trained_model_dir("vae_beta_4", None, "vae_beta_4.pt") == shipped / "vae_beta_4"
    assert trained_model_dir("m", tmp_path / "elsewhere", "m.pt") == tmp_path / "elsewhere" / "m"
    out = cli(capsys, "--task", "random_generation", "--num_samples", 4, *data, "--ckpt_name", "m", "--device", "cpu")
    assert f"model: {own / 'm.pt'}" in out
    assert snapshot(shipped) == before


# ---------------------------------------------------------------------------------------- read-only tasks
def test_shipped_model_with_data_caches_its_statistics_outside_checkpoints(face_dir, tmp_path, capsys):  # noqa: F811
    shipped = REPO / "checkpoints"
    before = snapshot(shipped)
    argv = ["--task", "random_generation", "--ckpt_name", "vae_beta_4", "--ckpt_dir", shipped, "--dset_dir", face_dir,
            "--dataset", "Faces", "--output_dir", tmp_path / "out", "--cache_dir", tmp_path / "cache",
            "--num_samples", 4, "--device", "cpu"]
    out = cli(capsys, *argv)
    assert snapshot(shipped) == before
    cached = list((tmp_path / "cache").glob("analysis_vae_beta_4_*.pt"))
    assert len(cached) == 1 and f"kept in {cached[0]}" in out
    assert f"analysis statistics: {cached[0]}" in cli(capsys, *argv)  # the second run reads it
    summary = strict_json(tmp_path / "out" / "vae_beta_4" / "random_generation" / "summary.json")
    std = summary["code_std_per_unit"]
    assert 0 <= std["min"] <= std["median"] <= std["max"]
    assert summary["units_with_code_std_within_0.5_to_2"] + summary["units_wider_than_prior"] + \
        summary["units_narrower_than_prior"] <= 128
    assert summary["reconstructions_of"] == "held-out faces" and summary["statistics_source"].endswith("faces of Faces")
    # two held-out faces cannot make two halves of at least two: no Frechet distance, said so
    assert "frechet_distance" not in summary and "note: no Frechet distance: 2 held-out faces" in out
    # faces without attribute labels: edit takes the directions stored beside the model, and says so
    out = cli(capsys, *argv[2:], "--task", "edit", "--attribute", "Smiling", "--num_faces", 1)
    assert f"attribute directions are those stored in {shipped / 'vae_beta_4' / 'analysis.pt'}" in out
    edit = strict_json(tmp_path / "out" / "vae_beta_4" / "edit" / "summary.json")["attributes"]["Smiling"]
    assert edit["direction_from"] == "10,000 faces of CelebA" and snapshot(shipped) == before


def test_read_only_tasks_write_only_under_their_output_folder(face_dir, tmp_path, capsys):  # noqa: F811
    with_attributes(face_dir)
    common = setup(face_dir, tmp_path, cache=tmp_path / "cache")
    cli(capsys, *common, "--max_iter", 3)
    before = snapshot(tmp_path)
    model_files = snapshot(tmp_path / "ck" / "m")
    outs = ""
    for task in (["random_generation", "--num_samples", 4], ["latent_analysis", "--num_faces", 1],
                 ["rotate", "--num_faces", 2], ["edit", "--attribute", "Smiling", "--num_faces", 2]):
        outs += cli(capsys, *common, "--task", *task)
    assert snapshot(tmp_path / "ck" / "m") == model_files
    after = snapshot(tmp_path)
    changed = [k for k in after if before.get(k) != after[k]]
    assert changed and all(k.startswith(("out/m/random_generation/", "out/m/latent_analysis/", "out/m/rotate/",
                                         "out/m/edit/", "cache/")) for k in changed), changed
    # the statistics the training wrote beside its model match these faces and this model: not recomputed
    assert "(computed from these faces and this model)" in outs and not list((tmp_path / "cache").glob("analysis_*"))
    # the classifier used is said, and that its reliable attributes are another VAE's
    assert "note: no attribute classifier at " in outs and "attribute classifier: " in outs
    assert "not measured on m's reconstructions: using vae_beta_4's list" in outs
    out = tmp_path / "out" / "m"
    latent = strict_json(out / "latent_analysis" / "summary.json")
    assert latent["measured_attributes_of"] == "vae_beta_4" and "Smiling" in latent["measured_attributes"]
    assert latent["code_auc_attributes"] == ["Smiling", "Male", "Eyeglasses"]
    assert 1 <= len(latent["units"]) <= 4 and latent["units_ranked"][: len(latent["units"])] == [u["unit"] for u in latent["units"]]
    for unit in latent["units"]:
        assert unit["kl"] >= 0 and 0 <= unit["mean_abs_change"] <= 1 and abs(unit["yaw_change"]) <= 0.25
        assert all(0 <= v <= 1 for v in unit["code_auc"].values()) and unit["description"]["lines"]
        assert all(-1 <= v <= 1 for v in unit["classifier_change"].values())
    rotate = strict_json(out / "rotate" / "summary.json")
    assert len(rotate["faces"]) == 2 and all(len(f["yaw_views"]) == 9 for f in rotate["faces"])
    assert all(abs(y) <= 0.6 for f in rotate["faces"] for y in f["yaw_views"])   # landmark yaw: within about +-0.5
    assert rotate["yaw_instrument"].startswith("landmark_yaw")
    methods = rotate["comparison"]["methods"]
    assert set(methods) == {"yaw_fit", "mirror_path", "global_axis", "interfacegan", "interfacegan_conditional",
                            "interfacegan_calibrated", "random_control"}
    assert_landmark_coverage_and_flips(rotate["comparison"])
    assert rotate["method"] == "interfacegan_calibrated" and 0 < rotate["reach"] and rotate["fit"]["faces"] == 22
    # each method's goal compares its flips with a random direction as long as its own views
    for name, m in methods.items():
        if name != "random_control":
            assert m["random_of_equal_length"]["path_length_median"] == m["path_length_median"]
            shares = m["random_of_equal_length"]["flip_share_by_direction"]
            assert len(shares) == 5 and m["random_of_equal_length"]["flip_share"] == pytest.approx(sum(shares) / 5)
            assert rotate["comparison"]["goal"]["methods"][name]["random_flip_share_of_equal_length"] == \
                m["random_of_equal_length"]["flip_share"]
    stats = torch.load(tmp_path / "ck" / "m" / "analysis.pt", weights_only=True)
    cond = stats["interfacegan_conditional"]
    assert cond["identity_attributes"] == ["Male", "Eyeglasses"]   # the labelled identity attributes
    assert (cond["identity_normals"] @ cond["direction"]).abs().max() < 1e-4   # orthogonal to the identity normal
    bent = stats["interfacegan_calibrated"]
    assert torch.equal(bent["direction"], cond["direction"]) and bent["bend_fit"]["faces"] == 22
    for key in ("bend_odd", "bend_even"):   # the bend lies in the span of the identity normals
        q, _ = torch.linalg.qr(cond["identity_normals"].double().T)
        v = bent[key].double()
        assert torch.allclose(q @ (q.T @ v), v, atol=1e-5)
    edit = strict_json(out / "edit" / "summary.json")["attributes"]["Smiling"]
    probs = edit["measured"]["target_probability_by_step"]
    assert len(probs) == 7 and all(0 <= p <= 1 for p in probs) and edit["direction_norm"] > 0
    assert "Smiling" not in edit["measured"]["identity_attributes"]


def assert_landmark_coverage_and_flips(comparison):
    """The issue's "done when": every method, the random control included, has its landmark-yaw coverage
    share (under keys that name landmarks) and identity.flip_share."""
    methods = comparison["methods"]
    assert "random_control" in methods and len(methods) >= 2
    for name, m in methods.items():
        for key in ("yaw_span_landmark", "yaw_span_landmark_near_frontal"):
            assert 0 <= m[key]["covers_target_share"] <= 1, (name, key)
        assert "flip_share" in m["identity"], name
        assert "closer_than_other_faces_share" in m["identity_descriptor"], name
        assert len(m["view_yaw_landmark_median_by_view"]) == 9 and m["path_length_median"] >= 0
    assert not [k for m in methods.values() for k in m if k.startswith("yaw_span") and "landmark" not in k]
    assert set(comparison["goal"]["methods"]) == set(methods) - {"random_control"}


def test_rotate_on_faces_without_labels_compares_every_method_but_the_conditional(face_dir, tmp_path, capsys):  # noqa: F811
    """A face set without attribute labels: rotate runs and compares the methods that need no labels
    (interfacegan, the random control and the others), says why interfacegan_conditional is left out,
    and falls back to interfacegan when it is asked for."""
    common = setup(face_dir, tmp_path)
    out = cli(capsys, *common)
    assert "note: no attribute labels: only the plain interfacegan direction is fitted" in out
    out = cli(capsys, *common, "--task", "rotate", "--num_faces", 1, "--rotation_method", "interfacegan_conditional")
    assert "no interfacegan_conditional path (it needs the identity attributes' labels): turning by interfacegan" in out
    assert "no interfacegan_conditional in the comparison" in out
    rotate = strict_json(tmp_path / "out" / "m" / "rotate" / "summary.json")
    assert rotate["method"] == "interfacegan" and 0 < rotate["reach"]
    assert set(rotate["comparison"]["methods"]) == {"yaw_fit", "mirror_path", "global_axis", "interfacegan", "random_control"}
    assert_landmark_coverage_and_flips(rotate["comparison"])
    assert rotate["comparison"]["random_control"]["length_of"] == "interfacegan"
    assert {"rotation.png", "rotation_methods.png", "yaw_check.png"} <= {p.name for p in (tmp_path / "out" / "m" / "rotate").iterdir()}


def test_frechet_sets_are_unpaired_and_of_equal_size():
    """Reconstructions are of the photos of one held-out half, the reference photos the other half;
    every set is as large as the reference; the fitted samples come from the training codes' full
    covariance. Each image carries its face's number in two pixels and whether it was decoded in a third."""
    from exercise2.tasks import generation
    n_val, n_train, z = 40, 100, 4

    def photos(ids):
        x = torch.zeros(len(ids), 3, 64, 64, dtype=torch.uint8)
        x[:, 0, 0, 0], x[:, 1, 0, 0] = torch.as_tensor(ids) % 256, torch.as_tensor(ids) // 256
        return x

    def decode(codes):
        x = torch.zeros(len(codes), 3, 64, 64)
        x[:, 0, 0, 0], x[:, 1, 0, 0], x[:, 2, 0, 0] = codes[:, 0] / 255, codes[:, 1] / 255, 1.0
        return x

    def encode_faces(images):
        codes = torch.zeros(len(images), z)
        codes[:, :2] = images[:, :2, 0, 0].float()
        return codes

    seen = []

    def predict(images, features=False):
        ids = (images[:, 0, 0, 0] * 255).round().long() + 256 * (images[:, 1, 0, 0] * 255).round().long()
        seen.append((set(ids.tolist()), bool(images[0, 2, 0, 0] > 0.5), len(images)))
        return torch.randn(len(images), 3, generator=torch.Generator().manual_seed(len(seen)))

    val_ids, train_ids = list(range(1000, 1000 + n_val)), list(range(5000, 5000 + n_train))
    cov = torch.tensor([[4.0, 3.0, 0, 0], [3.0, 4.0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    stats = {"mu_std": torch.ones(z), "mu_mean": torch.zeros(z), "code_mean_train": torch.zeros(z),
             "code_cov_train": cov, "faces": {"train": n_train}, "kl_per_unit": torch.ones(z)}
    ctx = SimpleNamespace(classifier=lambda: SimpleNamespace(predict=predict), faces=lambda required=True: (
        photos(train_ids), photos(val_ids)), analysis=lambda: stats, decode=decode, encode_faces=encode_faces, say=print)
    fd = generation.frechet_distances(ctx, torch.Generator().manual_seed(0))
    reference = [ids for ids, decoded, _ in seen if not decoded and ids <= set(val_ids)]
    reconstructed = [ids for ids, decoded, _ in seen if decoded and ids <= set(val_ids)]
    training = [ids for ids, decoded, _ in seen if not decoded and ids <= set(train_ids)]
    assert len(reference) == len(reconstructed) == len(training) == 1
    assert not reference[0] & reconstructed[0]                       # the two halves are disjoint
    assert len(reference[0]) == len(reconstructed[0]) == len(training[0]) == n_val // 2
    assert {size for _, _, size in seen} == {n_val // 2} and fd["reference_faces"] == n_val // 2
    assert "OTHER held-out half" in fd["protocol"] and "full-covariance" in fd["protocol"]
    for key in ("training_photos", "reconstructions", "samples_from_fitted_code_distribution", "samples_from_prior"):
        assert math.isfinite(fd[key])
    # the fitted samples follow the training codes' full covariance (units 0 and 1 correlated)
    samples = generation.gaussian_samples(stats["code_mean_train"], cov, 20000, torch.Generator().manual_seed(1))
    assert torch.allclose(torch.cov(samples.T), cov, atol=0.15)


def test_a_new_model_without_analysis_file_and_without_data_runs_every_task(face_dir, tmp_path, capsys):  # noqa: F811
    """Its checkpoint stores the whole analysis dict; the fallback read only the old form (KeyError)."""
    common = setup(face_dir, tmp_path)
    cli(capsys, *common)
    (tmp_path / "ck" / "m" / "analysis.pt").unlink()
    nodata = [str(tmp_path / "nowhere") if a == face_dir else a for a in common]
    for task in ("random_generation", "latent_analysis", "rotate"):
        out = cli(capsys, *nodata, "--task", task, "--num_faces", 1, "--num_samples", 4)
        assert "analysis statistics: those stored in the checkpoint" in out
    rotate = strict_json(tmp_path / "out" / "m" / "rotate" / "summary.json")
    assert rotate["method"] == "interfacegan" and "comparison" not in rotate   # the default, from the stored statistics
    assert rotate["source"].startswith("faces decoded by the model")


# ---------------------------------------------------------------------------------------- notes and checks
@pytest.mark.parametrize("flag,value,message", [
    ("--max_minutes", 0, "argument --max_minutes: expected a number > 0"),
    ("--num_workers", -1, "argument --num_workers: expected a whole number >= 0"),
    ("--threads", 0, "argument --threads: expected a whole number >= 1"), ("--lr", 0, "argument --lr: expected a number > 0"),
    ("--beta1", 1, "argument --beta1: expected a number in [0, 1)"),
    ("--beta2", -0.1, "argument --beta2: expected a number in [0, 1)"),
    ("--image_size", 32, "argument --image_size: invalid choice: 32"), ("--max_iter", 0.5, "--max_iter must be at least 1")])
def test_numeric_flags_are_checked(flag, value, message, tmp_path, capsys):
    assert message in cli(capsys, flag, value, "--ckpt_dir", tmp_path, "--dset_dir", tmp_path, code=2)


def test_unreadable_images_are_counted(face_dir, tmp_path, capsys):  # noqa: F811
    from exercise2.dataset import load_face_folder
    for _ in range(2):  # decoded, then from the cache
        capsys.readouterr()
        assert len(load_face_folder(face_dir / "Faces", 64, cache_dir=tmp_path / "cache")) == 24
        assert "note: 1 of 25 image files below" in capsys.readouterr().out


def test_summaries_are_strict_json(tmp_path):
    from exercise2.context import write_summary
    write_summary({"a": float("nan"), "b": [float("inf"), 1.23456789], "c": {"d": -float("inf")}}, tmp_path / "s.json")
    assert strict_json(tmp_path / "s.json") == {"a": None, "b": [None, 1.2346], "c": {"d": None}}


def test_attribute_sets_that_stand_in_are_said_and_recorded(capsys):
    from exercise2.classifier import AttributeClassifier, AttributeNet
    from exercise2.tasks.latent import measure_disentanglement
    names = ["Smiling", "Male", "Eyeglasses"]
    clf = AttributeClassifier(AttributeNet(3, width=4), names, {"vae_beta_0": ["Smiling"], "vae_beta_4": ["Male"]})
    assert clf.attributes_for("vae_beta_0") == (["Smiling"], "vae_beta_0")
    assert clf.attributes_for("mine") == (["Male"], "vae_beta_4")
    assert AttributeClassifier(clf.net, names, {}).attributes_for("mine") == ([], None)
    # no attribute is read on every VAE's decodes: MIG over every attribute with both classes, said so
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(40, 3, generator=gen) > 0.5
    mu = torch.randn(40, 4, generator=gen) + y[:, :1].float()
    ctx = SimpleNamespace(classifier=lambda: clf, say=print)
    d = measure_disentanglement(ctx, mu[:20], y[:20], mu[20:], y[20:], names)
    assert d["attributes"] == names and d["attributes_rule"].startswith("every attribute with both classes")
    assert "note: MIG over every attribute with both classes" in capsys.readouterr().out
    assert math.isfinite(d["mig"]["mig"])


def test_a_yaw_direction_that_does_not_turn_the_faces_is_noted(face_dir, tmp_path, monkeypatch, capsys):  # noqa: F811
    from exercise2.analysis import YAW_MAX_STEPS
    from exercise2.main import build_parser
    from exercise2.solver import Solver
    from exercise2.tasks import rotation
    common = setup(face_dir, tmp_path)
    cli(capsys, *common)
    from exercise2 import landmarks
    monkeypatch.setattr(landmarks, "yaw", lambda images, **kw: torch.zeros(len(images)))
    solver = Solver(build_parser().parse_args([str(a) for a in [*common, "--task", "rotate", "--num_faces", 1]]))
    stats = solver.ctx.compute_analysis()
    assert stats["yaw_reach"] == YAW_MAX_STEPS and "does not turn" in stats["yaw_reach_note"]
    assert "interfacegan" not in stats                    # no yaw to fit a direction to: left out, said so
    out = capsys.readouterr().out
    assert "note: yaw_fit: the direction does not turn the decoded probe faces" in out
    assert "the training faces' codes do not predict their landmark yaw" in out
    solver.ctx._analysis = stats
    summary = rotation.run(solver.ctx)
    assert summary["yaw_reach_note"] == stats["yaw_reach_note"] and summary["method"] == "yaw_fit"
    out = capsys.readouterr().out
    assert "note: the direction does not turn the decoded probe faces" in out
    assert "no interfacegan_calibrated direction (the training faces' codes do not predict their landmark yaw" in out


def test_labelled_grid_draws_every_row():
    from exercise2.drawing import labelled_grid
    rows = [torch.rand(5, 3, 16, 16) for _ in range(3)]
    img = labelled_grid(rows, ["unit 1\n+Smiling +0.40", "unit 2", "unit 3"], "title", list("abcde"), scale=2, label_width=100)
    assert img.info["label_width"] >= 100  # the label column grows with the font
    assert img.size == (img.info["label_width"] + 5 * (32 + 2), img.info["top"] + 3 * (32 + 2))


def test_mig_lets_no_collapsed_unit_win_and_reports_its_null_and_interval(capsys):
    """Unit 0 is collapsed (posterior N(~0, 1), KL ~ 0) but its mean follows Smiling by a hair: on
    posterior means with rank bins it wins Smiling. Among the informative units, on codes drawn from
    q(z|x), unit 1 (which carries Smiling, noisily) wins it, and MIG comes with its null and interval."""
    from exercise2.analysis import informative_units
    from exercise2.model import kl_per_unit
    from exercise2.tasks.latent import MIG_PERMUTATIONS, measure_disentanglement
    gen = torch.Generator().manual_seed(0)
    n = 600
    y = torch.rand(n, 2, generator=gen) > 0.5                                      # Smiling, Male
    e = torch.randn(n, 4, generator=gen)
    mu = torch.stack([1e-3 * (y[:, 0] + 0.2 * e[:, 0]), y[:, 0] + e[:, 1], 2 * y[:, 1] + e[:, 2], e[:, 3]], 1)
    logvar = torch.tensor([0.0, -4.0, -4.0, -4.0]).expand(n, 4)
    informative = informative_units(kl_per_unit(mu, logvar).mean(0), mu.std(0))
    assert informative.tolist() == [False, True, True, True]
    ctx = SimpleNamespace(classifier=lambda: None, say=print)
    d = measure_disentanglement(ctx, mu[:300], y[:300], mu[300:], y[300:], ["Smiling", "Male"],
                                informative=informative, val_logvar=logvar[300:])
    assert d["mig_posterior_means_all_units"]["attributes_won_by_a_unit_not_informative"] == ["Smiling"]
    for key in ("mig", "mig_all_attributes"):
        m = d[key]
        assert {a: v["unit"] for a, v in m["per_attribute"].items()} == {"Smiling": 1, "Male": 2}
        assert m["units_compared"] == 3 and m["sampled_from_posterior"] and m["bootstrap_std"] > 0
        assert m["null"]["permutations"] == MIG_PERMUTATIONS and 0 <= m["null"]["mean"] < m["mig"]
        assert m["mig_minus_null"] == pytest.approx(m["mig"] - m["null"]["mean"])
        lo, hi = m["mig_minus_null_interval"]
        assert 0 < lo < m["mig_minus_null"] < hi and 0 < m["p_value"] <= 1
    assert d["informative_units"] == [1, 2, 3] and "q(z|x)" in d["mig_estimator"]


def test_grid_labels_print_at_7_pt_or_more():
    """The font of a labelled grid is sized for the width it is printed at: a traversal grid (9 columns
    of 64 px at scale 2) printed 16 cm wide, and a tall grid printed as the report prints it (16 cm
    tall, narrower than the text), both have labels of 7 pt or more on paper (the former fixed 18 px
    font printed at 5.4 pt on the first and 3.9 pt on the second)."""
    from exercise2.drawing import MAX_PRINT_HEIGHT_CM, MIN_PRINT_PT, fit_label, labelled_grid, print_width_cm
    label = "unit 12  KL 3.21\nSmiling +0.40\nMale -0.21\ncode: Smiling AUC 0.71\nturns head (yaw +0.031)\nbackground"
    img = labelled_grid([torch.rand(9, 3, 64, 64) for _ in range(10)], [label] * 10, "title",
                        [f"{v:+.1f}" for v in range(9)], scale=2, label_width=340, print_width=16.0)
    assert img.info["font_px"] * 72 * (16.0 / 2.54) / img.width >= MIN_PRINT_PT == 7.0
    tall = labelled_grid([torch.rand(9, 3, 64, 64) for _ in range(16)], ["mirror_path\nface 1"] * 16, "title",
                         label_width=190)
    width_cm = print_width_cm(tall.size)
    assert width_cm < 16.6 and width_cm * tall.height / tall.width == pytest.approx(MAX_PRINT_HEIGHT_CM)
    assert tall.info["font_px"] * 72 * (width_cm / 2.54) / tall.width >= 7.0
    # a label fits its row: at most max_lines lines, none wider than the column; what does not fit is cut with "…"
    from PIL import ImageFont
    font = ImageFont.load_default(size=20)
    lines, complete = fit_label(label, font, 200, 3)
    assert len(lines) == 3 and not complete and lines[-1].endswith("…") and lines[0] == "unit 12  KL 3.21"
    assert all(font.getlength(line) <= 200 for line in lines)
    assert fit_label(label, font, 600, 6) == (label.split("\n")[:1] + label.split("\n")[1:], True)
