"""The browser review in a real Chromium: ``liverresunet review`` on a real CT (the TotalSegmentator example series)
with a segmentation that has three lesions, driven through Playwright as a radiologist would.

Click a lesion row (the views move to it), reject it, paint a stroke with mouse events on the axial view, save,
and read the saved .seg.nrrd voxel by voxel (and the DICOM SEG Save writes beside it for this DICOM CT); kill the
server mid-session and resume from the recovery file; requests without the token are refused; a bad input ends
the command with one line and exit code 2 (an unreachable DICOMweb server too); a worklist is reviewed case after
case, its states kept; with --model the page is served first and shows the case once segmented; a series from a
real PACS (Orthanc) is reviewed from its URL and Save stores the SEG back there.

These run in the review environment (.venv-review: trame-slicer needs slicer-core < 5.12), the third pass of
scripts/test.sh, which sets LIVERRESUNET_REVIEW_PASS=1; the first pass skips them.
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import _missing

pytestmark = pytest.mark.review

if os.environ.get("LIVERRESUNET_REVIEW_PASS") != "1":
    pytest.skip("the browser review runs in scripts/test.sh's third pass (.venv-review)", allow_module_level=True)

from LiverResUNetLib.app.review.case import (  # noqa: E402
    DICOM_SEG_NAME,
    RECOVERY_NAME,
    SEGMENTATION_NAME,
)
from LiverResUNetLib.datasets.discovery import discover_cases  # noqa: E402
from LiverResUNetLib.dicomseg.reader import read_seg_labels  # noqa: E402
from LiverResUNetLib.io.dicom_series import find_series, read_series  # noqa: E402
from LiverResUNetLib.lesion_review import lesion_map, reject_lesion, review_summary  # noqa: E402
from LiverResUNetLib.scene.files import read_seg_nrrd  # noqa: E402
from LiverResUNetLib.scene.volume_nodes import lps_to_ras  # noqa: E402
from LiverResUNetLib.volume import LIVER, TUMOR, Volume  # noqa: E402
from review_fixture import CT_FOLDER, fixture_labels, write_fixture_segmentation  # noqa: E402
from review_phantom import phantom, write_phantom_worklist  # noqa: E402
from review_server import CHROMIUM, ReviewServer, launch_chromium, review_command, review_environment, start_review  # noqa: E402

STEP_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.is_file():
        _missing(f"{CHROMIUM} is not installed (Debian package chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review")
    return folder, write_fixture_segmentation(folder), folder / "output"


def ct_grid() -> Volume:
    return read_series(find_series(CT_FOLDER)[0].files)


def saved_labels(output: Path) -> np.ndarray:
    return read_seg_nrrd(output / SEGMENTATION_NAME, ct_grid()).array


def open_page(context, server: ReviewServer):
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.goto(server.url)
    page.wait_for_selector("[data-testid=lesion-1]")
    return page


def wait_message(page, text: str) -> None:
    page.wait_for_function("text => document.querySelector('[data-testid=message]').innerText.includes(text)",
                           arg=text)


def axial(page):
    return page.locator("[data-testid=views] img").first


def settled_picture(view) -> bytes:
    """The view's picture once two frames 0.5 s apart agree (the server streams renders as they come)."""
    previous = view.screenshot()
    for _ in range(40):
        time.sleep(0.5)
        current = view.screenshot()
        if current == previous:
            return current
        previous = current
    return previous


def paint_stroke(page) -> None:
    """A short vertical stroke, away from the centre of the axial view (where the rejected lesion was)."""
    box = axial(page).bounding_box()
    x, y = box["x"] + box["width"] / 2 - 60, box["y"] + box["height"] / 2 - 100
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x, y + 6 * step)
    page.mouse.up()


