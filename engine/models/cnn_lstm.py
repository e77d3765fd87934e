"""Seed 3's CNN-LSTM sequence classifiers over per-frame CNN features (spec §3.4).

Code: ``deepfakes_video_classification/06.train_CNN_LSTM.py`` (``rnn_models``). The
per-frame features are the 512-d ``fc1`` activations of the (frozen) ``deepfake.cnn``
model (:meth:`engine.models.cnn.CNN.features`); this module holds only the sequence
model. Shapes for batch ``B``, ``T`` = ``seq_length`` (25) time steps, ``F`` = 512::

    x        float32 (B, T, 512)   fc1 features of consecutive face frames (padded)
    lengths  int64   (B,)          valid steps per sequence (1..T); padded steps are masked

    variant "lstm"           (seed's intended default; [quirk] its main calls a commented-out function)
        LSTM(512 -> 32), last valid step's hidden state      -> (B, 32)
        fc Linear(32, 2)                                      -> (B, 2) logits [real, fake]
    variant "bidirectional"
        BiLSTM(512 -> 256 x 2, return_sequences)              -> (B, T, 512)
        LSTM(512 -> 32), last valid step                      -> (B, 32)
        fc Linear(32, 2)
    variant "temporal_max"
        BiLSTM(512 -> 256 x 2, return_sequences)              -> (B, T, 512)
        masked max over the valid steps (TemporalMaxPooling)   -> (B, 512)
        fc Linear(512, 2)

Padding is handled with ``pack_padded_sequence`` (a padded step never enters a
recurrence; Keras used masking for the same effect).

Parameter counts: a torch LSTM has two bias vectors (``b_ih`` and ``b_hh``) where
Keras has one, so each LSTM direction holds ``4 * units`` more parameters here;
:func:`keras_parameters` gives the seed's (Keras) counts and
:meth:`CNNLSTM.parameter_difference_vs_keras` the exact extra, both asserted in
``tests/engine/models/test_cnn.py``:

=================  =========  =========  =======================================
variant            Keras      torch      difference (extra LSTM biases)
=================  =========  =========  =======================================
``lstm``              69,826     69,954  128  (4 x 32)
``bidirectional``  1,644,738  1,646,914  2,176 (2 x 4 x 256 + 4 x 32)
``temporal_max``   1,575,938  1,577,986  2,048 (2 x 4 x 256)
=================  =========  =========  =======================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from engine.models._registry import register_model

__all__ = ["CNNLSTMConfig", "CNNLSTM", "VARIANTS", "keras_parameters"]

VARIANTS = ("lstm", "bidirectional", "temporal_max")


@dataclass(frozen=True)
class CNNLSTMConfig:
    """Architecture config of ``deepfake.cnn_lstm`` (spec §3.4), stored in the model card.

    Attributes:
        variant: ``"lstm"`` (default, seed's intended), ``"bidirectional"`` or ``"temporal_max"``.
        feature_dim: per-frame feature size (512 = ``deepfake.cnn`` ``fc1``).
        seq_length: frames per sequence (seed ``-seq 25``).
        lstm_units: the LSTM(32). bilstm_units: each direction of the BiLSTM(256).
        num_classes: 2 (``["real", "fake"]``).
        cnn_sha256: SHA-256 of the ``deepfake.cnn`` weights the features came from; the
            detector refuses other feature weights.
    """

    variant: str = "lstm"
    feature_dim: int = 512
    seq_length: int = 25
    lstm_units: int = 32
    bilstm_units: int = 256
    num_classes: int = 2
    cnn_sha256: str = ""

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if min(self.feature_dim, self.seq_length, self.lstm_units, self.bilstm_units, self.num_classes) < 1:
            raise ValueError(f"sizes must be positive: {self}")

    def to_dict(self) -> dict:
        """Keyword arguments for a model card (``ModelCard.config``)."""
        return asdict(self)


def keras_parameters(config: CNNLSTMConfig = CNNLSTMConfig()) -> int:
    """Parameter count of the seed's Keras model (one LSTM bias vector per gate set)."""
    lstm = lambda i, h: 4 * (h * (i + h) + h)  # noqa: E731
    f, u, b, k = config.feature_dim, config.lstm_units, config.bilstm_units, config.num_classes
    if config.variant == "lstm":
        return lstm(f, u) + u * k + k
    if config.variant == "bidirectional":
        return 2 * lstm(f, b) + lstm(2 * b, u) + u * k + k
    return 2 * lstm(f, b) + 2 * b * k + k


class CNNLSTM(nn.Module):
    """Seed 3 §3.4 sequence classifier (see the module docstring).

    Attributes:
        bilstm: ``nn.LSTM(F, 256, bidirectional=True)`` (absent for ``"lstm"``).
        lstm: ``nn.LSTM(., 32)`` (absent for ``"temporal_max"``).
        fc: ``nn.Linear(., 2)``.
    """

    def __init__(self, config: CNNLSTMConfig = CNNLSTMConfig()):
        super().__init__()
        self.config = c = config
        d = c.feature_dim
        if c.variant in ("bidirectional", "temporal_max"):
            self.bilstm = nn.LSTM(d, c.bilstm_units, batch_first=True, bidirectional=True)
            d = 2 * c.bilstm_units
        if c.variant in ("lstm", "bidirectional"):
            self.lstm = nn.LSTM(d, c.lstm_units, batch_first=True)
            d = c.lstm_units
        self.fc = nn.Linear(d, c.num_classes)

    def parameter_difference_vs_keras(self) -> int:
        """Extra parameters of torch's second LSTM bias: ``4 * units`` per LSTM direction."""
        return sum(4 * m.hidden_size * (2 if m.bidirectional else 1) for m in self.modules() if isinstance(m, nn.LSTM))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Classify feature sequences.

        Args:
            x: ``float32 (B, T, feature_dim)``; steps at or after ``lengths[b]`` are padding.
            lengths: ``int64 (B,)`` in ``[1, T]``; default all ``T``.

        Returns:
            ``float32 (B, 2)`` logits ``[real, fake]``.

        Raises:
            ValueError: wrong shape or a length outside ``[1, T]``.
        """
        c = self.config
        if x.ndim != 3 or x.shape[-1] != c.feature_dim:
            raise ValueError(f"expected (B, T, {c.feature_dim}), got {tuple(x.shape)}")
        b, t, _ = x.shape
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.int64)
        lengths = lengths.to("cpu", torch.int64)
        if lengths.shape != (b,) or int(lengths.min()) < 1 or int(lengths.max()) > t:
            raise ValueError(f"lengths must be (B,) in [1, {t}], got {lengths.tolist()}")
        h = x
        if hasattr(self, "bilstm"):
            packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.bilstm(packed)[0], batch_first=True, total_length=t)  # (B, T, 2*256)
        if c.variant == "temporal_max":
            valid = torch.arange(t, device=h.device)[None, :] < lengths.to(h.device)[:, None]
            pooled = h.masked_fill(~valid[..., None], float("-inf")).max(dim=1).values
            return self.fc(pooled)
        packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n (1, B, 32): the state after each sequence's last valid step
        return self.fc(h_n[-1])


register_model("cnn_lstm", CNNLSTMConfig)(CNNLSTM)
