"""The qualitative analyses (harness.analysis, KSH12 s6.1) on small real tensors, models and data sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import data as data_mod
from harness.analysis import codes, colour, examples, features, inputs, retrieval, translation
from variants import get_variant


def _kernels(rgb: list[tuple[float, float, float]], k: int = 5) -> np.ndarray:
    """One kernel per colour direction: a zero-mean spatial pattern times that RGB direction."""
    pattern = np.arange(k * k, dtype=np.float64).reshape(k, k)
    pattern -= pattern.mean()
    return np.stack([np.stack([c * pattern for c in d]) for d in rgb])


def test_colour_index_is_0_for_grey_kernels_1_for_colour_opponent_ones_and_2_3_for_random_weights() -> None:
    idx = colour.colour_index(_kernels([(1, 1, 1), (1, -1, 0), (1, 1, -2), (0.5, 0.5, 0.5)]))
    np.testing.assert_allclose(idx, [0.0, 1.0, 1.0, 0.0], atol=1e-12)
    rng = np.random.default_rng(0)
    assert colour.colour_index(rng.normal(size=(2000, 3, 5, 5))).mean() == pytest.approx(colour.RANDOM_INDEX, abs=0.01)
    # a constant colour offset is removed with the mean only when it is grey: a red blob is colour
    blob = np.zeros((1, 3, 5, 5))
    blob[0, 0, 2, 2] = 1.0
    assert 0.5 < colour.colour_index(blob)[0] < 1.0


def test_colour_index_refuses_weights_that_are_not_rgb_kernels() -> None:
    with pytest.raises(ValueError, match=r"\(out, 3, k, k\)"):
        colour.colour_index(np.zeros((4, 1, 3, 3)))


def test_towers_split_conv1_in_order_and_a_grey_tower_has_the_lower_mean() -> None:
    w = _kernels([(1, 1, 1)] * 4 + [(1, -1, 0)] * 4)
    t1, t2 = colour.tower_colour(w, 2)
    assert (t1.tower, t2.tower, t1.mean, t2.mean) == (1, 2, pytest.approx(0.0), pytest.approx(1.0))
    with pytest.raises(ValueError, match="do not split"):
        colour.tower_colour(w, 3)


def test_precision_at_k_is_1_on_separable_features_and_near_chance_on_shuffled_labels() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 40)
    feats = np.eye(10)[labels] * 10 + rng.normal(scale=0.1, size=(400, 10))
    q, db = np.arange(0, 400, 4), np.setdiff1d(np.arange(400), np.arange(0, 400, 4))
    r = retrieval.retrieve("toy", feats[q], feats[db], labels[q], labels[db])
    assert r.precision == {1: 1.0, 5: 1.0, 10: 1.0}
    shuffled = rng.permutation(labels)
    r = retrieval.retrieve("toy", feats[q], feats[db], shuffled[q], shuffled[db])
    assert all(0.0 <= p <= 0.25 for p in r.precision.values())  # chance: 0.1
    assert r.neighbours.shape == (100, 10) and r.query_ms > 0


def test_hamming_search_finds_the_same_neighbours_as_a_brute_force_count() -> None:
    rng = np.random.default_rng(1)
    q, db = rng.integers(0, 2, (7, 24)).astype(bool), rng.integers(0, 2, (50, 24)).astype(bool)
    got = retrieval.nearest_hamming(np.packbits(q, axis=1), np.packbits(db, axis=1), 5)
    d = (q[:, None, :] != db[None]).sum(axis=2)
    np.testing.assert_array_equal(got, np.argsort(d, axis=1, kind="stable")[:, :5])


@pytest.mark.parametrize("bits", [8, 20])
def test_auto_encoder_codes_have_the_asked_number_of_bits_and_are_deterministic(bits: int) -> None:
    x = np.random.default_rng(2).normal(size=(200, 30)).astype(np.float32)
    a = codes.train_codes(x, bits, hidden=16, epochs=2, seed=3)
    b = codes.train_codes(x, bits, hidden=16, epochs=2, seed=3)
    ca = a.codes(x)
    assert ca.shape == (200, (bits + 7) // 8) and ca.dtype == np.uint8
    assert np.unpackbits(ca, axis=1)[:, bits:].sum() == 0  # the padding bits stay 0
    np.testing.assert_array_equal(ca, b.codes(x))


def test_examples_are_right_wrong_and_ambiguous_without_repeats() -> None:
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.51, 0.49, 0], [0.1, 0.1, 0.8], [0.4, 0.35, 0.25]])
    labels = np.array([0, 0, 1, 2, 0])
    got = examples.choose(probs, labels, per_kind=1)
    assert [(e.index, e.kind) for e in got] == [(0, "right"), (1, "wrong"), (2, "ambiguous")]
    assert got[0].top5[0] == (0, pytest.approx(0.9)) and len(got[0].top5) == 3
    assert examples.choose(probs, labels, per_kind=1) == got


@pytest.fixture(scope="module")
def synthetic() -> data_mod.Datasets:
    spec = data_mod.DataSpec("synthetic", image_size=64, resize=72, synthetic_train=40, synthetic_val=20)
    return data_mod.load_datasets(spec, "center")


def test_inputs_are_centre_views_and_a_shift_moves_the_content(synthetic: data_mod.Datasets) -> None:
    x = inputs.val_inputs(synthetic, [0, 1, 2])
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.float32
    assert torch.equal(x, synthetic.val.inputs([0, 1, 2]))  # the data set's own centre view
    t = inputs.train_inputs(synthetic, [0, 1])
    assert torch.equal(t, inputs.train_inputs(synthetic, [0, 1]))  # no augmentation: the same view every time
    assert torch.equal(inputs.shifted_inputs(synthetic, [0], 0, 0), x[:1])
    right = inputs.shifted_inputs(synthetic, [0], 8, 0)
    assert torch.equal(right[..., 8:], x[:1, ..., :-8]) and (right[..., :8] == 0).all()
    up = inputs.shifted_inputs(synthetic, [0], 0, -4)
    assert torch.equal(up[..., :-4, :], x[:1, ..., 4:, :]) and (up[..., -4:, :] == 0).all()


@pytest.mark.parametrize(
    ("name", "layer"), [("alexnet2012", "classifier.drop7"), ("torchvision_alexnet", "classifier.5")]
)
def test_fc7_is_the_leaf_that_feeds_the_output_layer(name: str, layer: str, synthetic: data_mod.Datasets) -> None:
    torch.manual_seed(0)
    model = get_variant(name).build(synthetic.num_classes, 0.25)
    assert features.last_hidden_layer(model, 64) == layer
    probs, feats, pixels = features.run_batches(
        model, lambda ix: inputs.val_inputs(synthetic, ix), list(range(10)), layer, 4, retrieval.pixel_vectors
    )
    assert pixels is not None and pixels.shape == (10, 3 * 32 * 32)  # 64 px area-averaged to 32
    assert probs.shape == (10, synthetic.num_classes) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert feats is not None and feats.shape == (10, 1024) and (feats >= 0).all()  # after fc7's ReLU, 4096 / 4
    assert model.training  # put back as it was


def test_accuracy_against_shift_has_one_point_per_shift(synthetic: data_mod.Datasets) -> None:
    torch.manual_seed(0)
    model = get_variant("alexnet2012").build(synthetic.num_classes, 0.25)
    labels = np.asarray(synthetic.val.labels)[:8]
    pts = translation.accuracy_vs_shift(
        model, lambda ix, dx, dy: inputs.shifted_inputs(synthetic, ix, dx, dy), list(range(8)), labels, 64,
        (-0.25, 0.0, 0.25),
    )  # fmt: skip
    assert [p.pixels for p in pts] == [-16, 0, 16]
    assert all(0 <= p.top1 <= 100 for p in pts)
