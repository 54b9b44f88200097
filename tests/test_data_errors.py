"""Bad data and model inputs of the file data sets and the model zoo: one line, exit 2, nothing written."""

import numpy as np
import pytest
import torch
import yaml

from landscape.factories import ModelFactory

from .fake_datasets import _pickle_batch, write_cifar10, write_cifar100, write_image_folder, write_mnist, write_png_header
from .one_line import run_bad


def _scan(data: dict, model: dict | None = None, checkpoint: str = "nope.pt") -> dict:
    return {
        "name": "bad",
        "model": model or {"kind": "cnn"},
        "data": data,
        "slice": {"kind": "random_plane", "checkpoint": checkpoint},
        "grid": {"x": {"min": -1, "max": 1, "num": 3}, "y": {"min": -1, "max": 1, "num": 2}},
    }


def _cases(tmp_path, monkeypatch):
    cifar = tmp_path / "cifar"
    write_cifar10(cifar, per_batch=12)
    mnist = tmp_path / "mnist"
    write_mnist(mnist)
    damaged = tmp_path / "damaged"
    write_cifar10(damaged)
    (damaged / "cifar-10-batches-py" / "data_batch_3").write_text("not a pickle\n")
    c100 = tmp_path / "c100"
    write_cifar100(c100, n_train=120, n_test=10)
    ten = ModelFactory("import", (3, 32, 32), 10, {"classes": 10}, factory="tests.token_factories:make_image_model")()
    ckpt10 = tmp_path / "ten.pt"
    torch.save(ten.state_dict(), ckpt10)
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    one = tmp_path / "one"
    write_image_folder(one, classes=("only",), per_class=(3,), size=(8, 8))
    corrupt = tmp_path / "corrupt"  # a .gz whose compressed body is damaged (zlib.error, not OSError)
    corrupt.mkdir()
    import gzip

    packed = bytearray(gzip.compress(bytes(range(256)) * 64))
    packed[20:40] = b"\xff" * 20
    (corrupt / "train-images-idx3-ubyte.gz").write_bytes(bytes(packed))
    (corrupt / "train-labels-idx1-ubyte.gz").write_bytes(bytes(packed))
    svhn = tmp_path / "svhn"
    svhn.mkdir()
    (svhn / "train_32x32.mat").write_bytes(b"")  # empty (scipy's MatReadError)
    flat = tmp_path / "flat"
    write_image_folder(flat, per_class=(2, 2, 2), size=(8, 8))

    def small_memory():
        from landscape import memory

        monkeypatch.setattr(memory, "free_memory", lambda device=None: (300_000, "CPU memory (MemAvailable in /proc/meminfo)"))

    bad_labels = {}  # a batch whose labels are words, or a column (N, 1)
    for what, labels in (("words", [f"c{i % 10}" for i in range(12)]), ("column", [[i % 10] for i in range(12)])):
        bad_labels[what] = tmp_path / f"labels-{what}"
        write_cifar10(bad_labels[what])
        _pickle_batch(bad_labels[what] / "cifar-10-batches-py" / "data_batch_2",
                      {"labels": labels, "data": np.zeros((12, 3072), np.uint8)})
    bomb = tmp_path / "bomb"
    write_image_folder(bomb, classes=("a", "b"), per_class=(2, 2), size=(8, 8))
    write_png_header(bomb / "a" / "000.png", 20000, 20000)
    c10 = {"kind": "cifar10", "root": str(cifar)}
    return {
        "root does not exist": (_scan({**c10, "root": str(tmp_path / "nowhere")}), ["data.root", "does not exist", "cs.toronto.edu"]),
        "root holds other files": (_scan({**c10, "root": str(mnist)}), ["does not hold the CIFAR-10 files", "data_batch_1"]),
        "damaged batch": (_scan({**c10, "root": str(damaged)}), ["data_batch_3 is not a CIFAR-10 python batch"]),
        "mnist root empty": (_scan({"kind": "mnist", "root": str(cifar)}), ["train-images-idx3-ubyte[.gz]", "MNIST/raw"]),
        "corrupt gzip": (_scan({"kind": "mnist", "root": str(corrupt)}), ["train-images-idx3-ubyte.gz: cannot read it"]),
        "empty svhn file": (_scan({"kind": "svhn", "root": str(svhn)}), ["train_32x32.mat is not a MATLAB file"]),
        "svhn file missing": (_scan({"kind": "svhn", "root": str(cifar)}), ["train_32x32.mat", "ufldl.stanford.edu"]),
        "split does not exist": (_scan({**c10, "split": "valid"}), ["data.split", "'train' or 'test'"]),
        "image folder split does not exist": (_scan({"kind": "image_folder", "root": str(flat), "split": "test"}),
                                              ["data.split 'test'", "no val/ or test/ folder"]),
        "subset larger than the data set": (_scan({**c10, "subset": 61}), ["data.subset 61 is larger than CIFAR-10 train (60 samples)"]),
        "subset and fraction": (_scan({**c10, "subset": 5, "subset_fraction": 0.5}), ["data", "subset or subset_fraction, not both"]),
        "image folder without images": (_scan({"kind": "image_folder", "root": str(empty)}), ["holds no images"]),
        "image folder of one class": (_scan({"kind": "image_folder", "root": str(one)}), ["holds one class folder ('only')"]),
        "torchvision name does not exist": (_scan(c10, {"kind": "torchvision", "name": "resnet19"}),
                                            ["model.name 'resnet19'", "close matches: resnet18"]),
        "torchvision without a name": (_scan(c10, {"kind": "torchvision"}), ["model", "kind torchvision needs name"]),
        "output does not fit the classes": (
            _scan({"kind": "cifar100", "root": str(c100)},
                  {"kind": "import", "factory": "tests.token_factories:make_image_model", "options": {"classes": 10}}, str(ckpt10)),
            ["the model outputs 10 values per sample but the data set has 100 classes", "classes"]),
        "labels are words": (_scan({**c10, "root": str(bad_labels["words"])}),
                             ["data_batch_2: its 'labels' must be a flat list of integer class labels", "<U2"]),
        "labels are a column": (_scan({**c10, "root": str(bad_labels["column"])}),
                                ["data_batch_2: its 'labels' must be a flat list of integer class labels", "shape (12, 1)"]),
        "a decompression bomb in an image folder": (_scan({"kind": "image_folder", "root": str(bomb)}),
                                                    ["a/000.png is too large to decode", "400000000 pixels"]),
        "too large for the device": (_scan(c10), ["60 samples of (3, 32, 32)", "293.0 KiB free", "data.subset: 12 or fewer"],
                                     small_memory),
    }


