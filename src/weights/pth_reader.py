"""Read a PyTorch state dict (`torch.save(model.state_dict(), path)`) into numpy arrays, without torch.

torch.save has written two layouts:
- since torch 1.6, a zip archive: `<name>/data.pkl` (the pickle), `<name>/data/<key>` (one raw storage per key)
  and `<name>/byteorder`;
- before that, one stream: pickles of a magic number, the format version and the system info, then the state
  dict pickle, then the list of storage keys, then each storage as an int64 element count and its raw bytes.
  torchvision's ImageNet files (e.g. mobilenet_v2-b0353104.pth) are of this kind.
In both, a tensor is pickled as a call of `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`,
and the pickle names each storage by a persistent id.

A pickle may call any importable function, so the unpickler here resolves only the few names a state dict needs,
each to a harmless stand-in, and refuses every other name. Offsets and strides are checked against the storage
before numpy views it, so that a crafted file cannot make us read outside a buffer.
"""
import collections
import os
import pickle
import struct
import zipfile
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..training.checkpoint import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_VERSION = 1001
# torch storage classes and their element types (numpy has no bfloat16: such files are refused by name).
STORAGE_DTYPES = {"FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "LongStorage": "i8",
                  "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
                  "BoolStorage": "?"}
STATE_DICT_HINT = "expected a state dict saved with torch.save(model.state_dict(), path)"


# The stand-ins are named tuples: immutable, so a BUILD opcode in the pickle cannot change a record after it was
# checked (say, a tensor's offset or strides, to read outside its storage).
class StorageType(NamedTuple):
    """Stands in for a class such as torch.FloatStorage: only its element type matters. Not callable."""
    name: str
    dtype: np.dtype


class StorageRef(NamedTuple):
    """A storage that the pickle names by key; its bytes are read after the pickle."""
    key: str
    dtype: np.dtype
    numel: int


class TensorRef(NamedTuple):
    """What `_rebuild_tensor_v2` returned; made into an array once the storages are read."""
    storage: StorageRef
    offset: int
    shape: tuple
    strides: tuple


def _is_int_tuple(value):
    return isinstance(value, tuple) and all(isinstance(v, int) and v >= 0 for v in value)


