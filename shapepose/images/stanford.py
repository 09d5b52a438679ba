"""Reader (and devkit writer) of the Stanford Cars layout: `cars_train/`, `cars_test/`, `devkit/`.

The download unpacks to

    <root>/cars_train/00001.jpg ...            <root>/cars_test/00001.jpg ...
    <root>/devkit/cars_meta.mat                 class_names: 1 x C cell of strings
    <root>/devkit/cars_train_annos.mat          annotations: 1 x N struct array with fields
                                                bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname
    <root>/devkit/cars_test_annos.mat           the same without `class`
    <root>/devkit/cars_test_annos_withlabels.mat  (separate download) the same with `class`

Boxes are kept as the devkit stores them: MATLAB pixel coordinates, 1-based and inclusive. The demo
generator writes the same files through `write_devkit_annotations`, so one reader serves both.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import scipy.io

from shapepose.errors import InputError
from shapepose.images.matfile import save_mat
from shapepose.io import atomic_file

SPLITS = ("train", "test")
ANNOTATION_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")
_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclasses.dataclass(frozen=True)
class StanfordPhoto:
    """One photo of the dataset and its devkit annotation of the main car."""

    relpath: str  # "cars_train/00001.jpg", relative to the dataset root (the instances-file key)
    path: Path  # absolute path
    split: str  # "train" | "test": Stanford's own split (the thesis merges them)
    bbox: tuple[int, int, int, int] | None  # devkit x1, y1, x2, y2 (1-based, inclusive)
    class_id: int | None  # devkit class 1..C; None when the test labels are absent


def _load_mat(path: Path) -> dict:
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=True)
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise InputError(path, f"cannot read MATLAB file: {exc}") from None


def _annotation_records(path: Path) -> list[dict]:
    """The `annotations` struct array of a devkit file as a list of {field: python value}."""
    mat = _load_mat(path)
    if "annotations" not in mat:
        raise InputError(path, "no 'annotations' struct array", key="annotations")
    # squeeze_me turns a 1 x 1 struct array into a 0-d record; atleast_1d restores the list.
    records = np.atleast_1d(mat["annotations"])
    names = records.dtype.names or ()
    missing = [f for f in ANNOTATION_FIELDS if f != "class" and f not in names]
    if missing:
        raise InputError(path, f"annotations lack fields {missing}", key="annotations")
    out = []
    for k, rec in enumerate(records):
        try:
            entry = {f: int(np.asarray(rec[f]).item()) for f in ANNOTATION_FIELDS[:4]}
            entry["fname"] = str(np.asarray(rec["fname"]).item())
            entry["class"] = int(np.asarray(rec["class"]).item()) if "class" in names else None
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"malformed annotation: {exc}", key=f"annotations[{k}]") from None
        out.append(entry)
    return out


def _test_annotation_file(devkit: Path) -> Path | None:
    """The labelled test annotations when downloaded, else the unlabelled ones, else None."""
    for name in ("cars_test_annos_withlabels.mat", "cars_test_annos.mat"):
        if (devkit / name).is_file():
            return devkit / name
    return None


def read_class_names(root: str | Path) -> list[str]:
    """devkit/cars_meta.mat class_names; index 0 is class 1."""
    path = Path(root) / "devkit" / "cars_meta.mat"
    if not path.is_file():
        raise InputError(path, "missing devkit class list")
    mat = _load_mat(path)
    if "class_names" not in mat:
        raise InputError(path, "no 'class_names' cell array", key="class_names")
    return [str(n) for n in np.atleast_1d(mat["class_names"])]


def read_stanford_cars(root: str | Path) -> list[StanfordPhoto]:
    """Every photo of `cars_train/` and `cars_test/` with its devkit box and class, by relpath.

    Photos without an annotation get bbox and class None. An annotation naming a missing photo,
    a missing folder or devkit file, or a malformed `.mat` raises `InputError` naming the file.
    """
    root = Path(root).resolve()
    devkit = root / "devkit"
    annotation_files = {"train": devkit / "cars_train_annos.mat", "test": _test_annotation_file(devkit)}
    photos = []
    for split in SPLITS:
        folder = root / f"cars_{split}"
        if not folder.is_dir():
            raise InputError(folder, "missing Stanford Cars photo folder")
        ann_path = annotation_files[split]
        if ann_path is None or not ann_path.is_file():
            missing = ann_path or devkit / "cars_test_annos.mat"
            raise InputError(missing, "missing devkit annotations")
        by_name = {}
        for entry in _annotation_records(ann_path):
            if not (folder / entry["fname"]).is_file():
                raise InputError(ann_path, f"annotated photo {folder / entry['fname']} does not exist",
                                 key="annotations")
            by_name[entry["fname"]] = entry
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in _PHOTO_SUFFIXES:
                continue
            entry = by_name.get(path.name)
            bbox = None if entry is None else tuple(entry[f] for f in ANNOTATION_FIELDS[:4])
            class_id = None if entry is None else entry["class"]
            photos.append(StanfordPhoto(f"cars_{split}/{path.name}", path, split, bbox, class_id))
    return sorted(photos, key=lambda p: p.relpath)


def write_devkit_annotations(path: str | Path, entries: list[dict], *, with_class: bool = True) -> None:
    """Write `entries` ({bbox_x1..bbox_y2, class, fname}) as a MATLAB 1 x N `annotations` struct array.

    Numbers are stored as MATLAB doubles and `fname` as a char array, which is how scipy writes a
    struct array that MATLAB and `loadmat` both read field by field.
    """
    fields = [f for f in ANNOTATION_FIELDS if with_class or f != "class"]
    records = np.zeros((1, len(entries)), dtype=[(f, object) for f in fields])
    for k, entry in enumerate(entries):
        for f in fields:
            records[0, k][f] = str(entry[f]) if f == "fname" else float(entry[f])
    with atomic_file(path) as tmp:
        save_mat(tmp, {"annotations": records})


def write_class_names(path: str | Path, names: list[str]) -> None:
    """devkit/cars_meta.mat: `class_names` as a 1 x C cell array of strings."""
    cells = np.empty((1, len(names)), dtype=object)
    for k, name in enumerate(names):
        cells[0, k] = str(name)
    with atomic_file(path) as tmp:
        save_mat(tmp, {"class_names": cells})
