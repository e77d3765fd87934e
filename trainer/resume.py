"""Resumable training state without pickles: safetensors for tensors, JSON for the rest.

Lightning checkpoints are ``torch.save`` pickles, which this project never loads
(brief: "never unpickle"). A training run instead writes, at the end of every
epoch, ``<run>/resume/state.safetensors`` (model parameters and buffers, the
optimiser's per-parameter tensors, the best-so-far model) and
``<run>/resume/state.json`` (epoch counter, optimiser hyper-parameters,
scheduler state, early-stopping counters, metric history). Both are written
atomically; the JSON is written last and names the sha256 of the tensor file,
so a crash between the two writes is detected instead of mixing epochs.

Any detector's trainer reuses :func:`save_train_state` / :func:`load_train_state`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["TrainState", "save_train_state", "load_train_state", "STATE_DIR"]

#: Sub-folder of a run folder that holds the resume state.
STATE_DIR = "resume"
_SCHEMA = 1


@dataclass
class TrainState:
    """Everything needed to continue a run after the last finished epoch.

    Attributes:
        model: model ``state_dict`` (CPU tensors).
        optimizer: ``torch.optim.Optimizer.state_dict()`` layout (tensors CPU).
        scheduler: LR scheduler ``state_dict()`` (JSON-able values only).
        best_model: state dict of the best epoch so far, or ``None``.
        meta: JSON-able counters: ``epochs_done``, ``best``, ``best_epoch``,
            early-stopping state, metric history, wall time so far …
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] = field(default_factory=dict)
    best_model: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _flatten_optimizer(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict -> (tensors keyed ``optim/<param>/<name>``, JSON part)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt_state["state"].items():
        for name, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"optim/{pid}/{name}"] = val.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = val
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        if key.startswith("optim/"):
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = val
    for pid, st in js.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(st)
    return {"state": state, "param_groups": js["param_groups"]}


def save_train_state(run_dir: Path, state: TrainState) -> Path:
    """Write ``run_dir/resume/state.{safetensors,json}`` atomically; returns the JSON path.

    Raises:
        TypeError: scheduler or meta hold values that are not JSON-serialisable.
    """
    from safetensors.torch import save

    from engine.io import atomic_write_bytes, atomic_write_json

    d = Path(run_dir) / STATE_DIR
    d.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in state.model.items()}
    if state.best_model is not None:
        tensors.update({f"best/{k}": v.detach().cpu().contiguous() for k, v in state.best_model.items()})
    opt_tensors, opt_json = _flatten_optimizer(state.optimizer)
    tensors.update(opt_tensors)
    blob = save(tensors)
    atomic_write_bytes(d / "state.safetensors", blob)
    doc = {
        "schema": _SCHEMA, "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        "optimizer": opt_json, "scheduler": state.scheduler, "meta": state.meta,
        "has_best": state.best_model is not None,
    }
    atomic_write_json(d / "state.json", json.loads(json.dumps(doc)))
    return d / "state.json"


def load_train_state(run_dir: Path) -> TrainState:
    """Read the state written by :func:`save_train_state`.

    Raises:
        FileNotFoundError: no resume state in ``run_dir``.
        ValueError: unknown schema, or the tensor file does not match the sha256
            recorded in ``state.json`` (interrupted write or tampering).
    """
    from safetensors.torch import load

    d = Path(run_dir) / STATE_DIR
    js_path, st_path = d / "state.json", d / "state.safetensors"
    if not js_path.exists() or not st_path.exists():
        raise FileNotFoundError(f"{run_dir}: no resume state ({STATE_DIR}/state.json + state.safetensors)")
    doc = json.loads(js_path.read_text())
    if doc.get("schema") != _SCHEMA:
        raise ValueError(f"{js_path}: unknown resume schema {doc.get('schema')!r}")
    blob = st_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != doc["tensors_sha256"]:
        raise ValueError(f"{st_path}: sha256 differs from {js_path.name} (interrupted write?)")
    tensors = load(blob)
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    best = {k[len("best/"):]: v for k, v in tensors.items() if k.startswith("best/")} if doc["has_best"] else None
    return TrainState(model=model, optimizer=_unflatten_optimizer(tensors, doc["optimizer"]),
                      scheduler=doc["scheduler"], best_model=best, meta=doc["meta"])
