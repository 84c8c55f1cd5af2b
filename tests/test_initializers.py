"""Every Keras initializer by name: kaffe's draws have Keras 3's distribution (same bounds,
mean and standard deviation on a large weight) and fans counted the Keras way."""
import keras
import numpy as np
import pytest

from kaffe import initializers

NAMES = ["zeros", "ones", "random_uniform", "random_normal", "truncated_normal", "glorot_uniform",
         "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal", "orthogonal",
         "variance_scaling"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(300, 200), (3, 3, 16, 32)])
def test_distribution_equals_keras(name, shape):
    ours = initializers.get(name)(shape).numpy()
    theirs = keras.ops.convert_to_numpy(keras.initializers.get(name)(shape))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.05, atol=1e-7)
    # both means sit within sampling error (5 standard errors) of the same value
    standard_error = max(theirs.std(), 1e-12) / np.sqrt(ours.size)
    np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=10 * standard_error + 1e-7)
    if name not in ("random_normal", "orthogonal"):  # bounded draws: uniform or truncated normal
        assert abs(ours).max() <= abs(theirs).max() * 1.02 + 1e-7


def test_identity_constant_and_orthogonality():
    np.testing.assert_array_equal(initializers.get("identity")((3, 3)).numpy(), np.eye(3))
    np.testing.assert_array_equal(initializers.Constant(0.5)((2,)).numpy(), [0.5, 0.5])
    w = initializers.get("orthogonal")((64, 32)).numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(32), atol=1e-5)


def test_fans_follow_keras():
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.compute_fans((10, 20)) == (10, 20)


def test_seeded_draws_repeat_and_unknown_names_list_valid_ones():
    a = initializers.GlorotUniform(seed=3)((5, 5)).numpy()
    np.testing.assert_array_equal(a, initializers.GlorotUniform(seed=3)((5, 5)).numpy())
    with pytest.raises(ValueError, match="glorot_uniform"):
        initializers.get("glorot_uniformm")
    config = initializers.serialize(initializers.HeNormal(seed=1))
    assert type(initializers.get(config)).__name__ == "HeNormal"
