"""segment from and to a real PACS (Orthanc with its DICOMweb plugin): one series, the batch, and bad input."""

import numpy as np
import pydicom
import pytest

from dicom_factory import phantom_hu, write_series
from LiverResUNetLib.cli import main
from LiverResUNetLib.dicomseg.reader import read_seg_labels
from LiverResUNetLib.dicomseg.writer import seg_series_description
from LiverResUNetLib.dicomweb.connection import PASSWORD_VARIABLE, USER_VARIABLE, parse_location
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.model.model_file import read_card
from orthanc_server import PASSWORD, USER, free_port


@pytest.fixture
def pacs(orthanc, monkeypatch):
    """The running Orthanc, with the credentials in the environment as a user would set them."""
    monkeypatch.setenv(USER_VARIABLE, USER)
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    return orthanc


def segment(*args):
    return main(["segment", *map(str, args), "--device", "cpu", "--no-postprocessing"])


def upload_series(pacs, paths):
    """Upload a series; returns its DICOMweb URL and its UIDs."""
    pacs.upload(paths)
    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    study, series = first.StudyInstanceUID, first.SeriesInstanceUID
    return f"{pacs.dicomweb}/studies/{study}/series/{series}", study, series


def phantom_series(folder, key, slices=5):
    return write_series(folder / key, phantom_hu((slices, 24, 28), seed=len(key)), series=key, patient_id=key)


def stored_seg_labels(pacs, study, ct, tmp_path, card):
    """The one SEG this model stored in ``study``, read onto ``ct``."""
    segs = [uid for modality, uid, description in pacs.series_of_study(study)
            if modality == "SEG" and description == seg_series_description(card)]
    assert len(segs) == 1, pacs.series_of_study(study)
    path = tmp_path / "stored_seg.dcm"
    path.write_bytes(pacs.series_file(segs[0]))
    return read_seg_labels(path, ct).array


def test_a_series_from_the_pacs_is_segmented_and_its_seg_stored_in_its_study(pacs, real_fixtures, tmp_path,
                                                                              tiny_model_path):
    folder = real_fixtures / "dcmqi-ct-3slice"
    url, study, _ = upload_series(pacs, sorted(folder.glob("0*.dcm")))
    assert segment("--model", tiny_model_path, "--input", url, "--output", pacs.dicomweb) == 0
    assert segment("--model", tiny_model_path, "--input", folder, "--output", tmp_path / "local.nii.gz") == 0
    expected = read_image(tmp_path / "local.nii.gz").array
    assert len(np.unique(expected)) > 1
    labels = stored_seg_labels(pacs, study, read_series(folder), tmp_path, read_card(tiny_model_path))
    np.testing.assert_array_equal(labels, expected)


def test_the_batch_segments_each_ct_series_once_and_goes_on_after_a_failure(pacs, tmp_path, tiny_model_path,
                                                                             capsys):
    _, first_study, _ = upload_series(pacs, phantom_series(tmp_path, "first"))
    _, second_study, _ = upload_series(pacs, phantom_series(tmp_path, "second"))
    partial = phantom_series(tmp_path, "partial", slices=6)
    upload_series(pacs, partial[:2] + partial[3:])  # a slice missing in the middle
    assert segment("--model", tiny_model_path, "--input", pacs.dicomweb, "--output", pacs.dicomweb) == 1
    output = capsys.readouterr()
    assert "2 of 3 cases segmented, 1 failed" in output.out
    assert "missing" in output.err and "/studies/" in output.err
    card = read_card(tiny_model_path)
    for study in (first_study, second_study):
        assert [m for m, _, _ in pacs.series_of_study(study)].count("SEG") == 1
    count = pacs.instance_count()

    assert segment("--model", tiny_model_path, "--input", pacs.dicomweb, "--output", pacs.dicomweb) == 1
    output = capsys.readouterr()
    assert output.err.count("skipped: already segmented by this model") == 2
    assert "0 of 1 cases segmented, 1 failed" in output.out
    assert pacs.instance_count() == count
    ct = read_series(tmp_path / "first")
    assert stored_seg_labels(pacs, first_study, ct, tmp_path, card).shape == ct.shape


