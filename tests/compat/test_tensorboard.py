"""SummaryWriter's event files, read back by TensorBoard's own loader (the oracle) and by
its CRC checks."""

import glob
import os

import numpy as np
import pytest

import manygrad as mg
from manygrad.utils.tensorboard import SummaryWriter, _events

loader = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the tensorboard package reads the files back: pip install tensorboard",
)


def test_crc32c_known_values():
    # NOTE: the check values of CRC-32C (RFC 3720, B.4)
    assert _events.crc32c(b"123456789") == 0xE3069283
    assert _events.crc32c(bytes(32)) == 0x8A9136AA


def _load(path):
    acc = loader.EventAccumulator(path, size_guidance={"scalars": 0, "histograms": 0,
                                                       "images": 0, "tensors": 0})  # fmt: skip
    acc.Reload()
    return acc


def test_scalars_histograms_images_text(tmp_path):
    log = str(tmp_path / "run")
    with SummaryWriter(log) as w:
        for step in range(5):
            w.add_scalar("loss/train", 1.0 / (step + 1), step)
        w.add_scalar("lr", mg.tensor(0.5), 7)
        vals = np.random.default_rng(0).standard_normal(1000)
        w.add_histogram("weights", mg.tensor(vals), 3)
        img = np.zeros((3, 4, 5), np.float32)
        img[0] = 1.0
        w.add_image("red", mg.tensor(img), 2)
        w.add_text("notes", "hello **TensorBoard**", 1)
        w.add_scalars("acc", {"train": 0.9, "test": 0.8}, 4)
    acc = _load(log)
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"loss/train", "lr"}
    got = [(e.step, e.value) for e in acc.Scalars("loss/train")]
    assert [s for s, _ in got] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in got], [1 / (s + 1) for s in range(5)], rtol=1e-6)
    assert acc.Scalars("lr")[0].step == 7 and acc.Scalars("lr")[0].value == 0.5
    h = acc.Histograms("weights")[0].histogram_value
    assert h.num == 1000 and np.isclose(h.sum, vals.sum()) and sum(h.bucket) == 1000
    im = acc.Images("red")[0]
    assert (im.height, im.width) == (4, 5) and im.encoded_image_string.startswith(b"\x89PNG")
    text = acc.Tensors("notes")[0].tensor_proto.string_val[0]
    assert text == b"hello **TensorBoard**"
    child = _load(os.path.join(log, "acc_test"))
    assert child.Scalars("acc")[0].value == pytest.approx(0.8)


def test_png_decodes(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="Pillow decodes the PNG")
    import io

    a = (np.arange(4 * 6 * 3) % 256).astype(np.uint8).reshape(4, 6, 3)
    back = np.asarray(pil.open(io.BytesIO(_events.png(a))))
    np.testing.assert_array_equal(back, a)


def test_bad_input_and_closed_writer(tmp_path):
    w = SummaryWriter(str(tmp_path / "r"))
    with pytest.raises(ValueError, match="one number"):
        w.add_scalar("x", mg.ones(3))
    with pytest.raises(ValueError, match="dataformats"):
        w.add_image("x", np.zeros((4, 5)), dataformats="CHW")
    w.add_scalar("x", 1.0)
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.add_scalar("x", 2.0)
    assert len(glob.glob(str(tmp_path / "r" / "events.out.tfevents.*"))) == 1


def test_torch_import_path_and_default_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = mg.utils.tensorboard.SummaryWriter(comment="_exp")
    w.add_scalar("a", 1, 0)
    w.close()
    assert w.get_logdir().startswith("runs") and w.get_logdir().endswith("_exp")
    assert os.path.isdir(w.get_logdir())
