"""Simulated camera devices: a VISION-like training set made from real footage.

No device-labelled real video is available offline, so the bundled *demo*
camera-model weights (seed 1, ``spec/seeds.md`` §1) are trained on a
**simulated-device** dataset: each :class:`SimDevice` is one fixed acquisition
chain (microphone, noise floor, AGC, audio codec; sensor PRNU/FPN, Bayer CFA +
demosaicing, sharpening, scaling, H.264 settings) applied to real source
recordings. Every recording is rendered through every device, so the classes
are balanced and the scene content is identical across classes: a classifier
can only succeed by learning the device.

Audio chain (:func:`simulate_audio`), on float32 waveforms in [-1, 1]:

1. decode and resample to the device rate (libswresample, :func:`engine.media.load_audio`);
2. channel mapping (mono mix, or the source's stereo pair / a duplicated mono);
3. microphone response: 2nd-order Butterworth high-pass, RBJ peaking biquads,
   4th-order Butterworth low-pass (one ``scipy.signal`` SOS cascade, :func:`mic_sos`);
4. self-noise floor at ``noise_floor_dbfs`` RMS with a fixed per-device spectral
   shape (tilt + smooth bumps from ``noise_seed``, :func:`noise_spectrum`) and
   optional mains hum; the realisation comes from the clip seed;
5. automatic gain control: 10 ms RMS blocks, gain towards ``agc_target_dbfs``
   limited to ``[-agc_max_cut_db, agc_max_gain_db]``, one-pole attack/release
   smoothing, then a hard clip to [-1, 1];
6. encode with the device codec (AAC / MP3 / Opus / 16-bit PCM) and bitrate.

Video chain (:func:`simulate_frame`), per output frame:

1. the source frame on screen at each output time (device frame rate);
2. scale to cover the device resolution (fixed interpolation) and centre-crop;
3. sRGB -> linear light; Bayer mosaic (device CFA);
4. sensor: ``raw * (1 + K) + D`` with the device's multiplicative PRNU pattern
   ``K`` and additive dark-signal FPN ``D`` (pixel + column), both generated at
   the output resolution from ``prnu_seed`` (:func:`sensor_patterns`), plus
   temporal shot/read noise from the clip seed;
6. 16-bit quantisation, OpenCV demosaicing (bilinear or edge-aware), linear -> sRGB;
7. unsharp mask, saturating to uint8; libx264 with the device crf/preset/profile/GOP.

Rendering is deterministic given the seed (fixed x264 thread count, no
wall-clock metadata): the same call writes byte-identical files.

The dataset tree (:func:`build_simulated_vision`) follows the VISION layout
read by :func:`trainer.datasets.vision.vision` through its ``dataset.json``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import av
import cv2
import numpy as np
from scipy import signal

from engine.io import atomic_path, atomic_write_bytes, atomic_write_json
from engine.media import EvidenceError, TimeRange, VideoReader, load_audio, sha256_file

__all__ = [
    "AUDIO_CODECS",
    "DEMO_DEVICES",
    "DecodedSegment",
    "SimDevice",
    "build_simulated_vision",
    "decode_segment",
    "expand_sources",
    "main_simulate",
    "mic_sos",
    "noise_spectrum",
    "plan_segments",
    "render_clip",
    "render_decoded",
    "sensor_patterns",
    "simulate_audio",
    "simulate_frame",
    "source_span",
]

#: Device audio codec name -> FFmpeg encoder.
AUDIO_CODECS = {"aac": "aac", "mp3": "libmp3lame", "opus": "libopus", "pcm": "pcm_s16le"}
#: Containers a device may write (``pcm`` needs ``mov``; ``3gp`` takes AAC only).
CONTAINERS = ("mp4", "mov", "3gp")
#: OpenCV Bayer conversion codes for each CFA layout (top-left 2x2, row-major), checked by the tests.
_BAYER_CODES = {"RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
                "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB}
_BAYER_EA = {"RGGB": cv2.COLOR_BayerBG2RGB_EA, "BGGR": cv2.COLOR_BayerRG2RGB_EA,
             "GRBG": cv2.COLOR_BayerGB2RGB_EA, "GBRG": cv2.COLOR_BayerGR2RGB_EA}
DEMOSAIC = ("bilinear", "edge_aware")
_INTERP = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC,
           "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}
#: x264 threads: fixed so that renders are byte-identical whatever the machine.
X264_THREADS = 2
#: Sources may fall short of a requested segment by this much (seconds); the gap is padded.
END_TOLERANCE_S = 0.05
#: Audio decoded before the segment start (seconds, when available) to settle filters and AGC.
PREROLL_S = 0.5
#: Suffix of the temporary files videos are encoded into before ``os.replace``.
TEMP_SUFFIX = ".part"
#: Media file suffixes looked for when a source argument is a folder.
SOURCE_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".ts", ".mpg",
                   ".mpeg", ".3gp", ".flv", ".wmv"}


# =========================================================================== device
@dataclass(frozen=True)
class SimDevice:
    """One simulated acquisition chain (a "camera model").

    Audio attributes:
        audio_rate: output sample rate, Hz.
        audio_channels: 1 or 2.
        audio_codec: ``'aac'``, ``'mp3'``, ``'opus'`` (48 kHz only) or ``'pcm'`` (``mov`` only).
        audio_bitrate: bit/s (ignored for PCM).
        mic_highpass_hz: 2nd-order Butterworth high-pass corner, Hz.
        mic_peaks: ``((centre Hz, gain dB, Q), ...)`` RBJ peaking-EQ resonances.
        mic_lowpass_hz: 4th-order Butterworth low-pass corner, Hz (below Nyquist).
        noise_floor_dbfs: RMS of the self-noise, dBFS (full scale = 1.0).
        noise_tilt_db_per_oct: slope of the noise spectrum, dB/octave (around 1 kHz).
        noise_seed: seed of the fixed smooth bumps of the noise spectrum.
        hum_hz: mains hum fundamental (50/60 Hz), 0 for none; hum_dbfs its RMS level.
        agc_target_dbfs: block RMS level the AGC steers to, dBFS.
        agc_attack_s / agc_release_s: time constants of gain decrease / increase, s.
        agc_max_gain_db / agc_max_cut_db: gain limits, dB.

    Video attributes:
        width, height: output resolution, pixels (even).
        fps: frame rate as a fraction string, e.g. ``'30000/1001'``.
        interpolation: resize kernel: nearest, linear, cubic, area, lanczos.
        cfa: Bayer layout of the top-left 2x2: RGGB, BGGR, GRBG or GBRG.
        demosaic: ``'bilinear'`` or ``'edge_aware'`` (OpenCV).
        prnu_seed: seed of the PRNU and dark-FPN patterns.
        prnu_strength: standard deviation of the multiplicative PRNU ``K`` (fraction).
        dark_fpn: standard deviation of the additive per-pixel dark signal (fraction of full scale).
        dark_column_fpn: standard deviation of the per-column dark offsets (fraction of full scale).
        full_well: electrons at full scale (shot noise: var = signal / full_well).
        read_noise: temporal read noise standard deviation (fraction of full scale).
        sharpen_amount: unsharp-mask amount (0 = none); sharpen_radius: its Gaussian sigma, px.
        crf, preset, profile: libx264 settings; gop: keyframe interval (frames);
        bframes: consecutive B-frames (0 for baseline).
        container: ``'mp4'``, ``'mov'`` or ``'3gp'``.

    Raises:
        ValueError: an inconsistent combination (PCM outside mov, Opus not at
            48 kHz, low-pass above Nyquist, odd size, unknown CFA/codec/...).
    """

    device_id: str
    name: str
    # ---- audio
    audio_rate: int = 48000
    audio_channels: int = 1
    audio_codec: str = "aac"
    audio_bitrate: int = 128000
    mic_highpass_hz: float = 80.0
    mic_peaks: tuple[tuple[float, float, float], ...] = ()
    mic_lowpass_hz: float = 16000.0
    noise_floor_dbfs: float = -70.0
    noise_tilt_db_per_oct: float = -3.0
    noise_seed: int = 0
    hum_hz: float = 0.0
    hum_dbfs: float = -80.0
    agc_target_dbfs: float = -20.0
    agc_attack_s: float = 0.01
    agc_release_s: float = 0.5
    agc_max_gain_db: float = 20.0
    agc_max_cut_db: float = 20.0
    # ---- video
    width: int = 1280
    height: int = 720
    fps: str = "30"
    interpolation: str = "linear"
    cfa: str = "RGGB"
    demosaic: str = "bilinear"
    prnu_seed: int = 0
    prnu_strength: float = 0.02
    dark_fpn: float = 0.002
    dark_column_fpn: float = 0.001
    full_well: float = 6000.0
    read_noise: float = 0.002
    sharpen_amount: float = 0.5
    sharpen_radius: float = 1.0
    crf: int = 23
    preset: str = "veryfast"
    profile: str = "main"
    gop: int = 30
    bframes: int = 0
    container: str = "mp4"

    def __post_init__(self) -> None:
        problems = []
        if not (self.device_id[:1] == "D" and self.device_id[1:].isdigit()):
            problems.append(f"device_id must look like 'D01', got {self.device_id!r}")
        if not self.name.isalnum():
            problems.append(f"name must be letters/digits only (it goes into folder names), got {self.name!r}")
        if self.audio_codec not in AUDIO_CODECS:
            problems.append(f"audio_codec must be one of {sorted(AUDIO_CODECS)}, got {self.audio_codec!r}")
        if self.container not in CONTAINERS:
            problems.append(f"container must be one of {CONTAINERS}, got {self.container!r}")
        if self.audio_codec == "pcm" and self.container != "mov":
            problems.append("PCM audio needs the 'mov' container")
        if self.container == "3gp" and self.audio_codec != "aac":
            problems.append("the 3gp container takes AAC audio only here")
        if self.audio_codec == "opus" and self.audio_rate != 48000:
            problems.append("Opus decodes at 48 kHz: use audio_rate=48000")
        if self.audio_channels not in (1, 2):
            problems.append(f"audio_channels must be 1 or 2, got {self.audio_channels}")
        if not 0 < self.mic_highpass_hz < self.mic_lowpass_hz < 0.5 * self.audio_rate:
            problems.append("need 0 < mic_highpass_hz < mic_lowpass_hz < audio_rate / 2")
        for f0, _g, q in self.mic_peaks:
            if not (0 < f0 < 0.5 * self.audio_rate and q > 0):
                problems.append(f"peak ({f0} Hz, Q {q}) outside (0, Nyquist) or Q <= 0")
        if self.width % 2 or self.height % 2 or self.width <= 0 or self.height <= 0:
            problems.append(f"width and height must be positive and even, got {self.width}x{self.height}")
        if self.cfa not in _BAYER_CODES:
            problems.append(f"cfa must be one of {sorted(_BAYER_CODES)}, got {self.cfa!r}")
        if self.demosaic not in DEMOSAIC:
            problems.append(f"demosaic must be one of {DEMOSAIC}, got {self.demosaic!r}")
        if self.interpolation not in _INTERP:
            problems.append(f"interpolation must be one of {sorted(_INTERP)}, got {self.interpolation!r}")
        try:
            if self.frame_rate <= 0:
                raise ValueError
        except (ValueError, ZeroDivisionError):
            problems.append(f"fps must be a positive fraction string like '30000/1001', got {self.fps!r}")
        if problems:
            raise ValueError(f"SimDevice {self.device_id}: " + "; ".join(problems))

    @property
    def frame_rate(self) -> Fraction:
        """Frame rate in frames per second, exact."""
        return Fraction(self.fps)

    @property
    def folder(self) -> str:
        """Device folder name in the VISION-like tree, e.g. ``'D01_Sim_AuroraX1'``."""
        return f"{self.device_id}_Sim_{self.name}"

    @property
    def suffix(self) -> str:
        """File suffix of the device's videos, e.g. ``'.mp4'``."""
        return f".{self.container}"


