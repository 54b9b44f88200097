"""The file data sets: fake CIFAR/MNIST/SVHN/image folders in their exact formats, read back exactly."""

import pickle

import numpy as np
import pytest
import torch

from landscape.datasets import NORMALIZATION, load_dataset, stratified_indices
from landscape.errors import DataError

from .fake_datasets import write_cifar10, write_cifar100, write_image_folder, write_mnist, write_svhn


def _raw(loaded) -> np.ndarray:
    """Un-normalized uint8 images back from a normalize: false load."""
    return np.rint(loaded.inputs.numpy() * 255).astype(np.uint8)


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar10_train_and_test_read_back_exactly(tmp_path, bytes_keys):
    written = write_cifar10(tmp_path, bytes_keys=bytes_keys)
    for split in ("train", "test"):
        got = load_dataset("cifar10", tmp_path, split, normalize=False)
        x, y = written[split]
        assert got.inputs.shape == (len(x), 3, 32, 32) and got.inputs.dtype == torch.float32
        np.testing.assert_array_equal(_raw(got), x)
        np.testing.assert_array_equal(got.targets.numpy(), y)
        assert got.classes == 10
    # root may also be the batches folder itself
    again = load_dataset("cifar10", tmp_path / "cifar-10-batches-py", "test", normalize=False)
    np.testing.assert_array_equal(again.targets.numpy(), written["test"][1])


def test_normalization_is_the_usual_per_channel_one(tmp_path):
    written = write_cifar10(tmp_path)
    got = load_dataset("cifar10", tmp_path, "test")
    x = written["test"][0].astype(np.float64) / 255
    mean, std = (np.array(v).reshape(1, 3, 1, 1) for v in NORMALIZATION["cifar10"])
    np.testing.assert_allclose(got.inputs.numpy(), (x - mean) / std, atol=2e-6)
    # Li et al.'s constants, independently: [125.3, 123.0, 113.9] / 255 and [63.0, 62.1, 66.7] / 255
    assert NORMALIZATION["cifar10"][0][0] == pytest.approx(0.49137, abs=1e-5)
    assert NORMALIZATION["cifar10"][1][2] == pytest.approx(0.26157, abs=1e-5)
    custom = load_dataset("cifar10", tmp_path, "test", mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    np.testing.assert_allclose(custom.inputs.numpy(), (x - 0.5) / 0.25, atol=2e-6)


def test_cifar100_uses_fine_labels(tmp_path):
    written = write_cifar100(tmp_path)
    got = load_dataset("cifar100", tmp_path, "train", normalize=False)
    np.testing.assert_array_equal(got.targets.numpy(), written["train"][1])
    np.testing.assert_array_equal(_raw(got), written["train"][0])
    assert got.classes == 100 and got.targets.max() > 19  # fine (0..99), not coarse (0..19)


def test_a_tampered_cifar_batch_cannot_run_code(tmp_path):
    write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match="test_batch is not a CIFAR-10 python batch.*refusing"):
        load_dataset("cifar10", tmp_path, "test")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name,kind", [("MNIST", "mnist"), ("FashionMNIST", "fashion_mnist")])
@pytest.mark.parametrize("gz,layout", [(True, "torchvision"), (False, "torchvision"), (True, "flat")])
def test_mnist_idx_files_gz_or_not_in_torchvisions_layout_or_flat(tmp_path, name, kind, gz, layout):
    written = write_mnist(tmp_path, name=name, gz=gz, layout=layout)
    for split in ("train", "test"):
        got = load_dataset(kind, tmp_path, split, normalize=False)
        assert got.inputs.shape == (len(written[split][0]), 1, 28, 28)
        np.testing.assert_array_equal(_raw(got), written[split][0])
        np.testing.assert_array_equal(got.targets.numpy(), written[split][1])
    mean, std = NORMALIZATION[kind]
    normed = load_dataset(kind, tmp_path, "test")
    want = (written["test"][0] / 255 - mean[0]) / std[0]
    np.testing.assert_allclose(normed.inputs.numpy(), want, atol=2e-6)


def test_mnist_reader_agrees_with_torchvisions_own_reader(tmp_path):
    from landscape.vision import import_torchvision

    tv = import_torchvision()
    write_mnist(tmp_path, gz=False)  # torchvision reads the unpacked idx files in root/MNIST/raw
    theirs = tv.datasets.MNIST(str(tmp_path), train=True, download=False)
    ours = load_dataset("mnist", tmp_path, "train", normalize=False)
    np.testing.assert_array_equal(_raw(ours)[:, 0], theirs.data.numpy())
    np.testing.assert_array_equal(ours.targets.numpy(), theirs.targets.numpy())


def test_svhn_mat_files_with_label_10_meaning_zero(tmp_path):
    written = write_svhn(tmp_path)
    for split in ("train", "test"):
        got = load_dataset("svhn", tmp_path, split, normalize=False)
        np.testing.assert_array_equal(_raw(got), written[split][0])
        np.testing.assert_array_equal(got.targets.numpy(), written[split][1])
        assert (got.targets == 0).any() and got.targets.max() <= 9


