"""Checkpoints: one format for every use, written atomically.

A checkpoint holds the detector's parameters under names relative to the detector (`backbone.features.0...`),
with the model EMA the same parameters averaged under `ema.` (`ema.backbone.features.0...`), then, under
`train_state.`, the optimizer moments, its step counter and the loss scale, and as metadata the epoch, the global
step, the model name and the class names. Eval and export read the detector part (the EMA's by default);
`--resume` reads everything.
"""
import json
import os

import mindspore as ms

from ..errors import CheckpointError  # noqa: F401  (re-exported)
from ..fileio import atomic_path
from .ema import EMA_PREFIX

TRAIN_STATE = "train_state."
META_KEYS = ("epoch", "global_step", "model_name", "class_names", "category_ids", "best_map")


def save_checkpoint(path, net, train_cell=None, meta=None):
    """Write `net`'s parameters (and the train state of `train_cell`) to `path`, via a temporary file."""
    entries = []
    seen = set()
    for name, param in net.parameters_and_names():
        entries.append({"name": name, "data": param})
        seen.add(id(param))
    if train_cell is not None:
        for param in train_cell.get_parameters():
            if id(param) not in seen:
                averaged = param.name.startswith(EMA_PREFIX)  # the EMA's weights, named as the detector's
                entries.append({"name": param.name if averaged else TRAIN_STATE + param.name, "data": param})
                seen.add(id(param))
    append = {}
    for key, value in (meta or {}).items():
        append[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
    with atomic_path(path) as tmp:
        ms.save_checkpoint(entries, tmp, append_dict=append)
    return path


def read_checkpoint(path):
    """(parameters {name: Parameter}, metadata dict). Raises CheckpointError for a missing or unreadable file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        params = ms.load_checkpoint(path)
    except Exception as e:  # MindSpore raises several types for a corrupt file
        raise CheckpointError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None
    meta = {}
    for key in META_KEYS:
        if key in params:
            value = params.pop(key)
            value = value.asnumpy().item() if hasattr(value, "asnumpy") else value
            if isinstance(value, str) and value[:1] in "[{":
                value = json.loads(value)
            meta[key] = value
    return params, meta


def load_into(net, params, path, prefix="", filter_prefixes=(), strict=False):
    """Copy matching `params` into `net`; returns (loaded, missing, unexpected) name lists.

    A shape mismatch is an error naming the parameter (usually a checkpoint of another model or class count);
    names starting with one of `filter_prefixes` are left out on purpose.
    """
    available = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    loaded, missing = [], []
    for name, param in net.parameters_and_names():
        if any(name.startswith(f) for f in filter_prefixes):
            continue
        if name not in available:
            missing.append(name)
            continue
        value = available[name]
        if tuple(value.shape) != tuple(param.shape):
            raise CheckpointError(f"{path}: parameter '{name}' has shape {tuple(value.shape)} in the checkpoint "
                                  f"but {tuple(param.shape)} in the model (a checkpoint of another model or "
                                  f"number of classes?)")
        param.set_data(ms.Tensor(value.asnumpy(), param.dtype))
        loaded.append(name)
    names = {n for n, _ in net.parameters_and_names()}
    unexpected = [k for k in available if k not in names and not k.startswith((TRAIN_STATE, EMA_PREFIX))]
    if not loaded:
        # Example names on both sides show at a glance whether a prefix or a whole model is wrong.
        ours = next((n for n, _ in net.parameters_and_names()), "-")
        theirs = next(iter(available), next(iter(params), "-"))
        raise CheckpointError(f"{path}: no parameter matches the model (checkpoint names such as '{theirs}', "
                              f"model names such as '{ours}')")
    if strict and missing:
        raise CheckpointError(f"{path}: {len(missing)} model parameters are missing, e.g. '{missing[0]}'")
    return loaded, missing, unexpected


def has_ema(params):
    return any(k.startswith(EMA_PREFIX) for k in params)


def load_weights(net, params, path, use_ema=True):
    """Load a checkpoint's weights for inference, strictly: its EMA weights when it has them and `use_ema`, else
    its raw ones. Returns which: "EMA" or "raw"."""
    if use_ema and has_ema(params):
        load_into(net, params, path, prefix=EMA_PREFIX, strict=True)
        return "EMA"
    load_into(net, params, path, strict=True)
    return "raw"


def load_train_state(train_cell, params, path):
    """Restore optimizer moments, step counter and loss scale saved by `save_checkpoint`."""
    restored = 0
    for param in train_cell.get_parameters():
        key = TRAIN_STATE + param.name
        # The lr schedule is rebuilt from the config (it may be longer now); its position is the step counter.
        if key in params and param.name != "learning_rate":
            value = params[key].asnumpy()
            if value.shape != tuple(param.shape):
                raise CheckpointError(f"{path}: train state '{param.name}' has shape {value.shape}, expected "
                                      f"{tuple(param.shape)}")
            param.set_data(ms.Tensor(value, param.dtype))
            restored += 1
    if restored == 0:
        raise CheckpointError(f"{path}: holds no optimizer state, so it cannot be resumed (use --pre_trained)")
    return restored
