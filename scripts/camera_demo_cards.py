"""Install the demo camera-model weights and complete their cards (issue 6).

Copies ``model.safetensors`` + ``card.json`` of two ``forensic-train fit camera.*`` run
folders into ``resources/models/camera.{audio,image}/`` and adds to both cards the
held-out figures computed by separate commands, each recorded with its command:

* late-fusion accuracies on the same test fold (``forensic-train tables vision``,
  :func:`trainer.vision_tables.evaluate_pair`): audio, image, product, sum;
* the Grad-CAM occlusion sanity check (``bench/camera_gradcam_sanity.py --json``).

The training command in the card stays exactly that of the run. Weight files over
50 MB (ResNet50: 94 MB in float32) are stored in float16 to stay under the size
budget of bundled weights; the installed files are then re-scored on the same
test fold with ``forensic-train evaluate`` and that accuracy is what the card states
(the float32 figure of the run is kept next to it).

Usage::

    python scripts/camera_demo_cards.py --runs runs/camera_audio runs/camera_image \\
        --sanity runs/camera_sanity.json --out resources/models
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.weights import load_card, load_weights, save_weights, update_card  # noqa: E402
from trainer.vision_tables import collect_runs, evaluate_pair  # noqa: E402


MAX_BYTES = 50 * 1024 * 1024
"""Size budget of one bundled weight file."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, nargs=2, required=True, help="camera.audio and camera.image run folders")
    ap.add_argument("--sanity", type=Path, help="JSON written by bench/camera_gradcam_sanity.py --json")
    ap.add_argument("--out", type=Path, default=Path("resources/models"))
    ap.add_argument("--root", type=Path, default=Path("cache/simvision"), help="tree the runs were trained on")
    ap.add_argument("--cache", type=Path, default=Path("cache/simvision_prepared"))
    ap.add_argument("--frames", type=int, default=4)
    args = ap.parse_args()
    staging = args.runs[0].parent / "_camera_pair"
    shutil.rmtree(staging, ignore_errors=True)
    for run in args.runs:  # pair exactly these two runs' proba.json
        (staging / run.name).mkdir(parents=True)
        shutil.copy2(run / "proba.json", staging / run.name / "proba.json")
    (pair,) = collect_runs(staging)
    shutil.rmtree(staging)
    fold = evaluate_pair(pair)
    fusion = {
        "videos": fold.n_videos, "content": fold.content, "fold": fold.fold,
        "accuracy": {k: round(v, 4) for k, v in fold.accuracy.items()},
        "command": f"forensic-train tables vision --runs <folder with {args.runs[0]} and {args.runs[1]}> --out DIR",
    }
    sanity = json.loads(args.sanity.read_text()) if args.sanity else {}
    for run in args.runs:
        card = load_card(run)
        modality = "audio" if card.detector_id == "camera.audio" else "image"
        dest = args.out / card.detector_id
        dest.mkdir(parents=True, exist_ok=True)
        state, _ = load_weights(run)
        stored = "float32"
        if (run / "model.safetensors").stat().st_size > MAX_BYTES:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
            stored = "float16"
        card = save_weights(state, card, dest)
        metrics = {**card.metrics, "test_acc_fusion_product": fusion["accuracy"]["product"],
                   "test_acc_fusion_sum": fusion["accuracy"]["sum"],
                   f"test_acc_{'image' if modality == 'audio' else 'audio'}_partner":
                       fusion["accuracy"]["image" if modality == "audio" else "audio"]}
        training = {**card.training, "held_out_fusion": fusion, "stored_dtype": stored}
        if stored != "float32":  # the installed (float16) file, re-scored on the same test fold
            from trainer.camera_fit import evaluate_camera

            with tempfile.TemporaryDirectory() as tmp:  # not under the runs: tables vision pairs every proba.json
                ev = evaluate_camera(dest, args.root, fusion["content"], fusion["fold"], tmp,
                                     frames=args.frames, cache_dir=args.cache)
            metrics["test_acc_float32_run"] = metrics["test_acc"]
            metrics["test_acc"] = ev["accuracy"]
            training["installed_weights_eval"] = {**ev, "command": f"forensic-train evaluate --model {dest} "
                                                  f"--dataset vision:{args.root} --content {fusion['content']} "
                                                  f"--fold {fusion['fold']} --cache {args.cache} --frames {args.frames}"}
        if modality in sanity:
            s = sanity[modality]
            metrics.update({"gradcam_occlusion_top_drop": round(s["top_drop"], 4),
                            "gradcam_occlusion_random_drop": round(s["random_drop"], 4)})
            training["gradcam_occlusion_sanity"] = {
                **s, "command": f"python bench/camera_gradcam_sanity.py --root {args.root} --content "
                                f"{fusion['content']} --fold {fusion['fold']} --cache {args.cache} --frames "
                                f"{args.frames} --audio {args.runs[0]} --image {args.runs[1]} --json {args.sanity}"}
        limitations = list(card.limitations)
        chance = 1.0 / len(card.classes)
        acc = float(metrics["test_acc"])
        if acc < 2 * chance:  # say it in plain words where the analyst reads the card
            limitations.append(
                f"This model's held-out accuracy ({acc:.0%}) is close to chance ({chance:.0%} for "
                f"{len(card.classes)} devices): do not rely on {card.detector_id}; the fused camera result then "
                f"mostly follows the other modality.")
        update_card(dest, metrics=metrics, training=training, limitations=limitations)
        load_weights(dest)  # the sha256 still matches
        print(f"{dest}: {json.dumps(metrics)}")


if __name__ == "__main__":
    main()
