"""Explanations of model outputs, as raw maps in crop coordinates (Qt-free).

* :mod:`engine.explain.relevancy`    Chefer et al. (ICCV 2021) transformer relevancy:
  :func:`record_attention` (hooks released on exit), the pure rules
  :func:`avg_heads` (rule 5) and :func:`apply_self_attention_rules` (rule 6),
  :func:`relevancy_maps` / :func:`relevancy_map` (token relevance), :func:`spatial_relevancy_maps`
  (token relevance carried onto the 7x7 cells through the embedding), :func:`relevancy_gradcam_maps`
  (scores, both relevancy views and Grad-CAM from one shared forward/backward), and
  :func:`tokens_to_grid` (seed 2 §2.5 step 5 visualisation grid).
* :mod:`engine.explain.gradcam`      :func:`gradcam_maps` on pytorch-grad-cam's ``GradCAM``,
  returning per-map normalised *and* raw maps.
* :mod:`engine.explain.faithfulness` :func:`blanking_faithfulness` (top-k vs random blanking).
* :mod:`engine.explain.occlusion`    :func:`occlusion_sanity` (softmax models: top-CAM region vs a
  random region of equal size, occluded with the per-channel mean; seed 1 §1.10 check).

Maps are returned in crop (model input) pixel coordinates; map them onto the
frame with :meth:`engine.faces.FaceCrop.heatmap_to_frame` (the one place that
does crop -> frame). Every function documents the normalisation it applies.
"""

from engine.explain.faithfulness import FaithfulnessResult, blanking_faithfulness, sigmoid_fake_prob
from engine.explain.gradcam import (
    GradCAMResult,
    fake_target,
    gradcam_context,
    gradcam_from_gradients,
    gradcam_maps,
    make_target,
)
from engine.explain.occlusion import OcclusionResult, occlusion_sanity
from engine.explain.relevancy import (
    AttentionRecord,
    RelevancyGradCAM,
    apply_self_attention_rules,
    avg_heads,
    cls_relevancy_from_attention,
    fake_logit,
    record_attention,
    relevancy_from_attention,
    relevancy_gradcam_maps,
    relevancy_map,
    relevancy_maps,
    spatial_relevancy_maps,
    tokens_to_grid,
)

__all__ = [
    "AttentionRecord",
    "FaithfulnessResult",
    "RelevancyGradCAM",
    "GradCAMResult",
    "OcclusionResult",
    "apply_self_attention_rules",
    "avg_heads",
    "blanking_faithfulness",
    "cls_relevancy_from_attention",
    "fake_logit",
    "fake_target",
    "gradcam_context",
    "gradcam_from_gradients",
    "gradcam_maps",
    "make_target",
    "occlusion_sanity",
    "record_attention",
    "relevancy_from_attention",
    "relevancy_gradcam_maps",
    "relevancy_map",
    "relevancy_maps",
    "spatial_relevancy_maps",
    "sigmoid_fake_prob",
    "tokens_to_grid",
]