#: Eight demo devices: phones, a tablet, an action camera and a compact camera,
#: each a clearly different but realistic chain.
DEMO_DEVICES: tuple[SimDevice, ...] = (
    SimDevice("D01", "AuroraX1", audio_rate=48000, audio_channels=2, audio_codec="aac", audio_bitrate=128000,
              mic_highpass_hz=90, mic_peaks=((2800, 4.0, 2.0), (9000, -3.0, 1.5)), mic_lowpass_hz=16000,
              noise_floor_dbfs=-72, noise_tilt_db_per_oct=-3.0, noise_seed=101,
              agc_target_dbfs=-20, agc_attack_s=0.01, agc_release_s=0.6, agc_max_gain_db=18,
              width=1280, height=720, fps="30", interpolation="linear", cfa="RGGB", demosaic="bilinear",
              prnu_seed=1001, prnu_strength=0.02, dark_fpn=0.0015, dark_column_fpn=0.0008, full_well=8000,
              read_noise=0.0015, sharpen_amount=0.6, sharpen_radius=1.0, crf=21, preset="superfast",
              profile="high", gop=30, bframes=2),
    SimDevice("D02", "BorealNote5", audio_rate=44100, audio_channels=1, audio_codec="aac", audio_bitrate=96000,
              mic_highpass_hz=180, mic_peaks=((1200, -3.0, 1.0), (6500, 6.0, 3.0)), mic_lowpass_hz=11000,
              noise_floor_dbfs=-64, noise_tilt_db_per_oct=-1.5, noise_seed=202,
              agc_target_dbfs=-18, agc_attack_s=0.005, agc_release_s=1.0, agc_max_gain_db=24,
              width=960, height=540, fps="30", interpolation="area", cfa="BGGR", demosaic="edge_aware",
              prnu_seed=2002, prnu_strength=0.03, dark_fpn=0.003, dark_column_fpn=0.002, full_well=4000,
              read_noise=0.003, sharpen_amount=1.2, sharpen_radius=0.8, crf=24, preset="veryfast",
              profile="main", gop=30, bframes=0),
    SimDevice("D03", "CirrusS8", audio_rate=44100, audio_channels=2, audio_codec="mp3", audio_bitrate=160000,
              mic_highpass_hz=60, mic_peaks=((4500, 5.0, 4.0),), mic_lowpass_hz=17000,
              noise_floor_dbfs=-78, noise_tilt_db_per_oct=-4.5, noise_seed=303,
              agc_target_dbfs=-23, agc_attack_s=0.02, agc_release_s=0.3, agc_max_gain_db=12,
              width=1280, height=720, fps="30000/1001", interpolation="cubic", cfa="GRBG", demosaic="bilinear",
              prnu_seed=3003, prnu_strength=0.015, dark_fpn=0.001, dark_column_fpn=0.0005, full_well=10000,
              read_noise=0.001, sharpen_amount=0.3, sharpen_radius=1.5, crf=19, preset="superfast",
              profile="high", gop=15, bframes=1),
    SimDevice("D04", "DeltaTab10", audio_rate=48000, audio_channels=1, audio_codec="opus", audio_bitrate=64000,
              mic_highpass_hz=120, mic_peaks=((3500, 3.0, 1.2), (900, 2.0, 2.0)), mic_lowpass_hz=8000,
              noise_floor_dbfs=-60, noise_tilt_db_per_oct=0.0, noise_seed=404, hum_hz=50, hum_dbfs=-66,
              agc_target_dbfs=-16, agc_attack_s=0.02, agc_release_s=0.8, agc_max_gain_db=30,
              width=854, height=480, fps="25", interpolation="linear", cfa="GBRG", demosaic="bilinear",
              prnu_seed=4004, prnu_strength=0.035, dark_fpn=0.004, dark_column_fpn=0.003, full_well=3000,
              read_noise=0.004, sharpen_amount=0.8, sharpen_radius=1.2, crf=26, preset="ultrafast",
              profile="main", gop=50, bframes=0),
    SimDevice("D05", "EchoCam700", audio_rate=48000, audio_channels=2, audio_codec="pcm", audio_bitrate=0,
              mic_highpass_hz=40, mic_peaks=((8000, 2.0, 0.8),), mic_lowpass_hz=20000,
              noise_floor_dbfs=-84, noise_tilt_db_per_oct=-6.0, noise_seed=505,
              agc_target_dbfs=-24, agc_attack_s=0.05, agc_release_s=2.0, agc_max_gain_db=6, agc_max_cut_db=12,
              width=1024, height=576, fps="25", interpolation="lanczos", cfa="RGGB", demosaic="edge_aware",
              prnu_seed=5005, prnu_strength=0.012, dark_fpn=0.0008, dark_column_fpn=0.0003, full_well=15000,
              read_noise=0.0008, sharpen_amount=0.2, sharpen_radius=2.0, crf=18, preset="veryfast",
              profile="high", gop=12, bframes=2, container="mov"),
    SimDevice("D06", "FalconLite", audio_rate=16000, audio_channels=1, audio_codec="aac", audio_bitrate=32000,
              mic_highpass_hz=250, mic_peaks=((2000, 6.0, 1.5),), mic_lowpass_hz=7000,
              noise_floor_dbfs=-54, noise_tilt_db_per_oct=1.5, noise_seed=606, hum_hz=60, hum_dbfs=-62,
              agc_target_dbfs=-15, agc_attack_s=0.003, agc_release_s=0.2, agc_max_gain_db=30,
              width=640, height=480, fps="30", interpolation="nearest", cfa="BGGR", demosaic="bilinear",
              prnu_seed=6006, prnu_strength=0.04, dark_fpn=0.005, dark_column_fpn=0.004, full_well=2500,
              read_noise=0.005, sharpen_amount=1.5, sharpen_radius=0.7, crf=28, preset="ultrafast",
              profile="baseline", gop=30, bframes=0, container="3gp"),
    SimDevice("D07", "GlacierPro", audio_rate=32000, audio_channels=1, audio_codec="aac", audio_bitrate=64000,
              mic_highpass_hz=150, mic_peaks=((5000, -4.0, 2.0), (1800, 3.0, 2.5)), mic_lowpass_hz=12000,
              noise_floor_dbfs=-70, noise_tilt_db_per_oct=-2.0, noise_seed=707,
              agc_target_dbfs=-21, agc_attack_s=0.015, agc_release_s=0.4, agc_max_gain_db=20,
              width=960, height=540, fps="30000/1001", interpolation="cubic", cfa="GRBG", demosaic="edge_aware",
              prnu_seed=7007, prnu_strength=0.025, dark_fpn=0.002, dark_column_fpn=0.001, full_well=6000,
              read_noise=0.002, sharpen_amount=0.9, sharpen_radius=1.0, crf=22, preset="superfast",
              profile="high", gop=60, bframes=2),
    SimDevice("D08", "HaloMini", audio_rate=22050, audio_channels=1, audio_codec="mp3", audio_bitrate=48000,
              mic_highpass_hz=200, mic_peaks=((3000, 4.5, 3.5), (700, -2.5, 1.0)), mic_lowpass_hz=9500,
              noise_floor_dbfs=-62, noise_tilt_db_per_oct=-0.5, noise_seed=808,
              agc_target_dbfs=-17, agc_attack_s=0.008, agc_release_s=0.5, agc_max_gain_db=26,
              width=640, height=360, fps="24", interpolation="area", cfa="GBRG", demosaic="edge_aware",
              prnu_seed=8008, prnu_strength=0.03, dark_fpn=0.003, dark_column_fpn=0.0015, full_well=3500,
              read_noise=0.003, sharpen_amount=1.0, sharpen_radius=1.5, crf=25, preset="veryfast",
              profile="main", gop=24, bframes=0),
)


