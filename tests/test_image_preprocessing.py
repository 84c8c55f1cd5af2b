"""``kaffe.preprocessing.image`` against keras-preprocessing 1.1.2 (Keras 2's own code): the same
transforms, statistics, seeded batches, folder and data frame iteration order, file I/O."""
import warnings

import numpy as np
import pytest
from PIL import Image

from kaffe.preprocessing import image as kimage

kp = pytest.importorskip("keras_preprocessing.image")

FULL_OPTIONS = dict(rotation_range=25, width_shift_range=0.15, height_shift_range=3,
                    shear_range=10, zoom_range=(0.8, 1.25), channel_shift_range=20,
                    horizontal_flip=True, vertical_flip=True, brightness_range=(0.6, 1.3),
                    fill_mode="reflect", rescale=1 / 255.0)


def both(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kimage.ImageDataGenerator(**kwargs), kp.ImageDataGenerator(**kwargs)


def images(n=6, h=9, w=11, c=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, c)).astype("float32")


def assert_same(a, b):
    if isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for part_a, part_b in zip(a, b):
            assert_same(part_a, part_b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def assert_same_batches(ours, theirs, count):
    for _ in range(count):
        assert_same(next(ours), next(theirs))


# -- one image -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_apply_transform_equals_keras(fill_mode, data_format):
    ours, theirs = both(fill_mode=fill_mode, cval=7.0, data_format=data_format)
    x = images(1)[0]
    if data_format == "channels_first":
        x = x.transpose(2, 0, 1).copy()
    for params in ({"theta": 30}, {"tx": 2.5, "ty": -3}, {"shear": 12}, {"zx": 0.7, "zy": 1.3},
                   {"theta": -15, "tx": 1, "ty": 2, "shear": 5, "zx": 1.1, "zy": 0.9,
                    "flip_horizontal": True, "flip_vertical": True,
                    "channel_shift_intensity": 30.0},
                   {"brightness": 1.4}, {}):
        if "brightness" in params and data_format == "channels_first":
            # Keras 2 fails here (its brightness shift assumes channels last): compare with it
            # on the channels-last copy
            want = theirs.apply_transform(x.transpose(1, 2, 0).copy(), params).transpose(2, 0, 1)
        else:
            want = theirs.apply_transform(x.copy(), params)
        np.testing.assert_allclose(ours.apply_transform(x.copy(), params), want, rtol=1e-5,
                                   atol=1e-4)


def test_random_transform_and_get_random_transform_equal_keras_for_a_seed():
    ours, theirs = both(**FULL_OPTIONS)
    x = images(1)[0]
    for seed in (0, 1, 42):
        p_ours = ours.get_random_transform(x.shape, seed=seed)
        p_theirs = theirs.get_random_transform(x.shape, seed=seed)
        assert p_ours.keys() == p_theirs.keys()
        for key in p_ours:
            assert p_ours[key] == pytest.approx(p_theirs[key]), key
        np.testing.assert_allclose(ours.random_transform(x.copy(), seed=seed),
                                   theirs.random_transform(x.copy(), seed=seed), atol=1e-4)
    ours, theirs = both(width_shift_range=[-2, 0, 3], height_shift_range=0.2)
    for seed in range(5):
        assert ours.get_random_transform(x.shape, seed) == pytest.approx(
            theirs.get_random_transform(x.shape, seed))


@pytest.mark.parametrize("options", [
    dict(featurewise_center=True, featurewise_std_normalization=True),
    dict(samplewise_center=True, samplewise_std_normalization=True, rescale=0.5),
    dict(zca_whitening=True),
    dict(featurewise_center=True, preprocessing_function=lambda v: v ** 0.5, rotation_range=10),
])
def test_fit_and_standardize_equal_keras(options):
    ours, theirs = both(**options)
    x = images(8, 5, 4, 3, seed=3)
    ours.fit(x, augment="rotation_range" in options, rounds=2, seed=5)
    theirs.fit(x, augment="rotation_range" in options, rounds=2, seed=5)
    for name in ("mean", "std", "principal_components"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(ours.standardize(x[:2].copy()), theirs.standardize(x[:2].copy()),
                                   rtol=1e-4, atol=1e-4)


def test_implied_settings_and_bad_arguments():
    with pytest.warns(UserWarning, match="zca_whitening"):
        gen = kimage.ImageDataGenerator(zca_whitening=True, featurewise_std_normalization=True)
    assert gen.featurewise_center and not gen.featurewise_std_normalization
    with pytest.raises(ValueError, match="zoom_range"):
        kimage.ImageDataGenerator(zoom_range=(1, 2, 3))
    with pytest.raises(ValueError, match="validation_split"):
        kimage.ImageDataGenerator(validation_split=1.5)
    with pytest.raises(ValueError, match="fill_mode"):
        kimage.ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="rank 4"):
        kimage.ImageDataGenerator().flow(np.zeros((3, 4, 4)))


# -- flow ----------------------------------------------------------------------------------------

def test_flow_with_seed_equals_keras():
    ours, theirs = both(**FULL_OPTIONS)
    x, y = images(10, seed=1), np.arange(10)
    weights = np.linspace(0.1, 1, 10)
    assert_same_batches(ours.flow(x, y, batch_size=4, seed=11, sample_weight=weights),
                        theirs.flow(x, y, batch_size=4, seed=11, sample_weight=weights), 5)
    a, b = ours.flow(x, batch_size=3, seed=2, shuffle=False), theirs.flow(x, batch_size=3, seed=2,
                                                                         shuffle=False)
    assert len(a) == len(b) == 4
    for i in (0, 3, 1):
        np.testing.assert_allclose(a[i], b[i], atol=1e-4)
    extra = np.arange(20).reshape(10, 2)
    assert_same_batches(ours.flow((x, [extra]), y, batch_size=4, seed=0),
                        theirs.flow((x, [extra]), y, batch_size=4, seed=0), 3)


def test_flow_subset_equals_keras():
    ours, theirs = both(validation_split=0.3, horizontal_flip=True)
    x, y = images(10, seed=2), np.tile([0, 1], 5)
    for subset in ("training", "validation"):
        assert_same_batches(ours.flow(x, y, batch_size=3, seed=4, subset=subset),
                            theirs.flow(x, y, batch_size=3, seed=4, subset=subset), 3)
    with pytest.raises(ValueError, match="different number of classes"):
        ours.flow(x, np.sort(y), subset="training")


# -- folders and data frames ---------------------------------------------------------------------

@pytest.fixture
def class_folders(tmp_path):
    rng = np.random.default_rng(7)
    root = tmp_path / "images"
    for cls, count in (("dogs", 5), ("cats", 4), ("birds", 3)):
        (root / cls / "nested").mkdir(parents=True)
        for i in range(count):
            where = root / cls / ("nested" if i == 2 else "")
            array = rng.integers(0, 256, (10 + i, 14, 3), np.uint8)
            Image.fromarray(array).save(where / f"{cls}_{i}.{'png' if i % 2 else 'jpg'}")
    (root / "cats" / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize("kwargs", [
    dict(class_mode="categorical"),
    dict(class_mode="sparse", color_mode="grayscale", interpolation="bilinear"),
    dict(class_mode="binary", classes=["cats", "dogs"], color_mode="rgba"),
    dict(class_mode="input", target_size=(6, 5)),
    dict(class_mode=None, shuffle=False),
    dict(class_mode="sparse", subset="validation"),
    dict(class_mode="sparse", subset="training"),
])
def test_flow_from_directory_equals_keras(class_folders, kwargs, capsys):
    ours, theirs = both(validation_split=0.4, rotation_range=20, zoom_range=0.1,
                        horizontal_flip=True, rescale=1 / 255.0)
    kwargs = dict(dict(target_size=(8, 7), batch_size=4, seed=9), **kwargs)
    a = ours.flow_from_directory(str(class_folders), **kwargs)
    b = theirs.flow_from_directory(str(class_folders), **kwargs)
    assert a.filenames == b.filenames and a.class_indices == b.class_indices
    np.testing.assert_array_equal(a.classes, b.classes)
    assert a.filepaths == b.filepaths and len(a) == len(b)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1]  # "Found N images belonging to K classes."
    assert_same_batches(a, b, 4)


def test_flow_from_dataframe_equals_keras(class_folders):
    pd = pytest.importorskip("pandas")
    files = sorted(p.relative_to(class_folders).as_posix() for p in class_folders.rglob("*.*"))
    frame = pd.DataFrame({"filename": files + ["missing.png"],
                          "class": [f.split("/")[0] for f in files] + ["dogs"],
                          "weight": np.linspace(0.5, 2, len(files) + 1),
                          "score": np.arange(len(files) + 1, dtype=float)})
    ours, theirs = both(validation_split=0.25, shear_range=5)
    for kwargs in (dict(class_mode="categorical", weight_col="weight"),
                   dict(class_mode="raw", y_col="score", subset="training"),
                   dict(class_mode="sparse", classes=["cats", "birds"]),
                   dict(class_mode="multi_output", y_col=["score", "weight"])):
        kwargs = dict(dict(directory=str(class_folders), target_size=(5, 6), batch_size=3,
                           seed=1), **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = ours.flow_from_dataframe(frame, **kwargs)
            b = theirs.flow_from_dataframe(frame, **kwargs)
        assert a.filenames == b.filenames
        assert getattr(a, "class_indices", None) == getattr(b, "class_indices", None)
        for _ in range(3):
            got, want = next(a), next(b)
            np.testing.assert_allclose(got[0], want[0], atol=1e-4)
            if isinstance(want[1], list):
                for g, w in zip(got[1], want[1]):
                    np.testing.assert_allclose(g, w)
            else:
                np.testing.assert_allclose(got[1], want[1])
            assert len(got) == len(want)


# -- files ---------------------------------------------------------------------------------------

def test_load_img_img_to_array_array_to_img_save_img_equal_keras(class_folders, tmp_path):
    path = next(class_folders.rglob("*.jpg"))
    for kwargs in ({}, {"color_mode": "grayscale"}, {"color_mode": "rgba"},
                   {"target_size": (5, 9), "interpolation": "bicubic"},
                   {"target_size": (5, 9), "interpolation": "lanczos"}):
        ours, theirs = kimage.load_img(path, **kwargs), kp.load_img(path, **kwargs)
        assert ours.mode == theirs.mode and ours.size == theirs.size
        for fmt in ("channels_last", "channels_first"):
            np.testing.assert_array_equal(kimage.img_to_array(ours, fmt),
                                          kp.img_to_array(theirs, fmt))
    x = images(1, 4, 5, 3)[0]
    for channels in (1, 3, 4):
        arr = np.repeat(x[:, :, :1], channels, axis=2) if channels != 3 else x
        for scale in (True, False):
            np.testing.assert_array_equal(np.asarray(kimage.array_to_img(arr, scale=scale)),
                                          np.asarray(kp.array_to_img(arr, scale=scale)))
    kimage.save_img(tmp_path / "ours.png", x)
    kp.save_img(tmp_path / "theirs.png", x)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "ours.png")),
                                  np.asarray(Image.open(tmp_path / "theirs.png")))
    assert sorted(kimage.list_pictures(class_folders)) == sorted(kp.list_pictures(class_folders))


