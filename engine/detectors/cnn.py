"""``deepfake.cnn``: seed 3's 2D CNN face classifier with Grad-CAM (spec §3.2, §3.6).

"Detecting Deepfakes with Metric Learning" (Kumar, Bhavsar [, Verma], IWBF 2020),
``02.evaluate_CNN.py`` + ``grad_cam_visualize.py``. Read top to bottom:

* **id / task**: ``deepfake.cnn`` / ``deepfake``.
* **input spec**: the main face track (track 0) of the shared
  :class:`engine.pipeline.MediaClip`, cropped with ``mtcnn_margin40_160``
  (facenet-pytorch ``extract_face``, margin 40, 160×160, §3.1). Frames: the clip's
  sampling policy (default 32 uniformly over the duration); the seed took the
  first 25 frames with a face — recorded in the card's quirks.
* **preprocess**: :func:`engine.models.cnn.preprocess_crops` (RGB /255, plus
  ImageNet mean/std when the card's ``init`` is ImageNet) — the trainer's function.
* **model**: :class:`engine.models.cnn.CNN` from the card's config; weights from
  ``model.safetensors`` (SHA-256 verified; float16 storage is cast back to float32).
* **frame -> video**: per crop softmax P(fake) (logit order ``["real", "fake"]``);
  video score = **mean** of the frame P(fake) (the seed's mean of the softmax
  vectors, §3.2); threshold **0.5** (the seed's argmax of two classes).
* **explanation**: Grad-CAM (pytorch-grad-cam via :func:`engine.explain.gradcam_maps`)
  of the fake logit at the backbone's last activation (Xception ``act4`` =
  Keras ``block14_sepconv2_act``, §3.6; EfficientNet ``bn2``), ``(160, 160)``
  ``float16`` in [0, 1] in crop coordinates, key ``f<frame_index>``; each map is
  min-max normalised on its own (the library's rule; not comparable across frames).
  The seed switched the last Dense to linear and explained the argmax class; here
  the target is always the fake logit (pre-softmax, linear as in the seed).
* **features**: :meth:`CNNDetector.clip_features` gives the 512-d ``fc1``
  activations per crop and caches them on the clip under
  ``("deepfake.cnn", "fc1", weights_sha256)`` so ``deepfake.cnn_lstm`` reuses them.
* **bagging (spec §3.1)**: a weight file may hold ``K > 1`` members trained on
  balanced chunks of an imbalanced training set (``trainer.cnn_fit.balanced_chunks``),
  stored in ONE ``model.safetensors`` with key prefixes ``bag0.`` … ``bag{K-1}.``
  (one SHA-256 for the whole ensemble; ``K = 1`` = plain keys, the original format).
  Per frame P(fake) = mean of the members' softmax P(fake) (timeline, video score);
  the video **label** is the seed's **max voting** (:func:`max_vote`): each member
  decides on its own video score (mean of its frame P(fake), > 0.5 = fake) and the
  majority of the K decisions wins. The spec does not say whether the seed voted
  per frame or per video; its evaluation (§3.2) decides per video (mean of the frame
  softmax, argmax), so the votes here are the members' video decisions. The spec
  gives no tie rule (even K): a tie is broken by the ensemble video score (mean of
  the member video scores > 0.5 = fake, else real). Grad-CAM is computed with the
  first member (lowest index) whose vote agrees with the final label; ``fc1``
  features (``deepfake.cnn_lstm``) are those of member 0. ``details["bagging"]``
  records the member video scores and the vote count ("2 of 3 members: fake").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.pipeline import DetectorResult, FrameScore, MediaClip, cache_track_crops, register_detector, resolve_device
from engine.weights import find_model_dir, load_weights

__all__ = ["CNNDetector", "ClipFeatures", "MaxVote", "max_vote", "split_members", "image_crop", "BAG_PREFIX"]

#: Key prefix of ensemble member ``k`` in ``model.safetensors``: ``bag{k}.`` (spec §3.1 bagging).
BAG_PREFIX = "bag"
_BAG_KEY = re.compile(r"^bag(\d+)\.(.+)$")


def split_members(state: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Split a ``deepfake.cnn`` state dict into its ensemble members (spec §3.1).

    Args:
        state: tensors of one ``model.safetensors``: either plain :class:`engine.models.cnn.CNN`
            keys (one model, ``K = 1``) or every key prefixed ``bag{k}.`` for ``k = 0 … K-1``.

    Returns:
        ``K`` state dicts with the prefixes removed, in member order.

    Raises:
        ValueError: prefixed and plain keys mixed, or member indices not exactly ``0 … K-1``.
    """
    bagged: dict[int, dict[str, torch.Tensor]] = {}
    plain = {}
    for key, value in state.items():
        m = _BAG_KEY.match(key)
        if m:
            bagged.setdefault(int(m.group(1)), {})[m.group(2)] = value
        else:
            plain[key] = value
    if not bagged:
        return [plain]
    if plain:
        raise ValueError(f"weights mix bag{{k}}. member keys with {len(plain)} plain keys (e.g. {next(iter(plain))!r})")
    if sorted(bagged) != list(range(len(bagged))):
        raise ValueError(f"ensemble members must be bag0 … bag{len(bagged) - 1}, found bag{sorted(bagged)}")
    return [bagged[k] for k in range(len(bagged))]


