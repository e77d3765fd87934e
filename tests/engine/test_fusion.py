"""Late fusion of the deepfake detectors (engine.fusion) and its place in results and reports."""

from __future__ import annotations

import pytest

from engine.fusion import FusionRule, combined_verdict, parse_weights
from engine.pipeline import DetectorResult


def _det(det_id, score, thr=0.5, status="ok", task="deepfake", label=None):
    if label is None and score is not None:
        label = "fake" if score > thr else "real"
    return DetectorResult(det_id, task, status=status, score=score, threshold=thr, label=label,
                          message="no face track" if status != "ok" else "")


DETS = [_det("deepfake.a", 0.2), _det("deepfake.b", 0.9), _det("deepfake.c", 0.4, thr=0.3),
        _det("deepfake.d", None, status="skipped"), _det("camera.audio", 0.99, task="camera", label="D01")]


def test_mean_rule_uses_scored_deepfake_detectors_only():
    v = combined_verdict(DETS)
    assert v["score"] == pytest.approx((0.2 + 0.9 + 0.4) / 3)
    assert v["label"] == "real" and v["threshold"] == 0.5 and v["scored"] == 3  # 0.5 is not above 0.5
    # each detector's own decision is kept (deepfake.c is flagged by its own threshold 0.3)
    assert v["flagged"] == ["deepfake.b", "deepfake.c"]
    assert v["not_scored"] == [{"detector_id": "deepfake.d", "reason": "no face track"}]
    assert "mean" in v["description"] and "threshold 0.5" in v["description"]


def test_max_and_weighted_rules():
    assert combined_verdict(DETS, FusionRule("max"))["score"] == pytest.approx(0.9)
    w = combined_verdict(DETS, FusionRule("weighted", weights={"deepfake.b": 0.0, "deepfake.a": 3.0}))
    # a: 3, b: 0, c: default 1 -> (0.6 + 0 + 0.4) / 4
    assert w["score"] == pytest.approx(0.25) and w["label"] == "real"
    assert {i["detector_id"]: i["weight"] for i in w["inputs"]} == {"deepfake.a": 3.0, "deepfake.b": 0.0,
                                                                     "deepfake.c": 1.0}
    # dicts (saved JSON) fuse the same as objects
    assert combined_verdict([d.to_dict() for d in DETS], FusionRule("max"))["score"] == pytest.approx(0.9)


def test_no_score_gives_no_verdict_and_bad_rules_are_refused():
    v = combined_verdict([_det("deepfake.d", None, status="failed")])
    assert v["score"] is None and v["label"] is None and v["scored"] == 0
    with pytest.raises(ValueError, match="fusion rule"):
        FusionRule("median")
    with pytest.raises(ValueError, match="threshold"):
        FusionRule(threshold=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        FusionRule("weighted", weights={"x": -1})


def test_rule_round_trip_and_weight_parsing():
    r = FusionRule("weighted", 0.6, {"deepfake.effvit": 2.0})
    assert FusionRule.from_dict(r.to_dict()) == r
    assert FusionRule.from_dict(None) == FusionRule()
    assert parse_weights("deepfake.effvit=2, deepfake.freq=0.5") == {"deepfake.effvit": 2.0, "deepfake.freq": 0.5}
    with pytest.raises(ValueError, match="detector_id=number"):
        parse_weights("deepfake.effvit:2")


def test_result_view_gives_the_stored_verdict_and_refuses_with_another_rule():
    from engine.results import ResultView

    doc = {"detectors": [d.to_dict() for d in DETS], "combined": combined_verdict(DETS), "sampling": {"frames": []},
           "evidence": {"sha256": "0" * 64}}
    view = ResultView(doc, {})
    assert view.combined()["score"] == pytest.approx(0.5)
    assert view.combined(FusionRule("max"))["score"] == pytest.approx(0.9)
    from engine.report import verdict_lines

    text = dict(verdict_lines(view))["deepfake"]
    assert text.startswith("combined P(fake) 0.500: real (mean of the detectors' video P(fake), threshold 0.5)")
    assert "manipulation suspected by 2 of 3 detectors" in text
    # a result with no deepfake detector has no combined verdict
    assert ResultView({"detectors": [DETS[-1].to_dict()], "evidence": {}}, {}).combined() is None