# =========================================================================== audio
def _peaking_sos(f0: float, gain_db: float, q: float, fs: float) -> np.ndarray:
    """RBJ cookbook peaking-EQ biquad as one SOS row ``(1, 6)``."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / fs
    alpha = math.sin(w0) / (2.0 * q)
    b = np.array([1 + alpha * a, -2 * math.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * math.cos(w0), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def mic_sos(device: SimDevice) -> np.ndarray:
    """Microphone frequency response as a ``scipy.signal`` SOS cascade at the device rate.

    Returns:
        float64 ``(n_sections, 6)``: high-pass (Butterworth, order 2), the peaking
        biquads of ``mic_peaks``, low-pass (Butterworth, order 4).
    """
    fs = float(device.audio_rate)
    parts = [signal.butter(2, device.mic_highpass_hz, "highpass", fs=fs, output="sos")]
    parts += [_peaking_sos(f0, g, q, fs) for f0, g, q in device.mic_peaks]
    parts.append(signal.butter(4, device.mic_lowpass_hz, "lowpass", fs=fs, output="sos"))
    return np.concatenate(parts, axis=0)


def noise_spectrum(device: SimDevice, n_fft: int) -> np.ndarray:
    """Fixed amplitude shape of the device's self-noise on an rfft grid.

    ``|N(f)| = 10^((tilt * log2(f / 1 kHz) + bumps(f)) / 20)``, bumps = 4 Gaussian
    bumps (±4 dB, 0.3–1.2 octave wide) in log-frequency drawn from ``noise_seed``;
    flat below 50 Hz; then the device mic response. Normalised to unit RMS over the bins.

    Args:
        n_fft: FFT length (samples); the grid has ``n_fft // 2 + 1`` bins up to ``audio_rate / 2``.

    Returns:
        float64 ``(n_fft // 2 + 1,)``.
    """
    fs = device.audio_rate
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    octv = np.log2(np.maximum(f, 50.0) / 1000.0)
    rng = np.random.default_rng(device.noise_seed)
    db = device.noise_tilt_db_per_oct * octv
    centres = rng.uniform(np.log2(200 / 1000), np.log2(0.45 * fs / 1000), 4)
    widths = rng.uniform(0.3, 1.2, 4)
    gains = rng.uniform(-4.0, 4.0, 4)
    for c, w, g in zip(centres, widths, gains):
        db = db + g * np.exp(-0.5 * ((octv - c) / w) ** 2)
    _, h = signal.sosfreqz(mic_sos(device), worN=f, fs=fs)
    mag = 10.0 ** (db / 20.0) * np.abs(h)
    mag[0] = 0.0
    return mag / max(float(np.sqrt(np.mean(mag ** 2))), 1e-12)


def _coloured_noise(device: SimDevice, channels: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """float64 ``(channels, n)`` self-noise at ``noise_floor_dbfs`` RMS with the device spectrum."""
    n_fft = max(2, n + (n % 2))
    mag = noise_spectrum(device, n_fft)
    white = rng.standard_normal((channels, n_fft))
    coloured = np.fft.irfft(np.fft.rfft(white, axis=1) * mag, n=n_fft, axis=1)[:, :n]
    rms = np.sqrt(np.mean(coloured ** 2, axis=1, keepdims=True)) + 1e-12
    return coloured / rms * 10.0 ** (device.noise_floor_dbfs / 20.0)


def _agc(x: np.ndarray, device: SimDevice) -> np.ndarray:
    """Feed-forward AGC on ``(C, N)`` float64 (channels linked), block-wise with attack/release smoothing."""
    fs = device.audio_rate
    block = max(1, int(round(0.010 * fs)))
    n = x.shape[1]
    nb = max(1, -(-n // block))
    pad = np.zeros((x.shape[0], nb * block))
    pad[:, :n] = x
    power = np.mean(pad.reshape(x.shape[0], nb, block) ** 2, axis=(0, 2))
    level_db = 10.0 * np.log10(power + 1e-12)
    desired = np.clip(device.agc_target_dbfs - level_db, -device.agc_max_cut_db, device.agc_max_gain_db)
    dt = block / fs
    ka = 1.0 - math.exp(-dt / max(device.agc_attack_s, 1e-6))
    kr = 1.0 - math.exp(-dt / max(device.agc_release_s, 1e-6))
    gain = np.empty(nb)
    g = float(desired[0])
    for i, d in enumerate(desired):
        g += (ka if d < g else kr) * (d - g)
        gain[i] = g
    centres = (np.arange(nb) + 0.5) * block
    per_sample = np.interp(np.arange(n), centres, gain)
    return x * 10.0 ** (per_sample / 20.0)


def simulate_audio(
    wave: np.ndarray, device: SimDevice, rng: np.random.Generator, preroll: int = 0
) -> np.ndarray:
    """Apply the device microphone, noise floor and AGC to a waveform at the device rate.

    Args:
        wave: float32 ``(N,)`` or ``(C, N)`` in [-1, 1], already at ``device.audio_rate`` Hz.
        device: the chain.
        rng: source of the noise realisation.
        preroll: leading samples used only to settle the filters and the AGC, dropped from the output.

    Returns:
        float32 ``(device.audio_channels, N - preroll)`` in [-1, 1].
    """
    x = np.atleast_2d(np.asarray(wave, dtype=np.float64))
    if device.audio_channels == 1:
        x = x.mean(axis=0, keepdims=True)
    elif x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    else:
        x = x[:2]
    x = signal.sosfilt(mic_sos(device), x, axis=1)
    n = x.shape[1]
    x = x + _coloured_noise(device, x.shape[0], n, rng)
    if device.hum_hz > 0:
        t = np.arange(n) / device.audio_rate
        phase = rng.uniform(0, 2 * np.pi, 2)
        hum = np.sin(2 * np.pi * device.hum_hz * t + phase[0]) + 0.5 * np.sin(2 * np.pi * 3 * device.hum_hz * t + phase[1])
        hum *= 10.0 ** (device.hum_dbfs / 20.0) / np.sqrt(np.mean(hum ** 2))
        x = x + hum[None, :]
    x = _agc(x, device)
    return np.clip(x[:, preroll:], -1.0, 1.0).astype(np.float32)


# =========================================================================== video
def _srgb_luts() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 sRGB -> float32 linear (256,), uint16 linear -> uint8 sRGB (65536,)) lookup tables."""
    v = np.arange(256) / 255.0
    to_lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)
    u = np.arange(65536) / 65535.0
    enc = np.where(u <= 0.0031308, 12.92 * u, 1.055 * np.power(u, 1 / 2.4) - 0.055)
    return to_lin, np.clip(np.round(255.0 * enc), 0, 255).astype(np.uint8)


