"""Model files: round trip, the card, and every refusal (crafted pickle, truncated, not a model, wrong shapes)."""

import json
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch

from LiverResUNetLib.errors import InputError
from LiverResUNetLib.model.model_file import (
    CARD_RECORD,
    FILE_FORMAT,
    FORMAT_VERSION,
    LoadedModel,
    load_model,
    new_card,
    read_card,
    save_model,
)
from LiverResUNetLib.model.resunet import build_network
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams
from LiverResUNetLib.volume import LABEL_NAMES

ARCHITECTURE = {"name": "ResUNet", "in_channels": 3, "num_classes": 3, "base_width": 4, "depth": 3,
                "max_width": 16, "stem_stride": 2}
PARAMS = PreprocessingParams(input_size=32, context_slices=1)  # the 3 slices ARCHITECTURE takes


def tiny_model_file(path, architecture=ARCHITECTURE, **card):
    torch.manual_seed(0)
    network = build_network(architecture)
    # Non-default running statistics, so a round trip that forgot buffers would show.
    network.head_norm.running_mean.fill_(0.25)
    save_model(path, network, new_card(architecture, PARAMS, **card))
    return network


def write_raw(path, content):
    torch.save(content, path)
    return path


def test_round_trip_gives_the_same_network_and_card(tmp_path):
    path = tmp_path / "model.pt"
    network = tiny_model_file(path, training={"cases": ["3Dircadb1.1"]}, metrics={"val_liver_dice": 0.95})
    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel) and loaded.path == path
    assert not loaded.network.training
    for name, value in network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], value), name
    card = loaded.card
    assert card["format_version"] == FORMAT_VERSION
    assert card["architecture"] == ARCHITECTURE
    assert card["preprocessing"] == PARAMS.to_dict() and loaded.preprocessing == PARAMS
    assert card["class_names"] == list(LABEL_NAMES)
    assert card["training"] == {"cases": ["3Dircadb1.1"]} and card["metrics"] == {"val_liver_dice": 0.95}
    assert card["software"]["torch"] == torch.__version__
    network.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.network(x), network(x))


def test_read_card_gives_the_card_alone(tmp_path):
    path = tmp_path / "model.pt"
    tiny_model_file(path, metrics={"val_tumor_dice": 0.8})
    assert read_card(path) == load_model(path).card
    assert read_card(path)["metrics"] == {"val_tumor_dice": 0.8}


def card_records(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist() if name.endswith(CARD_RECORD)}


