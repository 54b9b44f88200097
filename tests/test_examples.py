"""The example specs: every one validates, and the MNIST pair runs unchanged on a fake MNIST in data/mnist."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from jobs.cli import main
from jobs.specs import SPEC_KINDS, load_any_spec

from .fake_datasets import write_mnist

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "jobs" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_a_valid_spec(path):
    spec = load_any_spec(path)
    assert isinstance(spec, tuple(cls for _, cls, *_ in SPEC_KINDS))


def test_built_in_data_and_models_each_have_an_example():
    text = "\n".join(p.read_text() for p in EXAMPLES)
    for kind in ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "image_folder", "vgg9", "vgg16", "wrn28_10",
                 "densenet121", "torchvision", "jobs.examples.hf_text:make_model"):
        assert f"kind: {kind}" in text or kind in text, kind


@pytest.mark.ray
def test_the_mnist_examples_run_on_a_fake_mnist_and_match_plain_pytorch(ray_cluster, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    written = write_mnist(tmp_path / "data" / "mnist", n_train=64, n_test=40)
    train = yaml.safe_load((EXAMPLES[0].parent / "train_mnist_cnn.yaml").read_text())
    train["epochs"] = 2
    scan = yaml.safe_load((EXAMPLES[0].parent / "mnist_cnn_random_plane.yaml").read_text())
    scan["slice"]["checkpoint"] = "runs/mnist-cnn/epoch_002.pt"
    scan["grid"] = {"x": {"min": -1.0, "max": 0.5, "num": 4}, "y": {"min": 0.0, "max": 0.9, "num": 3}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train))
    (tmp_path / "scan.yaml").write_text(yaml.safe_dump(scan))
    assert main(["train", "train.yaml"]) == 0
    assert main(["run", "scan.yaml", "--no-plot", "--actors", "1"]) == 0
    import zarr

    loss = zarr.open_group("results/mnist-cnn-random-plane.zarr", mode="r")["loss"][...]
    assert loss.shape == (3, 4) and np.isfinite(loss).all()
    # (x, y) = (0, 0) is the checkpoint: plain PyTorch on the test images normalized by hand
    from landscape.models import SmallCNN

    model = SmallCNN(1, (28, 28), 10)
    model.load_state_dict(torch.load("runs/mnist-cnn/epoch_002.pt", weights_only=True))
    x = (torch.from_numpy(written["test"][0]).double() / 255 - 0.1307) / 0.3081
    with torch.no_grad():
        want = F.cross_entropy(model.eval()(x.float()), torch.from_numpy(written["test"][1])).item()
    j0 = 2  # x = -1.0, -0.5, 0.0, 0.5
    assert loss[0, j0] == pytest.approx(want, rel=1e-5)