_SRGB_TO_LIN, _LIN16_TO_SRGB8 = _srgb_luts()


@lru_cache(maxsize=16)
def sensor_patterns(device: SimDevice) -> tuple[np.ndarray, np.ndarray]:
    """The device's fixed sensor noise patterns at its output resolution.

    Drawn from ``np.random.default_rng(device.prnu_seed)``: first the PRNU, then
    the per-pixel dark signal, then the per-column dark offsets, so the same
    seed and size always give the same patterns.

    Returns:
        ``(K, D)``, both float32 ``(height, width)``, read-only: multiplicative PRNU
        ``K`` (std ``prnu_strength``) and additive dark-signal FPN ``D`` (fraction of
        full scale: pixel std ``dark_fpn`` + column std ``dark_column_fpn``).
    """
    h, w = device.height, device.width
    rng = np.random.default_rng(device.prnu_seed)
    k = rng.standard_normal((h, w), dtype=np.float32) * np.float32(device.prnu_strength)
    d = rng.standard_normal((h, w), dtype=np.float32) * np.float32(device.dark_fpn)
    d += rng.standard_normal((1, w), dtype=np.float32) * np.float32(device.dark_column_fpn)
    k.setflags(write=False)
    d.setflags(write=False)
    return k, d


@lru_cache(maxsize=16)
def _sensor_gain_dark(device: SimDevice) -> tuple[np.ndarray, np.ndarray]:
    """``(1 + K, D)`` of :func:`sensor_patterns`, float32, read-only."""
    k, d = sensor_patterns(device)
    gain = (np.float32(1.0) + k).astype(np.float32)
    gain.setflags(write=False)
    return gain, d


