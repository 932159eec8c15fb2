"""Apply's way of segmenting: the network in a child process, the result built in short steps.

The GUI calls ``SegmentationRun.advance()`` from a timer; here a loop does. Cancel at every stage and every error
leave the scene as it was, end the child process and remove its temporary files; the result is the one the
in-process ``SegmentLiverLogic.process`` gives.
"""

import time

import numpy as np
import pytest
import slicer

from dicom_factory import phantom_hu, write_series
from LiverResUNetLib.inference.background import PredictionFailed
from LiverResUNetLib.inference.postprocessing import PostprocessOptions
from LiverResUNetLib.io.dicom_series import find_series
from LiverResUNetLib.scene.files import read_dicom_series_node
from LiverResUNetLib.scene.logic import SegmentationRun, SegmentLiverLogic, SegmentOptions
from python_launcher import process_is_running, write_launcher

OPTIONS = SegmentOptions(postprocess=PostprocessOptions(min_tumor_mm3=0.0))


@pytest.fixture
def scene_with_ct(tmp_path):
    scene = slicer.vtkMRMLScene()
    hu = np.clip(phantom_hu((6, 24, 28), low=-200, high=300), -1024, 3071).astype(np.int16)
    write_series(tmp_path / "ct", hu, description="CT abdomen")
    [series] = find_series(tmp_path / "ct")
    return scene, read_dicom_series_node(scene, series)


def node_ids(scene):
    return [scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())]


def run_to_end(run, until=lambda run: run.done):
    """Advance as the GUI's timer does until ``until(run)``; returns the (fraction, message) pairs seen."""
    seen = []
    for _ in range(6000):
        if until(run):
            return seen
        seen.append(run.advance())
        time.sleep(0.01)
    raise AssertionError("the run did not end")


def test_background_run_gives_the_in_process_result(scene_with_ct, tiny_model_path):
    scene, volume = scene_with_ct
    logic = SegmentLiverLogic(scene)
    run = SegmentationRun(logic, volume, tiny_model_path, "cpu", OPTIONS)
    assert run.prediction.process.poll() is None, "the constructor does not wait for the network"
    seen = run_to_end(run)
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"building the segments", "computing the 3D surfaces", "measuring"} <= \
        {message for _, message in seen}
    assert not run.prediction.folder.exists(), "the temporary files are removed"
    background = logic.labelVolume(run.segmentation, volume)
    in_process = logic.labelVolume(logic.process(volume, tiny_model_path, "cpu", OPTIONS), volume)
    np.testing.assert_array_equal(background.array, in_process.array)
    assert len(np.unique(background.array)) > 1
    assert scene.IsNodePresent(run.segmentation) and logic.resultsTable(run.segmentation) is not None


@pytest.mark.parametrize("stage", ["prediction", "result steps"])
def test_cancel_at_any_stage_leaves_the_scene_and_no_files(scene_with_ct, tiny_model_path, stage):
    scene, volume = scene_with_ct
    before = node_ids(scene)
    run = SegmentationRun(SegmentLiverLogic(scene), volume, tiny_model_path, "cpu", OPTIONS)
    if stage == "prediction":
        run.advance()
    else:
        run_to_end(run, until=lambda run: run.result is not None and len(run.result.steps) == 1)
    run.cancel()
    assert run.prediction.process.poll() is not None, "the child process has ended"
    assert not run.prediction.folder.exists()
    assert node_ids(scene) == before and not run.done


def test_a_failed_prediction_names_the_reason_and_leaves_the_scene(scene_with_ct, tmp_path):
    scene, volume = scene_with_ct
    not_a_model = tmp_path / "notes.pth"
    not_a_model.write_text("not a model")
    before = node_ids(scene)
    run = SegmentationRun(SegmentLiverLogic(scene), volume, not_a_model, "cpu", OPTIONS)
    with pytest.raises(PredictionFailed, match="notes.pth"):
        run_to_end(run)
    assert node_ids(scene) == before and not run.prediction.folder.exists()


def test_an_input_removed_during_the_run_adds_nothing(scene_with_ct, tiny_model_path):
    scene, volume = scene_with_ct
    run = SegmentationRun(SegmentLiverLogic(scene), volume, tiny_model_path, "cpu", OPTIONS)
    run_to_end(run, until=lambda run: run.result is not None)
    scene.RemoveNode(volume)
    before = node_ids(scene)
    with pytest.raises(RuntimeError, match="removed from the scene"):
        run_to_end(run)
    assert node_ids(scene) == before


