"""GUI playback benchmark: achieved playback fps and seek latency on a 1080p 30 fps clip, all panes on.

Builds a 1080p 30 fps H.264 + AAC clip from a real talking-face sample
(``resources/samples``, upscaled and re-timed with PyAV) in a temp folder,
opens it in the workbench window (offscreen), prepares and analyses it with
``deepfake.freq`` so the spectrogram, face-crop strip, score timeline, face
boxes and spectrum plot are all live, then measures in the same run:

* **playback**: frames shown per second while playing for ``--play`` seconds
  (the clock drops late frames, so this is the achieved display rate);
* **seek latency**: from ``seek_index`` to the frame on screen, for random
  frames (median, p95);
* the **baseline** without any GUI: ``VideoReader`` sequential decode fps and
  random ``frame(i)`` latency on the same file, and the ratios GUI / baseline.

Usage: ``QT_QPA_PLATFORM=offscreen python bench/gui_playback.py [--seconds 12] [--play 6] [--seeks 40]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SAMPLE = Path(__file__).resolve().parent.parent / "resources" / "samples" / "WDA_AlexandriaOcasioCortez_000.mp4"


def make_1080p(src: Path, dst: Path, seconds: float, fps: int = 30) -> Path:
    """Re-encode ``src`` to 1920x1080 at ``fps`` (face centred, letterboxed) with its audio, via PyAV."""
    import cv2

    from engine.media import VideoReader, load_audio

    reader = VideoReader(src)
    wave, sr = load_audio(src, sr=44100, mono=True)
    n = int(seconds * fps)
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": str(2 * fps), "crf": "20"})
        vs.width, vs.height, vs.pix_fmt = 1920, 1080, "yuv420p"
        aus = out.add_stream("aac", rate=sr, layout="mono")
        for i in range(n):
            f = reader.frame_at((i / fps) % max(reader.duration_s, 1e-3))
            face = cv2.resize(f.rgb, (1080, 1080), interpolation=cv2.INTER_CUBIC)
            canvas = np.zeros((1080, 1920, 3), np.uint8)
            canvas[:, 420:1500] = face
            for p in vs.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        total = int(seconds * sr)
        audio = np.resize(wave.astype(np.float32), total)
        for start in range(0, total, 1024):
            chunk = audio[start : start + 1024][None, :]
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            af.sample_rate = sr
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)
    reader.close()
    return dst


def baseline(path: Path, seeks: list[int]) -> tuple[float, list[float]]:
    """(sequential decode fps, random frame(i) latencies in s) without any GUI."""
    from engine.media import VideoReader

    r = VideoReader(path)
    t0 = time.perf_counter()
    n = sum(1 for _ in r)
    fps = n / (time.perf_counter() - t0)
    lat = []
    for i in seeks:
        t = time.perf_counter()
        r.frame(i)
        lat.append(time.perf_counter() - t)
    r.close()
    return fps, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="length of the generated clip")
    ap.add_argument("--play", type=float, default=6.0, help="seconds of playback measured")
    ap.add_argument("--seeks", type=int, default=40)
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from forensic_gui.analysis import ResultStore
    from forensic_gui.app import MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="gui_bench_"))
    os.environ["FORENSIC_WORKBENCH_DATA"] = str(tmp / "data")
    clip = make_1080p(SAMPLE, tmp / "talking_1080p30.mp4", args.seconds)
    rng = np.random.default_rng(0)
    n_frames = int(args.seconds * 30)
    seeks = [int(i) for i in rng.integers(0, n_frames, args.seeks)]

    app = QApplication.instance() or QApplication([])
    win = MainWindow(store=ResultStore(tmp / "results"), settings_path=tmp / "settings.ini")
    win.resize(1600, 1000)
    win.show()

    def wait(cond, timeout):
        t = time.perf_counter()
        while not cond():
            app.processEvents()
            time.sleep(0.001)
            if time.perf_counter() - t > timeout:
                raise TimeoutError("benchmark step timed out")

    win.add_evidence(clip)
    wait(lambda: win.current is not None and win.playback.current is not None, 60)
    win.analyse_current(["deepfake.freq"], "cpu")
    wait(lambda: win.current.result is not None and not win.queue.busy and win.refreshed, 900)
    panes = {"spectrogram": win.spectrogram.has_data, "score timeline": bool(win.timeline.curves),
             "face boxes": bool(win.current.result.faces_at(0.0)), "spectrum plot": win.panel.spectrum.isVisible()}
    win.playback.seek_index(0)
    wait(lambda: win.playback.current.index == 0, 10)

    # playback
    shown0 = win.playback.shown_count
    win.playback.play()
    t0 = time.perf_counter()
    wait(lambda: time.perf_counter() - t0 >= args.play or not win.playback.playing, args.play + 5)
    elapsed = time.perf_counter() - t0
    shown = win.playback.shown_count - shown0
    last = win.playback.current.index
    win.playback.pause()
    faces_live = len(win.faces.thumbs)

    # seeks
    lat = []
    for i in seeks:
        t = time.perf_counter()
        win.playback.seek_index(i)
        wait(lambda: win.playback.current is not None and win.playback.current.index == i, 10)
        lat.append(time.perf_counter() - t)
    win.close()

    base_fps, base_lat = baseline(clip, seeks)
    play_fps = shown / elapsed
    print(f"clip: {clip.name} 1920x1080 30 fps, {n_frames} frames; panes live: "
          f"{', '.join(k for k, v in panes.items() if v)}; face crops shown while playing: {faces_live}")
    print(f"playback:  {play_fps:6.1f} fps shown over {elapsed:.1f} s (target 30.0; reached frame {last}); "
          f"baseline sequential decode {base_fps:6.1f} fps; ratio {play_fps / base_fps:.2f}")
    print(f"seek (GUI, frame on screen): median {1000 * np.median(lat):6.1f} ms, p95 {1000 * np.percentile(lat, 95):6.1f} ms"
          f" over {len(lat)} random frames")
    print(f"seek (VideoReader.frame):    median {1000 * np.median(base_lat):6.1f} ms, "
          f"p95 {1000 * np.percentile(base_lat, 95):6.1f} ms; ratio of medians {np.median(lat) / np.median(base_lat):.2f}")


if __name__ == "__main__":
    main()
