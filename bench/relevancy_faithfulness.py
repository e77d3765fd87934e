"""Relevancy faithfulness of ``deepfake.effvit`` on held-out faces (issue 3 must-show).

Blanking the 10 % most relevant pixels of a crop (Chefer relevancy, seed 2 §2.5)
should change P(fake) more than blanking a random 10 %. Two random baselines
are printed: scattered single pixels, and random cells of the relevancy map's
own 7-pixel token grid (a mask with the same structure as the relevant one,
so only the location differs). Crops: the
``effvit_square224`` faces of held-out videos from the preprocessing cache
(``trainer.cache``), half real and half self-blended (``trainer.sbi``).

Usage::

    python bench/relevancy_faithfulness.py --model resources/models/deepfake.effvit \\
        --caches cache/real_faces/RD_Radio34_000.*.npz cache/real_faces/retalking_face4.*.npz --n 50
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.explain import blanking_faithfulness  # noqa: E402
from engine.models import create_model, preprocess_crops  # noqa: E402
from engine.weights import load_weights  # noqa: E402
from trainer.effvit_fit import load_faces  # noqa: E402
from trainer.sbi import self_blend  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--caches", type=Path, nargs="+", required=True)
    ap.add_argument("--n", type=int, default=50, help="crops (half real, half self-blended)")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--explainer", choices=["relevancy", "gradcam"], default="relevancy",
                    help="map to test: Chefer relevancy on the token grid, or Grad-CAM on features[7]")
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
    from engine.explain import relevancy_maps, tokens_to_grid

    if args.explainer == "relevancy":
        maps = np.stack([tokens_to_grid(r) for r in relevancy_maps(model, x)])  # computed once, both baselines
    else:
        from engine.explain import gradcam_maps

        maps = gradcam_maps(model, model.gradcam_layer(), x).maps
    print(f"explanation: {args.explainer}")
    print(f"model {card.card_id}; {len(x)} held-out crops ({len(real)} real, {len(fake)} self-blended); "
          f"blanking = per-crop channel mean")
    print(f"mean |dP(fake)| blanking the top {args.fraction:.0%} most relevant pixels: "
          f"{blanking_faithfulness(model, x, args.fraction, maps=maps, n_random=1).top_delta:.4f}")
    for cell, what in ((1, "random single pixels (salt-and-pepper)"),
                       (7, "random 7x7 cells of the 32x32 token grid (same structure as the relevancy mask)")):
        res = blanking_faithfulness(model, x, fraction=args.fraction, maps=maps, n_random=3, seed=args.seed,
                                    random_cell=cell)
        print(f"  vs {args.fraction:.0%} {what}: {res.random_delta:.4f}; gain (top - random) {res.gain:+.4f}; "
              f"crops where top > random: {int((res.top_deltas > res.random_deltas).sum())}/{len(x)}")


if __name__ == "__main__":
    main()
