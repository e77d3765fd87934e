"""Relevancy faithfulness of ``deepfake.effvit`` on held-out faces (issue 3 must-show).

Blanking the 10 % most relevant pixels of a crop (Chefer relevancy, seed 2 §2.5)
should change P(fake) more than blanking a random 10 %. Crops: the
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
    res = blanking_faithfulness(model, x, fraction=args.fraction, n_random=3, seed=args.seed)
    print(f"model {card.card_id}; {len(x)} held-out crops ({len(real)} real, {len(fake)} self-blended)")
    print(f"mean |dP(fake)| blanking top {args.fraction:.0%} relevant pixels: {res.top_delta:.4f}")
    print(f"mean |dP(fake)| blanking random {args.fraction:.0%} pixels:       {res.random_delta:.4f}")
    print(f"gain (top - random): {res.gain:+.4f}; crops where top > random: "
          f"{int((res.top_deltas > res.random_deltas).sum())}/{len(x)}")


if __name__ == "__main__":
    main()
