"""The proxy's data set (`mnist-clutter`) and profile: deterministic, disjoint sources, balanced, its own PCA."""

from __future__ import annotations

import numpy as np
import pytest

from harness import arrays, clutter
from harness.config import resolve
from harness.pca import array_pca
from harness.profiles import PROXY
from harness.request import RunRequest
from harness.transforms import IMAGENET_PCA
from variants import get_variant


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = arrays.mnist_raw()
    return x[:60, 0], y[:60]


def test_drawing_is_deterministic_and_seeded(digits):
    x, y = digits
    a, la = clutter.draw(x, y, 2, seed=5)
    b, lb = clutter.draw(x, y, 2, seed=5)
    c, _ = clutter.draw(x, y, 2, seed=6)
    assert a.shape == (120, 3, clutter.LAYOUT.canvas, clutter.LAYOUT.canvas) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert list(la[:4]) == [y[0], y[0], y[1], y[1]]  # `copies` canvases per digit, in order


def test_canvases_are_colour_with_the_digit_in_contrast(digits):
    x, y = digits
    imgs, _ = clutter.draw(x, y, 1, seed=0)
    # colour: the channels differ (grey digits replicated to RGB would not)
    assert np.abs(imgs[:, 0].astype(int) - imgs[:, 1].astype(int)).mean() > 5
    # the label digit: a blank digit leaves only background and clutter, so canvases change with the digit
    blank, _ = clutter.draw(np.zeros_like(x), y, 1, seed=0)
    assert np.abs(imgs.astype(int) - blank.astype(int)).mean(axis=(1, 2, 3)).min() > 1


def test_the_drawing_of_one_side_reads_only_that_sides_digits(digits):
    x, y = digits
    a, _ = clutter.draw(x[:30], y[:30], 1, seed=3)
    # the other 30 digits changed: nothing drawn from the first 30 changes
    b, _ = clutter.draw(np.concatenate([x[:30], 255 - x[30:]])[:30], y[:30], 1, seed=3)
    assert np.array_equal(a, b)


def test_split_is_disjoint_and_balanced():
    train, val = arrays.mnist5k_split()
    assert not set(train) & set(val) and len(train) == 4000 and len(val) == 1000
    x_train, y_train, x_val, y_val, classes = arrays.clutter_arrays()
    assert classes == [str(c) for c in range(10)]
    assert x_train.shape == (8000, 3, 72, 72) and x_val.shape == (2000, 3, 72, 72)
    assert np.bincount(y_train).tolist() == [800] * 10 and np.bincount(y_val).tolist() == [200] * 10
    _, y = arrays.mnist_raw()
    # train canvases follow the training digits' labels (2 each), val canvases the held-out ones'
    assert np.array_equal(y_train, np.repeat(y[train], 2)) and np.array_equal(y_val, np.repeat(y[val], 2))


def test_array_data_sets_get_their_own_pca():
    x_train = arrays.clutter_arrays()[0]
    eig = array_pca(x_train)
    assert eig != IMAGENET_PCA and all(v > 0 for v in eig.eigval)
    assert list(eig.eigval) == sorted(eig.eigval, reverse=True)
    grey = array_pca(arrays.mnist5k_arrays()[0])  # grey: one direction, (1, 1, 1) / sqrt(3)
    assert grey.eigval[1] < 1e-9 < grey.eigval[0]
    assert np.allclose(np.abs(np.array(grey.eigvec)[:, 0]), 3**-0.5)


def test_proxy_profile_narrows_imagenet_nets_only():
    req = RunRequest(names=("x",))
    assert PROXY.dataset == "mnist-clutter"
    assert resolve(get_variant("alexnet2012"), req).recipe.width == 0.25
    assert resolve(get_variant("ksh12_fig1_relu"), req).recipe.width == 1.0
    assert resolve(get_variant("alexnet2012_no_augmentation"), req).recipe.train_aug == "none"
    assert resolve(get_variant("alexnet2012"), req).recipe.train_aug == "ksh12"
