"""Late fusion of the deepfake detectors into one combined verdict (DESIGN.md "fusion").

Every deepfake detector ends in a video-level P(fake) with its own decision
threshold. The combined verdict fuses the scores of the detectors that produced
one (status ``"ok"``) with a named rule:

* ``mean``: the arithmetic mean of the P(fake) scores (the default);
* ``max``: the largest P(fake) — flags a video when any detector is confident;
* ``weighted``: ``sum(w_i p_i) / sum(w_i)`` over the detectors present, with
  analyst-given weights (detectors without a weight get ``default_weight``).

The fused score is compared with the rule's ``threshold`` (default 0.5). The
individual detectors' decisions are kept next to it (``flagged`` / ``scored``), so
a report can say both "combined P(fake) 0.41 (mean of 7)" and "2 of 7 detectors
flagged". Scores are not calibrated against each other: every bundled model is a
demo model trained on self-blended faces, and the report says so.

Camera-model fusion (product / sum rules of seed 1 §1.9) is the ``camera.fusion``
detector, not this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

__all__ = ["FUSION_RULES", "FusionRule", "combined_verdict", "parse_weights"]

#: Rule name -> one-line description (shown in the GUI, the report and the JSON).
FUSION_RULES: dict[str, str] = {
    "mean": "mean of the detectors' video P(fake)",
    "max": "largest video P(fake) of any detector",
    "weighted": "weighted mean of the detectors' video P(fake) (analyst weights)",
}


@dataclass(frozen=True)
class FusionRule:
    """How the deepfake detectors are combined.

    Attributes:
        rule: ``"mean"``, ``"max"`` or ``"weighted"`` (see :data:`FUSION_RULES`).
        threshold: the fused P(fake) above which the combined verdict is "fake".
        weights: detector id -> weight (>= 0) for ``"weighted"``.
        default_weight: weight of a detector not named in ``weights``.

    Raises:
        ValueError: unknown rule, a threshold outside [0, 1] or a negative weight.
    """

    rule: str = "mean"
    threshold: float = 0.5
    weights: Mapping[str, float] = field(default_factory=dict)
    default_weight: float = 1.0

    def __post_init__(self):
        if self.rule not in FUSION_RULES:
            raise ValueError(f"fusion rule must be one of {', '.join(FUSION_RULES)}, got {self.rule!r}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ValueError(f"fusion threshold must be in [0, 1], got {self.threshold}")
        if any(float(w) < 0 for w in self.weights.values()) or self.default_weight < 0:
            raise ValueError("fusion weights must be >= 0")

    def describe(self) -> str:
        """One line naming the rule, e.g. ``"mean of the detectors' video P(fake), threshold 0.5"``."""
        text = FUSION_RULES[self.rule]
        if self.rule == "weighted" and self.weights:
            text += " (" + ", ".join(f"{k} {float(v):g}" for k, v in sorted(self.weights.items()))
            text += f", others {self.default_weight:g})"
        return f"{text}, threshold {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``rule``, ``threshold``, ``weights``, ``default_weight``)."""
        d = asdict(self)
        d["weights"] = {str(k): float(v) for k, v in self.weights.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "FusionRule":
        """Inverse of :meth:`to_dict`; ``None`` gives the default rule."""
        if not d:
            return cls()
        return cls(rule=str(d.get("rule", "mean")), threshold=float(d.get("threshold", 0.5)),
                   weights={str(k): float(v) for k, v in (d.get("weights") or {}).items()},
                   default_weight=float(d.get("default_weight", 1.0)))


def parse_weights(text: str) -> dict[str, float]:
    """``"deepfake.effvit=2,deepfake.freq=0.5"`` -> ``{"deepfake.effvit": 2.0, "deepfake.freq": 0.5}``.

    Raises:
        ValueError: an item is not ``id=number``.
    """
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"fusion weight {item!r} is not of the form detector_id=number") from None
    return out


def _get(d: Any, key: str) -> Any:
    return d.get(key) if isinstance(d, Mapping) else getattr(d, key, None)


def combined_verdict(detectors: Iterable[Any], rule: FusionRule = FusionRule(), task: str = "deepfake") -> dict[str, Any]:
    """Fuse the video scores of one task's detectors into one verdict.

    Args:
        detectors: :class:`engine.pipeline.DetectorResult` objects or their ``to_dict()``
            (both work); only those of ``task`` with status ``"ok"`` and a score take part.
        rule: the :class:`FusionRule`.
        task: detector task to fuse (``"deepfake"``).

    Returns:
        ``{"task", "rule" (FusionRule.to_dict()), "description", "score" (fused P(fake) or
        None when no detector scored), "label" ("fake" / "real" / None), "threshold",
        "inputs": [{"detector_id", "score", "threshold", "flagged", "weight"}],
        "flagged" (ids whose own decision was fake), "scored" (count), "not_scored": [{"detector_id", "reason"}]}``.
    """
    inputs, not_scored = [], []
    for d in detectors:
        if _get(d, "task") != task:
            continue
        det_id, score = _get(d, "detector_id"), _get(d, "score")
        if _get(d, "status") != "ok" or score is None:
            not_scored.append({"detector_id": det_id, "reason": _get(d, "message") or _get(d, "status") or "no score"})
            continue
        thr = _get(d, "threshold")
        label = _get(d, "label")
        flagged = (str(label).lower() == "fake") if label is not None else (thr is not None and float(score) > float(thr))
        weight = float(rule.weights.get(det_id, rule.default_weight)) if rule.rule == "weighted" else 1.0
        inputs.append({"detector_id": det_id, "score": float(score), "threshold": None if thr is None else float(thr),
                       "flagged": bool(flagged), "weight": weight})
    fused = None
    if inputs:
        scores = [i["score"] for i in inputs]
        if rule.rule == "mean":
            fused = sum(scores) / len(scores)
        elif rule.rule == "max":
            fused = max(scores)
        else:
            total = sum(i["weight"] for i in inputs)
            fused = (sum(i["weight"] * i["score"] for i in inputs) / total) if total > 0 else None
    return {
        "task": task,
        "rule": rule.to_dict(),
        "description": rule.describe(),
        "score": fused,
        "label": None if fused is None else ("fake" if fused > rule.threshold else "real"),
        "threshold": float(rule.threshold),
        "inputs": inputs,
        "flagged": [i["detector_id"] for i in inputs if i["flagged"]],
        "scored": len(inputs),
        "not_scored": not_scored,
    }