def fit_frame(rgb: np.ndarray, width: int, height: int, interpolation: str = "linear") -> np.ndarray:
    """Scale ``rgb`` (uint8 ``(h, w, 3)``) to cover ``width`` x ``height`` pixels, then centre-crop.

    Returns:
        uint8 ``(height, width, 3)``.
    """
    h, w = rgb.shape[:2]
    scale = max(width / w, height / h)
    nw, nh = max(width, int(math.ceil(w * scale - 1e-6))), max(height, int(math.ceil(h * scale - 1e-6)))
    if (nw, nh) != (w, h):
        rgb = cv2.resize(rgb, (nw, nh), interpolation=_INTERP[interpolation])
    y0, x0 = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(rgb[y0:y0 + height, x0:x0 + width])


def _mosaic(img: np.ndarray, cfa: str) -> np.ndarray:
    """``(H, W)`` Bayer mosaic (same dtype) of an RGB image ``(H, W, 3)`` for top-left layout ``cfa``."""
    idx = {"R": 0, "G": 1, "B": 2}
    raw = np.empty(img.shape[:2], img.dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        raw[dy::2, dx::2] = img[dy::2, dx::2, idx[cfa[k]]]
    return raw


def demosaic(raw16: np.ndarray, cfa: str, method: str = "bilinear") -> np.ndarray:
    """OpenCV demosaicing of a uint16 ``(H, W)`` Bayer raw with top-left layout ``cfa``.

    Returns:
        uint16 ``(H, W, 3)`` RGB.
    """
    codes = _BAYER_EA if method == "edge_aware" else _BAYER_CODES
    return cv2.cvtColor(raw16, codes[cfa])


def simulate_frame(rgb: np.ndarray, device: SimDevice, rng: np.random.Generator | None) -> np.ndarray:
    """One source frame through the device's sensor and ISP (everything before the encoder).

    Args:
        rgb: uint8 ``(h, w, 3)`` sRGB source frame, any size.
        device: the chain.
        rng: source of the temporal (shot + read) noise; None for none.

    Returns:
        uint8 ``(device.height, device.width, 3)`` RGB.
    """
    img = fit_frame(rgb, device.width, device.height, device.interpolation)
    raw = cv2.LUT(_mosaic(img, device.cfa), _SRGB_TO_LIN)  # linear light, float32 (H, W)
    gain, dark = _sensor_gain_dark(device)
    np.multiply(raw, gain, out=raw)
    np.add(raw, dark, out=raw)
    if rng is not None:
        # temporal shot + read noise, std = sqrt(signal / full_well + read_noise^2); zero-mean,
        # unit-variance uniform noise (cheaper than Gaussian, indistinguishable after demosaicing and coding)
        std = np.maximum(raw, np.float32(0.0))
        std *= np.float32(1.0 / device.full_well)
        std += np.float32(device.read_noise ** 2)
        np.sqrt(std, out=std)
        u = rng.random(raw.shape, dtype=np.float32)
        u -= np.float32(0.5)
        u *= std
        u *= np.float32(math.sqrt(12.0))
        raw += u
    raw *= np.float32(65535.0)
    raw += np.float32(0.5)
    raw16 = np.clip(raw, 0, 65535, out=raw).astype(np.uint16)
    out = _LIN16_TO_SRGB8[demosaic(raw16, device.cfa, device.demosaic)]
    if device.sharpen_amount > 0:
        blur = cv2.GaussianBlur(out, (0, 0), device.sharpen_radius)
        out = cv2.addWeighted(out, 1.0 + device.sharpen_amount, blur, -device.sharpen_amount, 0.0)
    return out


# =========================================================================== decoding
@dataclass
class DecodedSegment:
    """A decoded source segment, shared by the renderings of every device.

    Attributes:
        source: the source file.
        start_s, duration_s: segment on the source's video time axis, seconds.
        frames: uint8 ``(h, w, 3)`` RGB source frames covering the segment.
        frame_times: float64 ``(len(frames),)`` their times relative to ``start_s``, seconds.
        audio_offset_s: audio time of the video time origin (``VideoReader.origin_s`` minus
            the audio track's ``start_s``), seconds.
        audio: waveforms by sample rate (Hz), float32 ``(C, N)``, filled lazily.
    """

    source: Path
    start_s: float
    duration_s: float
    frames: list[np.ndarray]
    frame_times: np.ndarray
    audio_offset_s: float
    audio: dict[int, np.ndarray] = field(default_factory=dict)

    def audio_at(self, sr: int) -> tuple[np.ndarray, int]:
        """The segment's audio at ``sr`` Hz with up to :data:`PREROLL_S` before it.

        Returns:
            ``(wave float32 (C, preroll + round(duration_s * sr)), preroll samples)``;
            a shortfall of at most :data:`END_TOLERANCE_S` at the end is padded with zeros.

        Raises:
            ValueError: (naming the source) no audio, or audio shorter than the segment.
        """
        if sr not in self.audio:
            track = load_audio(self.source, sr, mono=False)
            if not track.has_audio:
                raise ValueError(f"{self.source}: no audio ({track.missing_reason})")
            self.audio[sr] = np.atleast_2d(track.waveform)
        wave = self.audio[sr]
        first = int(round((self.start_s + self.audio_offset_s) * sr))
        n = int(round(self.duration_s * sr))
        pre = min(int(PREROLL_S * sr), max(first, 0))
        lo = first - pre
        if lo < 0 or first + n > wave.shape[1] + int(END_TOLERANCE_S * sr):
            raise ValueError(
                f"{self.source}: audio covers {(-self.audio_offset_s):.3f}–"
                f"{wave.shape[1] / sr - self.audio_offset_s:.3f} s of the video time axis, shorter than the "
                f"requested {self.start_s:.3f}–{self.start_s + self.duration_s:.3f} s"
            )
        seg = wave[:, lo:first + n]
        if seg.shape[1] < pre + n:
            seg = np.pad(seg, ((0, 0), (0, pre + n - seg.shape[1])))
        return np.ascontiguousarray(seg), pre


def _av_extent(source: Path) -> tuple[float, float, float, float]:
    """``(video_end_s, video_origin_s, audio_start_s, audio_duration_s)`` of a source.

    ``video_end_s`` is relative to the first frame; the origin and audio start are
    absolute stream times.

    Raises:
        ValueError: (naming the file) no audio stream or no decodable audio.
        engine.media.EvidenceError: missing, corrupt or video-less file.
    """
    with VideoReader(source) as reader:
        video_end, origin = reader.duration_s, reader.origin_s
    track = load_audio(source, 8000, mono=True)
    if not track.has_audio:
        raise ValueError(f"{source}: no audio ({track.missing_reason})")
    return video_end, origin, track.start_s, track.duration_s


def source_span(source: Path) -> tuple[float, float]:
    """The part of a source's video time axis that has both video and audio.

    Returns:
        ``(start_s, end_s)`` seconds relative to the first video frame.

    Raises:
        ValueError: (naming the file) no audio stream / no decodable audio.
        engine.media.EvidenceError: missing, corrupt or video-less file
            (:class:`~engine.media.NoVideoStream` names the file).
    """
    video_end, origin, a_start, a_dur = _av_extent(Path(source))
    a0 = a_start - origin
    return max(0.0, a0), min(video_end, a0 + a_dur)


def decode_segment(
    source: Path, start_s: float, duration_s: float, audio_cache: dict[int, np.ndarray] | None = None
) -> DecodedSegment:
    """Decode the video frames of ``[start_s, start_s + duration_s)`` and locate its audio.

    Audio is decoded lazily per sample rate by :meth:`DecodedSegment.audio_at`.

    Args:
        source: a video file with audio.
        start_s, duration_s: the segment on the video time axis (0 = first frame), seconds.
        audio_cache: whole-track waveforms by sample rate to share between segments
            of the same source (filled as needed).

    Raises:
        ValueError: (naming the file) no audio, non-positive duration, or the
            source is shorter than requested (beyond :data:`END_TOLERANCE_S`).
        engine.media.EvidenceError: the file is missing, corrupt or has no video stream.
    """
    source = Path(source)
    if duration_s <= 0 or start_s < 0:
        raise ValueError(f"{source}: need start_s >= 0 and duration_s > 0, got {start_s}, {duration_s}")
    video_end, origin, a_start, a_dur = _av_extent(source)
    span0, span1 = max(0.0, a_start - origin), min(video_end, a_start - origin + a_dur)
    if start_s < span0 - 1e-6 or start_s + duration_s > span1 + END_TOLERANCE_S:
        raise ValueError(
            f"{source}: shorter than requested: audio and video cover {span0:.3f}–{span1:.3f} s, "
            f"requested {start_s:.3f}–{start_s + duration_s:.3f} s"
        )
    with VideoReader(source) as reader:
        secs = reader.pts_seconds
        first = max(0, int(np.searchsorted(secs, start_s + 1e-6, side="right")) - 1)
        frames = reader.sample(TimeRange(float(secs[first]), start_s + duration_s))
    if not frames:
        raise ValueError(f"{source}: no video frame in {start_s:.3f}–{start_s + duration_s:.3f} s")
    return DecodedSegment(
        source=source, start_s=float(start_s), duration_s=float(duration_s),
        frames=[f.rgb for f in frames], frame_times=np.array([f.pts - start_s for f in frames]),
        audio_offset_s=origin - a_start, audio=audio_cache if audio_cache is not None else {},
    )


# =========================================================================== encoding
def _encode(
    out_path: Path, device: SimDevice, frames: Iterator[np.ndarray], n_frames: int, audio: np.ndarray
) -> None:
    """Mux ``n_frames`` RGB frames and ``(C, N)`` float32 audio into ``out_path`` with the device codecs."""
    rate = device.frame_rate
    opts = {"crf": str(device.crf), "preset": device.preset, "threads": str(X264_THREADS),
            "x264-params": f"keyint={device.gop}:min-keyint={device.gop}:scenecut=0:bframes={device.bframes}"}
    if device.profile:
        opts["profile"] = device.profile
    with av.open(str(out_path), "w", format=device.container) as out:
        vs = out.add_stream("libx264", rate=rate, options=opts)
        vs.width, vs.height, vs.pix_fmt = device.width, device.height, "yuv420p"
        vs.codec_context.gop_size = device.gop
        layout = "stereo" if device.audio_channels == 2 else "mono"
        as_ = out.add_stream(AUDIO_CODECS[device.audio_codec], rate=device.audio_rate)
        as_.layout = layout
        if device.audio_codec != "pcm":
            as_.bit_rate = int(device.audio_bitrate)
        sr = device.audio_rate
        chunk = 1024
        a_pos = 0
        n_audio = audio.shape[1]

        def push_audio(until: int) -> None:
            nonlocal a_pos
            while a_pos < min(until, n_audio):
                stop = min(a_pos + chunk, n_audio)
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, a_pos:stop]), format="fltp", layout=layout)
                af.sample_rate, af.pts, af.time_base = sr, a_pos, Fraction(1, sr)
                for p in as_.encode(af):
                    out.mux(p)
                a_pos = stop

        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            vf.time_base = 1 / rate
            for p in vs.encode(vf):
                out.mux(p)
            push_audio(int(round((i + 1) / rate * sr)))
        for p in vs.encode():
            out.mux(p)
        push_audio(n_audio)
        for p in as_.encode():
            out.mux(p)


