"""The README's commands leave the repository as it was: shipped checkpoints, configs, logs and
report results are inputs, never outputs. The commands run in a temporary copy of the repository
(a git repository of its own) on tiny data, with a budget flag added to each training command; then
`git status` must be clean. The two exercises' commands run as two tests, each in its own copy, so that
pytest-xdist can run them side by side."""
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import REPO, TINY_SETTINGS, TINY_TEXT

# Flags appended to the README's commands so that they finish in seconds on tiny data.
BUDGET = {
    "exercise1/lstm/train.py": ["--epochs", "1", "--batch_size", "8", "--seq_len", "32", "--device", "cpu",
                                "--set", *TINY_SETTINGS["lstm"], "training.sample_length=5"],
    "exercise2/main.py --beta": ["--max_iter", "3", "--z_dim", "4", "--channels", "4,4,4,4", "--batch_size", "8",
                                 "--device", "cpu"],
    "exercise2/classifier.py": ["--steps", "2", "--device", "cpu"],
}


def readme_commands(exercise: int | None = None) -> list[str]:
    """The `.venv/bin/python ...` lines of the README's code blocks in the exercise sections (all of
    them, or exercise `exercise`'s)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    number = r"\d" if exercise is None else str(exercise)
    sections = re.findall(rf"^## Exercise {number}:.*?(?=^## )", text, flags=re.M | re.S)
    commands = []
    for section in sections:
        for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith(".venv/bin/python "):
                    commands.append(line)
    return commands


def make_copy(dest):
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        src = REPO / name
        if src.is_file():  # (a file deleted in the working tree is not copied)
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(git + cmd, cwd=dest, check=True, capture_output=True)


def make_data(dest):
    # the README prompts "the knight ": every letter of it is in the tiny text
    (dest / "data" / "text.txt").write_text(TINY_TEXT + "\nthe knight rode into the wood.\n", encoding="utf-8")
    faces = dest / "data" / "CelebA" / "img_align_celeba"
    faces.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(24):
        img = np.full((109, 89, 3), rng.uniform(20, 80, 3))
        yy, xx = np.mgrid[0:109, 0:89]
        img[((yy - 60) / 33) ** 2 + ((xx - 44) / 22) ** 2 < 1] = rng.uniform(150, 230, 3)
        Image.fromarray(np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)).save(faces / f"{i:06d}.jpg")
    shutil.copy(faces / "000003.jpg", dest / "my_face.jpg")
    names = ["Smiling", "Male", "Eyeglasses", "Blond_Hair"]  # CelebA's format: count, names, one line per file
    rows = [f"{i:06d}.jpg " + " ".join(str(rng.choice([-1, 1])) for _ in names) for i in range(24)]
    (dest / "data" / "CelebA" / "list_attr_celeba.txt").write_text("\n".join(["24", " ".join(names), *rows]) + "\n")


ENV = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PROGRESS_EVERY": "60"}


def run_in_copy(commands: list[str], clone) -> None:
    """Run `commands` one after another in a fresh copy `clone` of the repository with tiny data (the
    budget flags added); each must succeed without a traceback and leave the tracked files as they were."""
    clone.mkdir()
    make_copy(clone)
    make_data(clone)
    for command in commands:
        args = command.split(" ", 1)[1]
        argv = [sys.executable, *re.findall(r'"[^"]*"|\S+', args)]
        argv = [a[1:-1] if a.startswith('"') else a for a in argv]
        for key, extra in BUDGET.items():
            if args.startswith(key.split(" ")[0]) and all(part in args for part in key.split(" ")[1:]):
                argv += extra
        proc = subprocess.run(argv, cwd=clone, capture_output=True, text=True, env=ENV, timeout=300)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=clone,
                                capture_output=True, text=True, check=True).stdout
        assert status == "", f"{command} changed tracked files:\n{status}"


def test_readme_lists_both_exercises_commands():
    commands = readme_commands()
    assert commands == readme_commands(1) + readme_commands(2)
    assert any("exercise1/lstm/train.py" in c for c in readme_commands(1))
    assert any("--task rotate" in c for c in readme_commands(2))


def test_exercise1_readme_commands_leave_git_status_clean(tmp_path):
    clone = tmp_path / "clone"
    commands = readme_commands(1)
    assert commands
    run_in_copy(commands, clone)
    # the README's training commands refuse to train into their own run a second time without a word
    again = subprocess.run([sys.executable, "exercise1/lstm/train.py", *BUDGET["exercise1/lstm/train.py"]], cwd=clone,
                           capture_output=True, text=True, env=ENV, timeout=300)
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in again.stderr


def test_exercise2_readme_commands_leave_git_status_clean(tmp_path):
    commands = readme_commands(2)
    assert commands
    run_in_copy(commands, tmp_path / "clone")


def test_chapter_runs_stops_before_training_rather_than_replace_a_report_result():
    """scripts/chapter_runs.sh (`make chapter`) writes to outputs/ by default; pointed at the report's own
    results (RES=report/results/text) it refuses to replace a file there without FORCE=1, before any work."""
    import os
    env = {**os.environ, "RES": "report/results/text", "KIND": "size_rule", "ARCHS": "lstm", "PYTHON": sys.executable}
    for key in ("FORCE", "SEEDS", "NAME", "SET", "NOVEL_SETTINGS"):
        env.pop(key, None)
    proc = subprocess.run(["bash", str(REPO / "scripts/chapter_runs.sh"), "no/such/text.txt"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "the report reads it" in proc.stderr and "FORCE=1" in proc.stderr
    assert "wrote" not in proc.stdout  # stopped before preparing the data
