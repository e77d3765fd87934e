"""Weights: safetensors + card, SHA-256 verified, search path, clear errors."""

from __future__ import annotations

import pytest
import torch

from engine.weights import (
    ModelCard,
    WeightsIntegrityError,
    WeightsNotFound,
    find_model_dir,
    hash_check,
    load_weights,
    save_weights,
)


def _card(**kw) -> ModelCard:
    base = dict(
        detector_id="test.tiny", architecture="tiny_mlp", config={"n_in": 4}, classes=["real", "fake"],
        training_data="synthetic test tensors", metrics={}, evaluation="none", limitations=["test only"], sha256="",
    )
    base.update(kw)
    return ModelCard(**base)


def test_roundtrip_and_hash(tmp_path):
    model = torch.nn.Linear(4, 2)
    card = save_weights(model.state_dict(), _card(), tmp_path / "test.tiny")
    assert len(card.sha256) == 64 and card.card_id.startswith("test.tiny@")
    state, loaded = load_weights(tmp_path / "test.tiny")
    assert loaded == card
    assert torch.equal(state["weight"], model.weight.detach())


def test_tampered_weights_refused(tmp_path):
    save_weights(torch.nn.Linear(4, 2).state_dict(), _card(), tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match=r"model\.safetensors: SHA-256 .* does not match"):
        load_weights(tmp_path / "m")


def test_missing_weights_named(tmp_path):
    with pytest.raises(WeightsNotFound, match="no weights for 'deepfake.nothing'"):
        find_model_dir("deepfake.nothing", [tmp_path])
    (tmp_path / "x").mkdir()
    with pytest.raises(WeightsNotFound, match="card.json"):
        load_weights(tmp_path / "x")


def test_search_path_env_first(tmp_path, monkeypatch):
    save_weights(torch.nn.Linear(4, 2).state_dict(), _card(), tmp_path / "test.tiny")
    monkeypatch.setenv("FORENSIC_MODELS_DIR", str(tmp_path))
    assert find_model_dir("test.tiny") == tmp_path / "test.tiny"


def test_hash_check_is_polled_while_weights_are_hashed_and_restored_after(tmp_path):
    save_weights(torch.nn.Linear(4, 2).state_dict(), _card(), tmp_path / "m")
    calls = []

    class Stop(Exception):
        pass

    def stop():
        calls.append(1)
        raise Stop

    with pytest.raises(Stop), hash_check(stop):  # e.g. a Cancel while a detector's weights load
        load_weights(tmp_path / "m")
    assert calls == [1]
    with hash_check(lambda: calls.append(2)):
        with hash_check(None):
            load_weights(tmp_path / "m")
        assert calls == [1]  # the inner block switched it off
        load_weights(tmp_path / "m")
    assert calls[1:] and set(calls[1:]) == {2}
    load_weights(tmp_path / "m")  # outside any block: no check
    assert set(calls[1:]) == {2}
