"""``deepfake.freq`` training data from cached real faces: spectra of real crops and of their self-blends.

Seed 4 trains on FF++ Deepfakes vs originals; none is reachable here, so each
real ``freq_square1p5`` crop (unresized, §4.4) gives a real spectrum and
``fakes_per_real`` spectra of self-blended versions of itself
(``trainer.sbi.self_blend``). Held-out evaluation uses the same construction on
videos (people) never seen in training, scored per crop and per video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.features import azimuthal_spectrum
from engine.io import load_npz


def spectra_from_cache(cache: Path, fakes_per_real: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and self-blended spectra of one cached video.

    Returns:
        ``(X float64 (K, 300), y int64 (K,) with 1 = fake)``; crops too small for a
        spectrum are skipped.
    """
    from trainer.sbi import self_blend

    a = load_npz(cache)
    keys = sorted(k for k in a if k.startswith("freq_crops/"))
    xs, ys = [], []
    for j, key in enumerate(keys):
        crop = a[key]
        lm = a[key.replace("freq_crops/", "freq_landmarks/")]
        lm = lm if np.isfinite(lm).all() else None
        try:
            xs.append(azimuthal_spectrum(crop))
            ys.append(0)
            for r in range(fakes_per_real):
                fake = self_blend(crop, lm, rng=np.random.default_rng([seed, j, r])).image
                xs.append(azimuthal_spectrum(fake))
                ys.append(1)
        except ValueError:
            continue
    return np.asarray(xs, np.float64).reshape(-1, 300), np.asarray(ys, np.int64)


def fit_freq_from_caches(train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any],
                         seed: int, out_dir: Path, card_info: dict[str, Any], command: str) -> dict[str, Any]:
    """Build spectra, fit (``trainer.freq_fit.fit_freq``), evaluate on held-out people, write the run folder."""
    import time

    from trainer.freq_fit import fit_freq
    from trainer.metrics import VideoResult, binary_metrics, roc_png, write_video_results

    t0 = time.time()
    k = int(train.get("fakes_per_real", 1))
    parts = [spectra_from_cache(c, k, seed + i) for i, c in enumerate(train_caches)]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    val_parts = [spectra_from_cache(c, 1, 10_000 + seed + i) for i, c in enumerate(val_caches)]
    vX = np.concatenate([p[0] for p in val_parts])
    vy = np.concatenate([p[1] for p in val_parts])
    kwargs = {key: train[key] for key in ("lr", "weight_decay", "batch_size", "max_epochs", "patience") if key in train}
    result = fit_freq(
        X, y, train.get("variant", "svm"), out_dir, seed,
        training_data=card_info.get("training_data", ""),
        evaluation=f"self-blended pairs from {len(val_caches)} held-out videos (people not in training): "
                   f"{int((vy == 0).sum())} real and {int((vy == 1).sum())} self-blended face crops",
        limitations=card_info.get("limitations", []), eval_X=vX, eval_y=vy, command=command, **kwargs,
    )
    scores = result.classifier.predict_proba(vX)
    frame_metrics = binary_metrics(vy, scores, 0.5)
    rows, vid_y, vid_s = [], [], []
    offset = 0
    for cache, (px, py) in zip(val_caches, val_parts):
        s = scores[offset : offset + len(py)]
        offset += len(py)
        for label in (0, 1):
            if (py == label).any():
                score = float(s[py == label].mean())  # video score = mean of frame P(fake)
                rows.append(VideoResult(video=f"{cache.name}:{'sbi' if label else 'real'}", label=label, score=score,
                                        pred=int(score > 0.5), group="sbi" if label else "real",
                                        n_frames=int((py == label).sum())))
                vid_y.append(label)
                vid_s.append(score)
    write_video_results(out_dir / "val_results.csv", out_dir / "val_results.json", rows)
    roc_png(out_dir / "roc.png", {"frames": (vy, scores), "videos": (vid_y, vid_s)})
    return {
        "detector": "deepfake.freq", "variant": train.get("variant", "svm"),
        "train_videos": len(train_caches), "val_videos": len(val_caches),
        "train_spectra": int(len(y)), "train_fake": int(y.sum()), "val_spectra": int(len(vy)),
        "val_frame_metrics": frame_metrics, "val_video_metrics": binary_metrics(vid_y, vid_s, 0.5),
        "history": result.history, "wall_time_s": round(time.time() - t0, 1), "sha256": result.card.sha256,
    }