def test_cancel_ends_the_interpreter_that_a_launcher_started(scene_with_ct, tiny_model_path, tmp_path):
    """Inside Slicer the child is PythonSlicer, which runs the network in its own child, python-real: Cancel must
    end both (checked by process id), not leave the interpreter running on the CPU or the GPU."""
    import psutil

    scene, volume = scene_with_ct
    run = SegmentationRun(SegmentLiverLogic(scene), volume, tiny_model_path, "cpu", OPTIONS,
                          python=str(write_launcher(tmp_path / "bin")))
    launcher = psutil.Process(run.prediction.process.pid)
    for _ in range(500):
        interpreters = launcher.children(recursive=True)
        if interpreters:
            break
        time.sleep(0.01)
    assert interpreters, "the launcher started the interpreter"
    run.cancel()
    pids = [launcher.pid, *(process.pid for process in interpreters)]
    assert [pid for pid in pids if process_is_running(pid)] == []


def test_the_child_opens_no_console_window_on_windows(monkeypatch):
    """What is built for os.name == "nt" (Slicer's launchConsoleProcess idiom); subprocess lacks these on Linux."""
    import subprocess

    from LiverResUNetLib.inference.child_process import hidden_console_options

    class STARTUPINFO:  # subprocess.STARTUPINFO on Windows: the window shows unless told otherwise
        dwFlags, wShowWindow = 0, 1

    for name, value in (("STARTUPINFO", STARTUPINFO), ("STARTF_USESHOWWINDOW", 1), ("SW_HIDE", 0),
                        ("CREATE_NO_WINDOW", 0x08000000)):
        monkeypatch.setattr(subprocess, name, value, raising=False)
    options = hidden_console_options("nt")
    assert options["startupinfo"].dwFlags & 1 and options["startupinfo"].wShowWindow == 0
    assert options["creationflags"] == 0x08000000
    assert hidden_console_options("posix") == {}


def test_the_ct_goes_to_the_child_uncompressed(scene_with_ct, tiny_model_path):
    """Writing it runs on Slicer's GUI thread: compressing a whole CT froze the window for seconds."""
    scene, volume = scene_with_ct
    run = SegmentationRun(SegmentLiverLogic(scene), volume, tiny_model_path, "cpu", OPTIONS)
    try:
        header = (run.prediction.folder / "input.nrrd").read_bytes()[:2000].split(b"\n\n")[0]
    finally:
        run.cancel()
    assert b"encoding: raw" in header


def test_the_3d_surfaces_are_built_one_segment_per_step_and_cancel_acts_between(scene_with_ct, tiny_model_path):
    """The closed-surface conversion holds Python's lock (VTK), so it is split by segment: Cancel can act
    between the liver's and the tumors'; the surfaces are those of the whole-segmentation conversion."""
    from LiverResUNetLib.scene.segmentation_nodes import CLOSED_SURFACE, add_closed_surfaces, labels_to_segmentation

    scene, volume = scene_with_ct
    before = node_ids(scene)
    run = SegmentationRun(SegmentLiverLogic(scene), volume, tiny_model_path, "cpu", OPTIONS)
    run_to_end(run, until=lambda run: run.result is not None)
    surface_steps = [message for _, message, _ in run.result.steps if message == "computing the 3D surfaces"]
    assert len(surface_steps) == 2
    run_to_end(run, until=lambda run: run.result.steps[0][1] == "computing the 3D surfaces")
    run.advance()
    assert run.result.steps[0][1] == "computing the 3D surfaces", "one segment's surface done, the other's next"
    run.cancel()
    assert node_ids(scene) == before

    run = SegmentationRun(SegmentLiverLogic(scene), volume, tiny_model_path, "cpu", OPTIONS)
    run_to_end(run)
    whole = labels_to_segmentation(run.result.labels, closed_surface=False)
    add_closed_surfaces(whole)
    result = run.segmentation.GetSegmentation()
    assert result.ContainsRepresentation(CLOSED_SURFACE)
    for segment_id in ("Liver", "LiverTumor"):
        ours = result.GetSegment(segment_id).GetRepresentation(CLOSED_SURFACE)
        theirs = whole.GetSegmentation().GetSegment(segment_id).GetRepresentation(CLOSED_SURFACE)
        assert ours.GetNumberOfPoints() == theirs.GetNumberOfPoints() and ours.GetBounds() == theirs.GetBounds()
