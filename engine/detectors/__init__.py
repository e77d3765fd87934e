"""Detector implementations, one module per detector (DESIGN.md "Detectors").

Each module defines a class decorated with
``engine.pipeline.register_detector("<id>")``; importing this package imports
them all so the registry is complete. Modules whose name starts with ``_`` are
helpers and are not imported here.
"""

import importlib
import logging
import pkgutil

#: module name -> "ExceptionType: message" for detector modules that failed to import
#: (their detectors are missing from the registry; the others still work).
BROKEN_MODULES: dict[str, str] = {}

# every module of this package registers its detector(s) on import; a new detector module
# needs no edit here (freq, effvit, camera, cnn, c3d, cnn_lstm, triplet, av, ...)
for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    try:
        importlib.import_module(f"{__name__}.{_mod}")
    except Exception as _exc:  # one broken detector module must not take the others down
        BROKEN_MODULES[_mod] = f"{type(_exc).__name__}: {_exc}"
        logging.getLogger(__name__).error("detector module %s failed to import: %s", _mod, BROKEN_MODULES[_mod])
