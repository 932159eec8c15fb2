"""The README's pictures of the browser review (docs/review-*.png), made from the TotalSegmentator example CT in
Testing/Data (Apache-2.0) with three placed lesions (Testing/review_fixture.py): never from a patient whose licence
forbids derived copies. Run in the review environment: ``.venv-review/bin/python scripts/make_review_screenshots.py``.
"""

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing"))

from review_fixture import CT_FOLDER, write_fixture_segmentation  # noqa: E402
from review_server import launch_chromium, start_review  # noqa: E402

DOCS = REPO / "docs"


def settle(page, seconds: float = 3.0) -> None:
    page.wait_for_timeout(seconds * 1000)


def main() -> int:
    from playwright.sync_api import sync_playwright

    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary, sync_playwright() as playwright:
        folder = Path(temporary)
        segmentation = write_fixture_segmentation(folder)
        server = start_review("--input", CT_FOLDER, "--segmentation", segmentation, "--output", folder / "out",
                              log=folder / "review.log")
        context = launch_chromium(playwright, folder / "profile")
        try:
            page = context.new_page()
            page.goto(server.url)
            page.wait_for_selector("[data-testid=lesion-1]", timeout=60_000)
            page.click("[data-testid=lesion-1]")
            settle(page)
            page.screenshot(path=str(DOCS / "review-page.png"))
        finally:
            context.close()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
