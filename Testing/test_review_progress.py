"""The review page while ``--model`` segments the CT: the server is up first, the page's progress bar follows the
model's run (in a worker thread), then the page shows the case. In-process (trame-slicer's real page and scene,
driven through its event loop, no browser): the bar's values are the page's state, which the browser renders.

Runs in the review environment (.venv-review), the third pass of scripts/test.sh.
"""

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.review

if os.environ.get("LIVERRESUNET_REVIEW_PASS") != "1":
    pytest.skip("the browser review runs in scripts/test.sh's third pass (.venv-review)", allow_module_level=True)

from LiverResUNetLib.app.review.case import ReviewCase  # noqa: E402
from LiverResUNetLib.io.image_file import write_image  # noqa: E402
from review_phantom import phantom  # noqa: E402


def test_the_page_shows_the_models_progress_then_the_case(tmp_path: Path, tiny_model_path: Path) -> None:
    from LiverResUNetLib.app.review.page import ReviewPage, new_slicer_app

    ct_path = write_image(phantom()[0], tmp_path / "ct.nrrd")
    app = new_slicer_app()
    page = ReviewPage(app)
    pending = ReviewCase.prepare(app.scene, ct_path, None, tmp_path / "out", tiny_model_path)
    assert pending.labels is None
    shown: list[tuple[bool, int, str]] = []
    show_progress = page.show_progress

    def record(fraction: float, message: str) -> None:
        show_progress(fraction, message)
        shown.append((page.state.loading, page.state.load_progress, page.state.load_message))

    page.show_progress = record  # type: ignore[method-assign]
    reported: list[tuple[float, str]] = []

    async def serve() -> None:
        page.segment_then_show(pending, lambda fraction, message: reported.append((fraction, message)))
        assert page.state.loading and not hasattr(page, "case"), "the page is served before the model ran"
        assert page._segmenting is not None
        await page._segmenting

    asyncio.run(serve())
    assert shown[0] == (True, 0, "segmenting the CT") and len(shown) > 3
    values = [value for _, value, _ in shown]
    assert values == sorted(values) and values[-1] == 100 and shown[-1][2] == "done"
    assert reported[-1] == (1.0, "done"), "stderr's reporter gets the same progress"
    assert not page.state.loading and page.case.labels.shape == phantom()[0].shape
    expected = pending.segment()
    assert np.array_equal(page.case.labels.array, expected.array) and set(np.unique(expected.array)) <= {0, 1, 2}
    assert page.state.liver_ml == f"{page.case.summary().liver_volume_ml:.1f}", "the summary of the segmented case"
    page.update_surfaces()  # the 3D view's model nodes (scene.surface_models)
    assert np.count_nonzero(expected.array == 1) > 0 and page._models["Liver"].GetPolyData().GetNumberOfPoints() > 0
