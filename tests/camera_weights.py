"""Tiny random-init ``camera.audio`` / ``camera.image`` weights in a temporary models folder (test helper).

Used by the detector, GUI and report tests: random-init
networks whose BatchNorm statistics are re-estimated on a small input and whose
last layer is shrunk, so that eval outputs are not degenerate, saved with a
real model card through :func:`engine.weights.save_weights`. Point the app at
the folder with ``FORENSIC_MODELS_DIR`` (see :func:`engine.weights.search_path`).
"""

from __future__ import annotations

from pathlib import Path

#: Six classes, so that a top-5 list is really five entries long.
CLASSES = ["D01-D26", "D02-D10", "D03", "D04-D21", "D05", "D06-D15"]

#: The limitation the bundled demo camera cards carry (shown verbatim by the GUI and the report).
DEMO_LIMITATION = "demo weights trained on simulated devices; train on VISION for casework"


def _usable(model, x):
    """Re-estimate random-init BN statistics on ``x`` and shrink the last linear layer (non-degenerate outputs)."""
    import torch

    from engine.models import recalibrate_batchnorm

    recalibrate_batchnorm(model, [x])
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(4.0 / (last.weight.norm() + 1e-9))
    return model.eval()


def save_camera_model(model, detector_id: str, arch: str, classes: list[str], out: Path) -> Path:
    """Save ``model`` with a test card (limitation :data:`DEMO_LIMITATION`) into ``out``; returns ``out``."""
    from engine.weights import ModelCard, save_weights

    card = ModelCard(detector_id=detector_id, architecture=arch, config={"classes": classes}, classes=classes,
                     training_data="untrained (test)", metrics={}, evaluation="none",
                     limitations=[DEMO_LIMITATION], sha256="", paper="XAIDevIDFusion (test weights)")
    save_weights(model.state_dict(), card, out)
    return out


def make_camera_models(root: Path, classes: list[str] | None = None, seed: int = 0) -> Path:
    """Write ``root/camera.audio`` and ``root/camera.image`` (random init, ``classes``) and return ``root``.

    Args:
        root: an empty folder (created if missing).
        classes: class names in logit order (default :data:`CLASSES`).
        seed: torch seed (same seed, same weights).

    Returns:
        ``root``, usable as ``FORENSIC_MODELS_DIR`` or ``CameraFusionDetector(model_dir=root)``.
    """
    import torch

    from engine.models import CameraAudioConfig, CameraAudioNet, CameraImageConfig, CameraImageNet

    classes = list(classes or CLASSES)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    # BN statistics estimated on smaller inputs than the real ones (per-channel statistics barely depend on size)
    audio = _usable(CameraAudioNet(CameraAudioConfig(classes=classes)), torch.randn(2, 3, 128, 384) * 3 - 8)
    save_camera_model(audio, "camera.audio", "camera_audio", classes, root / "camera.audio")
    image = _usable(CameraImageNet(CameraImageConfig(classes=classes)), torch.rand(2, 3, 128, 128) * 255)
    save_camera_model(image, "camera.image", "camera_image", classes, root / "camera.image")
    return root
