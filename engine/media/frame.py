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
    def has_pixels(self) -> bool:
        """False for a :meth:`without_pixels` copy (its ``rgb`` is a zero-stride placeholder)."""
        return not (self.rgb.ndim == 3 and self.rgb.size and not any(self.rgb.strides))

    def without_pixels(self) -> "Frame":
        """The same index and PTS with a placeholder instead of the pixels (no memory).

        The placeholder is a read-only, zero-stride ``uint8`` view of one zero with
        ``rgb``'s shape, so :attr:`height` and :attr:`width` still hold and
        :attr:`has_pixels` is False. For records that only need the frame's identity
        (e.g. the ``(frame, crop)`` pairs cached on a clip after
        :meth:`engine.pipeline.MediaClip.release_frame_pixels`); never read its pixels.
        """
        return self._replace(rgb=np.broadcast_to(np.zeros((), np.uint8), self.rgb.shape))

    @property
    def height(self) -> int:
        """Frame height in pixels (after rotation)."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Frame width in pixels (after rotation)."""
        return int(self.rgb.shape[1])
