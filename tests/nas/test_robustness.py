"""Degraded inputs: which corruptions apply to which data, their range, and their repeatability."""

from __future__ import annotations

import numpy as np

from nas.training.robustness import degraded_sets


def test_images_get_image_corruptions_clipped_to_the_training_range_and_repeatable(digits):
    sets = degraded_sets(digits.x_test, digits.x_train)
    assert set(sets) == {"gaussian_noise", "strong_noise", "brightness", "contrast", "occlusion"}
    for _, x in sets.values():
        assert x.shape == digits.x_test.shape and x.dtype == digits.x_test.dtype
        assert x.min() >= digits.x_train.min() and x.max() <= digits.x_train.max()
    again = degraded_sets(digits.x_test, digits.x_train)
    assert all(np.array_equal(sets[name][1], again[name][1]) for name in sets)  # every model sees the same inputs
    noisy, strong = sets["gaussian_noise"][1], sets["strong_noise"][1]
    assert 0 < np.abs(noisy - digits.x_test).mean() < np.abs(strong - digits.x_test).mean()
    blank = (sets["occlusion"][1] == 0).reshape(len(digits.x_test), -1).sum(axis=1)
    assert (blank >= 9).all()  # a 3x3 square of the 8x8 image at least


def test_flat_inputs_get_feature_noise_and_missing_features():
    rng = np.random.default_rng(0)
    x_train = rng.random((200, 12)).astype(np.float32)
    sets = degraded_sets(x_train[:50], x_train)
    assert set(sets) == {"feature_noise", "missing_features"}
    missing = sets["missing_features"][1]
    replaced = np.isclose(missing, x_train.mean(axis=0)) & ~np.isclose(x_train[:50], x_train.mean(axis=0))
    assert 0.1 < replaced.mean() < 0.3  # about 20% of the features
