"""Labelled real / fake face sources (``data.source: folders``), shared by the deepfake fitters.

The seeds trained on the datasets' own labelled fakes: seed 2 §2.3 (``deepfake.effvit``) on FF++
real + manipulated frames, seed 3 §3.1/§3.2/§3.5 (``deepfake.cnn``, ``deepfake.triplet``) on
Celeb-DF real + Celeb-synthesis faces. This module lists such a dataset, splits it by person and
turns the videos (or face images) into face crops with the engine's own preprocessing; what a
fitter does with the crops (tensors, augmentation, loss) stays in the fitter. Nothing here
depends on a detector: the crop policy is an argument.

* :func:`folder_items`: ``(train, held-out)`` dataset items of a ``data:`` config section,
  listed by a :mod:`trainer.datasets` adapter;
* :func:`hold_out_groups`: the one "hold out whole people" rule (also used by
  :func:`trainer.reproduce._deepfake_splits`), built on :func:`trainer.datasets.assign_group_splits`;
* :func:`labelled_faces`: face crops of items (:func:`trainer.cache.cache_video` for videos,
  :func:`engine.detectors.cnn.image_crop` for images) as :class:`LabelledFaces`;
* :func:`labelled_split`: all of the above for one fit, as a :class:`LabelledSplit` (counts for the
  summary, a sentence for the card, ``labelled_split.json`` for the run folder);
* :func:`load_faces`: stack one crop policy of preprocessing caches.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["SOURCES", "data_source", "LabelledCrops", "DEFAULT_POLICY", "load_faces", "LabelledFaces", "LabelledSplit", "hold_out_groups", "folder_items",
           "labelled_faces", "labelled_split"]

#: ``data.source`` values of the deepfake fitters: self-blended fakes of real videos, or a labelled dataset.
SOURCES = ("sbi", "folders")
#: Crop policy when none is given: the 160-px MTCNN crop of seed 3 (``deepfake.cnn`` / ``deepfake.triplet``).
DEFAULT_POLICY = "mtcnn_margin40_160"
_FOLDER = {0: "real", 1: "fake"}


def load_faces(caches: Sequence[Path], policy: str = DEFAULT_POLICY) -> dict[str, np.ndarray]:
    """Stack one crop policy's cached faces of several videos (:mod:`trainer.cache` npz files).

    Returns:
        ``crops`` uint8 (N, S, S, 3) RGB; ``landmarks`` float32 (N, 5, 2) crop px (NaN if absent);
        ``video`` int64 (N,) position of the source cache in ``caches``; ``frame`` int64 (N,)
        source frame index; ``pts`` float64 (N,) seconds.

    Raises:
        ValueError: no caches, or none holds a face.
    """
    from engine.io import load_npz

    out: dict[str, list] = {"crops": [], "landmarks": [], "video": [], "frame": [], "pts": []}
    for v, path in enumerate(caches):
        a = load_npz(path)
        c = a[f"crops/{policy}"]
        frames = a[f"crop_frames/{policy}"]
        pts_of = dict(zip(a["frame_index"].tolist(), a["pts"].tolist()))
        out["crops"].append(c)
        out["landmarks"].append(a[f"landmarks/{policy}"].astype(np.float32))
        out["video"].append(np.full(len(c), v, np.int64))
        out["frame"].append(frames.astype(np.int64))
        out["pts"].append(np.array([pts_of.get(int(f), np.nan) for f in frames], np.float64))
    if not out["crops"]:
        raise ValueError("no cached videos given")
    stacked = {k: np.concatenate(v) for k, v in out.items()}
    if not len(stacked["crops"]):
        raise ValueError(f"no {policy} face crops in {len(caches)} cached videos")
    return stacked


@dataclass(frozen=True)
class LabelledFaces:
    """Face crops of a labelled real/fake dataset, grouped by video (``data.source: folders``).

    Attributes:
        crops: uint8 (N, S, S, 3) RGB crops of one policy (160 for ``mtcnn_margin40_160``,
            224 for ``effvit_square224``).
        labels: int64 (N,) 0 real, 1 fake.
        groups: int64 (N,) index into ``names`` (the source video, or the image group of an image folder).
        names: ``list[str]`` group names, ``"<class folder>/<group>"`` (``real/id0``, ``fake/000_003``).
        n_items: dataset items (videos / images) listed for this split; items without a face are dropped.
    """

    crops: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    names: list[str]
    n_items: int

    def counts(self) -> dict[str, int]:
        """``{real_groups, fake_groups, real_faces, fake_faces}``."""
        g_label = {int(g): int(lab) for g, lab in zip(self.groups, self.labels)}
        return {"real_groups": sum(1 for v in g_label.values() if v == 0),
                "fake_groups": sum(1 for v in g_label.values() if v == 1),
                "real_faces": int((self.labels == 0).sum()), "fake_faces": int((self.labels == 1).sum())}

    def subset(self, idx: np.ndarray) -> "LabelledFaces":
        """The rows ``idx`` (group indices and names kept)."""
        return LabelledFaces(self.crops[idx], self.labels[idx], self.groups[idx], self.names, self.n_items)

    def group_names(self) -> dict[str, list[str]]:
        """``{"real": [group, ...], "fake": [...]}``: the dataset groups (people) with faces here, sorted."""
        used = sorted({self.names[int(g)] for g in np.unique(self.groups)})
        return {cls: [n.split("/", 1)[1] for n in used if n.split("/", 1)[0] == cls] for cls in ("real", "fake")}


class LabelledCrops:
    """Base of the labelled-crop datasets of the fitters (``data.source: folders``): item ``i`` is crop ``i``
    with its own label. A fitter's tensor mixin (``CNNTensors``, ``EffViTTensors``) turns
    :meth:`image` into model tensors; combine as ``class D(Mixin, LabelledCrops, torch.utils.data.Dataset)``.

    Args:
        crops: uint8 (N, S, S, 3) RGB crops of one policy. labels: int (N,) 0 real, 1 fake.
        train: training items (augmented by the mixin). seed: augmentation seed (per seed, epoch, item).

    Raises:
        ValueError: ``crops`` and ``labels`` differ in length.
    """

    def __init__(self, crops: np.ndarray, labels: np.ndarray, train: bool, seed: int = 0):
        if len(crops) != len(labels):
            raise ValueError(f"{len(crops)} crops but {len(labels)} labels")
        self.crops, self.labels = crops, np.asarray(labels, np.int64)
        self.train, self.seed, self.epoch = train, seed, 0

    def __len__(self) -> int:
        return len(self.crops)

    def image(self, i: int) -> tuple[np.ndarray, int]:
        """``(uint8 (S, S, 3) RGB, label)`` of item ``i`` before augmentation."""
        return self.crops[i], int(self.labels[i])


def hold_out_groups(items: Sequence, fraction: float, seed: int = 0) -> tuple[list, list]:
    """Split dataset items into ``(train, held-out)`` by whole groups (people): the project's one rule.

    The groups of all items (every class together, so a person's real and fake videos stay on one
    side) are assigned by :func:`trainer.datasets.assign_group_splits` with fractions
    ``(1 - fraction, fraction, 0)`` and ``seed``. Small sets are then fixed up, deterministically:
    every label with two or more groups gets at least one held-out group (the last of its training
    groups in sorted order whose move leaves each of its labels a training group), then every label
    keeps at least one training group (the first of its held-out groups in sorted order moves back).

    Args:
        items: objects with ``group`` (str) and ``label`` (int) attributes
            (:class:`trainer.datasets.VideoItem` / :class:`~trainer.datasets.ImageItem`).
        fraction: share of the groups held out, in ``[0, 1)``; 0 holds out nothing.
        seed: permutation seed of :func:`~trainer.datasets.assign_group_splits`.

    Returns:
        ``(train items, held-out items)`` in the input order; no group is in both.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1)``.
    """
    from trainer.datasets import assign_group_splits

    fraction = float(fraction)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction (data.val_fraction) must be in [0, 1), got {fraction}")
    groups = sorted({str(it.group) for it in items})
    if fraction == 0.0 or not groups:
        return list(items), []
    split = assign_group_splits(groups, (1.0 - fraction, fraction, 0.0), seed=seed)
    labels_of: dict[str, set[int]] = defaultdict(set)
    for it in items:
        labels_of[str(it.group)].add(int(it.label))
    labels = sorted({int(it.label) for it in items})

    def of(label: int, part: str) -> list[str]:
        return [g for g in groups if label in labels_of[g] and split[g] == part]

    for label in labels:  # at least one held-out group per label that has two or more
        train_g = of(label, "train")
        if of(label, "val") or len(train_g) < 2:
            continue
        for g in reversed(train_g):
            if all(len(of(lab, "train")) > 1 for lab in labels_of[g]):
                split[g] = "val"
                break
    for label in labels:  # and at least one training group per label
        if not of(label, "train") and of(label, "val"):
            split[of(label, "val")[0]] = "train"
    train = [it for it in items if split[str(it.group)] == "train"]
    held = [it for it in items if split[str(it.group)] == "val"]
    return train, held


def folder_items(data: dict[str, Any], seed: int) -> tuple[list, list]:
    """``(train items, held-out items)`` of a ``data.source: folders`` config.

    Lists ``data.root`` with :func:`trainer.datasets.load_dataset` (``data.dataset``: any adapter,
    e.g. ``video_folder`` (default; a single pool counts as ``train``), ``image_folder``, ``ffpp``
    (real and manipulated videos of its train / val split), ``celebdf`` (its real and
    Celeb-synthesis training videos; the official test list is never trained on);
    ``data.numeric_labels`` for ``0``/``1`` class folders, e.g. ``'1=real'`` for seed 3's
    ``train/{0,1}``). Held-out = split ``val``; without any, ``data.val_fraction`` (default 0.1)
    of the ``train`` groups (people, all classes together) by :func:`hold_out_groups` with ``seed``.
    ``test`` items are never returned (left for ``forensic-train evaluate``).

    Raises:
        ValueError: no ``data.root``, unknown ``data.dataset``, bad ``data.val_fraction``, no
            training items of either class.
        trainer.datasets.DatasetLayoutError: the folder does not have the adapter's layout.
    """
    from trainer.datasets import ADAPTERS, load_dataset

    if not data.get("root"):
        raise ValueError("data.source: folders needs data.root (a labelled dataset folder)")
    name = data.get("dataset", "video_folder")
    if name not in ADAPTERS:
        raise ValueError(f"data.dataset must be one of {', '.join(sorted(ADAPTERS))}, got {name!r}")
    options: dict[str, Any] = {}
    if data.get("numeric_labels"):
        options["numeric_labels"] = data["numeric_labels"]
    if name == "video_folder":
        options["default_split"] = "train"
    items = load_dataset(name, data["root"], **options)
    train = [it for it in items if it.split == "train"]
    val = [it for it in items if it.split == "val"]
    if not val:
        train, val = hold_out_groups(train, float(data.get("val_fraction", 0.1)), seed)
    if {it.label for it in train} != {0, 1}:
        raise ValueError(f"{data['root']}: the training split needs real and fake items, "
                         f"got {len(train)} items of labels {sorted({it.label for it in train})}")
    return train, val


def labelled_faces(items: Sequence, cache_dir: Path, frames: int, device: str = "auto",
                   policy: str = DEFAULT_POLICY) -> LabelledFaces:
    """Face crops of labelled dataset items, from the engine's own preprocessing.

    Videos (:class:`trainer.datasets.VideoItem`) go through :func:`trainer.cache.cache_video`
    (main face track, ``frames`` uniform frames, resumable npz cache in ``cache_dir``; every fixed-size
    crop policy is cached, so one cache serves every detector) and :func:`load_faces`; images
    (:class:`trainer.datasets.ImageItem`) through :func:`engine.detectors.cnn.image_crop` with
    ``policy`` (the whole image as the face box: what the detectors' ``score_crops`` do).

    Args:
        policy: crop policy of :mod:`engine.faces` (``mtcnn_margin40_160``, ``effvit_square224`` ...).

    Returns:
        :class:`LabelledFaces` (groups = ``(label, item.group)``).

    Raises:
        ValueError: no item gave a face crop, or an unreadable image.
    """
    import cv2

    from engine.detectors.cnn import image_crop
    from trainer.datasets import ImageItem

    from .cache import cache_video

    crops, labels, groups = [], [], []
    names: dict[tuple[int, str], int] = {}

    def gid(it) -> int:
        return names.setdefault((int(it.label), str(it.group)), len(names))

    videos = [it for it in items if not isinstance(it, ImageItem)]
    for it in items:
        if isinstance(it, ImageItem):
            bgr = cv2.imread(str(it.path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{it.path}: not a readable image")
            crops.append(image_crop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), policy)[None])
            labels.append(np.array([it.label], np.int64))
            groups.append(np.array([gid(it)], np.int64))
    if videos:
        caches = [cache_video(it.path, cache_dir, frames, device).cache for it in videos]
        faces = load_faces(caches, policy)
        for v, it in enumerate(videos):
            sel = faces["video"] == v
            if sel.any():
                crops.append(faces["crops"][sel])
                labels.append(np.full(int(sel.sum()), it.label, np.int64))
                groups.append(np.full(int(sel.sum()), gid(it), np.int64))
    if not crops:
        raise ValueError(f"no face crops in {len(items)} dataset items")
    by_id = sorted(names, key=names.get)
    return LabelledFaces(np.concatenate(crops), np.concatenate(labels), np.concatenate(groups),
                         [f"{_FOLDER[lab]}/{g}" for lab, g in by_id], len(items))


@dataclass(frozen=True)
class LabelledSplit:
    """The training and held-out faces of one ``data.source: folders`` fit.

    Attributes:
        train, val: :class:`LabelledFaces` of the training and held-out items (disjoint groups).
        dataset: adapter name (``data.dataset``). root: ``data.root``.
    """

    train: LabelledFaces
    val: LabelledFaces
    dataset: str
    root: str

    def summary(self) -> dict[str, Any]:
        """Counts for ``summary.json`` / ``card.training``: items, groups and faces per class and part."""
        trc, vac = self.train.counts(), self.val.counts()
        return {"data_source": "folders", "dataset": self.dataset, "root": self.root,
                "train_items": self.train.n_items, "val_items": self.val.n_items,
                **{f"train_{k}": v for k, v in trc.items()}, **{f"val_{k}": v for k, v in vac.items()},
                "train_faces": int(len(self.train.crops)), "val_faces": int(len(self.val.crops))}

    def describe(self) -> str:
        """One sentence (no final full stop) for the card's ``training_data``."""
        trc, vac = self.train.counts(), self.val.counts()
        return (f"{self.dataset} at {self.root}: train {trc['real_groups']} real / {trc['fake_groups']} fake "
                f"groups ({trc['real_faces']} / {trc['fake_faces']} faces), held-out {vac['real_groups']} real / "
                f"{vac['fake_groups']} fake groups")

    def write(self, out_dir: Path) -> Path:
        """``out_dir/labelled_split.json``: the dataset groups (people / videos) of each part, per class."""
        from engine.io import atomic_write_json

        return atomic_write_json(Path(out_dir) / "labelled_split.json", {
            "dataset": self.dataset, "root": self.root,
            "rule": "held-out = the dataset's val split, else data.val_fraction of the training groups "
                    "(trainer.labelled.hold_out_groups)",
            "train": self.train.group_names(), "val": self.val.group_names()})


def data_source(data: dict[str, Any]) -> str:
    """``data.source`` of a fitter's YAML ``data:`` section (default ``sbi``).

    Raises:
        ValueError: not one of :data:`SOURCES`.
    """
    source = data.get("source", "sbi")
    if source not in SOURCES:
        raise ValueError(f"data.source must be one of {SOURCES}, got {source!r}")
    return source


def labelled_split(data: dict[str, Any], seed: int, out_dir: Path, default_frames: int, accelerator: str = "auto",
                   policy: str = DEFAULT_POLICY, video_caches: Sequence = ()) -> LabelledSplit:
    """Training and held-out faces of a ``data.source: folders`` config (:func:`folder_items` + :func:`labelled_faces`).

    Args:
        data: the YAML ``data:`` section (``root``, ``dataset``, ``val_fraction``, ``numeric_labels``,
            ``cache_dir`` (default ``out_dir/cache``), ``frames_per_video`` (default ``default_frames``)).
        seed: of the group hold-out. accelerator: the fit's (``"cpu"`` detects faces of videos not
            cached yet on the CPU, anything else on CUDA when present).
        policy: the detector's crop policy.
        video_caches: the fit's ``data.train_videos`` / ``val_videos`` caches, which must be empty here.

    Raises:
        ValueError: video lists given; see :func:`folder_items`; no held-out item (no val split and too
            few groups); training faces of one class only.
    """
    if len(video_caches):
        raise ValueError("data.source: folders reads data.root; leave data.train_videos / val_videos empty ([])")
    train_items, val_items = folder_items(data, seed)
    if not val_items:
        raise ValueError(f"{data['root']}: no held-out items (no val split and too few groups to hold out)")
    cache_dir = Path(data.get("cache_dir", Path(out_dir) / "cache"))
    frames = int(data.get("frames_per_video", default_frames))
    device = "cpu" if accelerator == "cpu" else "auto"
    split = LabelledSplit(labelled_faces(train_items, cache_dir, frames, device, policy),
                          labelled_faces(val_items, cache_dir, frames, device, policy),
                          str(data.get("dataset", "video_folder")), str(data["root"]))
    n = split.train.counts()
    if not n["real_faces"] or not n["fake_faces"]:
        raise ValueError(f"{data['root']}: the training faces need both classes, got {n}")
    return split
