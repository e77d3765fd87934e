"""Draw ``packaging/icon.png`` (256×256, RGBA): a magnifying glass over a film frame.

Run once when the design changes; the PNG is committed::

    python packaging/make_icon.py            # writes packaging/icon.png
    python packaging/make_icon.py out.png 512
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle  # noqa: E402


def make_icon(path: Path, size: int = 256) -> Path:
    """Write the icon to ``path`` (PNG with transparency), ``size`` pixels square."""
    fig = plt.figure(figsize=(1, 1), dpi=size)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    # rounded dark tile
    ax.add_patch(FancyBboxPatch((0.04, 0.04), 0.92, 0.92, boxstyle="round,pad=0,rounding_size=0.16",
                                fc="#1f2a3a", ec="none"))
    # film frame with sprocket holes
    ax.add_patch(Rectangle((0.14, 0.30), 0.56, 0.46, fc="#dfe6ee", ec="none"))
    for i in range(5):
        x = 0.165 + i * 0.105
        ax.add_patch(Rectangle((x, 0.705), 0.05, 0.035, fc="#1f2a3a", ec="none"))
        ax.add_patch(Rectangle((x, 0.315), 0.05, 0.035, fc="#1f2a3a", ec="none"))
    ax.add_patch(Rectangle((0.17, 0.37), 0.50, 0.32, fc="#4a90d9", ec="none"))
    # magnifying glass: lens + handle
    ax.add_patch(Circle((0.60, 0.46), 0.17, fc="#ffffff55", ec="#f5b700", lw=0.09 * size / 10))
    ax.plot([0.72, 0.86], [0.34, 0.18], color="#f5b700", lw=0.16 * size / 10, solid_capstyle="round")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=size, transparent=True)
    plt.close(fig)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "icon.png"
    px = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    print(make_icon(out, px))