def test_image_folder_labels_are_sorted_class_folders_and_size_resizes_then_crops(tmp_path):
    from PIL import Image

    from landscape.vision import import_torchvision

    files = write_image_folder(tmp_path, classes=("zebra", "ant", "moth"), per_class=(3, 4, 2))
    got = load_dataset("image_folder", tmp_path, None, normalize=False, size=16)
    assert got.classes == 3 and got.inputs.shape == (9, 3, 16, 16)
    order = ["ant", "moth", "zebra"]  # torchvision's ImageFolder: sorted folder names
    np.testing.assert_array_equal(got.targets.numpy(), [0] * 4 + [1] * 2 + [2] * 3)
    assert any("ant, moth, zebra" in n for n in got.notes)
    # The reference: torchvision's Resize(16) + CenterCrop(16) on the same PIL image.
    tf = import_torchvision().transforms
    pipeline = tf.Compose([tf.Resize(16), tf.CenterCrop(16), tf.PILToTensor()])
    paths = [p for c in order for p in files[c]]
    for i, p in enumerate(paths):
        want = pipeline(Image.open(p).convert("RGB")).numpy()
        np.testing.assert_array_equal(_raw(got)[i], want, err_msg=str(p))


def test_image_folder_split_reads_train_or_val_folders(tmp_path):
    write_image_folder(tmp_path / "train", per_class=(3, 3, 3), size=(12, 10))
    write_image_folder(tmp_path / "val", per_class=(1, 2, 1), size=(12, 10))
    assert len(load_dataset("image_folder", tmp_path, "train").targets) == 9
    test = load_dataset("image_folder", tmp_path, "test", normalize=False)
    assert test.inputs.shape == (4, 3, 12, 10)  # same-size images need no `size`
    write_image_folder(tmp_path / "mixed", per_class=(2, 2, 2))  # random sizes
    with pytest.raises(DataError, match="set data.size"):
        load_dataset("image_folder", tmp_path / "mixed", None)


def test_stratified_indices_keep_each_class_within_one_sample_of_its_share():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(5), [400, 250, 200, 100, 50]))  # 1,000 samples, unequal classes
    share = np.bincount(labels) / len(labels)
    for size in (10, 37, 100, 333, 999, 1000):
        idx = stratified_indices(labels, size, seed=3)
        assert len(idx) == size and len(np.unique(idx)) == size and np.all(np.diff(idx) > 0)
        counts = np.bincount(labels[idx], minlength=5)
        assert np.all(np.abs(counts - share * size) < 1), (size, counts, share * size)
    a, b, c = (stratified_indices(labels, 100, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)  # seeded


def test_subset_and_fraction_through_the_loader_keep_class_proportions(tmp_path):
    write_cifar100(tmp_path, n_train=400)
    full = load_dataset("cifar100", tmp_path, "train", normalize=False)
    sub = load_dataset("cifar100", tmp_path, "train", normalize=False, subset=200, seed=5)
    share = np.bincount(full.targets.numpy(), minlength=100) / 400
    counts = np.bincount(sub.targets.numpy(), minlength=100)
    assert counts.sum() == 200 and np.all(np.abs(counts - share * 200) < 1)
    assert sub.classes == 100  # a subset does not shrink the class count
    # the subset's images are the full set's images at the chosen indices
    idx = stratified_indices(full.targets.numpy(), 200, seed=5)
    assert torch.equal(sub.inputs, full.inputs[idx])
    frac = load_dataset("cifar100", tmp_path, "train", subset_fraction=0.25)
    assert len(frac.targets) == 100
    with pytest.raises(DataError, match="data.subset 401 is larger than CIFAR-100 train \\(400 samples\\)"):
        load_dataset("cifar100", tmp_path, "train", subset=401)


def test_image_folder_subset_decodes_only_the_chosen_files(tmp_path, monkeypatch):
    from landscape import readers

    write_image_folder(tmp_path, per_class=(6, 6, 6), size=(8, 8))
    decoded = []
    real = readers._decode
    monkeypatch.setattr(readers, "_decode", lambda p, s: decoded.append(p) or real(p, s))
    got = load_dataset("image_folder", tmp_path, None, subset=6)
    assert np.bincount(got.targets.numpy()).tolist() == [2, 2, 2]
    assert len(decoded) == 1 + 6  # the first image (for its shape) and the six chosen


def test_data_too_large_for_the_device_says_its_size_the_free_memory_and_what_to_do(tmp_path, monkeypatch):
    from landscape import memory

    write_cifar10(tmp_path)
    monkeypatch.setattr(memory, "free_memory", lambda device=None: (200_000, "CPU memory (MemAvailable in /proc/meminfo)"))
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", tmp_path, "train")
    msg = str(e.value)
    for needle in ("60 samples of (3, 32, 32)", "720.0 KiB", "195.3 KiB free", "MemAvailable", "data.subset: 8 or fewer", "data_chunk"):
        assert needle in msg, msg
    assert len(load_dataset("cifar10", tmp_path, "train", subset=8).targets) == 8  # what it suggests fits


def test_free_memory_reads_proc_meminfo(tmp_path):
    from landscape.memory import meminfo_available

    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:    2048 kB\n")
    assert meminfo_available(str(fake)) == 2048 * 1024
    assert meminfo_available(str(tmp_path / "none")) is None
    real = meminfo_available()
    assert real is None or real > 0
