"""The decoded-frame record every layer passes around."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Frame(NamedTuple):
    """One decoded video frame in display orientation.

    A ``NamedTuple`` so that ``for index, pts, rgb in reader`` unpacks it.

    Attributes:
        index: 0-based position of the frame in presentation order over the whole
            video stream.
        pts: presentation time in seconds relative to the first frame of the
            video stream (the first frame is 0.0; see ``VideoReader.origin_s``
            for the absolute stream time of that origin).
        rgb: ``uint8`` array ``(H, W, 3)``, RGB, with the container's display
            rotation already applied.
    """

    index: int
    pts: float
    rgb: np.ndarray

    @property
    def height(self) -> int:
        """Frame height in pixels (after rotation)."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Frame width in pixels (after rotation)."""
        return int(self.rgb.shape[1])