def _rebuild_tensor(storage, offset, shape, strides, *unused):
    """Stand-in for torch._utils._rebuild_tensor_v2 (extra arguments: requires_grad, hooks, metadata)."""
    if not (isinstance(storage, StorageRef) and isinstance(offset, int) and offset >= 0 and _is_int_tuple(shape)
            and _is_int_tuple(strides) and len(shape) == len(strides)):
        raise ValueError("malformed tensor record")
    return TensorRef(storage, offset, shape, strides)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names a state dict needs; storages become StorageRef records in `self.storages`."""

    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name, np.dtype(STORAGE_DTYPES[name]))
        raise CheckpointError(f"{self.path}: refused to load '{module}.{name}' from the pickle; only tensors and "
                              f"dicts are read ({STATE_DICT_HINT})")

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy: the same plus view metadata (None unless a view).
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], StorageType) and isinstance(pid[4], int) and pid[4] >= 0):
            raise CheckpointError(f"{self.path}: unsupported persistent id {str(pid)[:80]}")
        if len(pid) == 6 and pid[5] is not None:
            raise CheckpointError(f"{self.path}: storage views (torch before 0.4) are not supported")
        key, dtype, numel = str(pid[2]), pid[1].dtype, pid[4]
        ref = self.storages.setdefault(key, StorageRef(key, dtype, numel))
        if ref.dtype != dtype:
            raise CheckpointError(f"{self.path}: storage {key} is used as {ref.dtype} and as {dtype}")
        return ref


def _unpickle(unpickler, path, what):
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except Exception as e:  # a corrupt or foreign pickle raises many types
        raise CheckpointError(f"{path}: cannot read the {what} ({type(e).__name__}: {e})") from None


def _storage_array(raw, ref, byteorder, path):
    """The first `ref.numel` elements of `raw` as a native-order array."""
    dtype = ref.dtype.newbyteorder("<" if byteorder == "little" else ">")
    if len(raw) < ref.numel * dtype.itemsize:
        raise CheckpointError(f"{path}: storage {ref.key} is truncated ({len(raw)} bytes, expected "
                              f"{ref.numel * dtype.itemsize})")
    return np.frombuffer(raw, dtype, count=ref.numel).astype(ref.dtype.newbyteorder("="), copy=False)


def _materialise(name, ref, buffers, path):
    buf = buffers[ref.storage.key]
    if 0 in ref.shape:
        return np.zeros(ref.shape, buf.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides))
    if last >= buf.size:
        raise CheckpointError(f"{path}: tensor '{name}' reaches element {last} of a storage of {buf.size}")
    view = as_strided(buf[ref.offset:], ref.shape, [s * buf.itemsize for s in ref.strides], writeable=False)
    return np.array(view, order="C")  # a contiguous copy that owns its memory


def _tensors(state, buffers, path):
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, {STATE_DICT_HINT}")
    out = {}
    for name, ref in state.items():
        if not isinstance(ref, TensorRef):
            raise CheckpointError(f"{path}: entry '{name}' is a {type(ref).__name__}, not a tensor; {STATE_DICT_HINT}")
        out[str(name)] = _materialise(name, ref, buffers, path)
    return out


def _read_zip(path):
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: a zip file but not a PyTorch checkpoint (no single <name>/data.pkl)")
        root = pickles[0][:-len("data.pkl")]
        byteorder = zf.read(root + "byteorder").decode().strip() if root + "byteorder" in names else "little"
        with zf.open(pickles[0]) as f:
            unpickler = _RestrictedUnpickler(f, path)
            state = _unpickle(unpickler, path, "state dict pickle")
        buffers = {}
        for key, ref in unpickler.storages.items():
            member = f"{root}data/{key}"
            if member not in names:
                raise CheckpointError(f"{path}: storage {key} is missing from the archive")
            buffers[key] = _storage_array(zf.read(member), ref, byteorder, path)
    return _tensors(state, buffers, path)


def _read_legacy(path):
    not_torch = f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor torch's older format)"
    with open(path, "rb") as f:
        header = _RestrictedUnpickler(f, path)
        try:
            magic = header.load()
        except Exception:  # anything else: random bytes, another pickle, a text file
            raise CheckpointError(not_torch) from None
        if magic != LEGACY_MAGIC:
            raise CheckpointError(not_torch)
        version = _unpickle(header, path, "format version")
        if version != LEGACY_VERSION:
            raise CheckpointError(f"{path}: unsupported torch.save format version {version}")
        sys_info = _unpickle(header, path, "system info")
        byteorder = "little" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) else "big"
        unpickler = _RestrictedUnpickler(f, path)
        state = _unpickle(unpickler, path, "state dict pickle")
        keys = _unpickle(_RestrictedUnpickler(f, path), path, "storage list")
        size = os.fstat(f.fileno()).st_size
        count_format = "<q" if byteorder == "little" else ">q"
        buffers = {}
        for key in keys:
            ref = unpickler.storages.get(str(key))
            count = f.read(8)
            if ref is None or len(count) != 8 or struct.unpack(count_format, count)[0] != ref.numel:
                raise CheckpointError(f"{path}: storage {key} does not match the state dict (corrupt file?)")
            nbytes = ref.numel * ref.dtype.itemsize
            if nbytes > size - f.tell():
                raise CheckpointError(f"{path}: storage {key} is truncated")
            buffers[str(key)] = _storage_array(f.read(nbytes), ref, byteorder, path)
    missing = set(unpickler.storages) - set(buffers)
    if missing:
        raise CheckpointError(f"{path}: storage {sorted(missing)[0]} is named but not stored (corrupt file?)")
    return _tensors(state, buffers, path)


def read_state_dict(path):
    """{parameter name: numpy array} from a PyTorch state dict file; CheckpointError names the file otherwise."""
    if not os.path.isfile(path):
        raise CheckpointError(f"PyTorch checkpoint not found: {path}")
    return _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
