"""Relevancy faithfulness of ``deepfake.effvit`` on held-out faces (issue 3 must-show).

Blanking the 10 % most relevant pixels of a crop should change P(fake) more
than blanking a random 10 %. The maps tested (``--explainer``):

* ``relevancy`` (default, the GUI's first view): Chefer relevancy (seed 2 §2.5)
  carried onto the 7x7 feature-map cells through the token embedding
  (:func:`engine.explain.spatial_relevancy_maps`);
* ``tokens``: the seed's picture, token relevance drawn on a 32x32 grid (tokens
  have no location, see :mod:`engine.explain.relevancy`);
* ``gradcam``: Grad-CAM on the last MBConv stage.

Each map is tested against two random baselines with the same number of pixels:
scattered single pixels, and random whole cells of 32x32 pixels (the spatial
relevancy's own cells, so both masks have the same structure and only *where*
differs). And with two fills: the crop's channel mean (grey) and a Gaussian blur
of the crop (Fong & Vedaldi 2017), because a scattered grey mask adds
salt-and-pepper edges that a face-swap detector reacts to whatever their place.
A one-sided Wilcoxon signed-rank test over crops says whether top > random.
Crops: the ``effvit_square224`` faces of held-out videos from the preprocessing
cache (``trainer.cache``), half real and half self-blended (``trainer.sbi``).

Usage::

    python bench/relevancy_faithfulness.py --model resources/models/deepfake.effvit \\
        --caches cache/real_faces/RD_Radio34_000.*.npz cache/real_faces/retalking_face4.*.npz --n 60
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.explain import blanking_faithfulness  # noqa: E402
from engine.models import create_model, preprocess_crops  # noqa: E402
from engine.weights import load_weights  # noqa: E402
from trainer.effvit_fit import load_faces  # noqa: E402
from trainer.sbi import self_blend  # noqa: E402


def explain(model, x: torch.Tensor, explainer: str) -> np.ndarray:
    """``float32 (N, 224, 224)`` maps of one explainer, in crop pixels."""
    from engine.explain import gradcam_maps, relevancy_maps, spatial_relevancy_maps, tokens_to_grid

    if explainer == "relevancy":
        return tokens_to_grid(spatial_relevancy_maps(model, x), pool=1)
    if explainer == "tokens":
        return tokens_to_grid(relevancy_maps(model, x))
    return gradcam_maps(model, model.gradcam_layer(), x).maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--caches", type=Path, nargs="+", required=True)
    ap.add_argument("--n", type=int, default=60, help="crops (half real, half self-blended)")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-random", type=int, default=3, help="random masks per crop, averaged")
    ap.add_argument("--explainer", choices=["relevancy", "tokens", "gradcam"], nargs="+", default=["relevancy"])
    ap.add_argument("--blank", choices=["mean", "blur"], nargs="+", default=["mean", "blur"])
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    state, card = load_weights(args.model)
    model = create_model(card.architecture, card.config)
    model.load_state_dict(state)
    model.eval()
    crops, lms, _ = load_faces(args.caches)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(crops), size=min(args.n // 2, len(crops)), replace=False)
    real = [crops[i] for i in pick]
    fake = [self_blend(crops[i], lms[i] if np.isfinite(lms[i]).all() else None, rng=rng).image for i in pick]
    x = preprocess_crops(np.stack(real + fake))
    torch.manual_seed(args.seed)
    print(f"model {card.card_id}; {len(x)} held-out crops ({len(real)} real, {len(fake)} self-blended); "
          f"blanking {args.fraction:.0%} of the pixels; |dP(fake)| averaged over crops")
    rows = []
    for explainer in args.explainer:
        maps = explain(model, x, explainer)  # computed once for every baseline
        for blank in args.blank:
            for cell, what in ((1, "scattered pixels"), (32, "32x32 cells")):
                res = blanking_faithfulness(model, x, args.fraction, maps=maps, n_random=args.n_random,
                                            seed=args.seed, random_cell=cell, blank=blank)
                diff = res.top_deltas - res.random_deltas
                p = float(wilcoxon(diff, alternative="greater").pvalue) if np.any(diff) else 1.0
                wins = int((diff > 0).sum())
                rows.append({"explainer": explainer, "fill": blank, "random": what, "top": res.top_delta,
                             "random_delta": res.random_delta, "wins": wins, "n": len(x), "wilcoxon_p": p})
                print(f"{explainer:9s} fill={blank:4s} top {res.top_delta:.4f} vs random {what:16s} "
                      f"{res.random_delta:.4f}  ratio {res.top_delta / max(res.random_delta, 1e-12):5.2f}  "
                      f"top>random on {wins}/{len(x)} crops  one-sided Wilcoxon p={p:.2g}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": card.card_id, "fraction": args.fraction, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
