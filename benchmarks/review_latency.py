"""How long the browser review makes a radiologist wait, measured in a real Chromium (Playwright, /usr/bin/chromium).

1. start: from launching ``liverresunet review`` on a 512 x 512 x 129 CT (a phantom patient of the project's
   generator, written as NRRD, with its label map) to the first rendered CT slice in the page's axial view
   (target <= 10 s on this machine's 2 cores);
2. paint: from a paint stroke's mouse-up to the axial view showing the painted voxels (target <= 0.5 s); and
   to the page's summary being updated (the stroke read back into the labels and the recovery file written).
Run it in the review environment: ``.venv-review/bin/python benchmarks/review_latency.py``. Prints one JSON
object; exit status 1 when a target is missed.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing"))

from LiverResUNetLib.io.image_file import write_image  # noqa: E402
from LiverResUNetLib.phantom.anatomy import generate_patient  # noqa: E402
from review_server import launch_chromium, start_review  # noqa: E402

START_TARGET_S, PAINT_TARGET_S = 10.0, 0.5
# A checksum of the axial view's current picture, or null while it holds no CT slice yet (blank or uniform).
VIEW_PICTURE_JS = """() => {
  const img = document.querySelector('[data-testid=views] img');
  if (!img || !img.complete || !img.naturalWidth) { return null; }
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let low = 255, high = 0, sum = 0;
  for (let i = 0; i < data.length; i += 4) { low = Math.min(low, data[i]); high = Math.max(high, data[i]);
    sum = (sum * 31 + data[i] + 7 * data[i + 1]) % 1000000007; }
  return high - low > 50 ? sum : null;
}"""


def write_case(folder: Path, slices: int) -> tuple[Path, Path]:
    patient = generate_patient(seed=0, size=512, number=1, slices=slices)
    ct, labels = patient.ct, patient.label
    return write_image(ct, folder / "ct.nrrd"), write_image(labels, folder / "labels.nii.gz")


def wait_for(page, condition, timeout_s: float = 120.0, interval_s: float = 0.02):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError("the page did not get there in time")


def measure(slices: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as temporary, sync_playwright() as playwright:
        folder = Path(temporary)
        ct_path, labels_path = write_case(folder, slices)
        context = launch_chromium(playwright, folder / "profile")
        server = start_review("--input", ct_path, "--segmentation", labels_path, "--output", folder / "out",
                              log=folder / "review.log")
        try:
            page = context.new_page()
            page.goto(server.url)
            wait_for(page, lambda: page.evaluate(VIEW_PICTURE_JS) is not None)
            start_s = time.monotonic() - server.started

            page.click("[data-testid=paint]")
            box = page.locator("[data-testid=views] img").first.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            # The picture before the stroke is taken with the brush outline where the stroke will end; once the
            # stroke's outline (paint feedback) is gone, a picture that differs from both shows painted voxels.
            page.mouse.move(x + 40, y)
            time.sleep(1.5)
            unpainted = page.evaluate(VIEW_PICTURE_JS)
            page.mouse.move(x, y)
            time.sleep(0.5)
            page.mouse.down()
            for step in range(1, 11):
                page.mouse.move(x + 4 * step, y)
            time.sleep(1.5)
            held = page.evaluate(VIEW_PICTURE_JS)
            edits = page.inner_text("[data-testid=message]")
            page.mouse.up()
            released = time.monotonic()
            wait_for(page, lambda: page.evaluate(VIEW_PICTURE_JS) not in (None, unpainted, held))
            paint_view_s = time.monotonic() - released
            wait_for(page, lambda: page.inner_text("[data-testid=message]") not in (edits, ""))
            paint_page_s = time.monotonic() - released
        finally:
            server.stop()
            context.close()
    return {"ct_shape_kji": [slices, 512, 512], "start_to_first_slice_s": round(start_s, 2),
            "paint_mouse_up_to_view_s": round(paint_view_s, 3), "paint_mouse_up_to_summary_s": round(paint_page_s, 3),
            "targets_s": {"start": START_TARGET_S, "paint_view": PAINT_TARGET_S}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=129)
    result = measure(parser.parse_args().slices)
    result["met"] = (result["start_to_first_slice_s"] <= START_TARGET_S
                     and result["paint_mouse_up_to_view_s"] <= PAINT_TARGET_S)
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
