"""DICOM SEG out (``segment --output x.dcm``) and in (a SEG read onto its CT): real series, dciodvfy, refusals."""

import subprocess

import highdicom
import numpy as np
import pydicom
import pytest

from LiverResUNetLib.cli import main
from LiverResUNetLib.datasets.safe_zip import extracted
from LiverResUNetLib.dicomseg import highdicom_import
from LiverResUNetLib.dicomseg.reader import read_seg_labels
from LiverResUNetLib.dicomseg.writer import seg_series_description, write_seg
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.dicom_series import read_series, read_series_headers
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.model.model_file import read_card
from LiverResUNetLib.volume import LIVER, TUMOR

LIVER_TYPE, NEOPLASM_TYPE = ("10200004", "SCT"), ("108369006", "SCT")


def segment(*args):
    return main(["segment", *map(str, args), "--device", "cpu"])


def validator_errors(dciodvfy, path):
    """dciodvfy's 'Error' lines for ``path`` (its warnings, e.g. on the source's patient name, are kept out)."""
    result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    assert any(line.strip() == "Segmentation" for line in lines), lines  # it did validate against the SEG IOD
    return [line for line in lines if line.startswith("Error")]


def highdicom_labels(path, ct):
    """The SEG read back by highdicom, one label per CT instance in k order (segment numbers 1 liver, 2 tumor)."""
    seg = highdicom.seg.segread(str(path))
    return seg.get_pixels_by_source_instance(source_sop_instance_uids=ct.metadata["sop_instance_uids"],
                                             combine_segments=True).astype(np.uint8)


def check_seg_of_series(dciodvfy, tmp_path, series_folder, model_path, capsys):
    """segment --output .dcm and .nii.gz on one DICOM series; the SEG validates and equals the label map.

    Without post-processing the tiny network's labels hold liver and tumor on these small series.
    """
    seg_path, label_path = tmp_path / "liver_seg.dcm", tmp_path / "liver.nii.gz"
    assert segment("--model", model_path, "--input", series_folder, "--output", seg_path, "--no-postprocessing") == 0
    notes = capsys.readouterr().err
    assert segment("--model", model_path, "--input", series_folder, "--output", label_path,
                   "--no-postprocessing") == 0
    assert validator_errors(dciodvfy, seg_path) == []
    ct, labels = read_series(series_folder), read_image(label_path).array
    assert {LIVER, TUMOR} <= set(np.unique(labels).tolist())  # both segments are really written and compared
    np.testing.assert_array_equal(highdicom_labels(seg_path, ct), labels)
    np.testing.assert_array_equal(read_seg_labels(seg_path, ct).array, labels)

    seg, card = pydicom.dcmread(seg_path), read_card(model_path)
    first = read_series_headers(series_folder)[0].headers[0]
    assert seg.Modality == "SEG" and seg.SeriesInstanceUID != ct.metadata["series_uid"]
    assert seg.PatientID == first.PatientID
    if first.get("StudyInstanceUID"):
        assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.metadata["series_uid"]
    assert {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} \
        == set(ct.metadata["sop_instance_uids"])
    assert seg.SeriesDescription == seg_series_description(card)
    descriptions = {item.SegmentLabel: item for item in seg.SegmentSequence}
    liver, tumor = descriptions["Liver"], descriptions["Liver tumor"]
    code = lambda item, keyword: (item[keyword][0].CodeValue, item[keyword][0].CodingSchemeDesignator)  # noqa: E731
    assert code(liver, "SegmentedPropertyTypeCodeSequence") == LIVER_TYPE
    assert code(liver, "SegmentedPropertyCategoryCodeSequence") == ("123037004", "SCT")
    assert code(tumor, "SegmentedPropertyTypeCodeSequence") == NEOPLASM_TYPE
    assert code(tumor, "SegmentedPropertyCategoryCodeSequence") == ("49755003", "SCT")
    assert code(tumor, "AnatomicRegionSequence") == LIVER_TYPE
    assert liver.SegmentAlgorithmName == "LiverResUNet" and liver.SegmentAlgorithmType == "AUTOMATIC"
    empty_slices = sum(not (labels[k] == value).any() for k in range(labels.shape[0]) for value in (LIVER, TUMOR))
    assert seg.NumberOfFrames == 2 * labels.shape[0] - empty_slices  # one frame per non-empty slice and segment
    return notes


@pytest.mark.parametrize("fixture", ["dcmqi-ct-3slice", "totalsegmentator-example/ct_dicom"])
def test_seg_of_real_fixture_series_validates_and_reads_back_as_the_label_map(dciodvfy, tmp_path, real_fixtures,
                                                                              fixture, tiny_model_path, capsys):
    notes = check_seg_of_series(dciodvfy, tmp_path, real_fixtures / fixture, tiny_model_path, capsys)
    if fixture.startswith("totalsegmentator"):  # anonymised: study and series UIDs emptied, said so
        assert "has no StudyInstanceUID" in notes and "has no SeriesInstanceUID" in notes