def test_review_a_case_in_the_browser_and_resume_after_a_crash(chromium, case_files, tmp_path):
    folder, segmentation, output = case_files
    original = fixture_labels()
    lesions = review_summary(original).lesions
    arguments = ("--input", CT_FOLDER, "--segmentation", segmentation, "--output", output)
    server = start_review(*arguments, log=tmp_path / "review.log")
    context = launch_chromium(chromium, tmp_path / "profile-1")
    try:
        page = open_page(context, server)
        assert page.inner_text("[data-testid=summary]").startswith(
            f"Liver {review_summary(original).liver_volume_ml:.1f} mL · 3 tumor(s)")
        before = settled_picture(axial(page))

        page.click("[data-testid=lesion-2]")  # the views centre on lesion 2
        expected = " ".join(f"{axis} {value:.1f}" for axis, value in zip("RAS", lps_to_ras(lesions[1].centroid_lps)))
        page.wait_for_function("text => document.querySelector('[data-testid=position]').innerText.endsWith(text)",
                               arg=expected)
        assert settled_picture(axial(page)) != before, "the axial view did not move to the lesion"

        page.click("[data-testid=reject]")
        wait_message(page, "reject lesion 2: done")
        assert "2 tumor(s)" in page.inner_text("[data-testid=summary]")

        page.evaluate("() => { window.trame.state.set('threshold_on', true); "
                      "window.trame.state.set('threshold_range', [80, 200]); }")  # threshold-limited paint
        page.click("[data-testid=paint]")
        page.wait_for_function("() => document.querySelector('[data-testid=paint]').classList"
                               ".contains('v-btn--variant-flat')")
        paint_stroke(page)
        wait_message(page, "paint: done")
        page.click("[data-testid=save]")
        wait_message(page, str(output / DICOM_SEG_NAME))  # the status line names both files
        assert str(output / SEGMENTATION_NAME) in page.inner_text("[data-testid=message]")

        saved = saved_labels(output)
        assert np.array_equal(read_seg_labels(output / DICOM_SEG_NAME, ct_grid()).array, saved)
        lesion_2 = lesion_map(original) == 2
        changed = saved != original.array
        stroke = changed & ~lesion_2
        assert np.all(saved[lesion_2] == LIVER), "the rejected lesion is gone: its voxels are liver"
        assert np.count_nonzero(stroke) > 0 and np.all(saved[stroke] == TUMOR), "the stroke painted tumor"
        stroke_hu = ct_grid().array[stroke]
        assert stroke_hu.min() >= 80 and stroke_hu.max() <= 200, "the paint kept to the HU range"
        stroke_slices = set(np.nonzero(stroke)[0].tolist())
        assert stroke_slices == {lesions[1].centroid_kji[0]}, "the stroke is on the axial slice the view shows"
        assert np.array_equal(saved[~(lesion_2 | stroke)], original.array[~(lesion_2 | stroke)]), "nothing else"

        page.click("[data-testid=add]")  # one click at the view's centre: where lesion 2 was, healthy liver in this CT
        box = axial(page).bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        wait_message(page, "of the liver around it")  # the seed was found on the liver, and refused as no lesion

        page.click("[data-testid=lesion-1]")
        page.keyboard.press("r")  # reject lesion 1 by its shortcut; then the server dies before any Save
        wait_message(page, "reject lesion 1: done")
        recovered = np.load(output / RECOVERY_NAME)["labels"]
        assert np.all(recovered[lesion_map(original) == 1] == LIVER)
        server.kill()
    finally:
        context.close()
        server.stop()

    assert np.array_equal(saved_labels(output), saved), "the last Save's file is whole and unchanged"
    dataset = tmp_path / "dataset"
    server = start_review(*arguments, "--dataset", dataset, "--case-id", "fixture.1", log=tmp_path / "review.log")
    context = launch_chromium(chromium, tmp_path / "profile-2")
    try:
        page = open_page(context, server)
        page.click("[data-testid=resume]")
        wait_message(page, "resume unsaved edits: done")
        assert "1 tumor(s)" in page.inner_text("[data-testid=summary]")
        page.click("[data-testid=save]")
        wait_message(page, "saved")
        assert np.array_equal(saved_labels(output), recovered), "the recovery file restored every edit"
        page.click("[data-testid=training-case]")
        wait_message(page, "saved as training case fixture.1")
        [training_case] = discover_cases(dataset)
        assert np.array_equal(training_case.load().label.array, recovered)
    finally:
        context.close()
        server.stop()


def test_requests_without_the_token_are_refused(case_files, tmp_path):
    folder, segmentation, output = case_files
    server = start_review("--input", CT_FOLDER, "--segmentation", segmentation, "--output", tmp_path / "out",
                          log=tmp_path / "review.log")
    try:
        assert server.url.startswith("http://127.0.0.1:") and "token=" in server.url
        for refused in ("/index.html", "/index.html?token=wrong", "/ws", "/"):
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(server.base + refused, timeout=10)
            assert error.value.code == 403, refused
        with urllib.request.urlopen(server.url, timeout=10) as answer:
            assert answer.status == 200
    finally:
        server.stop()


@pytest.mark.parametrize("where", ["input", "host", "worklist", "url"])
def test_a_bad_input_ends_before_serving_with_one_line_and_exit_code_2(case_files, tmp_path, where):
    _, segmentation, _ = case_files
    missing = tmp_path / "no-such-ct"
    arguments = ["--input", missing if where == "input" else CT_FOLDER, "--segmentation", segmentation,
                 "--output", tmp_path / "out"] + (["--host", "0.0.0.0"] if where == "host" else [])
    reason = f"{missing}: does not exist" if where == "input" else "0.0.0.0: listening beyond this computer needs"
    if where == "worklist":  # a case without its segmentation
        worklist = write_phantom_worklist(tmp_path / "worklist")
        (worklist / "case-2" / "segmentation.nii.gz").unlink()
        arguments = ["--worklist", worklist, "--output", tmp_path / "out"]
        reason = f"{worklist / 'case-2'}: a worklist case needs exactly one segmentation"
    if where == "url":  # a DICOMweb series URL on a server that does not answer
        from orthanc_server import free_port

        url = f"http://127.0.0.1:{free_port()}/dicom-web/studies/1.2.3/series/1.2.3.4"
        arguments = ["--input", url, "--output", tmp_path / "out"]
        reason = f"{url}: cannot reach the DICOMweb server"
    result = subprocess.run(review_command(*arguments), capture_output=True, text=True, timeout=300,
                            env=review_environment())
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(f"error: {reason}")
    assert not (tmp_path / "out").exists()


