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
    assert summary["frechet_distance"]["training_photos"] >= 0
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
    assert all(abs(y) <= 0.13 for f in rotate["faces"] for y in f["yaw_views"])
    methods = rotate["comparison"]["methods"]
    assert set(methods) == {"yaw_fit", "mirror_path", "global_axis", "random_control"}
    assert all(0 <= m["yaw_span"]["covers_target_share"] <= 1 for m in methods.values())
    assert 0 < rotate["yaw_reach"] <= 4
    edit = strict_json(out / "edit" / "summary.json")["attributes"]["Smiling"]
    probs = edit["measured"]["target_probability_by_step"]
    assert len(probs) == 7 and all(0 <= p <= 1 for p in probs) and edit["direction_norm"] > 0
    assert "Smiling" not in edit["measured"]["identity_attributes"]


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
    assert rotate["method"] == "yaw_fit" and "comparison" not in rotate
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
    import exercise2.analysis as analysis
    from exercise2.analysis import YAW_MAX_STEPS
    from exercise2.main import build_parser
    from exercise2.solver import Solver
    from exercise2.tasks import rotation
    common = setup(face_dir, tmp_path)
    cli(capsys, *common)
    monkeypatch.setattr(analysis, "yaw_measure", lambda images: torch.zeros(len(images)))
    solver = Solver(build_parser().parse_args([str(a) for a in [*common, "--task", "rotate", "--num_faces", 1]]))
    stats = solver.ctx.compute_analysis()
    assert stats["yaw_reach"] == YAW_MAX_STEPS and "does not turn" in stats["yaw_reach_note"]
    solver.ctx._analysis = stats
    summary = rotation.run(solver.ctx)
    assert summary["yaw_reach_note"] == stats["yaw_reach_note"]
    assert "note: the yaw direction does not turn the decoded probe faces" in capsys.readouterr().out


def test_labelled_grid_draws_every_row():
    from exercise2.drawing import labelled_grid
    rows = [torch.rand(5, 3, 16, 16) for _ in range(3)]
    img = labelled_grid(rows, ["unit 1\n+Smiling +0.40", "unit 2", "unit 3"], "title", list("abcde"), scale=2, label_width=100)
    assert img.size == (100 + 5 * (32 + 2), 30 + 24 + 3 * (32 + 2))
