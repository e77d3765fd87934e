"""Grad-CAM sanity of the camera-model detectors on held-out clips (issue 6 must-show).

Occluding the top-10 % Grad-CAM region of the input (log-mel for ``camera.audio``,
256x256 centre crop for ``camera.image``) should lower the predicted class's
softmax probability more than occluding a random region of equal size made of
32x32 blocks, the CAMs' native cell (:func:`engine.explain.occlusion_sanity`).
Inputs: the test split of one fold of a VISION(-like) tree (recordings never seen
in training), prepared by ``forensic-train prepare vision`` (same npz cache).

Usage::

    python bench/camera_gradcam_sanity.py --root cache/simvision --content Native --fold 0 \\
        --cache cache/simvision_prepared --audio resources/models/camera.audio --image resources/models/camera.image
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.explain import gradcam_maps, occlusion_sanity  # noqa: E402
from engine.models import create_model  # noqa: E402
from engine.weights import load_weights  # noqa: E402
from trainer.camera_fit import CameraCache, prepare_camera_video  # noqa: E402
from trainer.datasets.vision import vision, vision_folds  # noqa: E402


def load(model_dir: Path):
    state, card = load_weights(model_dir)
    model = create_model(card.architecture, card.config)
    model.load_state_dict(state)
    return model.eval(), card


def inputs(caches: list[CameraCache], modality: str, crops_per_video: int) -> torch.Tensor:
    xs = []
    for c in caches:
        a = c.load()
        if modality == "audio":
            if "log_mel_3res" in a:
                xs.append(torch.from_numpy(a["log_mel_3res"].astype(np.float32))[None])
        else:
            crops = a["crops"]
            pick = np.linspace(0, len(crops) - 1, min(crops_per_video, len(crops))).round().astype(int)
            xs.append(torch.from_numpy(crops[pick]).permute(0, 3, 1, 2).float())
    return torch.cat(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--content", default="Native")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=4, help="frames per video in the prepared cache")
    ap.add_argument("--crops-per-video", type=int, default=1)
    ap.add_argument("--audio", type=Path)
    ap.add_argument("--image", type=Path)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--n-random", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    test = vision_folds(vision(args.root, content=args.content), args.content, args.fold)["test"]
    caches = [CameraCache(v.stem, v.label, v.class_name, prepare_camera_video(v.path, args.cache, args.frames))
              for v in test]
    out = {}
    for modality, model_dir in (("audio", args.audio), ("image", args.image)):
        if model_dir is None:
            continue
        model, card = load(model_dir)
        x = inputs(caches, modality, args.crops_per_video)
        with torch.no_grad():
            pred = torch.cat([model(x[i:i + 8]).argmax(1) for i in range(0, len(x), 8)]).tolist()
        cams = np.concatenate([gradcam_maps(model, model.gradcam_layer(), x[i:i + 8], pred[i:i + 8],
                                            truncate=True).maps for i in range(0, len(x), 8)])
        res = occlusion_sanity(model, x, cams, fraction=args.fraction, target=pred, n_random=args.n_random, cell=32)
        out[modality] = {"model": card.card_id, "inputs": len(x), **res.to_dict()}
        print(f"{card.card_id}: {len(x)} held-out inputs ({len(test)} test videos, {args.content} fold {args.fold}); "
              f"predicted-class probability drop, top {args.fraction:.0%} Grad-CAM region {res.top_drop:.4f} vs "
              f"random 32x32 blocks of equal size {res.random_drop:.4f}; top > random on "
              f"{int((res.top_drops > res.random_drops).sum())}/{len(x)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