def _frame_plan(seg: DecodedSegment, device: SimDevice) -> list[int]:
    """Index into ``seg.frames`` of the source frame on screen at each output frame time."""
    rate = device.frame_rate
    n_out = max(1, int(round(seg.duration_s * rate)))
    times = np.array([float(Fraction(i) / rate) for i in range(n_out)])
    pick = np.searchsorted(seg.frame_times, times + 1e-6, side="right") - 1
    return np.clip(pick, 0, len(seg.frames) - 1).tolist()


def render_decoded(
    seg: DecodedSegment, device: SimDevice, out_path: Path, seed: int, *, keep_raw: bool = False
) -> Path | tuple[Path, np.ndarray, list[np.ndarray]]:
    """Render an already decoded segment through ``device`` into ``out_path`` (atomic).

    Args:
        seg: from :func:`decode_segment`.
        device: the chain.
        out_path: the video file to write (its folder is created).
        seed: seed of the noise realisations (audio noise, hum phase, sensor temporal noise).
        keep_raw: also return the pre-encoder arrays (for tests).

    Returns:
        ``out_path``; with ``keep_raw``, ``(out_path, audio float32 (C, N), frames [uint8 (H, W, 3)])``.

    Raises:
        ValueError: (naming the source) no audio or audio shorter than the segment.
    """
    out_path = Path(out_path)
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(device.device_id[1:])])
    rng_audio, rng_video = (np.random.default_rng(s) for s in ss.spawn(2))
    wave, pre = seg.audio_at(device.audio_rate)
    audio = simulate_audio(wave, device, rng_audio, preroll=pre)
    plan = _frame_plan(seg, device)
    raw_frames: list[np.ndarray] = []

    def frames() -> Iterator[np.ndarray]:
        for j in plan:
            f = simulate_frame(seg.frames[j], device, rng_video)
            if keep_raw:
                raw_frames.append(f)
            yield f

    # hidden temp name without a video suffix, so that dataset listers never pick up a half-written file
    with atomic_path(out_path, suffix=TEMP_SUFFIX) as tmp:
        _encode(tmp, device, frames(), len(plan), audio)
    return (out_path, audio, raw_frames) if keep_raw else out_path


