"""engine.explain.faithfulness: top-k blanking beats random blanking for a faithful map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.explain import blanking_faithfulness, gradcam_maps

H = W = 32
REGION = (slice(4, 14), slice(18, 28))  # 10 x 10 = 100 px ~ 10% of 1024


class RegionModel(nn.Module):
    """Logit = 0.05 * (mean over REGION of the channel mean - 150): only REGION matters."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        with torch.no_grad():
            self.conv.weight.fill_(1 / 12)
            self.conv.bias.zero_()
        mask = torch.zeros(1, 1, H, W)
        mask[..., REGION[0], REGION[1]] = 1
        self.register_buffer("mask", mask)

    def forward(self, x):
        f = torch.relu(self.conv(x)).sum(dim=1, keepdim=True)  # channel mean of x (x >= 0)
        return 0.05 * ((f * self.mask).sum(dim=(1, 2, 3)) / self.mask.sum() - 150)[:, None]


@pytest.fixture()
def inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, H, W, generator=g) * 100
    x[..., REGION[0], REGION[1]] += 150  # the region differs from the rest of the crop
    return x


def _oracle_maps(n):
    maps = np.random.default_rng(0).random((n, H, W)) * 0.1
    maps[:, REGION[0], REGION[1]] += 1
    return maps


def test_top_blanking_beats_random_with_oracle_map(inputs):
    model = RegionModel()
    res = blanking_faithfulness(model, inputs, fraction=0.1, maps=_oracle_maps(4), n_random=3)
    assert res.k == 102 and res.blank == "mean" and res.fraction == 0.1
    assert res.top_deltas.shape == res.random_deltas.shape == res.base_prob.shape == (4,)
    assert res.top_delta > 0.2 and res.top_delta > 3 * res.random_delta
    assert (res.top_deltas > res.random_deltas).all() and res.gain > 0
    # an anti-oracle (the region ranked last) changes nothing
    anti = blanking_faithfulness(model, inputs, maps=-_oracle_maps(4), blank="zero")
    assert anti.top_delta == 0.0


def test_gradcam_explainer_is_faithful_on_region_model(inputs):
    model = RegionModel()
    explainer = lambda m, x: gradcam_maps(m, m.conv, x).raw  # noqa: E731
    res = blanking_faithfulness(model, inputs, explainer=explainer, blank="zero")
    assert res.top_delta > 3 * res.random_delta


def test_default_explainer_is_relevancy(tiny_effvit, crops):
    res = blanking_faithfulness(tiny_effvit, crops[:1], fraction=0.1)
    assert res.k == round(0.1 * 224 * 224)
    assert np.isfinite([res.top_delta, res.random_delta]).all()


@pytest.mark.parametrize(
    "kwargs", [dict(fraction=0.0), dict(fraction=1.0), dict(blank="noise"), dict(n_random=0), dict(maps=np.zeros((4, 8, 8)))]
)
def test_rejects_bad_arguments(inputs, kwargs):
    kwargs.setdefault("maps", _oracle_maps(4))
    with pytest.raises(ValueError):
        blanking_faithfulness(RegionModel(), inputs, **kwargs)


def test_blur_fill_uses_the_blurred_crop(inputs):
    """blank="blur": blanked pixels take the values of a Gaussian-blurred copy (sigma BLUR_SIGMA px), so the
    oracle region still beats random pixels while no grey edges are added."""
    from torchvision.transforms.functional import gaussian_blur

    from engine.explain.faithfulness import BLUR_KERNEL, BLUR_SIGMA, _blank

    masks = np.zeros((4, H, W), dtype=bool)
    masks[:, REGION[0], REGION[1]] = True
    out = _blank(inputs, masks, "blur")
    blurred = gaussian_blur(inputs, [BLUR_KERNEL, BLUR_KERNEL], [BLUR_SIGMA, BLUR_SIGMA])
    m = torch.from_numpy(masks)[:, None].expand_as(inputs)
    assert torch.equal(out[m], blurred[m]) and torch.equal(out[~m], inputs[~m])
    res = blanking_faithfulness(RegionModel(), inputs, maps=_oracle_maps(4), blank="blur", n_random=3)
    assert res.blank == "blur" and res.top_delta > 3 * res.random_delta
