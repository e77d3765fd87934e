"""trainer.resume: training state round-trips through safetensors + JSON, and damage is detected."""

from __future__ import annotations

import pytest
import torch

from trainer.resume import TrainState, load_train_state, save_train_state


def _trained_state():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
    return model, opt


def test_round_trip_restores_model_and_optimizer(tmp_path):
    model, opt = _trained_state()
    best = {k: v.clone() * 0 for k, v in model.state_dict().items()}
    save_train_state(tmp_path, TrainState(model=model.state_dict(), optimizer=opt.state_dict(),
                                          scheduler={"last_epoch": 3}, best_model=best,
                                          meta={"epochs_done": 3, "history": [{"epoch": 0, "val_auc": 0.5}]}))
    st = load_train_state(tmp_path)
    assert st.meta["epochs_done"] == 3 and st.scheduler == {"last_epoch": 3}
    for k, v in model.state_dict().items():
        assert torch.equal(st.model[k], v) and torch.equal(st.best_model[k], best[k])

    torch.manual_seed(0)
    model2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    model2.load_state_dict(st.model)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    opt2.load_state_dict(st.optimizer)
    # one more identical step on both gives identical parameters
    x = torch.randn(8, 4)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_missing_and_damaged_state_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="no resume state"):
        load_train_state(tmp_path)
    model, opt = _trained_state()
    save_train_state(tmp_path, TrainState(model=model.state_dict(), optimizer=opt.state_dict(), meta={"epochs_done": 1}))
    blob = (tmp_path / "resume" / "state.safetensors").read_bytes()
    (tmp_path / "resume" / "state.safetensors").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(ValueError, match="sha256"):
        load_train_state(tmp_path)
