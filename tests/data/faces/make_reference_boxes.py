"""Regenerate ``reference_boxes.json``: face boxes found independently of MTCNN.

For each real face video below, the frames ``VideoReader(path).sample(Uniform(32))``
returns (the sampling the detector test uses) are run through OpenCV's
frontal-face Haar cascade (``haarcascade_frontalface_default.xml``,
``scaleFactor=1.1, minNeighbors=5``, minimum size 15 % of the shorter frame
side) on the grey image; the **largest** detection is the reference box.
Frames where the cascade is wrong or finds nothing are fixed by hand in
``HAND_CORRECTIONS`` after looking at the drawn boxes (``--draw DIR`` writes
one PNG per frame with the Haar box in green and any hand box in red);
``reference_boxes.json`` records which entries are hand-made.

JSON layout::

    {"generator": ..., "method": ..., "videos": {
        "<file name>": {"path": "<repo-relative path>", "frame_hw": [H, W],
                        "hand_corrected": [frame_index, ...],
                        "frames": {"<pts seconds, %.6f>": {"index": int,
                                   "box": [x1, y1, x2, y2], "source": "haar" | "hand",
                                   "haar_count": int}}}}}

Boxes are in frame pixels (x2 = x + w of OpenCV's ``(x, y, w, h)``).

Needs OpenCV **4.x**: OpenCV 5 (what the project venv has) no longer ships
``cv2.CascadeClassifier`` in the main module. Any Python with
``opencv-python-headless<5``, ``numpy`` and ``av`` will do, e.g. from the
repository root::

    python -m venv /tmp/haarvenv && /tmp/haarvenv/bin/pip install "opencv-python-headless<5" numpy av
    PYTHONPATH=. /tmp/haarvenv/bin/python tests/data/faces/make_reference_boxes.py [--draw /tmp/refboxes]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from engine.media import Uniform, VideoReader

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent / "reference_boxes.json"

VIDEOS = [
    "tests/data/media/retalking_face5.mp4",
    "tests/data/media/liveportrait_d18.mp4",
    "tests/data/media/bbaf2n.mpg",
    "tests/data/media/single_face.mp4",
    "resources/samples/WDA_AlexandriaOcasioCortez_000.mp4",
]
N_FRAMES = 32

#: Hand-made boxes ``{file name: {frame index: [x1, y1, x2, y2]}}`` for frames
#: where the Haar cascade missed the face or boxed something else; each was
#: checked on the drawn frame (``--draw``).
HAND_CORRECTIONS: dict[str, dict[int, list[float]]] = {}

#: What was looked at when the current JSON was made (kept in the JSON).
REVIEW = (
    "All 160 Haar boxes were inspected on per-video contact sheets (--draw output); "
    "4 frames were also inspected at full resolution next to MTCNN's box: retalking_face5 #0 "
    "(2 Haar boxes, largest correct), liveportrait_d18 #138 (mouth wide open), single_face #41, "
    "bbaf2n #43. Every Haar box covered the face (brows to chin), so no hand correction was needed."
)


def haar_faces(rgb: np.ndarray, cascade: cv2.CascadeClassifier) -> list[list[float]]:
    """All Haar detections on one RGB frame, as ``[x1, y1, x2, y2]``, largest first."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    min_side = int(0.15 * min(grey.shape))
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    boxes = [[float(x), float(y), float(x + w), float(y + h)] for (x, y, w, h) in found]
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draw", type=Path, help="write one PNG per sampled frame with its boxes here")
    args = ap.parse_args()

    if not hasattr(cv2, "CascadeClassifier"):
        raise SystemExit(f"OpenCV {cv2.__version__} has no CascadeClassifier; run with opencv-python-headless<5")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise SystemExit("cannot load the Haar cascade")
    videos = {}
    for rel in VIDEOS:
        name = Path(rel).name
        frames = VideoReader(ROOT / rel).sample(Uniform(N_FRAMES))
        fixes = HAND_CORRECTIONS.get(name, {})
        entries = {}
        for f in frames:
            found = haar_faces(f.rgb, cascade)
            if f.index in fixes:
                box, source = [float(v) for v in fixes[f.index]], "hand"
            elif found:
                box, source = found[0], "haar"
            else:
                raise SystemExit(f"{name} frame {f.index}: Haar found no face; add a HAND_CORRECTIONS entry")
            entries[f"{f.pts:.6f}"] = {
                "index": f.index,
                "box": [round(v, 1) for v in box],
                "source": source,
                "haar_count": len(found),
            }
            if args.draw:
                args.draw.mkdir(parents=True, exist_ok=True)
                img = cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR)
                if found:
                    x1, y1, x2, y2 = (int(v) for v in found[0])
                    cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 2)
                if source == "hand":
                    x1, y1, x2, y2 = (int(v) for v in box)
                    cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 2)
                cv2.putText(img, f"{f.index} n={len(found)}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
                cv2.imwrite(str(args.draw / f"{Path(rel).stem}_{f.index:04d}.png"), img)
        videos[name] = {
            "path": rel,
            "frame_hw": [frames[0].height, frames[0].width],
            "hand_corrected": sorted(int(i) for i in fixes if any(e["index"] == i for e in entries.values())),
            "frames": entries,
        }
        n_multi = sum(e["haar_count"] > 1 for e in entries.values())
        print(f"{name}: {len(entries)} frames, {len(fixes)} hand-corrected, {n_multi} with >1 Haar box")

    doc = {
        "generator": "tests/data/faces/make_reference_boxes.py",
        "method": (
            "OpenCV haarcascade_frontalface_default.xml on grey frames, scaleFactor=1.1, minNeighbors=5, "
            "minSize=15% of the shorter side, largest box; frames from engine.media "
            "VideoReader(path).sample(Uniform(32)); boxes [x1, y1, x2, y2] in frame pixels; "
            "'hand' entries were set by hand after visual inspection"
        ),
        "review": REVIEW,
        "opencv": cv2.__version__,
        "videos": videos,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