class MaxVote:
    """The seed's max voting over K members' video decisions (spec §3.1), see :func:`max_vote`.

    Attributes:
        member_scores: ``float (K,)`` member video P(fake).
        votes: ``bool (K,)`` member decision, True = fake (``score > threshold``).
        fake_votes: number of members voting fake (int, 0 … K).
        members: ``K``.
        tie: ``2 * fake_votes == K`` (possible for even ``K`` only).
        mean_score: mean of ``member_scores`` (the ensemble video P(fake)).
        label: ``"fake"`` or ``"real"``.
    """

    def __init__(self, member_scores: np.ndarray, threshold: float):
        self.member_scores = np.asarray(member_scores, np.float64)
        self.votes = self.member_scores > threshold
        self.fake_votes = int(self.votes.sum())
        self.members = int(len(self.member_scores))
        self.tie = 2 * self.fake_votes == self.members
        self.mean_score = float(self.member_scores.mean())
        if self.tie:
            fake = self.mean_score > threshold
        else:
            fake = 2 * self.fake_votes > self.members
        self.label = "fake" if fake else "real"

    @property
    def majority(self) -> int:
        """Members that voted for the final label."""
        return self.fake_votes if self.label == "fake" else self.members - self.fake_votes

    def text(self) -> str:
        """E.g. ``"2 of 3 members: fake"`` (with ``" (tie broken by the mean score)"`` on a tie)."""
        return f"{self.majority} of {self.members} members: {self.label}" + (
            " (tie broken by the mean score)" if self.tie else "")

    def to_dict(self) -> dict:
        """JSON-ready summary (rounded member scores, vote count, label, tie flag)."""
        return {"members": self.members, "member_video_scores": [round(float(s), 6) for s in self.member_scores],
                "member_votes": ["fake" if v else "real" for v in self.votes], "fake_votes": self.fake_votes,
                "label": self.label, "tie": bool(self.tie), "vote": self.text()}


def max_vote(member_scores, threshold: float = 0.5) -> MaxVote:
    """Max voting of K ensemble members on one video (spec §3.1 "predictions combined by max voting").

    Each member votes fake iff its video score ``> threshold`` (the detector's rule; the seed's
    argmax of two classes). The label is the majority of the K votes. Tie (even K, spec silent):
    broken by the ensemble video score, ``mean(member_scores) > threshold`` -> fake, else real.

    Args:
        member_scores: ``float (K,)`` video P(fake) of each member (mean of its frame P(fake)), K >= 1.
        threshold: decision threshold in [0, 1].

    Returns:
        :class:`MaxVote`.

    Raises:
        ValueError: empty, not 1-D, or non-finite scores.
    """
    s = np.asarray(member_scores, np.float64)
    if s.ndim != 1 or s.size == 0 or not np.isfinite(s).all():
        raise ValueError(f"member_scores must be a non-empty 1-D array of finite P(fake), got {member_scores!r}")
    return MaxVote(s, threshold)


