"""``deepfake.av``: audio-visual TimeSformer + SyncNet latency (seed 5, spec §5), with space-time relevancy.

Seed 5 (AI Singapore Trusted Media Challenge, "Multimodal Model for Deepfake
Detection", ``danglive/Multimodal-Model-for-Deepfake-Detection``). Read top to bottom:

* **id / task**: ``deepfake.av`` / ``deepfake``; weights ``deepfake.av`` (this model) and
  ``syncnet`` (the A/V offset network, ``engine.features.avsync.load_syncnet``).
* **input spec** (:func:`av_inputs`, also called by ``trainer.av_fit``):
  faces: ``MediaClip.dense_face_crops()`` = every frame of ``[0, min(16 s, duration)]`` at
  25 fps, ``tmc_shifted1p4_224`` crops of the main face track (whole frames without a
  face, §5.1); **16 face frames** at indices ``i·(N//16)`` (:func:`face_frame_indices`).
  Audio: the clip's mono audio with sample 0 at video time 0, cut to the dense clip's
  length (:func:`aligned_audio`); **16 mel images** at 22,050 Hz
  (:func:`engine.features.melimages.mel_images`, §5.3); **SyncNet latency** = 33-d
  ``[mdist(31), offset, conf]`` from all dense crops and the 16 kHz MFCC (§5.2;
  zeros without audio).
* **preprocess**: :func:`engine.models.timesformer.preprocess_av` (faces RGB→BGR, then
  mel images, along time; ``(x − 127.5)/127.5``) — the trainer's function too.
* **model**: :class:`engine.models.timesformer.AVTimeSformer` from the card's config.
* **frame → video**: the model scores the whole clip once: P(fake) = softmax[:, 1];
  threshold **0.5**. Each of the 16 face frames gets a :class:`FrameScore` carrying that
  clip score (there is no per-frame score), its PTS, crop placement and heatmap key.
* **explanation**: (1) ``space-time relevancy`` (heatmaps ``f<frame_index>``, float16
  ``(224, 224)`` in [0, 1], crop coordinates): Chefer rules 5 + 6 adapted to divided
  attention (:mod:`engine.explain.spacetime`), per face frame, min-max per frame;
  ``details["relevance_share"]`` gives the share of face vs mel frames. (2) the A/V
  offset curve ``plots["A/V offset"]`` (mean SyncNet distance per offset, marker at
  the measured offset) and ``details["av_sync"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from engine.features.avsync import aligned_audio
from engine.pipeline import DetectorResult, FrameScore, MediaClip, make_plot, register_detector, resolve_device
from engine.weights import find_model_dir, load_weights

__all__ = ["AVDetector", "AVInputs", "av_inputs", "aligned_audio", "face_frame_indices", "offset_plot"]

#: Seed 5 §5.1 dense face video: 25 fps, first 16 s, TMC crop policy.
AV_FPS = 25.0
AV_MAX_S = 16.0
AV_POLICY = "tmc_shifted1p4_224"


def face_frame_indices(n: int, k: int = 16, phase: int = 0) -> np.ndarray:
    """Indices of the ``k`` face frames among ``n`` dense frames: ``i·(n//k) + phase`` (seed 5 §5.1).

    ``phase`` (0 at analysis) lets the trainer draw other frames of the same clip,
    ``0 <= phase < n//k``. When ``n < k`` (clip shorter than 0.64 s) the seed's rule
    would repeat frame 0 sixteen times; ``floor(i·n/k)`` is used instead.

    Returns:
        int64 ``(k,)``.

    Raises:
        ValueError: ``n < 1`` or ``phase`` out of range.
    """
    if n < 1:
        raise ValueError("no dense frames")
    step = n // k
    if step == 0:
        return (np.arange(k) * n // k).astype(np.int64)
    if not 0 <= phase < step:
        raise ValueError(f"phase must be in [0, {step}), got {phase}")
    return (np.arange(k) * step + phase).astype(np.int64)


@dataclass
class AVInputs:
    """Everything seed 5's model reads for one clip (before :func:`preprocess_av`).

    Attributes:
        face_index: int64 ``(16,)`` positions of the face frames among the dense frames.
        faces: uint8 ``(16, 224, 224, 3)`` RGB face crops.
        mel: uint8 ``(16, 224, 224, 3)`` BGR mel images (black without audio).
        latency: float32 ``(33,)`` ``[mdist(31), offset, conf]`` (zeros without audio).
        sync: the ``SyncResult`` (None without audio or when SyncNet could not run).
        sync_error: why ``sync`` is None ("" otherwise).
    """

    face_index: np.ndarray
    faces: np.ndarray
    mel: np.ndarray
    latency: np.ndarray
    sync: Any
    sync_error: str = ""


def av_inputs(dense_crops: np.ndarray, audio_16k: np.ndarray | None, audio_22k: np.ndarray | None, syncnet,
              phase: int = 0, cancel: Callable[[], bool] | None = None, sync=None) -> AVInputs:
    """Seed 5's inputs of one clip from its dense face crops and aligned audio (spec §5.1–5.3).

    Args:
        dense_crops: uint8 ``(N, 224, 224, 3)`` RGB, 25 fps (``MediaClip.dense_face_crops().crops``
            or ``trainer.av_cache``'s ``dense_crops``).
        audio_16k, audio_22k: float32 mono, sample 0 at video time 0 (:func:`aligned_audio`);
            None / empty = no audio.
        syncnet: :class:`engine.models.syncnet.SyncNet` (eval), or None to skip SyncNet
            (then ``sync`` must be given or the latency is zeros).
        phase: face-frame phase (:func:`face_frame_indices`); 0 at analysis.
        cancel: polled by SyncNet between batches.
        sync: a precomputed ``SyncResult`` (the trainer's per-variant cache) instead of running SyncNet.

    Returns:
        :class:`AVInputs`.
    """
    from engine.features.avsync import latency_vector, mfcc_16k, sync_offsets
    from engine.features.melimages import MEL_SR, mel_images

    idx = face_frame_indices(len(dense_crops), 16, phase)
    has_audio = audio_22k is not None and np.asarray(audio_22k).size > 0
    mel = mel_images(audio_22k if has_audio else None, MEL_SR, max_s=AV_MAX_S)
    error = ""
    if sync is None and syncnet is not None and audio_16k is not None and np.asarray(audio_16k).size:
        try:
            wave = np.asarray(audio_16k, np.float32)[: int(AV_MAX_S * 16000)]
            sync = sync_offsets(syncnet, dense_crops, mfcc_16k(wave), cancel=cancel)
        except ValueError as exc:  # too few frames / too little audio for one SyncNet window
            error = str(exc)
    elif sync is None:
        error = "no audio" if not has_audio else "SyncNet not run"
    return AVInputs(idx, np.ascontiguousarray(dense_crops[idx]), mel, latency_vector(sync), sync, error)


def offset_plot(sync) -> dict[str, Any]:
    """``plots["A/V offset"]``: mean SyncNet distance against the A/V offset, marker at the measured offset.

    ``SyncResult.mdist[j]`` belongs to offset ``15 − j`` (``offset = 15 − argmin``, syncnet_python's
    sign), so the curve is drawn reversed: x = offset −15 … +15 video frames (40 ms each) and the
    minimum sits at the marker. Negative = audio lags the video, positive = audio leads.
    """
    mdist = np.asarray(sync.mdist, np.float64)
    vshift = (len(mdist) - 1) // 2
    return make_plot(
        list(range(-vshift, vshift + 1)), {"mean distance": mdist[::-1].tolist()},
        "audio offset (video frames, 40 ms)", "mean SyncNet distance", kind="line", marker_x=float(sync.offset),
        note=(f"SyncNet lip/audio distance per offset; the minimum ({sync.offset:+d} frames = "
              f"{sync.offset * 40:+d} ms, confidence {sync.conf:.2f}) is the measured A/V offset. "
              "Negative: audio lags the video; positive: audio leads. Real footage is usually within "
              "±1 frame; a flat curve (low confidence) means no clear lip sync was found."),
    )


@register_detector("deepfake.av")
class AVDetector:
    """Seed 5's audio-visual TimeSformer + SyncNet-latency deepfake detector.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: folder with this model's ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("deepfake.av")``.
        syncnet_dir: SyncNet weights; default ``find_model_dir("syncnet")``.
        explain: compute the space-time relevancy (one backward pass).

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or altered weights.
        ValueError: the card is not an ``av_timesformer`` model.
    """

    id: ClassVar[str] = "deepfake.av"
    task: ClassVar[str] = "deepfake"
    requires_weights: ClassVar[tuple[str, ...]] = ("deepfake.av", "syncnet")
    crop_policy: ClassVar[str] = AV_POLICY
    track: ClassVar[int] = 0
    threshold: ClassVar[float] = 0.5
    aggregation: ClassVar[str] = ("one clip-level P(fake) = softmax[:, 1] of the TimeSformer + latency model "
                                  "over 16 faces, 16 mel images and the SyncNet latency (seed 5 §5.5, §5.7)")

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None,
                 syncnet_dir: str | Path | None = None, explain: bool = True):
        from engine.features.avsync import load_syncnet
        from engine.models import create_model

        self.device = torch.device(resolve_device(device))
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        if self.card.architecture != "av_timesformer":
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not 'av_timesformer'")
        self.model = create_model("av_timesformer", self.card.config)
        # float16 storage is allowed in the bundle; compute in float32
        self.model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
        self.model.to(self.device).eval()
        self.syncnet, self.syncnet_card = load_syncnet(syncnet_dir, device=str(self.device))
        self.explain = explain

    def _tensors(self, inp: AVInputs) -> tuple[torch.Tensor, torch.Tensor]:
        from engine.models.timesformer import preprocess_av

        x = preprocess_av(inp.faces, inp.mel, self.model.cfg.img_size)[None].to(self.device)
        lat = torch.from_numpy(inp.latency)[None].to(self.device)
        return x, lat

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score the clip and explain it (relevancy on the 16 face frames, A/V offset curve).

        Returns:
            :class:`DetectorResult` (status ``"skipped"`` for audio-only evidence or fewer than
            16 dense frames worth of video is not an error: short clips repeat frames).
        """
        from engine.explain.spacetime import patch_maps, space_time_relevancy

        step = progress or (lambda f: None)
        params = {"crop_policy": self.crop_policy, "fps": AV_FPS, "max_s": AV_MAX_S, "face_frames": 16,
                  "mel_images": 16, "threshold": self.threshold, "explain": self.explain,
                  "syncnet_card": self.syncnet_card.card_id, "img_size": self.model.cfg.img_size,
                  "relevancy": "Chefer rules 5+6 on the divided time/space attention maps (engine.explain.spacetime), "
                               "target fake log-odds, patch grid bilinear to 224, min-max per frame"}
        base = dict(detector_id=self.id, task=self.task, threshold=self.threshold, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        if not clip.has_video:
            return DetectorResult(status="skipped", message="no video stream (audio-only evidence)", **base)
        dense = clip.dense_face_crops(fps=AV_FPS, max_s=AV_MAX_S, policy=self.crop_policy, track=self.track)
        if len(dense.crops) == 0:
            return DetectorResult(status="skipped", message="no frames decoded", **base)
        step(0.3)
        clip.check_cancel()
        n = len(dense.crops)
        a16 = aligned_audio(clip, 16000, n)
        a22 = aligned_audio(clip, 22050, n)

        def cancel() -> bool:
            clip.check_cancel()  # raises AnalysisCancelled
            return False

        inp = av_inputs(dense.crops, a16, a22, self.syncnet, cancel=cancel)
        step(0.6)
        x, lat = self._tensors(inp)
        with clip.cancellable(self.model):
            with torch.no_grad():
                p_fake = float(self.model.fake_probability(x, lat)[0])
            step(0.7)
            rel = space_time_relevancy(self.model, x, lat) if self.explain else None
        step(0.95)
        heat: dict[str, np.ndarray] = {}
        if rel is not None:
            maps = patch_maps(rel.patches[0, :16], int(dense.crops.shape[1]))
        scores = []
        for j, i in enumerate(inp.face_index):
            fidx = int(dense.frame_index[i])
            key = f"f{fidx}"
            if rel is not None and key not in heat:
                heat[key] = maps[j].astype(np.float16)
            scores.append(FrameScore(fidx, float(dense.pts[i]), p_fake, self.track if dense.has_face else None,
                                     None, key if rel is not None else None, dense.placements[i]))
        has_audio = a22.size > 0
        sync = inp.sync
        details: dict[str, Any] = {
            "av_sync": {"offset_frames": int(sync.offset) if sync is not None else None,
                        "offset_ms": int(sync.offset) * 40 if sync is not None else None,
                        "confidence": float(sync.conf) if sync is not None else None,
                        "has_audio": bool(has_audio),
                        "note": "" if sync is not None else
                        f"no A/V offset measured ({inp.sync_error}); the latency input is zeros as in seed 5"},
            "has_face": bool(dense.has_face),
            "dense_frames": n,
            "face_frames": [int(dense.frame_index[i]) for i in inp.face_index],
        }
        trained_with = (self.card.training or {}).get("syncnet_card")
        if trained_with and trained_with != self.syncnet_card.card_id:
            details["syncnet_mismatch"] = (
                f"this model was trained on SyncNet latency from {trained_with}, but {self.syncnet_card.card_id} is "
                "loaded: the latency input is out of distribution and the score is unreliable; retrain deepfake.av")
        if not has_audio:
            details["audio"] = "no audio: the 16 mel images are black and the SyncNet latency is zeros (seed 5 §5.2/5.3)"
        if not dense.has_face:
            details["faces"] = "no face track: whole frames were used as face crops (seed 5 §5.1 fallback)"
        if rel is not None:
            face_share = float(rel.frame_share(slice(0, 16))[0])
            details["relevance_share"] = {
                "face_frames": round(face_share, 4), "mel_frames": round(1.0 - face_share, 4),
                "note": "share of the transformer relevance on the 16 face frames vs the 16 mel images "
                        "(the SyncNet latency branch is not included)"}
        plots = {"A/V offset": offset_plot(sync)} if sync is not None else {}
        step(1.0)
        return DetectorResult(
            score=p_fake, label="fake" if p_fake > self.threshold else "real",
            class_probs={"real": 1.0 - p_fake, "fake": p_fake}, frame_scores=scores, heatmaps=heat,
            explanations={"space-time relevancy": "f{frame}"} if rel is not None else {}, plots=plots,
            details=details, **base,
        )
