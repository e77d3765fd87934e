"""Architecture registry: ``ModelCard.architecture`` name -> (model class, config dataclass).

A model card (:mod:`engine.weights`) stores ``architecture`` and ``config`` (the
config dataclass as a dict); :func:`create_model` rebuilds the ``nn.Module`` from
them, so the GUI, the CLI and the trainer never construct models by hand.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

_MODELS: dict[str, tuple[type[nn.Module], type]] = {}


def register_model(name: str, config_cls: type) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register ``cls(config_cls(**config))`` under ``name``.

    Raises:
        ValueError: ``name`` is already registered to another class.
    """

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _MODELS and _MODELS[name][0] is not cls:
            raise ValueError(f"architecture {name!r} already registered to {_MODELS[name][0].__qualname__}")
        _MODELS[name] = (cls, config_cls)
        return cls

    return deco


def _import_all() -> None:
    """Import every ``engine.models`` submodule; a module registers its architectures on import."""
    import importlib
    import pkgutil

    import engine.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"engine.models.{mod.name}")


def list_models() -> list[str]:
    """Registered architecture names, sorted (every ``engine.models`` module imported first)."""
    _import_all()
    return sorted(_MODELS)


def create_model(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """Build a registered architecture from a config dict (e.g. ``ModelCard.config``).

    Args:
        name: architecture name (``ModelCard.architecture``), e.g. ``"effvit"``.
        config: keyword arguments of the architecture's config dataclass; missing
            keys take the dataclass defaults.

    Raises:
        KeyError: unknown architecture. TypeError/ValueError: invalid config.
    """
    if name not in _MODELS:
        _import_all()  # a module that registers itself (``register_model`` at its end) may not be imported yet
    if name not in _MODELS:
        raise KeyError(f"unknown architecture {name!r}; registered: {', '.join(list_models())}")
    cls, config_cls = _MODELS[name]
    return cls(config_cls(**(config or {})))
