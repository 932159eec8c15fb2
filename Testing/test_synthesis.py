"""Real tumor shapes from label maps without CT, pasted into a training CT's liver for the tumor stage."""

import shutil

import numpy as np
import pytest

from LiverResUNetLib.components import label_components
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.training.synthesis import TumorShape, paste_tumors, random_tumor_shapes, read_tumor_shapes
from LiverResUNetLib.volume import LIVER, TUMOR


def test_every_liver_tumor_of_the_label_maps_is_a_shape(tiny_phantom_dataset):
    masks = tiny_phantom_dataset.parent / "raw" / "3Dircadb1"
    shapes = read_tumor_shapes(masks)
    assert len(shapes) >= 3
    assert all(shape.mask.dtype == bool and shape.mask.any() for shape in shapes)
    spacings = [source.load().image.spacing for source in discover_cases(tiny_phantom_dataset)]
    # Each mask's grid is its patient's CT's (the slice step from SliceThickness when no SpacingBetweenSlices).
    assert all(any(np.allclose(shape.spacing, spacing, atol=1e-3) for spacing in spacings) for shape in shapes)
    assert len({shape.spacing for shape in shapes}) > 1
    assert all(shape.mask.sum() * np.prod(shape.spacing) >= 20.0 for shape in shapes)


def test_label_maps_without_a_tumor_are_refused_by_name(tiny_phantom_dataset, tmp_path):
    only = tmp_path / "maps"
    shutil.copytree(tiny_phantom_dataset.parent / "raw" / "3Dircadb1" / "3Dircadb1.3", only / "3Dircadb1.3")
    with pytest.raises(InputError, match="maps: holds no liver tumor"):
        read_tumor_shapes(only)
    with pytest.raises(InputError, match="does not exist"):
        read_tumor_shapes(tmp_path / "missing")


def test_pasted_tumors_lie_in_the_liver_with_a_contrast_to_it():
    rng = np.random.default_rng(0)
    labels = np.zeros((30, 60, 60), dtype=np.uint8)
    labels[5:25, 10:50, 10:50] = LIVER
    hu = np.where(labels > 0, 60.0, -100.0).astype(np.float32) + rng.normal(0, 5, labels.shape).astype(np.float32)
    sphere = np.linalg.norm(np.mgrid[-4:5, -4:5, -4:5], axis=0) <= 4
    shapes = [TumorShape(sphere, (1.0, 1.0, 1.0))]
    new_hu, new_labels = paste_tumors(hu, labels, (1.0, 1.0, 1.0), shapes, 3, np.random.default_rng(1))
    tumor = new_labels == TUMOR
    assert tumor.sum() > 0.5 * sphere.sum() and not (tumor & (labels == 0)).any()
    assert np.array_equal(new_labels > 0, labels > 0)
    lesions, count = label_components(tumor)
    for number in range(1, count + 1):  # each its own contrast to the liver, darker or brighter
        lesion = lesions == number
        assert abs(float(np.median(new_hu[lesion] - hu[lesion]))) >= 10.0
    assert np.array_equal(new_hu[labels == 0], hu[labels == 0])  # nothing outside the liver changes
    assert np.array_equal(labels[tumor], np.full(tumor.sum(), LIVER)) and not (labels == TUMOR).any()


def test_without_label_maps_the_lesion_shapes_are_irregular_ellipsoids_from_a_few_mm_to_a_large_mass():
    shapes = random_tumor_shapes(40, np.random.default_rng(5))
    volumes_ml = np.array([shape.mask.sum() for shape in shapes]) / 1000.0  # 1 mm voxels
    assert all(shape.spacing == (1.0, 1.0, 1.0) and shape.mask.any() for shape in shapes)
    assert volumes_ml.min() < 1.0 and volumes_ml.max() > 100.0
    assert all(label_components(shape.mask)[1] >= 1 for shape in shapes)
    again = random_tumor_shapes(40, np.random.default_rng(5))
    assert all(np.array_equal(one.mask, two.mask) for one, two in zip(shapes, again))
    largest = shapes[int(np.argmax(volumes_ml))].mask
    extents = [int(largest.any(axis=axes).sum()) for axes in ((1, 2), (0, 2), (0, 1))]
    assert largest.sum() < 0.75 * np.prod(extents)  # rounded (a box would fill its extent), not a sphere:
    assert max(extents) > 1.1 * min(extents)  # its axes differ