def worklist_row(page, name: str, state: str) -> None:
    page.wait_for_function("([name, state]) => document.querySelector(`[data-testid=case-${name}]`)"
                           ".innerText.includes(state)", arg=[name, state])


def test_a_worklist_is_reviewed_case_after_case_and_its_states_survive_a_restart(chromium, tmp_path):
    worklist, output = write_phantom_worklist(tmp_path / "worklist"), tmp_path / "reviewed"
    ct, labels = phantom()
    server = start_review("--worklist", worklist, "--output", output, log=tmp_path / "review.log")
    context = launch_chromium(chromium, tmp_path / "profile-1")
    try:
        page = open_page(context, server)
        worklist_row(page, "case-1", "to review")
        page.click("[data-testid=accept]")  # case 1 as the model left it
        worklist_row(page, "case-1", "accepted")
        page.click("[data-testid=next-case]")
        wait_message(page, "case case-2")
        page.click("[data-testid=lesion-2]")
        page.click("[data-testid=reject]")
        wait_message(page, "reject lesion 2: done")
        page.click("[data-testid=accept]")
        worklist_row(page, "case-2", "corrected")
    finally:
        context.close()
        server.stop()
    assert json.loads((output / "worklist.json").read_text())["states"] == {"case-1": "accepted",
                                                                           "case-2": "corrected"}
    assert np.array_equal(read_seg_nrrd(output / "case-1" / SEGMENTATION_NAME, ct).array, labels.array)
    assert np.array_equal(read_seg_nrrd(output / "case-2" / SEGMENTATION_NAME, ct).array,
                          reject_lesion(labels, 2).array)
    server = start_review("--worklist", worklist, "--output", output, log=tmp_path / "review.log")
    context = launch_chromium(chromium, tmp_path / "profile-2")
    try:
        page = open_page(context, server)  # a restart: the states are those kept
        worklist_row(page, "case-1", "accepted")
        worklist_row(page, "case-2", "corrected")
    finally:
        context.close()
        server.stop()


def test_with_a_model_the_page_is_served_first_and_shows_the_case_once_segmented(chromium, tmp_path,
                                                                                  tiny_model_path):
    from LiverResUNetLib.io.image_file import write_image

    ct_path = write_image(phantom()[0], tmp_path / "ct.nrrd")
    server = start_review("--input", ct_path, "--model", tiny_model_path, "--output", tmp_path / "out",
                          log=tmp_path / "review.log")
    context = launch_chromium(chromium, tmp_path / "profile")
    try:
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        page.goto(server.url)
        page.wait_for_function("() => { const summary = document.querySelector('[data-testid=summary]'); "
                               "return summary && /Liver \\d/.test(summary.innerText) && "
                               "!document.querySelector('[data-testid=progress]'); }")
        assert "[100%] done" in (tmp_path / "review.log").read_text(), "the progress on stderr too"
    finally:
        context.close()
        server.stop()


def test_a_series_from_a_pacs_is_reviewed_and_its_seg_stored_back(chromium, orthanc, tmp_path, monkeypatch):
    import pydicom

    from LiverResUNetLib.dicomseg.writer import write_seg
    from LiverResUNetLib.dicomweb.connection import PASSWORD_VARIABLE, USER_VARIABLE
    from LiverResUNetLib.io.dicom_series import read_series_headers
    from orthanc_server import PASSWORD, USER
    from review_fixture import write_pacs_ready_ct

    monkeypatch.setenv(USER_VARIABLE, USER)  # the review's child process inherits them, as from a user's shell
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    folder = write_pacs_ready_ct(tmp_path / "ct")
    files = find_series(folder)[0].files
    stack, series_uid, _ = read_series_headers(files)
    write_seg(fixture_labels(), stack, series_uid, {"name": "the model of the test"}, tmp_path / "seg.dcm")
    orthanc.upload([*files, tmp_path / "seg.dcm"])
    study = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    first_seg = pydicom.dcmread(tmp_path / "seg.dcm", stop_before_pixels=True).SeriesInstanceUID
    url = f"{orthanc.dicomweb}/studies/{study}/series/{series_uid}"
    server = start_review("--input", url, "--output", tmp_path / "out", log=tmp_path / "review.log")
    context = launch_chromium(chromium, tmp_path / "profile")
    try:
        page = open_page(context, server)
        page.click("[data-testid=lesion-2]")
        page.click("[data-testid=reject]")
        wait_message(page, "reject lesion 2: done")
        page.click("[data-testid=save]")
        wait_message(page, f"stored in study {study} on {orthanc.dicomweb}")
    finally:
        context.close()
        server.stop()
    [stored] = [uid for modality, uid, _ in orthanc.series_of_study(study) if modality == "SEG" and uid != first_seg]
    (tmp_path / "stored.dcm").write_bytes(orthanc.series_file(stored))
    labels = read_seg_labels(tmp_path / "stored.dcm", read_series(folder)).array
    assert np.array_equal(labels, reject_lesion(fixture_labels(), 2).array)
