"""Forensic Workbench engine: the Qt-free core shared by the GUI, the CLI and the trainer.

Layers (see ``../shared/DESIGN.md``):

* :mod:`engine.media`    probe, SHA-256, PTS-indexed decode, audio decode
* :mod:`engine.faces`    face detection (MTCNN / RetinaFace), face tracks, crop policies
* :mod:`engine.features` log-mel, azimuthal FFT spectrum, display spectrogram
* :mod:`engine.pipeline` MediaClip, Detector protocol and registry, ``analyze``
* :mod:`engine.weights`  model cards and safe (safetensors-only) weight loading

Importing :mod:`engine` never imports Qt.
"""

__version__ = "0.1.0"
