"""Datasets: torchvision's readers on fake files in their on-disk formats, the missing-data line, text windows."""

import pickle
import struct

import numpy as np
import pytest
import torch

from bench.data import build_dataset, check_available, standardize_per_image
from bench.data.text import load_text
from bench.data.vision import DataMissing
from bench.errors import ConfigError
from tests.conftest import compose_cfg


def write_fake_cifar10(root, n_per_batch=4, seed=0):
    """CIFAR-10's python pickles: 5 training batches, a test batch, the meta file."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = list(rng.integers(0, 10, n_per_batch))
        images[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return images


def skip_md5(monkeypatch):
    """torchvision checks the md5 sums of the real CIFAR files; the fake ones pass only the format."""
    import torchvision  # here, not at collection: seconds in every pytest-xdist worker

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


def test_cifar10_through_torchvision_reader(tmp_path, monkeypatch):
    images = write_fake_cifar10(tmp_path)
    skip_md5(monkeypatch)
    cfg = compose_cfg("dataset=cifar10", f"dataset.root={tmp_path}").dataset
    check_available(cfg)
    data = build_dataset(cfg, torch.device("cpu"))
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.num_classes == 10 and data.input_shape == (3, 32, 32) and not data.is_lm
    raw, labels = images["test_batch"]
    want = standardize_per_image(torch.as_tensor(raw, dtype=torch.float32).view(-1, 3, 32, 32))  # CHW order
    torch.testing.assert_close(data.x_test, want)
    assert data.y_test.argmax(1).tolist() == labels
    assert torch.all(data.y_train.sum(1) == 1)


def test_num_examples_is_a_fixed_subset(tmp_path, monkeypatch):
    write_fake_cifar10(tmp_path)
    skip_md5(monkeypatch)
    cfg = compose_cfg("dataset=cifar10", f"dataset.root={tmp_path}", "dataset.num_examples=7").dataset
    a, b = (build_dataset(cfg, torch.device("cpu")) for _ in range(2))
    assert len(a.x_train) == 7 and torch.equal(a.x_train, b.x_train)


def write_idx(path, array):
    """The IDX format of MNIST: magic (0x08 = uint8, number of dims), big-endian sizes, the bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_through_torchvision_reader(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_x, test_x = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    write_idx(raw / "train-images-idx3-ubyte", train_x)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(6) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([3, 1, 4]))
    data = build_dataset(compose_cfg(f"dataset={name}", f"dataset.root={tmp_path}").dataset, torch.device("cpu"))
    assert data.x_train.shape == (6, 1, 28, 28) and data.y_test.argmax(1).tolist() == [3, 1, 4]
    torch.testing.assert_close(data.x_test, standardize_per_image(torch.tensor(test_x, dtype=torch.float32)[:, None]))


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "mnist", "fashion_mnist"])
def test_missing_dataset_is_one_line(tmp_path, name):
    cfg = compose_cfg(f"dataset={name}", f"dataset.root={tmp_path}", "dataset.download=false").dataset
    with pytest.raises(DataMissing) as e:
        check_available(cfg)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and f"dataset={name} dataset.download=true" in msg
    assert isinstance(e.value, ConfigError)
    with pytest.raises(DataMissing):
        build_dataset(cfg, torch.device("cpu"))


# The command line's one line for a missing dataset (`python launch.py` with no CIFAR: non-zero exit, nothing run) is
# checked with the preset that needs it: tests/test_cli.py::test_printing_a_config_needs_no_data.


def test_model_dataset_mismatch_is_one_line():
    from bench.config import validate

    with pytest.raises(ConfigError, match="^model=transformer: needs dataset=text"):
        validate(compose_cfg("model=transformer"))
    with pytest.raises(ConfigError, match="^model=wrn: dataset=text needs model=transformer"):
        validate(compose_cfg("model=wrn", "dataset=text"))
    with pytest.raises(ConfigError, match="^dataset.context=128"):
        validate(compose_cfg("model=transformer", "dataset=text", "dataset.context=128"))


def test_pydoc_text_windows_and_next_token_targets():
    cfg = compose_cfg("model=transformer", "dataset=text", "dataset.vocab_size=300", "dataset.context=16").dataset
    data = load_text(cfg)
    assert data.is_lm and data.num_classes == 300 and data.input_shape == (16,)
    assert data.x_train.dtype == torch.long and len(data.x_train) > 1000 and len(data.x_test) > 50
    assert torch.equal(data.y_train[:, :-1], data.x_train[:, 1:])  # targets are the next tokens
    assert torch.equal(data.y_train[:-1, -1], data.x_train[1:, 0])  # windows are contiguous
    assert int(data.x_train.max()) < 300


def test_wikitext_tokenizer_trained_once_and_cached(tmp_path, monkeypatch):
    from bench.data import text

    train, test = text.pydoc_text()
    (tmp_path / "wiki.train.raw").write_text("\n".join(train[:20]))
    (tmp_path / "wiki.test.raw").write_text("\n".join(test[:3]))
    overrides = ["model=transformer", "dataset=text", "dataset.source=wikitext2", f"dataset.root={tmp_path}"]
    cfg = compose_cfg(*overrides, "dataset.vocab_size=200", "dataset.context=8").dataset
    first = load_text(cfg)
    assert (tmp_path / "bpe-200.json").exists()
    monkeypatch.setattr(text, "train_tokenizer", lambda *a: pytest.fail("the cached tokenizer was not used"))
    second = load_text(cfg)
    assert torch.equal(first.x_train, second.x_train) and first.num_classes == 200


def test_missing_wikitext_is_one_line(tmp_path):
    cfg = compose_cfg("model=transformer", "dataset=text", "dataset.source=wikitext2", f"dataset.root={tmp_path}")
    with pytest.raises(DataMissing, match="wiki.train.raw not found") as e:
        check_available(cfg.dataset)
    assert "\n" not in str(e.value) and "dataset.source=pydoc" in str(e.value)


def test_corrupt_cifar_is_one_line(tmp_path):
    write_fake_cifar10(tmp_path)  # the right files, the wrong md5 sums: torchvision refuses them
    cfg = compose_cfg("dataset=cifar10", f"dataset.root={tmp_path}").dataset
    check_available(cfg)  # the files are there
    with pytest.raises(DataMissing, match="^dataset=cifar10: could not read it") as e:
        build_dataset(cfg, torch.device("cpu"))
    assert "\n" not in str(e.value)