def render_clip(source: Path, device: SimDevice, out_path: Path, start_s: float, duration_s: float, seed: int) -> Path:
    """Render ``duration_s`` seconds of ``source`` from ``start_s`` as recorded by ``device``.

    Decodes the segment with PyAV (video frames + audio resampled to the device
    rate), applies the device's audio and video chains (module docstring) and
    writes a video with the device codecs/container to ``out_path`` (temp file in
    the same folder, then ``os.replace``). Output: ``round(duration_s * fps)``
    frames of ``width x height`` pixels; ``round(duration_s * audio_rate)`` samples.
    Deterministic given ``seed``: the same arguments write byte-identical files.

    Raises:
        ValueError: (naming the source) it has no audio, or audio and video do not
            both cover the requested span (beyond :data:`END_TOLERANCE_S`).
        engine.media.EvidenceError: the source is missing, corrupt or has no video
            stream (:class:`~engine.media.NoVideoStream`; the message names the file).
    """
    seg = decode_segment(Path(source), start_s, duration_s)
    return render_decoded(seg, device, Path(out_path), seed)


# =========================================================================== dataset
_OUTDOOR_HINTS = ("gopro", "karma", "drone", "bike", "bunny", "outdoor", "street")


def plan_segments(span: tuple[float, float], clip_s: float, max_segments: int | None) -> list[float]:
    """Start times (s) of non-overlapping ``clip_s`` segments inside ``span``.

    When more fit than ``max_segments``, that many are spread evenly over the span.
    A span shorter than ``clip_s`` by at most :data:`END_TOLERANCE_S` gives one segment.
    """
    s0, s1 = span
    avail = s1 - s0
    n = int(math.floor((avail + END_TOLERANCE_S) / clip_s + 1e-9))
    if n <= 0:
        return []
    if max_segments is not None and n > max_segments:
        n = max(1, max_segments)
        if n == 1:
            return [round(s0, 6)]
        step = (max(avail, clip_s) - clip_s) / (n - 1)
        return [round(s0 + i * step, 6) for i in range(n)]
    return [round(s0 + i * clip_s, 6) for i in range(n)]


