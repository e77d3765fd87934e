"""SyncNet V2 (Chung & Zisserman 2016; ``joonson/syncnet_python``), as used by seed 5 §5.2.

Two CNN streams embed a 0.2 s lip window (5 video frames at 25 fps) and the
matching 0.2 s of audio (20 MFCC columns at 100 frames/s) into the same
``emb_dim``-dimensional space; the L2 distance between the two embeddings is
small when audio and lips are in sync. The layer list is the standard SyncNet
V2 one of spec §5.2 (audio CNN: 6 conv layers with BatchNorm; lip CNN: 3-D conv
then 2-D convs with BatchNorm; each followed by FC 512 → 512, BN, ReLU, → emb).

``lip_size`` other than the spec's 224 (e.g. 112 for CPU training) keeps every
layer except the last lip convolution, whose kernel is set to the spatial size
that remains (found with a dry run), so the lip CNN still ends at 1 × 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._registry import register_model

#: Video frames per lip window (0.2 s at 25 fps) and MFCC columns per audio window (0.2 s at 100 Hz).
LIP_FRAMES = 5
MFCC_COLUMNS = 20
NUM_CEPS = 13
#: Lower-face square of a ``tmc_shifted1p4_224`` crop as fractions ``(y0, y1, x0, x1)`` of its side:
#: the crop spans 1.4 × the face box shifted down (seed 5 §5.1), so the mouth sits near y = 0.55–0.6.
MOUTH_BOX = (0.36, 0.86, 0.25, 0.75)
#: Regions a SyncNet can be trained on (``SyncNetConfig.region``).
MOUTH_REGIONS = {"face": (0.0, 1.0, 0.0, 1.0), "mouth": MOUTH_BOX}


@dataclass(frozen=True)
class SyncNetConfig:
    """SyncNet hyper-parameters (spec §5.2).

    Attributes:
        emb_dim: embedding size of both streams (``num_layers_in_fc_layers``; spec 1024).
        lip_size: side of the square crops fed to the lip CNN, pixels (spec 224).
        region: what of the ``tmc_shifted1p4_224`` face crop the lip CNN sees:
            ``"face"`` (spec §5.2: the whole crop) or ``"mouth"`` (the lower-face square
            :data:`MOUTH_BOX`, resized to ``lip_size``; used by the CPU-trained weights).
        width: channel multiplier of every convolution and of the FC hidden layer
            (spec 1.0; e.g. 0.25 makes the network ~16× cheaper for CPU training).
        normalize: L2-normalise both embeddings (unit length, so :func:`calc_pdist`
            distances lie in [0, 2]); the spec's SyncNet (False) returns raw embeddings.

    Raises:
        ValueError: unknown ``region`` or ``width`` ≤ 0.
    """

    emb_dim: int = 1024
    lip_size: int = 224
    region: str = "face"
    width: float = 1.0
    normalize: bool = False

    def __post_init__(self):
        if self.region not in MOUTH_REGIONS:
            raise ValueError(f"region must be one of {sorted(MOUTH_REGIONS)}, got {self.region!r}")
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")


def _ch(n: int, width: float) -> int:
    """Channels of a layer that has ``n`` in the spec, scaled by ``width`` (at least 8)."""
    return n if width == 1.0 else max(8, int(round(n * width)))


def _audio_cnn(width: float = 1.0) -> nn.Sequential:
    """Audio CNN of SyncNet V2: ``(B, 1, 13, 20)`` MFCC → ``(B, 512·width, 1, 1)``."""
    c64, c192, c384, c256, c512 = (_ch(n, width) for n in (64, 192, 384, 256, 512))
    return nn.Sequential(
        nn.Conv2d(1, c64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
        nn.BatchNorm2d(c64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
        nn.Conv2d(c64, c192, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
        nn.BatchNorm2d(c192),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
        nn.Conv2d(c192, c384, kernel_size=(3, 3), padding=(1, 1)),
        nn.BatchNorm2d(c384),
        nn.ReLU(inplace=True),
        nn.Conv2d(c384, c256, kernel_size=(3, 3), padding=(1, 1)),
        nn.BatchNorm2d(c256),
        nn.ReLU(inplace=True),
        nn.Conv2d(c256, c256, kernel_size=(3, 3), padding=(1, 1)),
        nn.BatchNorm2d(c256),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
        nn.Conv2d(c256, c512, kernel_size=(5, 4), padding=(0, 0)),
        nn.BatchNorm2d(c512),
        nn.ReLU(),
    )


def _lip_cnn_body(width: float = 1.0) -> list[nn.Module]:
    """Lip CNN of SyncNet V2 up to (and including) the last max-pool (``256·width`` channels out)."""
    c96, c256 = _ch(96, width), _ch(256, width)
    return [
        nn.Conv3d(3, c96, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0),
        nn.BatchNorm3d(c96),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
        nn.Conv3d(c96, c256, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
        nn.BatchNorm3d(c256),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        nn.Conv3d(c256, c256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
        nn.BatchNorm3d(c256),
        nn.ReLU(inplace=True),
        nn.Conv3d(c256, c256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
        nn.BatchNorm3d(c256),
        nn.ReLU(inplace=True),
        nn.Conv3d(c256, c256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
        nn.BatchNorm3d(c256),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
    ]


def lip_final_kernel(lip_size: int) -> int:
    """Spatial kernel of the last lip convolution: the size left after the body (6 for 224, 2 for 112).

    Raises:
        ValueError: ``lip_size`` too small for the lip CNN (nothing left after the body).
    """
    body = nn.Sequential(*_lip_cnn_body())
    with torch.no_grad():
        out = body(torch.zeros(1, 3, LIP_FRAMES, lip_size, lip_size))
    if out.shape[-1] < 1 or out.shape[-1] != out.shape[-2]:
        raise ValueError(f"lip_size {lip_size} leaves {tuple(out.shape[-2:])} after the lip CNN body")
    return int(out.shape[-1])


def _fc(emb_dim: int, width: float = 1.0) -> nn.Sequential:
    """FC head of either stream: 512 → 512, BN, ReLU → ``emb_dim`` (512 scaled by ``width``)."""
    c = _ch(512, width)
    return nn.Sequential(nn.Linear(c, c), nn.BatchNorm1d(c), nn.ReLU(), nn.Linear(c, emb_dim))


class SyncNet(nn.Module):
    """SyncNet V2 two-stream audio/lip embedding network (spec §5.2, ``SyncNetModel.S``).

    Parameter count with the spec config (emb 1024, lip 224): 13,631,616 (audio CNN
    4,875,712 + lip CNN 7,177,920 + two FC heads of 788,992 each); with ``lip_size``
    112 the last lip kernel is 2 × 2 and the total is 9,437,312.

    Input conventions (as the original): lip frames are raw 0–255 **BGR** float32
    values, no normalisation; the MFCC is ``python_speech_features.mfcc`` output.
    """

    def __init__(self, cfg: SyncNetConfig | None = None):
        super().__init__()
        self.cfg = cfg or SyncNetConfig()
        k = lip_final_kernel(self.cfg.lip_size)
        w = self.cfg.width
        self.netcnnaud = _audio_cnn(w)
        self.netfcaud = _fc(self.cfg.emb_dim, w)
        self.netcnnlip = nn.Sequential(
            *_lip_cnn_body(w),
            nn.Conv3d(_ch(256, w), _ch(512, w), kernel_size=(1, k, k), padding=0),
            nn.BatchNorm3d(_ch(512, w)),
            nn.ReLU(inplace=True),
        )
        self.netfclip = _fc(self.cfg.emb_dim, w)

    def _out(self, emb: torch.Tensor) -> torch.Tensor:
        """``emb`` as is, or unit length when ``cfg.normalize``."""
        return nn.functional.normalize(emb, dim=-1) if self.cfg.normalize else emb

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """Audio embedding.

        Args:
            x: float32 ``(B, 1, 13, 20)`` MFCC window (13 cepstra × 20 columns = 0.2 s).

        Returns:
            float32 ``(B, emb_dim)``.
        """
        mid = self.netcnnaud(x)
        return self._out(self.netfcaud(mid.reshape(mid.shape[0], -1)))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """Lip embedding of one 5-frame window.

        Args:
            x: float32 ``(B, 3, 5, S, S)`` raw 0–255 BGR face crops, ``S = cfg.lip_size``.

        Returns:
            float32 ``(B, emb_dim)``.
        """
        mid = self.netcnnlip(x)
        return self._out(self.netfclip(mid.reshape(mid.shape[0], -1)))

    def forward_lip_seq(self, x: torch.Tensor) -> torch.Tensor:
        """Lip embeddings of every 5-frame window of a sequence, in one pass.

        Only the first convolution looks across time (kernel 5, stride 1, no temporal
        padding), so window ``v`` of the output equals ``forward_lip(x[:, :, v:v+5])``
        (exactly in eval mode; batch statistics differ in train mode).

        Args:
            x: float32 ``(B, 3, T, S, S)``, ``T >= 5``, raw 0–255 BGR.

        Returns:
            float32 ``(B, T - 4, emb_dim)``.
        """
        mid = self.netcnnlip(x)  # (B, 512, T-4, 1, 1)
        b, c, t = mid.shape[:3]
        feats = mid.reshape(b, c, t).transpose(1, 2).reshape(b * t, c)
        return self._out(self.netfclip(feats)).reshape(b, t, -1)

    def forward(self, lip: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(forward_lip(lip), forward_aud(aud))``."""
        return self.forward_lip(lip), self.forward_aud(aud)


register_model("syncnet", SyncNetConfig)(SyncNet)