@pytest.mark.parametrize("patient", ["3Dircadb1.1", "3Dircadb1.7"])
def test_seg_of_real_ircadb_patients_gets_a_frame_of_reference_validates_and_reads_back(
        dciodvfy, tmp_path, real_patients, patient, tiny_model_path, capsys):
    folder = real_patients / patient
    if (folder / "PATIENT_DICOM").is_dir():
        notes = check_seg_of_series(dciodvfy, tmp_path, folder / "PATIENT_DICOM", tiny_model_path, capsys)
    else:
        with extracted(folder / "PATIENT_DICOM.zip") as unzipped:
            notes = check_seg_of_series(dciodvfy, tmp_path, unzipped, tiny_model_path, capsys)
    assert "has no FrameOfReferenceUID" in notes and "derived from the study and series UIDs" in notes


def test_dcmqi_seg_reads_as_its_label_map(real_fixtures):
    folder = real_fixtures / "dcmqi-ct-3slice"
    labels = read_seg_labels(folder / "liver_seg.dcm", read_series(folder))
    expected = read_image(folder / "liver_seg.nrrd").array
    assert expected.any()
    np.testing.assert_array_equal(labels.array, np.where(expected > 0, LIVER, 0))


@pytest.fixture
def written_seg(tmp_path, real_fixtures):
    """A SEG written for the 3-slice CT: liver on every slice, a tumor on the middle one; and that CT."""
    folder = real_fixtures / "dcmqi-ct-3slice"
    ct = read_series(folder)
    labels = np.zeros(ct.shape, dtype=np.uint8)
    labels[:, 200:300, 150:350] = LIVER
    labels[1, 240:260, 240:260] = TUMOR
    stack, series_uid, _ = read_series_headers(folder)
    write_seg(ct.with_array(labels), stack, series_uid, {"software": {"liverresunet": "test"}}, tmp_path / "s.dcm")
    return tmp_path / "s.dcm", ct, labels


def rewrite(path, change):
    seg = pydicom.dcmread(path)
    change(seg)
    seg.save_as(str(path))
    return path


def test_written_seg_reads_back_exactly(written_seg):
    path, ct, labels = written_seg
    np.testing.assert_array_equal(read_seg_labels(path, ct).array, labels)


def test_seg_of_another_series_is_refused(written_seg, real_fixtures):
    path, _, _ = written_seg
    other = read_series(real_fixtures / "totalsegmentator-example" / "ct_dicom")
    with pytest.raises(InputError, match=r"s\.dcm: this DICOM SEG was made from series .*not from the CT series"):
        read_seg_labels(path, other)


def test_seg_with_a_foreign_frame_is_refused(written_seg):
    path, ct, _ = written_seg

    def shift(seg):
        position = seg.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0]
        position.ImagePositionPatient = [float(v) for v in position.ImagePositionPatient[:2]] + [
            float(position.ImagePositionPatient[2]) + 0.5]

    with pytest.raises(InputError, match="frame 2 .* does not lie on a slice of the CT"):
        read_seg_labels(rewrite(path, shift), ct)


def test_seg_of_another_geometry_is_refused(written_seg):
    path, ct, _ = written_seg

    def resize(seg):
        seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = [0.9, 0.9]

    with pytest.raises(InputError, match="frame 1 has pixels of .* another geometry"):
        read_seg_labels(rewrite(path, resize), ct)


def test_seg_frame_from_an_instance_missing_in_the_ct_is_refused(written_seg):
    path, ct, _ = written_seg

    def foreign(seg):
        source = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
        source.ReferencedSOPInstanceUID = pydicom.uid.generate_uid()

    with pytest.raises(InputError, match=r"frame 1 lies on CT slice \d but was derived from an instance that is not"):
        read_seg_labels(rewrite(path, foreign), ct)


def test_seg_with_fewer_frames_than_it_describes_is_refused(written_seg):
    path, ct, _ = written_seg

    def drop(seg):
        del seg.PerFrameFunctionalGroupsSequence[-1]

    with pytest.raises(InputError, match="missing frames"):
        read_seg_labels(rewrite(path, drop), ct)


def test_a_ct_file_is_not_a_seg(real_fixtures):
    folder = real_fixtures / "dcmqi-ct-3slice"
    with pytest.raises(InputError, match=r"01\.dcm: is not a DICOM SEG"):
        read_seg_labels(folder / "01.dcm", read_series(folder))


def test_seg_output_for_an_image_file_input_fails_that_case_clearly(tmp_path, real_fixtures, tiny_model_path,
                                                                     capsys):
    image = real_fixtures / "dcmqi-ct-3slice" / "liver_seg.nrrd"
    assert segment("--model", tiny_model_path, "--input", image, "--output", tmp_path / "x.dcm") == 1
    assert "a DICOM SEG is written for a DICOM series input only" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_old_pydicom_gets_one_clear_message_before_any_work(tmp_path, real_fixtures, tiny_model_path, monkeypatch,
                                                            capsys):
    monkeypatch.setattr(pydicom, "__version__", "2.4.4")
    with pytest.raises(InputError, match="needs pydicom >= 3.0.1 .* this Python has pydicom 2.4.4"):
        highdicom_import.import_highdicom()
    assert segment("--model", tiny_model_path, "--input", real_fixtures / "dcmqi-ct-3slice",
                   "--output", tmp_path / "x.dcm") == 2
    assert capsys.readouterr().err.startswith("error: writing DICOM SEG needs pydicom >= 3.0.1")