CASES = [
    "root does not exist", "root holds other files", "damaged batch", "mnist root empty", "corrupt gzip",
    "empty svhn file", "svhn file missing",
    "split does not exist", "image folder split does not exist", "subset larger than the data set", "subset and fraction",
    "image folder without images", "image folder of one class", "torchvision name does not exist",
    "torchvision without a name", "output does not fit the classes", "too large for the device",
    "labels are words", "labels are a column", "a decompression bomb in an image folder",
]


def _one_line_exit_2(capsys, argv, needles):
    run_bad(capsys, argv, *needles)


@pytest.mark.parametrize("case", CASES)
def test_bad_data_and_models_are_one_line_exit_2_and_write_nothing(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec, needles, *setup = _cases(tmp_path, monkeypatch)[case]
    for s in setup:
        s()
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    _one_line_exit_2(capsys, ["validate", str(path)], needles)
    out = tmp_path / "out.zarr"
    _one_line_exit_2(capsys, ["run", str(path), "--out", str(out), "--no-plot"], needles)
    assert not out.exists() and not (tmp_path / "results").exists()
    # the same data and model in a training spec fail the same way, before any checkpoint is written
    train = {"name": "bad-train", "model": spec["model"], "data": spec["data"], "epochs": 1, "output": str(tmp_path / "run")}
    path.write_text(yaml.safe_dump(train))
    _one_line_exit_2(capsys, ["train", str(path)], needles)
    assert not (tmp_path / "run").exists()