def read_card_elsewhere(path):
    """``(card, torch imported?)`` of ``read_card(path)`` in a fresh Python, as the Slicer module reads it."""
    code = ("import json, sys; from LiverResUNetLib.model.model_file import read_card; "
            "print(json.dumps([read_card(sys.argv[1]), 'torch' in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_a_model_files_card_is_also_a_json_record_of_its_archive(tmp_path):
    path = tmp_path / "model.pth"
    tiny_model_file(path)
    (name, text), = card_records(path).items()
    with zipfile.ZipFile(path) as archive:
        folder = archive.namelist()[0].split("/")[0]  # torch's folder: every record lies in it
    assert name == f"{folder}/{CARD_RECORD}" and json.loads(text) == load_model(path).card


def test_reading_a_cards_needs_no_torch_and_an_older_files_card_still_reads(tmp_path):
    new, old = tmp_path / "new.pth", tmp_path / "old.pth"
    tiny_model_file(new, metrics={"val_tumor_dice": 0.8})
    write_raw(old, torch.load(new, weights_only=True))  # as save_model wrote files before the JSON record
    assert not card_records(old)
    assert read_card_elsewhere(new) == [load_model(new).card, False]
    assert read_card_elsewhere(old) == [load_model(old).card, True]


def test_a_json_record_that_differs_from_the_card_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    tiny_model_file(path)
    content = torch.load(path, weights_only=True)
    write_raw(path, content)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(f"model/{CARD_RECORD}", json.dumps({**json.loads(content["card"]), "metrics": {"x": 1}}))
    with pytest.raises(InputError, match="JSON record .* differs"):
        load_model(path)


def test_saving_a_network_its_card_does_not_describe_writes_nothing(tmp_path):
    path = tmp_path / "model.pt"
    with pytest.raises(ValueError, match="does not match the card's architecture"):
        save_model(path, build_network({**ARCHITECTURE, "base_width": 8}), new_card(ARCHITECTURE, PARAMS))
    assert list(tmp_path.iterdir()) == []


def test_a_card_whose_preprocessing_does_not_fit_the_network_is_refused():
    with pytest.raises(ValueError, match="3 input channels but the preprocessing gives 5"):
        new_card(ARCHITECTURE, PreprocessingParams(input_size=32, context_slices=2))
    with pytest.raises(ValueError, match="input_size 36 is not a multiple of 8"):
        new_card(ARCHITECTURE, PreprocessingParams(input_size=36, context_slices=1))


class RunsCode:
    """Unpickling this calls ``marker.write_text``: what a malicious model file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).write_text, (self.marker, "code ran"))


@pytest.mark.parametrize("container, reason", [
    ("torch archive", "refused: the file holds objects that are not weights or plain data"),
    ("plain pickle", "not a LiverResUNet model file"),
])
def test_a_crafted_file_that_would_run_code_is_refused_without_running_it(tmp_path, container, reason):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    payload = {"format": FILE_FORMAT, "card": "{}", "weights": RunsCode(marker)}
    if container == "torch archive":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(InputError, match=reason) as error:
        load_model(path)
    assert str(error.value).startswith(str(path))
    assert not marker.exists(), "loading the model file ran code"
    with pytest.raises(InputError):
        read_card(path)
    assert not marker.exists()
    pickle.loads(pickle.dumps(RunsCode(marker)))  # the payload does run code when unpickled unsafely
    assert marker.exists()


def test_a_truncated_file_is_refused_as_truncated(tmp_path):
    path = tmp_path / "model.pt"
    tiny_model_file(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30):
        path.write_bytes(data[:cut])
        with pytest.raises(InputError, match="truncated or corrupt"):
            load_model(path)


@pytest.mark.parametrize("content, reason", [
    (b"this is a text file, not weights\n", "not a LiverResUNet model file"),
    (b"", "not a LiverResUNet model file"),
])
def test_files_that_are_not_model_files_are_refused(tmp_path, content, reason):
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason) as error:
        load_model(path)
    assert str(error.value).startswith(str(path))


def test_a_plain_state_dict_is_not_a_model_file(tmp_path):
    path = write_raw(tmp_path / "weights.pt", build_network(ARCHITECTURE).state_dict())
    with pytest.raises(InputError, match="no model card"):
        load_model(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nowhere.pt")


def content_with_card(path, card):
    """The file's content with its card replaced: weights of one architecture under another's card."""
    content = torch.load(path, weights_only=True)
    content["card"] = json.dumps(card)
    return content


def test_weights_of_other_shapes_are_refused_naming_the_differences(tmp_path):
    path = tmp_path / "model.pt"
    tiny_model_file(path)
    wider = {**ARCHITECTURE, "base_width": 8}
    write_raw(path, content_with_card(path, new_card(wider, PARAMS)))
    with pytest.raises(InputError, match=r"other shape: stem\.weight \(4, 3, 3, 3\) instead of \(8, 3, 3, 3\)"):
        load_model(path)


def test_weights_of_another_depth_are_refused_naming_missing_parameters(tmp_path):
    path = tmp_path / "model.pt"
    tiny_model_file(path)
    deeper = {**ARCHITECTURE, "depth": 4}
    write_raw(path, content_with_card(path, new_card(deeper, PARAMS)))
    with pytest.raises(InputError, match=r"missing: encoder\.3\.norm1\.weight") as error:
        load_model(path)
    assert "and" in str(error.value) and "more" in str(error.value)


def test_a_card_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    tiny_model_file(path)
    card = new_card(ARCHITECTURE, PARAMS)
    card["format_version"] = FORMAT_VERSION + 1
    write_raw(path, content_with_card(path, card))
    with pytest.raises(InputError, match=f"newer LiverResUNet \\(model format {FORMAT_VERSION + 1}"):
        load_model(path)
    with pytest.raises(InputError, match="newer"):
        read_card(path)


@pytest.mark.parametrize("edit, reason", [
    (lambda card: card.pop("preprocessing"), "lacks preprocessing"),
    (lambda card: card.update(class_names=["background", "kidney"]), "classes"),
    (lambda card: card["preprocessing"].update(equalization="magic"), "not usable: equalization"),
    (lambda card: card["architecture"].update(name="nnUNet"), "not usable: unknown architecture"),
    (lambda card: card.update(format_version="1"), "no valid format_version"),
])
def test_unusable_cards_are_refused(tmp_path, edit, reason):
    path = tmp_path / "model.pt"
    tiny_model_file(path)
    card = new_card(ARCHITECTURE, PARAMS)
    edit(card)
    write_raw(path, content_with_card(path, card))
    with pytest.raises(InputError, match=reason):
        load_model(path)


def test_a_card_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    tiny_model_file(path)
    content = torch.load(path, weights_only=True)
    content["card"] = "{architecture: ResUNet"
    write_raw(path, content)
    with pytest.raises(InputError, match="not valid JSON"):
        load_model(path)