def _fold_assignment(numbers: Sequence[int], n_folds: int, seed: int, val_fraction: float) -> list[dict[int, str]]:
    """Per fold: recording number -> ``'train'|'val'|'test'`` (test folds partition the recordings)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    order = [numbers[i] for i in rng.permutation(len(numbers))]
    chunks = np.array_split(np.array(order, dtype=np.int64), n_folds)
    folds = []
    for k in range(n_folds):
        test = set(chunks[k].tolist())
        rest = [n for n in order if n not in test]
        vrng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFA1D, k]))
        n_val = max(1, int(round(val_fraction * len(rest)))) if len(rest) > 1 else 0
        val = set(np.array(rest)[vrng.permutation(len(rest))[:n_val]].tolist()) if n_val else set()
        folds.append({n: ("test" if n in test else "val" if n in val else "train") for n in numbers})
    return folds


def _write_csv(path: Path, rows: list[tuple[str, int]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dev_alphabetical_id", "dev_numerical_id"])
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def _clip_seed(seed: int, number: int, device: SimDevice) -> int:
    return int(np.random.SeedSequence([int(seed), int(number), int(device.device_id[1:])]).generate_state(1)[0])


def build_simulated_vision(
    sources: Sequence[Path],
    out_root: Path,
    devices: Sequence[SimDevice] = DEMO_DEVICES,
    clip_s: float = 4.0,
    clips_per_source: int | None = 8,
    n_folds: int = 5,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    val_fraction: float = 0.1,
    resume: bool = False,
) -> dict:
    """Render every recording (source segment) through every device into a VISION-like tree.

    Layout under ``out_root``::

        <Dxx>_Sim_<Name>/videos/<indoor|outdoor>/<Dxx>_V_<category>_<motion>_<NNNN>.<mp4|mov|3gp>
        dataset.json                      (read by trainer.datasets.vision)
        splits/Native/{train,val,test}_fold<k>.csv

    ``NNNN`` is the recording number (1-based, in sorted source order). The
    category is ``outdoor`` for sources whose path hints at outdoor footage
    (GoPro, drone, bikes, ...), else ``indoor``; motion ``move`` for those, else
    ``still``. Folds are split **by recording**: the test folds partition the
    recordings (seeded permutation), all renderings of a recording are in the same
    split, and val is ``val_fraction`` of the other recordings (at least one).
    CSV rows: ``<video stem>,<label>``, label = index of the device class in the
    sorted class names.

    Args:
        sources: video files with audio (others are skipped and reported).
        out_root: output folder (created).
        devices: the chains (distinct ids).
        clip_s: segment length, seconds.
        clips_per_source: at most this many segments per source (spread evenly), None = all.
        n_folds: number of folds (<= number of recordings).
        seed: seeds the noise realisations and the folds.
        progress: called as ``progress(done, total)`` after each rendered clip.
        val_fraction: share of the non-test recordings used for validation.
        resume: keep clips that already exist instead of rendering them again (they are
            not checked against the current device settings: use a fresh ``out_root``
            after changing devices). Temp files of an interrupted run are always removed.

    Returns:
        ``{"out_root", "recordings", "clips", "devices", "skipped": [{"source", "reason"}],
        "failed_clips": [...], "seconds"}``.

    Raises:
        ValueError: no usable recording, fewer recordings than ``n_folds``,
            duplicate device ids, or ``clip_s <= 0``.
    """
    t0 = time.perf_counter()
    out_root = Path(out_root)
    devices = list(devices)
    if clip_s <= 0:
        raise ValueError(f"clip_s must be positive, got {clip_s}")
    if len({d.device_id for d in devices}) != len(devices) or not devices:
        raise ValueError("devices must be a non-empty list with distinct device ids")
    skipped: list[dict] = []
    recordings: list[dict] = []
    for src in sorted({Path(s).resolve() for s in sources}):
        try:
            span = source_span(src)
        except (ValueError, EvidenceError) as exc:
            skipped.append({"source": str(src), "reason": str(exc)})
            continue
        starts = plan_segments(span, clip_s, clips_per_source)
        if not starts:
            skipped.append({"source": str(src), "reason": f"{src}: only {span[1] - span[0]:.2f} s with both audio "
                                                           f"and video, shorter than one {clip_s:g} s clip"})
            continue
        digest = sha256_file(src)
        outdoor = any(h in str(src).lower() for h in _OUTDOOR_HINTS)
        for st in starts:
            recordings.append({"number": len(recordings) + 1, "source": str(src), "source_sha256": digest,
                               "start_s": st, "duration_s": float(clip_s),
                               "category": "outdoor" if outdoor else "indoor",
                               "motion": "move" if outdoor else "still"})
    if not recordings:
        raise ValueError(f"no usable recording in {len(sources)} sources: " +
                         "; ".join(s["reason"] for s in skipped[:5]))
    if len(recordings) < n_folds:
        raise ValueError(f"{len(recordings)} recordings are fewer than n_folds={n_folds}")

    for dev in devices:  # temp files left by an interrupted earlier run
        for stale in (out_root / dev.folder / "videos").glob(f"*/.*{TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)
    total = len(recordings) * len(devices)
    done = 0
    failed: list[dict] = []
    bad_recordings: set[int] = set()
    audio_caches: dict[str, dict[int, np.ndarray]] = {}
    for rec in recordings:
        if audio_caches and rec["source"] not in audio_caches:
            audio_caches.clear()  # sources are in order: free the previous one's audio
        seg: DecodedSegment | None = None
        for dev in devices:
            path = out_root / dev.folder / "videos" / rec["category"] / (_stem(dev, rec) + dev.suffix)
            if not (resume and path.is_file()):
                try:
                    if seg is None:
                        cache = audio_caches.setdefault(rec["source"], {})
                        seg = decode_segment(Path(rec["source"]), rec["start_s"], rec["duration_s"], cache)
                    render_decoded(seg, dev, path, _clip_seed(seed, rec["number"], dev))
                except (ValueError, EvidenceError, av.FFmpegError) as exc:
                    failed.append({"recording": rec["number"], "device": dev.device_id, "reason": str(exc)})
                    bad_recordings.add(rec["number"])
            done += 1
            if progress is not None:
                progress(done, total)
    if bad_recordings:  # keep classes balanced: drop a recording that failed on any device
        for rec in recordings:
            if rec["number"] in bad_recordings:
                for dev in devices:
                    p = out_root / dev.folder / "videos" / rec["category"] / (_stem(dev, rec) + dev.suffix)
                    p.unlink(missing_ok=True)
        recordings = [r for r in recordings if r["number"] not in bad_recordings]
        if len(recordings) < n_folds:
            raise ValueError(f"only {len(recordings)} recordings rendered on every device, fewer than n_folds={n_folds}")

    classes = sorted({d.device_id for d in devices})
    label = {c: i for i, c in enumerate(classes)}
    folds = _fold_assignment([r["number"] for r in recordings], n_folds, seed, val_fraction)
    splits = out_root / "splits" / "Native"
    for k, assign in enumerate(folds):
        for split in ("train", "val", "test"):
            rows = [(_stem(dev, rec), label[dev.device_id]) for rec in recordings if assign[rec["number"]] == split
                    for dev in devices]
            _write_csv(splits / f"{split}_fold{k}.csv", rows)
    atomic_write_json(out_root / "dataset.json", {
        "name": "simulated-vision",
        "device_classes": {d.device_id: d.device_id for d in devices},
        "excluded_devices": [],
        "splits_dir": "splits",
        "devices": [{**asdict(d), "folder": d.folder} for d in devices],
        "recordings": recordings,
        "clip_s": float(clip_s),
        "seed": int(seed),
        "n_folds": int(n_folds),
        "val_fraction": float(val_fraction),
        "skipped_sources": skipped,
        "licence_note": (
            "Simulated-device renderings of real third-party footage (each recording's 'source'); every "
            "clip keeps the licence and terms of its source file (see the README next to the sources, "
            "e.g. /work/shared/data/media/README.md). Made for training/evaluating the demo camera-model "
            "identifier only; the devices are simulated, not real camera models."
        ),
    })
    return {
        "out_root": str(out_root),
        "recordings": len(recordings),
        "clips": len(recordings) * len(devices),
        "devices": [d.device_id for d in devices],
        "skipped": skipped,
        "failed_clips": failed,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _stem(device: SimDevice, rec: dict) -> str:
    return f"{device.device_id}_V_{rec['category']}_{rec['motion']}_{rec['number']:04d}"


# =========================================================================== CLI
def expand_sources(patterns: Iterable[str]) -> list[Path]:
    """Files matching glob patterns (``**`` recursive); a folder gives its media files recursively.

    Returns:
        Sorted unique paths (files only).
    """
    out: set[Path] = set()
    for pat in patterns:
        p = Path(pat)
        matches = [Path(m) for m in glob.glob(pat, recursive=True)] if any(c in pat for c in "*?[") else [p]
        for m in matches:
            if m.is_dir():
                out.update(q for q in m.rglob("*") if q.is_file() and q.suffix.lower() in SOURCE_SUFFIXES)
            elif m.is_file():
                out.add(m)
    return sorted(out)


def main_simulate(argv: list[str] | None = None) -> int:
    """``forensic-train simulate-devices --sources GLOB... --out DIR [--clip-s 4] [--clips-per-source N] [--devices 8]``.

    Returns:
        0 on success, 2 when no usable recording was found (message on stderr).
    """
    from tqdm import tqdm

    p = argparse.ArgumentParser(prog="forensic-train simulate-devices",
                                description="render real footage through simulated camera devices "
                                            "into a VISION-like tree (dataset.json + fold CSVs)")
    p.add_argument("--sources", nargs="+", required=True,
                   help="source videos: files, folders (searched recursively) or glob patterns (** allowed)")
    p.add_argument("--out", required=True, type=Path, help="output dataset folder")
    p.add_argument("--clip-s", type=float, default=4.0, help="recording (segment) length in seconds (default 4)")
    p.add_argument("--clips-per-source", type=int, default=8,
                   help="at most this many segments per source, spread evenly (default 8; 0 = no cap)")
    p.add_argument("--devices", type=int, default=len(DEMO_DEVICES),
                   help=f"use the first N demo devices (2..{len(DEMO_DEVICES)}, default {len(DEMO_DEVICES)})")
    p.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="keep clips already rendered in --out")
    args = p.parse_args(argv)
    if not 2 <= args.devices <= len(DEMO_DEVICES):
        p.error(f"--devices must be between 2 and {len(DEMO_DEVICES)}")
    sources = expand_sources(args.sources)
    if not sources:
        print("no source files matched", file=sys.stderr)
        return 2
    bar = tqdm(total=None, unit="clip")

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    try:
        result = build_simulated_vision(sources, args.out, DEMO_DEVICES[: args.devices], clip_s=args.clip_s,
                                        clips_per_source=args.clips_per_source or None, n_folds=args.folds,
                                        seed=args.seed, progress=progress, resume=args.resume)
    except ValueError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    for s in result["skipped"]:
        print(f"skipped {s['reason']}", file=sys.stderr)
    for f in result["failed_clips"]:
        print(f"failed recording {f['recording']} on {f['device']}: {f['reason']}", file=sys.stderr)
    print(f"wrote {result['clips']} clips ({result['recordings']} recordings x {len(result['devices'])} devices) "
          f"to {result['out_root']} in {result['seconds']:.0f} s; {len(result['skipped'])} sources skipped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_simulate())
