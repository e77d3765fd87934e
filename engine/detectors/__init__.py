"""Detector implementations, one module per detector (DESIGN.md "Detectors").

Each module defines a class decorated with
``engine.pipeline.register_detector("<id>")``; importing this package imports
them all so the registry is complete. Detectors arrive with their trained
weights (issues 3, 6, 7); until then the registry is empty and ``analyze``
runs the shared stages only.
"""

from . import freq  # noqa: F401,E402  (registers "deepfake.freq")
from . import effvit  # noqa: F401,E402  (registers "deepfake.effvit")
from . import camera  # noqa: F401,E402  (registers "camera.audio", "camera.image", "camera.fusion")