def image_crop(image_rgb: np.ndarray, policy: str = "mtcnn_margin40_160") -> np.ndarray:
    """The detector's crop of a face image given directly (image datasets, spec §4.4).

    The whole image is treated as the face box and cropped with ``policy`` (the 40-px margin is
    added around it, clamped to the image, then resized to 160×160). Used by
    :meth:`CNNDetector.score_crops` and by the trainer for image-folder datasets (one function).

    Args:
        image_rgb: ``uint8 (H, W, 3)`` RGB.

    Returns:
        ``uint8 (160, 160, 3)`` RGB crop.

    Raises:
        ValueError: empty image.
    """
    from engine.faces import FaceBox, crop_face

    h, w = image_rgb.shape[:2]
    return crop_face(image_rgb, FaceBox(0.0, 0.0, float(w), float(h), 1.0), policy).image


class ClipFeatures:
    """The ``fc1`` features of a clip's main-track crops (cached per clip and weights).

    Attributes:
        crops: ``list[(Frame, FaceCrop)]`` of the main face track, in frame order.
        features: ``float32 (M, 512)`` ``fc1`` activations (eval mode), one row per crop.
        probs: ``float32 (M,)`` P(fake) of each crop from the same forward pass (mean over the
            ensemble members when ``K > 1``, spec §3.1).
        member_probs: ``float32 (K, M)`` P(fake) of each crop per ensemble member (``probs[None]`` when K = 1).
    """

    def __init__(self, crops: list, features: np.ndarray, probs: np.ndarray, member_probs: np.ndarray | None = None):
        self.crops, self.features, self.probs = crops, features, probs
        self.member_probs = probs[None] if member_probs is None else member_probs


