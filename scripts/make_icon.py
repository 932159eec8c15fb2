"""Draw the extension icon LiverResUNet.png (128x128): a liver silhouette with a tumor, on a CT-grey disc."""

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def draw_icon(size=128):
    y, x = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    rgba = np.zeros((size, size, 4), np.uint8)
    disc = x ** 2 + y ** 2 <= 0.96
    rgba[disc] = (58, 62, 70, 255)
    # A liver-like shape: a wide right lobe tapering to the left, slightly tilted.
    u, v = x * 0.95 + y * 0.2, y * 0.95 - x * 0.2
    liver = ((u + 0.15) ** 2 / 0.55 + (v + 0.05) ** 2 / 0.16 <= 1) & (v < 0.45 - 0.35 * (u + 0.6))
    rgba[liver] = (221, 130, 101, 255)
    tumor = (x - 0.12) ** 2 + (y + 0.02) ** 2 <= 0.028
    rgba[tumor & liver] = (144, 238, 144, 255)
    return Image.fromarray(rgba, "RGBA")


if __name__ == "__main__":
    draw_icon().save(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "LiverResUNet.png")
