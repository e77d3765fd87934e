"""Dataset adapters: turn a dataset folder into a list of labelled items.

One module per layout of spec/seeds.md §7 (and §4.4, §5.4); each adapter is a
plain function ``adapter(root, **options) -> list[VideoItem | ImageItem]``
that only lists files (no decoding) and raises
:class:`DatasetLayoutError` naming the path and what is missing.

==================  =======================================  ==================================
name                adapter                                  layout
==================  =======================================  ==================================
``ffpp``            :func:`faceforensics.faceforensics`      FaceForensics++ (official or
                                                             720/140/140 splits)
``celebdf``         :func:`celebdf.celebdf`                  Celeb-DF v2 + official test list
``dfdc``            :func:`dfdc.dfdc`                        DFDC metadata.json / label CSVs
``tmc``             :func:`tmc.tmc`                          TMC ``filename,filepath,label,split,weight``
``video_folder``    :func:`folders.video_folder`             ``{real,fake}/*`` videos
``image_folder``    :func:`folders.image_folder`             ``{train,test[,val]}/{real,fake}/*``
==================  =======================================  ==================================

Camera-model identification (multi-class, not real/fake; in :data:`CAMERA_ADAPTERS`,
not :data:`ADAPTERS`; returns :class:`~trainer.datasets.vision.VisionVideo`):

==================  =======================================  ==================================
name                adapter                                  layout
==================  =======================================  ==================================
``vision``          :func:`vision.vision`                    VISION ``<Dxx_Brand_Model>/videos/
                                                             <category>/*`` (spec §1.1), 25
                                                             merged classes, seed folds via
                                                             :func:`vision.vision_folds` (§1.2);
                                                             or a ``dataset.json`` device tree
==================  =======================================  ==================================

Labels of the deepfake adapters are always **1 = fake, 0 = real**; seeds 3 and 4
stored the opposite (see :mod:`trainer.datasets.items`) and their adapters
normalise it.

Example::

    items = load_dataset("ffpp", "/data/FF++", compression="c23", splits_dir="/data/FF++/splits")
    train = [it for it in items if it.split == "train"]
    assert not group_leaks(items)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

from trainer.datasets.celebdf import celebdf
from trainer.datasets.dfdc import dfdc
from trainer.datasets.faceforensics import FFPP_COMPRESSIONS, FFPP_METHODS, faceforensics
from trainer.datasets.folders import image_folder, video_folder
from trainer.datasets.items import (
    FAKE,
    REAL,
    SPLITS,
    DatasetLayoutError,
    ImageItem,
    Item,
    VideoItem,
    assign_group_splits,
    count,
    group_leaks,
    normalise_split,
)
from trainer.datasets.tmc import tmc
from trainer.datasets.vision import VisionVideo, vision, vision_classes, vision_folds

__all__ = [
    "ADAPTERS",
    "load_dataset",
    "VideoItem",
    "ImageItem",
    "Item",
    "DatasetLayoutError",
    "FAKE",
    "REAL",
    "SPLITS",
    "FFPP_METHODS",
    "FFPP_COMPRESSIONS",
    "assign_group_splits",
    "count",
    "group_leaks",
    "normalise_split",
    "faceforensics",
    "celebdf",
    "dfdc",
    "tmc",
    "video_folder",
    "image_folder",
    "CAMERA_ADAPTERS",
    "VisionVideo",
    "vision",
    "vision_classes",
    "vision_folds",
]

#: Adapter name -> function ``(root, **options) -> list[Item]``.
ADAPTERS: dict[str, Callable[..., list[Item]]] = {
    "ffpp": faceforensics,
    "celebdf": celebdf,
    "dfdc": dfdc,
    "tmc": tmc,
    "video_folder": video_folder,
    "image_folder": image_folder,
}

#: Camera-model identification adapters: name -> ``(root, **options) -> list[VisionVideo]``
#: (multi-class device labels, so kept apart from the real/fake :data:`ADAPTERS`).
CAMERA_ADAPTERS: dict[str, Callable[..., list[VisionVideo]]] = {"vision": vision}


def load_dataset(name: str, root: Union[str, Path], **options) -> list[Item]:
    """List dataset ``name`` at ``root`` with the adapter's ``options``.

    Args:
        name: a key of :data:`ADAPTERS`.
        root: the dataset folder (for ``tmc`` also the CSV itself).
        **options: keyword options of that adapter (see its docstring).

    Returns:
        The adapter's items (labels 1 = fake, 0 = real).

    Raises:
        KeyError: unknown ``name`` (the message lists the known names).
        DatasetLayoutError: the folder does not have the adapter's layout.
    """
    try:
        adapter = ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(ADAPTERS))}") from None
    return adapter(Path(root), **options)
