"""CelebA's face attributes (`list_attr_celeba.txt`): find the file, parse it, match it to images by name.

The format: line 1 the number of images, line 2 the attribute names, then one row per image,
`<file name> <one value per attribute, 1 or -1>`. Rows are matched to images by file name, never by
position, so a folder holding a subset of CelebA (or more images than the file covers) still works.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.errors import UserError

ATTRIBUTE_FILE = "list_attr_celeba.txt"


@dataclass
class Attributes:
    names: list[str]        # the attribute names, in the file's order
    values: np.ndarray      # bool [N, A]: True where the attribute is present (1), for the matched images
    matched: np.ndarray     # int [N]: index of each matched image in the list of image names given
    source: str             # the file they came from

    def column(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise UserError(f"unknown attribute {name!r}; the attribute file has: {', '.join(self.names)}")
        return self.values[:, self.names.index(name)]


def find_attribute_file(dataset_folder: str | Path, attr_file: str | Path | None = None) -> Path | None:
    """`--attr_file` if given (it must exist), else `<dataset>/list_attr_celeba.txt` or
    `<dataset>/Anno/list_attr_celeba.txt` (full CelebA's layout), else None."""
    if attr_file:
        path = Path(attr_file).expanduser()
        if not path.is_file():
            raise UserError(f"--attr_file {path} not found")
        return path
    folder = Path(dataset_folder)
    for candidate in (folder / ATTRIBUTE_FILE, folder / "Anno" / ATTRIBUTE_FILE):
        if candidate.is_file():
            return candidate
    return None


def parse_attribute_file(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """(file names, attribute names, bool values [rows, A]); a malformed file is a UserError that says
    which line is wrong and how."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise UserError(f"cannot read the attribute file {path}: {err}") from None
    lines = [line for line in lines if line.strip()]
    if len(lines) < 2:
        raise UserError(f"{path}: expected CelebA's attribute format (line 1 the number of images, line 2 the "
                        "attribute names, then '<file> <values>' rows); the file has fewer than 2 lines")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise UserError(f"{path}, line 1: expected the number of images, found {lines[0][:60]!r}") from None
    names = lines[1].split()
    if not names:
        raise UserError(f"{path}, line 2: expected the attribute names")
    files, rows = [], []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise UserError(f"{path}, line {number}: expected a file name and {len(names)} values (one per "
                            f"attribute on line 2), found {len(parts)} fields")
        values = parts[1:]
        bad = [v for v in values if v not in ("1", "-1")]
        if bad:
            raise UserError(f"{path}, line {number}: attribute values must be 1 or -1, found {bad[0]!r}")
        files.append(parts[0])
        rows.append([v == "1" for v in values])
    if count != len(files):
        raise UserError(f"{path}: line 1 announces {count} images but {len(files)} rows follow")
    if len(set(files)) != len(files):
        raise UserError(f"{path}: some file names appear in more than one row")
    return files, names, np.array(rows, dtype=bool).reshape(len(files), len(names))


def match_attributes(path: str | Path, image_names: list[str]) -> Attributes:
    """The attributes of those images (given by file name) that the file lists. An error if the file
    lists none of them: then it belongs to other images."""
    files, names, values = parse_attribute_file(path)
    row_of = {name: i for i, name in enumerate(files)}
    matched = [i for i, name in enumerate(image_names) if name in row_of]
    if not matched:
        example = image_names[0] if image_names else "-"
        raise UserError(f"{path} lists none of the {len(image_names)} images (e.g. {example!r}; the file lists "
                        f"e.g. {files[0] if files else '-'!r}): it belongs to other images. Pass the right --attr_file")
    rows = [row_of[image_names[i]] for i in matched]
    return Attributes(names, values[rows], np.array(matched, dtype=np.int64), str(path))
