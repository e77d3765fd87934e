"""``deepfake.freq``: Frequency Solver, an SVM / MLP on the azimuthal FFT spectrum of face crops.

Seed 4 (spec/seeds.md §4), after Durall et al. 2020, "Unmasking DeepFakes
with simple Features" (arXiv 1911.00686). Read top to bottom:

* **id / task**: ``deepfake.freq`` / ``deepfake``.
* **input spec**: the main face track (track 0) of the shared
  :class:`engine.pipeline.MediaClip`, cropped with the ``freq_square1p5``
  policy (FF++ ``get_boundingbox(scale=1.5)``, native resolution, no resize;
  §4.4). Crops smaller than 28x28 px cannot be described and are skipped.
* **preprocess**: :meth:`MediaClip.azimuthal_spectra`, i.e.
  :func:`engine.features.azimuthal_spectrum` (grey, centre third,
  ``20 ln|FFT|``, azimuthal mean, cubic resampling to 300 values, divided by
  the first; §4.1): float64 ``(M, 300)``. The trainer uses the same function.
* **model**: :class:`engine.models.freq.FreqClassifier` loaded from
  ``model.safetensors`` + ``card.json`` (SHA-256 verified, never unpickled);
  the card's ``architecture`` decides ``svm_rbf`` (RBF SVM with Platt
  probabilities) or ``deepfake_freq_mlp`` (DeepFreq MLP).
* **frame -> video**: P(fake) per crop (one per sampled frame where the face
  was found); video score = **mean** of the frame P(fake). Seed 4 classified
  single images only, so this rule is ours (the same as seed 2 §2.4 for one
  face track). Label ``"fake"`` when score > 0.5.
* **explanation**: not a 2-D map. ``DetectorResult.heatmaps`` holds **1-D
  float32 curves of length 300** (they go to the npz sidecar like any
  heatmap): ``spectrum/f<frame_index>`` (the spectrum that was classified)
  and ``class_mean/real``, ``class_mean/fake`` (mean training spectrum of
  each class, stored in the weights at fit time), so a viewer can plot a
  frame's spectrum against the two class means. ``FrameScore.heatmap_key``
  stays None because there is no map to overlay on the frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from engine.features import SPECTRUM_FEATURES, azimuthal_spectrum
from engine.models.freq import CLASSES, FreqClassifier
from engine.pipeline import DetectorResult, FrameScore, MediaClip, register_detector, resolve_device
from engine.weights import find_model_dir, load_weights

__all__ = ["FreqDetector"]


@register_detector("deepfake.freq")
class FreqDetector:
    """Seed 4's frequency-spectrum deepfake detector (SVM or MLP, chosen by the model card).

    Args:
        device: torch device for the MLP variant (``"cpu"``, ``"cuda"``,
            ``"auto"``); the SVM variant always runs in numpy on the CPU.
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("deepfake.freq")``.
        variant: ``"svm"`` or ``"mlp"`` to insist on one; a card of the other
            kind is refused. None accepts whatever the card says.

    Raises:
        engine.weights.WeightsNotFound: no weights on the search path.
        engine.weights.WeightsIntegrityError: ``model.safetensors`` does not
            match the SHA-256 in its card.
        ValueError: the card is not a frequency model, or not ``variant``.
    """

    id: ClassVar[str] = "deepfake.freq"
    task: ClassVar[str] = "deepfake"
    crop_policy: ClassVar[str] = "freq_square1p5"
    track: ClassVar[int] = 0
    threshold: ClassVar[float] = 0.5
    aggregation: ClassVar[str] = (
        "mean of per-crop P(fake) over the main face track (seed 4 classifies single images; "
        "video rule as seed 2 §2.4 for one track)"
    )

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, variant: str | None = None):
        self.device = resolve_device(device)
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        self.classifier = FreqClassifier.from_weights(state, self.card, device=self.device)
        if variant is not None and variant != self.classifier.variant:
            raise ValueError(
                f"{self.model_dir}: weights are the {self.classifier.variant!r} variant "
                f"({self.card.architecture}), but {variant!r} was requested"
            )

    # ------------------------------------------------------------------ preprocessing
    @classmethod
    def crop_spectra(cls, clip: MediaClip) -> tuple[list, np.ndarray, list[str]]:
        """``(kept (frame, crop) pairs, float64 (M, 300) spectra, skip notes)`` of the main track, cached on the clip.

        The shared ``clip.azimuthal_spectra`` when every crop works; otherwise each crop
        on its own, and a crop too small for the spectrum (< 28x28 px) is skipped with a
        note naming its frame. The native-resolution crops (hundreds of MB at 1080p) are
        not kept: the cached pairs hold :meth:`Frame.without_pixels` frames and
        :meth:`FaceCrop.without_image` crops (placement and box only).
        """
        def compute():
            crops = clip.face_crops(cls.crop_policy, cls.track, cache=False)  # native resolution: not kept
            try:
                kept, spectra, notes = crops, np.asarray(clip.azimuthal_spectra(cls.track)), []
            except ValueError:  # a crop too small for the spectrum: describe the others one by one
                kept, rows, notes = [], [], []
                for frame, crop in crops:
                    clip.check_cancel()
                    try:
                        rows.append(azimuthal_spectrum(crop.image))
                        kept.append((frame, crop))
                    except ValueError as exc:
                        notes.append(f"frame {frame.index}: {exc}")
                spectra = np.stack(rows) if rows else np.zeros((0, SPECTRUM_FEATURES))
            return [(f.without_pixels(), c.without_image()) for f, c in kept], spectra, notes

        return clip.cached(("deepfake.freq", "crop_spectra", cls.track), compute)

    #: the spectra and placements are computed before the pipeline releases the frames' pixels
    cache_frame_inputs = crop_spectra

    # ------------------------------------------------------------------ analysis
    def score_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(fake) of face crops given directly (image datasets, spec §4.4), ``float64 (N,)``.

        Args:
            crops: uint8 (h, w, 3) RGB images that already are ``freq_square1p5``-style face crops.

        Raises:
            ValueError: a crop is too small for a spectrum (names its position).
        """
        spectra = np.stack([azimuthal_spectrum(c) for c in crops]) if crops else np.zeros((0, 300))
        return self.classifier.predict_proba(spectra) if len(spectra) else np.zeros(0)

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score every main-track face crop and the video.

        Args:
            clip: the shared media clip (frames, faces, crops, spectra cached there).
            progress: ``progress(fraction)`` in [0, 1].

        Returns:
            :class:`DetectorResult`: ``score`` = mean frame P(fake);
            ``frame_scores`` one per scored crop (``box`` = the face box
            ``[x1, y1, x2, y2]`` in frame pixels the crop was cut around);
            ``heatmaps`` = 1-D float32 (300,) curves (see the module docstring).
            ``status="skipped"`` with a message when there is no video, no face
            track, or no crop large enough.
        """
        base = dict(
            detector_id=self.id,
            task=self.task,
            threshold=self.threshold,
            aggregation=self.aggregation,
            model_card_id=self.card.card_id,
            weights_sha256=self.card.sha256,
        )
        params = {
            "variant": self.classifier.variant,
            "architecture": self.card.architecture,
            "crop_policy": self.crop_policy,
            "track": self.track,
            "n_features": self.classifier.config.n_features,
            "threshold_rule": "fake if score > threshold",
            "model_dir": str(self.model_dir),
        }
        if not clip.has_video:
            return DetectorResult(**base, status="skipped", message="no video stream", parameters=params)
        if len(clip.face_tracks) <= self.track:
            return DetectorResult(
                **base, status="skipped", message="no face track in the sampled frames", parameters=params
            )
        crops, spectra, notes = self.crop_spectra(clip)
        params["n_crops_skipped"] = len(notes)
        if not len(crops):
            return DetectorResult(
                **base, status="skipped", parameters=params,
                message="no face crop large enough for the spectrum (>= 28x28 px): " + "; ".join(notes),
            )
        clip.check_cancel()
        probs = self.classifier.predict_proba(spectra)
        track_id = int(clip.face_tracks[self.track].track_id)
        frame_scores = [
            FrameScore(
                frame_index=int(frame.index),
                pts=float(frame.pts),
                score=float(p),
                track_id=track_id,
                box=[float(v) for v in crop.box.xyxy],
                heatmap_key=None,
                crop=crop.placement,
            )
            for (frame, crop), p in zip(crops, probs)
        ]
        curves = {f"spectrum/f{frame.index}": s.astype(np.float32) for (frame, _), s in zip(crops, spectra)}
        for name, mean in self.classifier.class_means.items():
            curves[f"class_mean/{name}"] = mean.astype(np.float32)
        score = float(np.mean(probs))
        params["n_crops"] = len(crops)
        if progress:
            progress(1.0)
        return DetectorResult(
            **base,
            status="ok",
            message=("skipped crops: " + "; ".join(notes)) if notes else "",
            score=score,
            label=CLASSES[1] if score > self.threshold else CLASSES[0],
            class_probs={CLASSES[0]: 1.0 - score, CLASSES[1]: score},
            frame_scores=frame_scores,
            heatmaps=curves,
            parameters=params,
        )