def bad_input(capsys, *args):
    """Exit code and the one error line of a segment run that must fail."""
    code = segment(*args)
    error = capsys.readouterr().err.strip().splitlines()
    return code, error[-1]


def test_bad_dicomweb_input_is_one_line_exit_2_and_nothing_stored(pacs, tmp_path, tiny_model_path, capsys,
                                                                  monkeypatch):
    url, study, series = upload_series(pacs, phantom_series(tmp_path, "ct"))
    count = pacs.instance_count()
    model = ("--model", tiny_model_path)

    unreachable = f"http://127.0.0.1:{free_port()}/dicom-web"
    code, line = bad_input(capsys, *model, "--input", f"{unreachable}/studies/{study}/series/{series}",
                           "--output", unreachable)
    assert code == 2 and line.startswith(f"error: {unreachable}/studies/")
    assert "cannot reach the DICOMweb server" in line and "refused" in line.lower()

    missing = f"{pacs.dicomweb}/studies/{study}/series/1.2.3.4"
    code, line = bad_input(capsys, *model, "--input", missing, "--output", pacs.dicomweb)
    assert code == 2 and line == f"error: {missing}: no such series on the server"

    code, line = bad_input(capsys, *model, "--input", f"{pacs.dicomweb}/studies/1.2.3/series/1.2.3.4",
                           "--output", pacs.dicomweb)
    assert code == 2 and line.endswith("no such series on the server")

    not_ct = phantom_series(tmp_path, "mr")
    for path in not_ct:
        dataset = pydicom.dcmread(path)
        dataset.Modality = "MR"
        dataset.save_as(path)
    mr_url, _, _ = upload_series(pacs, not_ct)
    count = pacs.instance_count()
    code, line = bad_input(capsys, *model, "--input", mr_url, "--output", pacs.dicomweb)
    assert code == 2 and line == f"error: {mr_url}: the series is MR, not CT"

    partial = phantom_series(tmp_path, "partial", slices=6)
    partial_url, _, _ = upload_series(pacs, partial[:2] + partial[3:])
    count = pacs.instance_count()
    code, line = bad_input(capsys, *model, "--input", partial_url, "--output", pacs.dicomweb)
    assert code == 2 and line.startswith(f"error: {partial_url}") and "missing" in line

    monkeypatch.delenv(USER_VARIABLE)
    code, line = bad_input(capsys, *model, "--input", url, "--output", pacs.dicomweb)
    assert code == 2 and "refused access" in line and "HTTP 401" in line and USER_VARIABLE in line
    assert pacs.instance_count() == count  # nothing half-stored by any of them


def test_credentials_come_from_a_file_never_the_command_line(pacs, tmp_path, tiny_model_path, monkeypatch):
    from LiverResUNetLib.dicomweb.connection import CREDENTIALS_FILE_VARIABLE, credentials

    monkeypatch.delenv(USER_VARIABLE)
    secrets = tmp_path / "pacs.json"
    secrets.write_text(f'{{"user": "{USER}", "password": "{PASSWORD}"}}')
    monkeypatch.setenv(CREDENTIALS_FILE_VARIABLE, str(secrets))
    assert credentials() == {"user": USER, "password": PASSWORD}
    url, study, _ = upload_series(pacs, phantom_series(tmp_path, "ct"))
    assert segment("--model", tiny_model_path, "--input", url, "--output", pacs.dicomweb) == 0
    assert [m for m, _, _ in pacs.series_of_study(study)].count("SEG") == 1


def test_dicomweb_urls_are_parsed_and_a_study_url_is_refused():
    location = parse_location("https://pacs.example.org/dicom-web/studies/1.2.3/series/4.5.6/")
    assert (location.base, location.study_uid, location.series_uid) == ("https://pacs.example.org/dicom-web",
                                                                        "1.2.3", "4.5.6")
    assert parse_location("https://pacs.example.org/dicom-web").series_uid is None
    from LiverResUNetLib.errors import InputError

    with pytest.raises(InputError, match="names a study"):
        parse_location("https://pacs.example.org/dicom-web/studies/1.2.3")


def test_tls_certificates_are_verified_by_default():
    from LiverResUNetLib.dicomweb.connection import connect

    client = connect("https://pacs.example.org/dicom-web", environment={})
    assert client._session.verify is True