@register_detector("deepfake.cnn")
class CNNDetector:
    """Seed 3's 2D CNN detector (spec §3.2), optionally a bagged max-voting ensemble (spec §3.1).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("deepfake.cnn")``.
        batch_size: crops per forward pass and per Grad-CAM pass (4: about 140 MB less peak
            memory than 16 on CPU, and no slower there).
        explain: compute Grad-CAM maps.

    Attributes:
        members: the ``K`` :class:`engine.models.cnn.CNN` ensemble members (``K = 1`` for plain weights).
        model: ``members[0]`` (its ``fc1`` features are the ones shared with ``deepfake.cnn_lstm``).

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        ValueError: the card is not a ``cnn`` model; malformed ``bag{k}.`` keys; the card's
            recorded ensemble size (``training.bagging.members``) differs from the weight file's.
    """

    id: ClassVar[str] = "deepfake.cnn"
    task: ClassVar[str] = "deepfake"
    crop_policy: ClassVar[str] = "mtcnn_margin40_160"
    track: ClassVar[int] = 0
    #: caches this detector's face crops before the pipeline releases the frames' pixels
    cache_frame_inputs = classmethod(cache_track_crops)
    threshold: ClassVar[float] = 0.5
    aggregation: ClassVar[str] = ("mean of per-crop softmax P(fake) over the main face track's sampled frames "
                                  "(seed 3 §3.2: mean of the frame softmax vectors)")
    #: ``aggregation`` of a K > 1 ensemble (set on the instance).
    ensemble_aggregation: ClassVar[str] = (
        "per frame: mean of the {k} members' softmax P(fake); score: mean over the main face track's sampled "
        "frames; label: max voting (seed 3 §3.1) of the members' video decisions (member video score = mean of "
        "its frame P(fake), fake if > 0.5), a tie broken by the score")

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, batch_size: int = 4,
                 explain: bool = True):
        from engine.models import create_model

        self.device = torch.device(resolve_device(device))
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        if self.card.architecture != "cnn":
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not 'cnn'")
        member_states = split_members(state)
        recorded = (self.card.training or {}).get("bagging", {}).get("members")
        if recorded is not None and int(recorded) != len(member_states):
            raise ValueError(f"{self.model_dir}: card records {recorded} bagging members, "
                             f"the weight file holds {len(member_states)}")
        self.members = []
        for member_state in member_states:
            model = create_model("cnn", self.card.config)
            model_state = model.state_dict()
            # float16 storage (bundled weights) is cast back to the model's dtype
            model.load_state_dict({k: v.to(model_state[k].dtype) for k, v in member_state.items()})
            self.members.append(model.to(self.device).eval())
        self.model = self.members[0]
        self._ensemble = torch.nn.ModuleList(self.members)  # one module for clip.cancellable hooks
        if len(self.members) > 1:
            self.aggregation = self.ensemble_aggregation.format(k=len(self.members))
        self.normalize = bool(self.model.config.normalize)
        self.batch_size = batch_size
        self.explain = explain

    @property
    def n_members(self) -> int:
        """Ensemble size ``K`` (1 = a single model)."""
        return len(self.members)

    # ------------------------------------------------------------------ scoring
    def _input(self, crops_rgb: np.ndarray) -> torch.Tensor:
        from engine.models.cnn import preprocess_crops

        return preprocess_crops(crops_rgb, normalize=self.normalize, image_size=self.model.config.image_size)

    @torch.no_grad()
    def member_features(self, crops_rgb: np.ndarray, check: Callable[[], None] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """``fc1`` features of member 0 and every member's P(fake) of ``mtcnn_margin40_160`` crops.

        Args:
            crops_rgb: ``uint8 (N, 160, 160, 3)`` RGB crops.
            check: called between batches (e.g. ``clip.check_cancel``).

        Returns:
            ``(features float32 (N, 512), member P(fake) float32 (K, N))``.
        """
        feats, probs = [], []
        for start in range(0, len(crops_rgb), self.batch_size):
            if check:
                check()
            x = self._input(crops_rgb[start : start + self.batch_size]).to(self.device)
            per_member = []
            for k, model in enumerate(self.members):
                f = model.features(x)
                if k == 0:
                    feats.append(f.float().cpu().numpy())
                per_member.append(torch.softmax(model.fc2(f).float(), 1)[:, 1].cpu().numpy())
            probs.append(np.stack(per_member))
        if not feats:
            return (np.zeros((0, self.model.config.hidden), np.float32),
                    np.zeros((self.n_members, 0), np.float32))
        return np.concatenate(feats).astype(np.float32), np.concatenate(probs, axis=1).astype(np.float32)

    def fc1_features(self, crops_rgb: np.ndarray, check: Callable[[], None] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``fc1`` features and P(fake) of ``mtcnn_margin40_160`` crops (spec §3.4 per-frame features).

        The one feature function: the detector, ``deepfake.cnn_lstm`` and its trainer call it.

        Args:
            crops_rgb: ``uint8 (N, 160, 160, 3)`` RGB crops.
            check: called between batches (e.g. ``clip.check_cancel``).

        Returns:
            ``(features float32 (N, 512), P(fake) float32 (N,))``; for a K > 1 ensemble the features
            are member 0's and P(fake) is the mean of the members' softmax P(fake) (spec §3.1).
        """
        f, p = self.member_features(crops_rgb, check)
        return f, p.mean(axis=0).astype(np.float32)

    def clip_features(self, clip: MediaClip) -> ClipFeatures:
        """Main-track crops + ``fc1`` features + P(fake) (+ per-member P(fake)), once per clip and weights.

        Cached through ``clip.cached(("deepfake.cnn", "fc1", weights_sha256), ...)``.
        """

        def compute() -> ClipFeatures:
            crops = clip.face_crops(self.crop_policy, self.track)
            if not crops:
                return ClipFeatures([], np.zeros((0, self.model.config.hidden), np.float32), np.zeros(0, np.float32),
                                    np.zeros((self.n_members, 0), np.float32))
            with clip.cancellable(self._ensemble):
                f, mp = self.member_features(np.stack([c.image for _, c in crops]), clip.check_cancel)
            return ClipFeatures(crops, f, mp.mean(axis=0).astype(np.float32), mp)

        return clip.cached(("deepfake.cnn", "fc1", self.card.sha256), compute)

    def score_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(fake) of face images given directly (image datasets), ``float32 (N,)``.

        Each image is treated as its own face box and cropped with ``mtcnn_margin40_160``
        (:func:`image_crop`: the 40-px margin is added around the whole image, clamped to it,
        then resized to 160×160), then scored (mean of the members' P(fake) when K > 1).
        """
        if not crops:
            return np.zeros(0, np.float32)
        return self.fc1_features(np.stack([image_crop(c, self.crop_policy) for c in crops]))[1]

    # ------------------------------------------------------------------ analysis
    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score the main face track's crops, aggregate by the mean (and max voting if K > 1), Grad-CAM each crop.

        Returns:
            :class:`DetectorResult` (status ``"skipped"`` when no face was found). For a K > 1
            ensemble, ``label`` is the max vote (:func:`max_vote`), ``score`` the mean P(fake) and
            ``details["bagging"]`` = :meth:`MaxVote.to_dict` plus ``gradcam_member``.
        """
        from engine.explain import gradcam_maps

        layer = "backbone.act4 (Keras block14_sepconv2_act)" if self.model.config.backbone == "xception" \
            else "backbone.bn2 (head conv + BN + activation)"
        params = {"crop_policy": self.crop_policy, "track": self.track, "threshold": self.threshold,
                  "batch_size": self.batch_size, "explain": self.explain, "backbone": self.model.config.backbone,
                  "input": "RGB /255" + (" + ImageNet mean/std" if self.normalize else ""),
                  "gradcam_layer": layer, "gradcam_target": "fake logit (pre-softmax)",
                  "gradcam_normalisation": "min-max per crop (pytorch-grad-cam)"}
        if self.n_members > 1:
            params.update({"bagging_members": self.n_members, "vote_tie_rule": "mean member video score > threshold",
                           "gradcam_member": "first member voting with the final label"})
        base = dict(detector_id=self.id, task=self.task, threshold=self.threshold, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        feats = self.clip_features(clip)
        crops = feats.crops
        if not crops:
            return DetectorResult(status="skipped", message="no face track in the sampled frames", **base)
        p = feats.probs
        score = float(np.mean(p))
        details: dict = {}
        cam_model = self.model
        if self.n_members > 1:
            vote = max_vote(feats.member_probs.mean(axis=1), self.threshold)
            label = vote.label
            cam_member = int(np.flatnonzero(vote.votes == (label == "fake"))[0]) if vote.majority else 0
            cam_model = self.members[cam_member]
            details["bagging"] = {**vote.to_dict(), "gradcam_member": cam_member}
        else:
            label = "fake" if score > self.threshold else "real"
        if progress:
            progress(0.3 if self.explain else 1.0)
        heat: dict[str, np.ndarray] = {}
        if self.explain:
            x_all = self._input(np.stack([c.image for _, c in crops]))
            n = len(crops)
            with clip.cancellable(cam_model):
                for start in range(0, n, self.batch_size):
                    clip.check_cancel()
                    x = x_all[start : start + self.batch_size].to(self.device)
                    # backward only down to the Grad-CAM layer: the same maps, no backbone weight grads
                    cam = gradcam_maps(cam_model, cam_model.gradcam_layer(), x, target=1, truncate=True)
                    for j in range(len(x)):
                        heat[f"f{crops[start + j][0].index}"] = cam.maps[j].astype(np.float16)
                    if progress:
                        progress(0.3 + 0.7 * min(1.0, (start + self.batch_size) / n))
        scores = [
            FrameScore(f.index, f.pts, float(pi), self.track,
                       [round(float(v), 2) for v in (c.box.x1, c.box.y1, c.box.x2, c.box.y2)],
                       f"f{f.index}" if self.explain else None, c.placement)
            for (f, c), pi in zip(crops, p)
        ]
        return DetectorResult(
            score=score, label=label,
            class_probs={"real": 1.0 - score, "fake": score}, frame_scores=scores, heatmaps=heat,
            explanations={"Grad-CAM": "f{frame}"} if self.explain else {}, details=details, **base,
        )
