"""Analysis benchmark: the full default analysis vs the seeds' approach, and peak RSS.

Usage::

    python bench/analyze.py [--seconds 60] [--rss-minutes 10] [--device auto|cpu|cuda]
                            [--detectors ID,ID,...] [--skip-baseline] [--skip-rss]
                            [--work DIR] [--out figures.json] [--threads N]

In one run it

1. **builds the clips** (cached in ``--work``, default ``<tmp>/fw_bench_analyze``,
   never next to the evidence): the read-only talking-face sample
   ``resources/samples/WDA_AlexandriaOcasioCortez_000.mp4`` (512x512, 8 s, 25 fps,
   AAC) is looped and upscaled to a ``--seconds`` long 1920x1080 H.264 clip
   (libx264 ``veryfast``, CRF 23, keyframe every 2 s, 25 fps, the face centred
   and scaled to the frame height with grey pillar bars; AAC 44.1 kHz stereo from
   the looped sound track). The ``--rss-minutes`` clip is that clip **remuxed**
   end to end (packets copied, timestamps shifted, no re-encoding), so it is real
   1080p H.264 + AAC at the same bit rate without ten minutes of encoding.
   (``--synthetic-rss`` uses ``bench/decode.py``'s moving-texture generator
   instead, which has no audio.)
2. **times ``engine.pipeline.analyze``** on the clip with every available detector
   (default) after loading their weights once (load time reported separately)
   and one warm-up analysis of the 8 s sample (first-call costs: thread pools,
   allocator, MTCNN weights). Stage times come from the progress callback
   (probe + hash, sampled-frame decode, face detection, shared features, each
   detector, re-hash).
3. **times the seeds' approach** (``--skip-baseline`` to leave out) with the same
   loaded detector instances. What it does, stage by stage:

   a. *decode + frame JPEGs* (seeds 1 §1.6 and 3 §3.1): ``cv2.VideoCapture`` reads
      **every** frame, each is written with ``cv2.imwrite`` as
      ``frames/frame%06d.jpg`` (OpenCV default JPEG quality 95). Seed 1 used
      ``cap.set(CAP_PROP_POS_FRAMES, i)`` before every ``read()``; that seek per
      frame is far slower still, so a sequential ``read()`` is used (in the
      baseline's favour).
   b. *face detection on every frame* (seeds 2 §2.1, 3 §3.1): the engine's own
      :class:`engine.faces.MTCNNDetector` (seed 2's thresholds, the frame
      downscaled to 960 px as seed 2's x0.5), **one frame per call** (seed 3 ran
      MTCNN per frame; seed 2 batched 32, which on CPU changes little since MTCNN
      cost is per pixel). Frames come from the JPEG files (``cv2.imread``), as the
      seeds' detection scripts read their extracted frames.
   c. *face crop JPEGs*: the best face of every frame is cropped with seed 2's
      policy (``effvit_square224``) and written as ``faces/frame%06d_0.jpg``.
      (Seeds 2/3 wrote PNG / ``skimage`` images; one crop per frame stands for
      their per-seed crop folders.)
   d. *classification*: every detector runs its own ``Detector.analyze`` (same
      model, same preprocessing) on a clip object that serves frames read back
      from the frame JPEGs and the boxes from (b), with **no sharing between
      detectors** (each seed's evaluation script is separate) except the
      camera-model fusion, which reuses the saved image/audio probabilities (as
      seed 1's ``late_fusion.py`` reads ``proba.pkl``). Frames per detector, as
      each seed says:

      * ``camera.image`` / ``camera.fusion`` (seed 1 §1.6): every second frame;
        ``camera.audio``: the whole audio track (as the engine);
      * ``deepfake.effvit`` (seed 2 §2.4): 20 equidistant frames with a face;
      * ``deepfake.cnn``, ``deepfake.cnn_lstm``, ``deepfake.triplet`` (seed 3
        §3.2, §3.4, §3.5): the first 25 frames with a face;
      * ``deepfake.c3d`` (seed 3 §3.3): the first 32 frames with a face;
      * ``deepfake.freq`` (seed 4 gives no count per video): 32 uniform frames, as
        the engine;
      * ``deepfake.av`` (seed 5 §5.1): every frame of the first 16 s (boxes from
        (b) instead of seed 5's RetinaFace every 64th frame), cropped at 25 fps.

      Simplifications: the detectors re-crop from the frame JPEGs with their own
      crop policies instead of reading the crop JPEGs of (c) (the policies differ
      per seed); audio is decoded with the engine's PyAV loader, once per rate per
      detector clip, rather than through ffmpeg-written WAV files.
4. **measures peak RSS** (``--skip-rss`` to leave out; run before step 3 so it is not
   held up by the long baseline, and never concurrently with a timing) of a separate process
   (``python bench/analyze.py --rss-child CLIP``) that loads the detectors and
   analyses the ``--rss-minutes`` clip: the child's own peak (``VmHWM``,
   :func:`bench.memory.peak_rss_bytes`). ``RUSAGE_CHILDREN`` is also recorded but
   over-reads: Linux keeps the parent's resident size at fork time in the child's
   ``ru_maxrss`` across ``exec``.

It prints a table (times, ratio, RSS, device, CPU model, torch threads) and writes
the figures as JSON (``--out``, default ``<work>/bench_analyze.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.memory import peak_rss_bytes  # noqa: E402

SAMPLE = ROOT / "resources" / "samples" / "WDA_AlexandriaOcasioCortez_000.mp4"
FPS = 25
SIZE = (1920, 1080)
AUDIO_SR = 44100


# ============================================================================ clips
def _sample_frames_and_audio() -> tuple[list[np.ndarray], np.ndarray]:
    """Decode the read-only sample: its RGB frames and its audio as ``float32 (2, N)`` at 44.1 kHz."""
    from engine.media import load_audio

    frames = []
    with av.open(str(SAMPLE)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
    audio = load_audio(SAMPLE, AUDIO_SR, mono=False).waveform
    if audio.ndim == 1:
        audio = np.stack([audio, audio])
    return frames, audio


def make_talking_clip(path: Path, seconds: int) -> Path:
    """Encode ``seconds`` of the looped sample as 1920x1080 H.264 (25 fps, GOP 2 s) + AAC 44.1 kHz stereo.

    The 512x512 face video is scaled to 1080x1080 (``cv2.INTER_CUBIC``) and centred
    on a grey 1920x1080 canvas. Written to a temporary name and renamed, so an
    interrupted run leaves no half clip behind.

    Returns:
        ``path``.
    """
    import cv2

    frames, audio = _sample_frames_and_audio()
    w, h = SIZE
    canvas = np.full((h, w, 3), 96, np.uint8)
    x0 = (w - h) // 2
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "g": str(2 * FPS), "crf": "23"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        as_ = out.add_stream("aac", rate=AUDIO_SR, layout="stereo")
        n_video = seconds * FPS
        n_audio = seconds * AUDIO_SR
        chunk = 1024
        a_pos = 0
        for i in range(n_video):
            canvas[:, x0 : x0 + h] = cv2.resize(frames[i % len(frames)], (h, h), interpolation=cv2.INTER_CUBIC)
            for p in vs.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(p)
            a_end = min(n_audio, (i + 1) * AUDIO_SR // FPS)  # keep audio interleaved with video
            while a_pos < a_end:
                n = min(chunk, n_audio - a_pos)
                idx = (np.arange(a_pos, a_pos + n) % audio.shape[1])
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, idx], dtype=np.float32), format="fltp",
                                                layout="stereo")
                af.sample_rate, af.pts, af.time_base = AUDIO_SR, a_pos, Fraction(1, AUDIO_SR)
                for p in as_.encode(af):
                    out.mux(p)
                a_pos += n
        for s in (vs, as_):
            for p in s.encode():
                out.mux(p)
    tmp.replace(path)
    return path


def loop_remux(src: Path, path: Path, times: int) -> Path:
    """Concatenate ``times`` copies of ``src`` by copying packets with shifted timestamps (no re-encode).

    Every copy starts with a keyframe, so the result decodes like one long recording.

    Returns:
        ``path``.
    """
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(src)) as probe_c:
        span = {}
        for s in probe_c.streams:
            if s.type in ("video", "audio"):
                span[s.index] = 0
        first = {}
        for pkt in probe_c.demux():
            if pkt.stream.index not in span or pkt.pts is None:
                continue
            first.setdefault(pkt.stream.index, pkt.pts)
            span[pkt.stream.index] = max(span[pkt.stream.index], pkt.pts + (pkt.duration or 0))
    with av.open(str(tmp), "w") as out:
        outs = {}
        with av.open(str(src)) as c:
            for s in c.streams:
                if s.index in span:
                    outs[s.index] = out.add_stream_from_template(s)
        for k in range(times):
            with av.open(str(src)) as c:
                for pkt in c.demux():
                    si = pkt.stream.index
                    if si not in outs or pkt.dts is None:
                        continue
                    shift = k * (span[si] - first[si])
                    pkt.pts = None if pkt.pts is None else pkt.pts + shift
                    pkt.dts = pkt.dts + shift
                    pkt.stream = outs[si]
                    out.mux(pkt)
    tmp.replace(path)
    return path


def ensure_clips(work: Path, seconds: int, rss_minutes: float, synthetic_rss: bool, log: Callable[[str], None]) -> dict:
    """Build (or reuse from ``work``) the bench clip and the RSS clip; returns their paths and build times (s)."""
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    clip = work / f"talking_1080p_{seconds}s.mp4"
    if not clip.exists():
        t = time.perf_counter()
        make_talking_clip(clip, seconds)
        out["clip_build_s"] = time.perf_counter() - t
        log(f"built {clip.name} in {out['clip_build_s']:.1f} s")
    out["clip"] = clip
    if rss_minutes:
        total_s = int(round(rss_minutes * 60))
        rss = work / (f"texture_1080p_{total_s}s.mp4" if synthetic_rss else f"talking_1080p_{total_s}s.mp4")
        if not rss.exists():
            t = time.perf_counter()
            if synthetic_rss:
                sys.path.insert(0, str(ROOT / "bench"))
                from decode import make_clip  # bench/decode.py's generator

                tmp = rss.with_suffix(".part.mp4")
                make_clip(tmp, total_s, FPS, *SIZE)
                tmp.replace(rss)
            else:
                unit = 60 if total_s % 60 == 0 and total_s >= 60 else total_s
                base = work / f"talking_1080p_{unit}s.mp4"
                if not base.exists():
                    make_talking_clip(base, unit)
                if unit == total_s:
                    rss = base
                else:
                    loop_remux(base, rss, total_s // unit)
            out["rss_clip_build_s"] = time.perf_counter() - t
            log(f"built {rss.name} in {out['rss_clip_build_s']:.1f} s")
        out["rss_clip"] = rss
    return out


# ============================================================================ environment
def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_detectors(ids: list[str], device: str) -> tuple[dict[str, Any], float]:
    """Create every detector (loads and verifies weights) on ``device``; returns them and the time (s)."""
    from engine.pipeline import create_detector

    t = time.perf_counter()
    dets = {i: create_detector(i, device=device) for i in ids}
    return dets, time.perf_counter() - t


def _stage_name(label: str) -> str:
    return {"Hashing and probing": "probe+hash", "Decoding sampled frames": "decode sampled frames",
            "Detecting faces": "face detection", "Computing audio and image features": "shared features",
            "Re-hashing evidence": "re-hash"}.get(label, label.replace("Running ", ""))


def time_engine(clip: Path, dets: dict[str, Any], device: str) -> dict:
    """Run ``analyze`` once with the loaded detectors; total and per-stage wall times (s) from the progress labels."""
    from engine.pipeline import analyze

    marks: list[tuple[str, float]] = []

    def progress(label: str, _fraction: float) -> None:
        if not marks or marks[-1][0] != label:
            marks.append((label, time.perf_counter()))

    t0 = time.perf_counter()
    res = analyze(clip, list(dets.values()), device=device, progress=progress)
    total = time.perf_counter() - t0
    marks.append(("end", time.perf_counter()))
    stages: dict[str, float] = {}
    for (label, ta), (_, tb) in zip(marks, marks[1:]):
        if label in ("Done", "end"):
            continue
        name = _stage_name(label)
        stages[name] = stages.get(name, 0.0) + (tb - ta)
    return {
        "total_s": total,
        "stages_s": stages,
        "detectors": {d.detector_id: {"status": d.status, "score": d.score, "label": d.label,
                                      "duration_s": d.duration_s, "message": d.message[:200]} for d in res.detectors},
        "n_sampled_frames": len(res.sampling["frames"]),
        "n_face_tracks": len(res.faces["tracks"]),
        "device": res.device,
        "warnings": res.warnings,
    }


# ============================================================================ baseline
class _JpegFrames:
    """Frames of the baseline's ``frames/frame%06d.jpg`` files (1-based names, like the seeds)."""

    def __init__(self, folder: Path, index):
        self.folder, self.index = folder, index

    @property
    def origin_s(self) -> float:
        """Absolute stream time (s) of the first frame, as ``VideoReader.origin_s``."""
        return float(self.index.origin * self.index.time_base)

    def load(self, i: int):
        import cv2

        from engine.media import Frame

        bgr = cv2.imread(str(self.folder / f"frame{i + 1:06d}.jpg"), cv2.IMREAD_COLOR)
        return Frame(i, float(self.index.seconds[i]), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def iter_sample(self, policy, cancel=None):
        """Like ``VideoReader.iter_sample``, reading the JPEG files instead of the video."""
        for i in policy.indices(self.index):
            yield self.load(i)


def _baseline_clip_class():
    from engine.faces import build_tracks
    from engine.pipeline import MediaClip

    class BaselineClip(MediaClip):
        """A MediaClip whose frames are the extracted JPEGs and whose boxes come from per-frame detection."""

        def __init__(self, path, evidence, jpegs: _JpegFrames, dets: dict, selection: list[int], face_detector):
            super().__init__(path, evidence=evidence, face_detector=face_detector)
            self._jpegs, self._dets_all, self._sel = jpegs, dets, list(selection)
            self._reader = jpegs  # dense_face_crops reads .index and .iter_sample

        @property
        def frames(self):
            if self._frames is None:
                self._frames = [self._jpegs.load(i) for i in self._sel]
            return self._frames

        def detect_faces(self, progress=None):
            return [self._dets_all[i] for i in self._sel]

        @property
        def face_tracks(self):
            if self._tracks is None:
                secs = self._jpegs.index.seconds
                self._tracks = build_tracks([(i, float(secs[i]), self._dets_all[i]) for i in self._sel])
            return self._tracks

    return BaselineClip


def _equidistant(items: list[int], n: int) -> list[int]:
    if len(items) <= n:
        return list(items)
    return [items[int(k * len(items) / n)] for k in range(n)]


def time_baseline(clip: Path, dets: dict[str, Any], device: str, work: Path, log: Callable[[str], None]) -> dict:
    """The seeds' approach (module docstring, step 3) with the loaded detectors; stage wall times (s)."""
    import cv2

    from engine.faces import MTCNNDetector, crop_face
    from engine.media import Uniform, probe

    stages: dict[str, float] = {}
    out: dict[str, Any] = {"stages_s": stages}
    tmp = Path(tempfile.mkdtemp(prefix="baseline_", dir=work))
    try:
        fdir, cdir = tmp / "frames", tmp / "faces"
        fdir.mkdir()
        cdir.mkdir()
        mtcnn = MTCNNDetector(device=device, batch_size=1)
        t_all = time.perf_counter()

        t = time.perf_counter()
        ev = probe(clip)  # frame times for the tracks (the seeds used frame numbers; cost is small)
        stages["probe"] = time.perf_counter() - t

        t = time.perf_counter()
        cap = cv2.VideoCapture(str(clip))
        n = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            cv2.imwrite(str(fdir / f"frame{n:06d}.jpg"), bgr)
        cap.release()
        stages["decode every frame (cv2) + frame JPEGs"] = time.perf_counter() - t
        n = min(n, len(ev.frame_index))
        out["n_frames"] = n
        log(f"  baseline: {n} frames decoded and written in {stages['decode every frame (cv2) + frame JPEGs']:.1f} s")

        jpegs = _JpegFrames(fdir, ev.frame_index)
        boxes: dict[int, list] = {}
        t_read = t_det = t_crop = 0.0
        for i in range(n):
            t = time.perf_counter()
            rgb = jpegs.load(i).rgb
            t_read += time.perf_counter() - t
            t = time.perf_counter()
            boxes[i] = mtcnn.detect_batch([rgb])[0]
            t_det += time.perf_counter() - t
            t = time.perf_counter()
            if boxes[i]:
                crop = crop_face(rgb, boxes[i][0], "effvit_square224").image
                cv2.imwrite(str(cdir / f"frame{i + 1:06d}_0.jpg"), crop[:, :, ::-1])
            t_crop += time.perf_counter() - t
        stages["read frame JPEGs"] = t_read
        stages["face detection on every frame"] = t_det
        stages["face crop JPEGs"] = t_crop
        with_face = [i for i in range(n) if boxes[i]]
        out["n_frames_with_face"] = len(with_face)
        log(f"  baseline: faces on {len(with_face)}/{n} frames in {t_det:.1f} s")

        BaselineClip = _baseline_clip_class()
        end16 = int(ev.frame_index.index_at(float(ev.frame_index.seconds[0]) + 16.0))
        uniform32 = [i for i in Uniform(32).indices(ev.frame_index) if i < n]
        selection = {
            "camera": list(range(0, n, 2)),
            "deepfake.effvit": _equidistant(with_face, 20),
            "deepfake.cnn": with_face[:25], "deepfake.cnn_lstm": with_face[:25], "deepfake.triplet": with_face[:25],
            "deepfake.c3d": with_face[:32],
            "deepfake.freq": uniform32,
            "deepfake.av": list(range(0, min(n, end16 + 1))),
        }
        out["frames_per_detector"] = {}
        out["detectors"] = {}
        camera_clip = None
        for det_id, det in dets.items():
            key = "camera" if det_id.startswith("camera.") else det_id
            sel = selection.get(key, uniform32)
            out["frames_per_detector"][det_id] = len(sel)
            t = time.perf_counter()
            if key == "camera":
                if camera_clip is None:  # seed 1: one pass over every 2nd frame JPEG, centre crop
                    camera_clip = BaselineClip(clip, ev, jpegs, boxes, sel, mtcnn)
                    _fill_center_crops(camera_clip, jpegs, sel)
                c = camera_clip
            else:
                c = BaselineClip(clip, ev, jpegs, boxes, sel, mtcnn)
            try:
                res = det.analyze(c)
            except Exception as exc:  # recorded, like analyze() does, so the other figures still come out
                from engine.pipeline import DetectorResult

                res = DetectorResult(det_id, getattr(det, "task", "unknown"), status="failed",
                                     message=f"{type(exc).__name__}: {exc}")
            dt = time.perf_counter() - t
            stages[f"classify {det_id}"] = dt
            out["detectors"][det_id] = {"status": res.status, "score": res.score, "label": res.label,
                                        "duration_s": dt, "message": res.message[:200]}
            log(f"  baseline: {det_id} on {len(sel)} frames: {dt:.1f} s ({res.status})")
        out["total_s"] = time.perf_counter() - t_all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _fill_center_crops(clip, jpegs: _JpegFrames, sel: list[int]) -> None:
    """Seed 1's image dataset: read each selected frame JPEG once and keep its 256x256 centre crop."""
    from engine.detectors.camera import CenterCrops
    from engine.models.camera import CAMERA_CROP, center_crop_256, center_crop_box

    idx, pts, boxes, imgs = [], [], [], []
    for i in sel:
        f = jpegs.load(i)
        idx.append(f.index)
        pts.append(f.pts)
        boxes.append(center_crop_box(f.rgb.shape[0], f.rgb.shape[1]))
        imgs.append(center_crop_256(f.rgb))
    crops = CenterCrops(tuple(idx), tuple(pts), tuple(boxes),
                        np.stack(imgs) if imgs else np.zeros((0, CAMERA_CROP, CAMERA_CROP, 3), np.uint8))
    clip.cached(("camera.center_crops", CAMERA_CROP), lambda: crops)


# ============================================================================ RSS
def rss_child(clip: Path, ids: list[str], device: str, threads: int) -> None:
    """Child mode: load the detectors, analyse ``clip``, print one JSON line with times (s) and own peak RSS (bytes)."""
    import torch

    torch.set_num_threads(threads)
    dets, load_s = load_detectors(ids, device)
    timing = time_engine(clip, dets, device)
    print("RSS_CHILD " + json.dumps({"load_s": load_s, "analyze_s": timing["total_s"], "stages_s": timing["stages_s"],
                                     "peak_rss_self_bytes": peak_rss_bytes(),
                                     "statuses": {k: v["status"] for k, v in timing["detectors"].items()}}),
          flush=True)


def measure_rss(clip: Path, ids: list[str], device: str, threads: int) -> dict:
    """Peak RSS (bytes) of a separate process analysing ``clip`` (``RUSAGE_CHILDREN`` after it exits).

    Raises:
        RuntimeError: the child failed (its stderr tail is in the message).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(clip), "--device", device,
           "--threads", str(threads), "--detectors", ",".join(ids)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"RSS child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    child = next(json.loads(line[10:]) for line in proc.stdout.splitlines() if line.startswith("RSS_CHILD "))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    # the child's own VmHWM: RUSAGE_CHILDREN also counts this (large) process's resident size at fork time
    return {"peak_rss_bytes": child["peak_rss_self_bytes"], "peak_rss_children_bytes": children,
            "children_before_bytes": before * 1024, "wall_s": wall, **{k: child[k] for k in ("load_s", "analyze_s",
                                                                                             "stages_s", "statuses")}}


# ============================================================================ main
def _print_table(fig: dict) -> None:
    gb = 1024 ** 3
    rows = [("device", fig["device"]), ("CPU", fig["cpu"]), ("torch threads", fig["torch_threads"]),
            ("clip", f"{fig['seconds']} s 1920x1080 {FPS} fps H.264 + AAC"),
            ("detectors", ", ".join(fig["detectors"])), ("weights load (once)", f"{fig.get('load_s', 0):.1f} s")]
    eng, base, rss = fig.get("engine"), fig.get("baseline"), fig.get("rss")
    if eng:
        rows.append(("default analysis", f"{eng['total_s']:.1f} s"))
        rows += [(f"  {k}", f"{v:.1f} s") for k, v in eng["stages_s"].items()]
    if base:
        rows.append(("seeds' approach baseline", f"{base['total_s']:.1f} s"))
        rows += [(f"  {k}", f"{v:.1f} s") for k, v in base["stages_s"].items()]
        rows.append(("  frames per detector", json.dumps(base["frames_per_detector"])))
    if eng and base:
        rows.append(("ratio baseline / analysis", f"{fig['ratio']:.2f}x (goal >= 3x)"))
    if rss:
        rows.append((f"peak RSS, {fig['rss_minutes']:g} min 1080p", f"{rss['peak_rss_bytes'] / gb:.2f} GiB "
                     f"(goal <= 2 GB; ru_maxrss incl. the parent at fork {rss['peak_rss_children_bytes'] / gb:.2f} GiB)"))
        rows.append(("  its analysis time", f"{rss['analyze_s']:.1f} s"))
    w = max(len(k) for k, _ in rows)
    print("\n".join(f"{k.ljust(w)}  {v}" for k, v in rows), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60, help="length of the timed 1080p clip (s)")
    ap.add_argument("--rss-minutes", type=float, default=10, help="length of the RSS clip (minutes)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--detectors", default="", help="comma-separated ids (default: all available)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--synthetic-rss", action="store_true", help="RSS clip from bench/decode.py's texture generator")
    ap.add_argument("--warmup", action="store_true", help="also run one analysis of the 8 s sample before timing")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch CPU threads")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fw_bench_analyze")
    ap.add_argument("--out", type=Path, default=None, help="figures JSON (default <work>/bench_analyze.json)")
    ap.add_argument("--rss-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    from engine.pipeline import available_detectors, resolve_device

    device = resolve_device(args.device)
    ids = [s for s in args.detectors.split(",") if s] or available_detectors()[0]
    if args.rss_child is not None:
        rss_child(args.rss_child, ids, device, args.threads)
        return
    torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    out_path = args.out or args.work / "bench_analyze.json"
    fig: dict[str, Any] = {"seconds": args.seconds, "rss_minutes": 0 if args.skip_rss else args.rss_minutes,
                           "device": device, "cpu": cpu_model(), "cpu_count": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                           "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                           "detectors": ids, "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    def save() -> None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(fig, indent=2, default=str))

    clips = ensure_clips(args.work, args.seconds, fig["rss_minutes"], args.synthetic_rss, log)
    fig.update({k: (str(v) if isinstance(v, Path) else v) for k, v in clips.items()})
    dets, fig["load_s"] = load_detectors(ids, device)
    log(f"loaded {len(ids)} detectors on {device} in {fig['load_s']:.1f} s")
    if args.warmup:
        t = time.perf_counter()
        time_engine(SAMPLE, dets, device)
        fig["warmup_s"] = time.perf_counter() - t
        log(f"warm-up analysis of {SAMPLE.name}: {fig['warmup_s']:.1f} s")
    save()

    fig["engine"] = time_engine(clips["clip"], dets, device)
    log(f"default analysis of {args.seconds} s 1080p: {fig['engine']['total_s']:.1f} s")
    save()
    if not args.skip_rss:  # before the (long) baseline, so its figure comes out early; nothing else runs meanwhile
        fig["rss"] = measure_rss(clips["rss_clip"], ids, device, args.threads)
        log(f"peak RSS on {args.rss_minutes:g} min: {fig['rss']['peak_rss_bytes'] / 1024 ** 3:.2f} GiB")
        save()
    if not args.skip_baseline:
        fig["baseline"] = time_baseline(clips["clip"], dets, device, args.work, log)
        fig["ratio"] = fig["baseline"]["total_s"] / fig["engine"]["total_s"]
        log(f"seeds' approach: {fig['baseline']['total_s']:.1f} s  ratio {fig['ratio']:.2f}x")
    fig["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save()
    print()
    _print_table(fig)
    print(f"\nfigures: {out_path}")


if __name__ == "__main__":
    main()
