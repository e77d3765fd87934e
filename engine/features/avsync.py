"""Audio/lip synchronisation with SyncNet: MFCC, per-offset distances, A/V offset (spec §5.2).

Seed 5 (TMC) computes SyncNet "latency features" for each clip: the mean
SyncNet distance between lip windows and audio windows at 31 relative offsets,
the offset with the smallest distance, and a confidence. This module is that
computation (``compute_latency`` / ``utils.calc_pdist`` of the seed, which
follow ``joonson/syncnet_python``), shared by the ``deepfake.av`` detector and
the trainer.

Sign convention of :attr:`SyncResult.offset` (the seed's and syncnet_python's
``offset = vshift - argmin(mdist)``), in video frames of 40 ms:

* ``dists[i, j]`` compares lip window ``i`` (video frames ``[i, i+5)``) with the
  audio window of video frame ``i + j - vshift`` (MFCC columns
  ``[4(i+j-vshift), 4(i+j-vshift)+20)``).
* If the audio is **delayed** by ``d`` frames (the sound of lip frame ``i`` is
  heard at frame ``i + d``; audio lags video), the minimum is at ``j = vshift + d``
  and ``offset = -d``: **negative offset = audio lags the video**, positive
  offset = audio leads (comes early). Delaying a clip's audio by +200 ms
  (prepending 0.2 s of silence) gives ``offset ≈ -5``; advancing it by 200 ms
  gives ``offset ≈ +5``. In-sync footage gives ``offset ≈ 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: Sample rate of the MFCC input (Hz), MFCC columns per second, and per 25 fps video frame.
MFCC_SR = 16000
MFCC_RATE = 100
MFCC_PER_FRAME = 4
#: Video rate SyncNet expects (frames/s); one offset step is 1/VIDEO_FPS = 40 ms.
VIDEO_FPS = 25.0
#: Offsets searched on each side (seed 5 ``calc_pdist(vshift=15)``).
VSHIFT = 15
#: Length of :func:`latency_vector`: 31 distances + offset + confidence.
LATENCY_DIM = 2 * VSHIFT + 3


def mfcc_16k(waveform: np.ndarray) -> np.ndarray:
    """MFCC of 16 kHz mono audio with ``python_speech_features.mfcc`` defaults (spec §5.2).

    Window 25 ms (rectangular), step 10 ms (100 columns/s, i.e. 4 per 40 ms video
    frame), 13 cepstra, 26 mel filters, NFFT 512, pre-emphasis 0.97, lifter 22,
    c0 replaced by the log frame energy (``appendEnergy``).

    Args:
        waveform: float32 ``(n,)`` mono samples in [-1, 1] at 16,000 Hz (the seed
            feeds moviepy/librosa float samples, not int16).

    Returns:
        float32 ``(13, T)``, ``T = 1 + ceil((n - 400) / 160)`` columns (the last frame zero-padded;
        0 columns for fewer than 400 samples, i.e. 25 ms).

    Raises:
        ValueError: ``waveform`` is not 1-D.
    """
    from python_speech_features import mfcc

    wave = np.asarray(waveform, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"mfcc_16k expects mono (n,) audio, got shape {wave.shape}")
    if wave.size < 400:
        return np.zeros((13, 0), np.float32)
    return np.ascontiguousarray(mfcc(wave, MFCC_SR).T.astype(np.float32))


def lip_frames(faces_rgb: np.ndarray, lip_size: int, region: str = "face") -> np.ndarray:
    """Face crops → SyncNet lip input: region cut, BGR, resized, raw 0–255 floats, channels first.

    Args:
        faces_rgb: uint8 ``(N, S0, S0, 3)`` RGB face crops at 25 fps
            (``MediaClip.dense_face_crops()``, ``tmc_shifted1p4_224``).
        lip_size: output side ``S`` in pixels (``SyncNetConfig.lip_size``).
        region: ``"face"`` (whole crop, spec §5.2) or ``"mouth"``
            (``engine.models.syncnet.MOUTH_BOX``), ``SyncNetConfig.region``.

    Returns:
        float32 ``(3, N, S, S)`` BGR values in [0, 255] (the seed's fp16 raw BGR, in fp32).
    """
    import cv2

    from engine.models.syncnet import MOUTH_REGIONS

    faces = np.asarray(faces_rgb)
    n, h, w = faces.shape[:3]
    y0, y1, x0, x1 = MOUTH_REGIONS[region]
    faces = faces[:, int(round(y0 * h)) : int(round(y1 * h)), int(round(x0 * w)) : int(round(x1 * w))]
    out = np.empty((n, lip_size, lip_size, 3), np.uint8)
    for i in range(n):
        img = faces[i]
        out[i] = img if img.shape[0] == lip_size and img.shape[1] == lip_size else cv2.resize(
            img, (lip_size, lip_size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out[..., ::-1].transpose(3, 0, 1, 2)).astype(np.float32)


@dataclass(frozen=True)
class SyncResult:
    """SyncNet A/V offset measurement of one clip (spec §5.2).

    Attributes:
        mdist: float32 ``(31,)`` mean L2 distance over lip windows at offsets -15 … +15
            (index ``j`` ↔ audio shifted by ``j - 15`` frames, see module docstring).
        offset: ``15 - argmin(mdist)``, video frames (40 ms); negative = audio lags video.
        conf: ``median(mdist) - min(mdist)`` (SyncNet confidence; larger = clearer sync).
        dists: float32 ``(N, 31)`` per-window distances (N = lip windows used).
    """

    mdist: np.ndarray
    offset: int
    conf: float
    dists: np.ndarray

    @property
    def offset_s(self) -> float:
        """:attr:`offset` in seconds (positive = audio leads the video)."""
        return self.offset / VIDEO_FPS


def calc_pdist(lip_emb: np.ndarray, aud_emb: np.ndarray, vshift: int = VSHIFT) -> np.ndarray:
    """Seed 5 ``calc_pdist``: L2 distance of each lip embedding to audio embeddings at ±vshift.

    The audio embeddings are zero-padded by ``vshift`` rows on both sides, so
    ``out[i, j] = ||lip[i] - aud[i + j - vshift] + 1e-6||`` (``torch.pairwise_distance``
    eps), with a zero vector outside the clip.

    Args:
        lip_emb, aud_emb: float ``(N, D)`` embeddings of the same N windows.

    Returns:
        float32 ``(N, 2*vshift+1)``.
    """
    import torch

    lip = torch.as_tensor(lip_emb, dtype=torch.float32)
    aud = torch.nn.functional.pad(torch.as_tensor(aud_emb, dtype=torch.float32), (0, 0, vshift, vshift))
    win = 2 * vshift + 1
    idx = torch.arange(lip.shape[0])[:, None] + torch.arange(win)[None, :]  # (N, win)
    diff = lip[:, None, :] - aud[idx] + 1e-6
    return diff.norm(dim=-1).numpy().astype(np.float32)


def sync_offsets(model, faces_rgb: np.ndarray, mfcc: np.ndarray, vshift: int = VSHIFT, batch_size: int = 8,
                 cancel: Callable[[], bool] | None = None) -> SyncResult:
    """Measure the audio/lip offset of a clip with SyncNet (seed 5 ``compute_latency``, spec §5.2).

    Lip windows ``v = 0 … N-6`` (frames ``[v, v+5)``; the seed stops at ``len - 5``
    exclusive) are paired with MFCC columns ``[4v, 4v+20)``; windows whose audio
    would run past the end of the MFCC are dropped. Embeddings are computed in
    batches of ``batch_size`` windows, then :func:`calc_pdist` and the aggregates.

    Args:
        model: :class:`engine.models.syncnet.SyncNet` (eval mode is set here).
        faces_rgb: uint8 ``(N, S0, S0, 3)`` RGB face crops at 25 fps, frame 0 at the
            time of MFCC column 0; cut to ``cfg.region``, converted to BGR and resized to
            ``cfg.lip_size`` inside (:func:`lip_frames`).
        mfcc: float32 ``(13, T)`` from :func:`mfcc_16k` (100 columns/s).
        vshift: offsets searched each side (seed 15).
        batch_size: windows per forward pass (seed 8).
        cancel: polled between batches; when it returns True the measurement stops.

    Returns:
        :class:`SyncResult`.

    Raises:
        ValueError: fewer than 6 frames or too little audio for one window.
        engine.pipeline.AnalysisCancelled: ``cancel()`` returned True.
    """
    import torch

    n_frames = int(faces_rgb.shape[0])
    n_cols = int(mfcc.shape[1])
    n_win = min(n_frames - 5, (n_cols - 20) // MFCC_PER_FRAME + 1)
    if n_win < 1:
        raise ValueError(f"sync_offsets needs >= 6 frames and >= 0.2 s of audio (got {n_frames} frames, "
                         f"{n_cols} MFCC columns)")
    model.eval()
    param = next(model.parameters())
    lips = torch.from_numpy(lip_frames(faces_rgb[: n_win + 4], model.cfg.lip_size, model.cfg.region))  # (3, n_win+4, S, S)
    cc = torch.from_numpy(np.ascontiguousarray(mfcc, dtype=np.float32))
    lip_out, aud_out = [], []
    with torch.inference_mode():
        for start in range(0, n_win, batch_size):
            if cancel is not None and cancel():
                from engine.pipeline import AnalysisCancelled

                raise AnalysisCancelled("SyncNet offset measurement cancelled")
            stop = min(n_win, start + batch_size)
            im = torch.stack([lips[:, v : v + 5] for v in range(start, stop)]).to(param.device, param.dtype)
            au = torch.stack([cc[None, :, 4 * v : 4 * v + 20] for v in range(start, stop)]).to(param.device, param.dtype)
            lip_out.append(model.forward_lip(im).float().cpu())
            aud_out.append(model.forward_aud(au).float().cpu())
    dists = calc_pdist(torch.cat(lip_out).numpy(), torch.cat(aud_out).numpy(), vshift)
    mdist = dists.mean(axis=0).astype(np.float32)
    offset = int(vshift - int(np.argmin(mdist)))
    conf = float(np.median(mdist) - np.min(mdist))
    return SyncResult(mdist=mdist, offset=offset, conf=conf, dists=dists)


def shift_audio(wave: np.ndarray, delay_s: float, sr: int = 16000) -> np.ndarray:
    """Delay (``delay_s > 0``: prepend silence) or advance (``< 0``: drop the start) a waveform, same length.

    Used to test offset measurement (a delay of ``+d`` frames × 40 ms gives ``offset ≈ -d``).

    Args:
        wave: float32 ``(n,)``. delay_s: seconds. sr: Hz.

    Returns:
        float32 ``(n,)`` (a new array; the input is never modified).
    """
    k = int(round(abs(delay_s) * sr))
    n = wave.shape[0]
    if k == 0:
        return wave.copy()
    if delay_s > 0:
        return np.concatenate([np.zeros(min(k, n), np.float32), wave[: max(0, n - k)]]).astype(np.float32)
    return np.concatenate([wave[k:], np.zeros(min(k, n), np.float32)]).astype(np.float32)


def latency_vector(result: SyncResult | None) -> np.ndarray:
    """Seed 5's 33-value latency input ``[mdist(31), offset, conf]`` (spec §5.2, §5.5).

    Args:
        result: a :class:`SyncResult` with 31 offsets, or None (no audio, no face, error).

    Returns:
        float32 ``(33,)``; ``zeros(33)`` when ``result`` is None (the seed's fallback).
    """
    if result is None:
        return np.zeros(LATENCY_DIM, np.float32)
    return np.concatenate([np.asarray(result.mdist, np.float32).reshape(-1),
                           np.array([result.offset, result.conf], np.float32)]).astype(np.float32)


def load_syncnet(model_dir: str | Path | None = None, device: str = "cpu"):
    """Load SyncNet weights (safetensors, SHA-256 checked) and rebuild the model in eval mode.

    Args:
        model_dir: folder with ``card.json`` + ``model.safetensors``; default
            ``engine.weights.find_model_dir("syncnet")`` (bundled ``resources/models/syncnet``).
        device: torch device.

    Returns:
        ``(SyncNet, ModelCard)``; weights stored as float16 are cast back to float32.

    Raises:
        engine.weights.WeightsNotFound, WeightsIntegrityError: missing or altered weights.
    """
    import torch

    from engine.models._registry import create_model
    from engine.weights import find_model_dir, load_weights

    model_dir = Path(model_dir) if model_dir is not None else find_model_dir("syncnet")
    state, card = load_weights(model_dir, device="cpu")
    model = create_model(card.architecture, card.config)
    model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    model.to(torch.device(device)).eval()
    return model, card


def aligned_audio(clip, sr: int, n_frames: int, fps: float = VIDEO_FPS) -> np.ndarray:
    """Mono audio of a :class:`engine.pipeline.MediaClip` at ``sr`` Hz with sample 0 at video time 0.

    The offset between the audio stream's start and the first video frame
    (``clip.reader.origin_s - track.start_s``, seconds) is removed by cutting or
    zero-padding, then the wave is cut to ``n_frames / fps`` seconds (the dense
    face clip of seed 5 §5.1). One function for ``deepfake.av`` and ``trainer.av_cache``.

    Returns:
        float32 ``(n,)``; empty when the clip has no audio.
    """
    track = clip.audio(sr)
    if not track.has_audio:
        return np.zeros(0, np.float32)
    wave = np.asarray(track.waveform, np.float32)
    lead = int(round((clip.reader.origin_s - track.start_s) * sr))
    if lead > 0:
        wave = wave[lead:]
    elif lead < 0:
        wave = np.concatenate([np.zeros(-lead, np.float32), wave])
    return np.ascontiguousarray(wave[: int(round(n_frames / fps * sr))], dtype=np.float32)