def test_keep_aspect_ratio_crops_the_centre(class_folders):
    path = next(class_folders.rglob("*.png"))
    img = kimage.load_img(path, target_size=(4, 4), keep_aspect_ratio=True)
    assert img.size == (4, 4)


def test_an_image_that_cannot_be_decoded_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    with pytest.raises(kimage.ImageDecodeError, match="broken.png"):
        kimage.load_img(bad)
    (tmp_path / "cls").mkdir()
    bad.rename(tmp_path / "cls" / "broken.png")
    iterator = kimage.ImageDataGenerator().flow_from_directory(str(tmp_path), target_size=(4, 4))
    with pytest.raises(kimage.ImageDecodeError, match=r"cls/broken\.png"):
        next(iterator)


def test_flow_trains_a_model():
    import kaffe
    from kaffe import layers
    gen = kimage.ImageDataGenerator(rotation_range=10, horizontal_flip=True, rescale=1 / 255.0)
    x, y = images(16, 8, 8, 3), np.eye(2)[np.arange(16) % 2]
    model = kaffe.Sequential([kaffe.Input((8, 8, 3)), layers.Conv2D(2, 3), layers.Flatten(),
                              layers.Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(gen.flow(x, y, batch_size=8, seed=0), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    history = model.fit_generator(gen.flow(x, y, batch_size=8), steps_per_epoch=2, epochs=1,
                                  verbose=0)
    assert len(history.history["loss"]) == 1
