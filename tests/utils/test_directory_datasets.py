"""image_dataset_from_directory / text_dataset_from_directory: Keras's listing, shuffling with
the seed, splits and label encodings, batches read from disk, and fit on the result."""
import os

import numpy as np
import pytest

from axone import layers, models, utils

PIL = pytest.importorskip("PIL.Image")


def _images(tmp_path, counts=(3, 4), size=(6, 5)):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for c, n in zip(("cats", "dogs"), counts):
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 256, size=size + (3,), dtype=np.uint8)
            PIL.fromarray(arr).save(root / c / f"{i}.png")
    (root / "cats" / "notes.md").write_text("not an image")
    return str(root)


def _keras_order(root, seed):
    """The file order Keras documents: sorted classes, sorted walk, RandomState(seed).shuffle."""
    paths = []
    for c in sorted(os.listdir(root)):
        for f in sorted(os.listdir(os.path.join(root, c))):
            if f.endswith(".png"):
                paths.append(os.path.join(root, c, f))
    labels = np.array([0 if "/cats/" in p else 1 for p in paths], "int32")
    np.random.RandomState(seed).shuffle(paths)
    np.random.RandomState(seed).shuffle(labels)
    return paths, labels


def test_listing_shuffle_and_labels_follow_keras(tmp_path):
    root = _images(tmp_path)
    ds = utils.image_dataset_from_directory(root, image_size=(6, 5), batch_size=3, seed=42,
                                            verbose=False)
    paths, labels = _keras_order(root, 42)
    assert ds.file_paths == paths and ds.class_names == ["cats", "dogs"] and len(ds) == 3
    x, y = ds[0]
    assert x.shape == (3, 6, 5, 3) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, labels[:3])
    np.testing.assert_array_equal(x[0], np.asarray(PIL.open(paths[0]).convert("RGB"), "float32"))


def test_label_modes_color_modes_and_resize(tmp_path):
    root = _images(tmp_path)
    ds = utils.image_dataset_from_directory(root, label_mode="categorical", color_mode="grayscale",
                                            image_size=(3, 4), batch_size=7, shuffle=False,
                                            verbose=False)
    x, y = ds[0]
    assert x.shape == (7, 3, 4, 1) and y.shape == (7, 2)
    np.testing.assert_array_equal(y.argmax(1), [0, 0, 0, 1, 1, 1, 1])
    ds = utils.image_dataset_from_directory(root, label_mode="binary", batch_size=None,
                                            image_size=(6, 5), shuffle=False, verbose=False)
    x, y = ds[0]
    assert x.shape == (6, 5, 3) and y.shape == (1,) and y.dtype == np.float32
    only = utils.image_dataset_from_directory(root, labels=None, image_size=(6, 5),
                                              shuffle=False, verbose=False)
    assert only[0].shape == (7, 6, 5, 3)


def test_validation_split_subsets(tmp_path):
    root = _images(tmp_path, counts=(5, 5))
    tr, va = utils.image_dataset_from_directory(root, image_size=(6, 5), validation_split=0.2,
                                                subset="both", seed=1, verbose=False)
    paths, _ = _keras_order(root, 1)
    assert tr.file_paths == paths[:8] and va.file_paths == paths[8:]
    with pytest.raises(ValueError, match="provide a `seed`"):
        utils.image_dataset_from_directory(root, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="`subset` must be"):
        utils.image_dataset_from_directory(root, validation_split=0.2, subset="test", seed=1)
    with pytest.raises(ValueError, match="label_mode"):
        utils.image_dataset_from_directory(root, label_mode="sparse")
    with pytest.raises(ValueError, match="class_names"):
        utils.image_dataset_from_directory(root, class_names=["birds"])
    with pytest.raises(ValueError, match="does not exist"):
        utils.image_dataset_from_directory(str(tmp_path / "nope"))


def test_fit_on_an_image_dataset(tmp_path):
    root = _images(tmp_path)
    ds = utils.image_dataset_from_directory(root, image_size=(6, 5), batch_size=4, seed=0,
                                            verbose=False)
    m = models.Sequential([layers.Input((6, 5, 3)), layers.Rescaling(1 / 255.0), layers.Flatten(),
                           layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(ds, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2
    assert m.predict(ds.map(lambda x, y: x), verbose=0).shape == (7, 2)


def test_text_dataset(tmp_path):
    root = tmp_path / "txt"
    texts = {"neg": ["bad film", "awful"], "pos": ["great film", "loved it", "superb"]}
    for c, items in texts.items():
        (root / c).mkdir(parents=True)
        for i, t in enumerate(items):
            (root / c / f"{i}.txt").write_text(t)
    ds = utils.text_dataset_from_directory(str(root), batch_size=2, shuffle=False, max_length=5,
                                           verbose=False)
    x, y = ds[0]
    assert list(x) == ["bad f", "awful"] and list(y) == [0, 0]
    assert ds.class_names == ["neg", "pos"] and len(ds) == 3
    full = utils.text_dataset_from_directory(str(root), batch_size=8, shuffle=False, verbose=False)
    vec = layers.TextVectorization(max_tokens=20, output_sequence_length=3)
    vec.adapt(full.map(lambda x, y: x))
    assert "film" in vec.get_vocabulary()
