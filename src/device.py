"""Device, execution mode and distributed set-up: the one place that calls `mindspore.set_context`."""
import os
from dataclasses import dataclass

import mindspore as ms

_MODES = {"GRAPH": ms.GRAPH_MODE, "PYNATIVE": ms.PYNATIVE_MODE}


@dataclass
class DeviceInfo:
    device_target: str
    rank: int = 0
    group_size: int = 1

    @property
    def is_main(self):
        return self.rank == 0


def setup_device(cfg):
    """Set mode and device from `cfg.mode` / `cfg.device_target`; initialise communication if distributed."""
    mode = str(cfg.mode).upper()
    if mode not in _MODES:
        raise ValueError(f"mode must be GRAPH or PYNATIVE, got {cfg.mode!r}")
    ms.set_context(mode=_MODES[mode])
    target = str(cfg.device_target)
    if target.lower() != "auto":
        if target not in ("CPU", "GPU", "Ascend"):
            raise ValueError(f"device_target must be auto, CPU, GPU or Ascend, got {target!r}")
        if target == "CPU":
            ms.set_device("CPU")
        else:
            ms.set_device(target, int(os.environ.get("DEVICE_ID", cfg.get("device_id", 0))))
    target = ms.get_context("device_target")
    ms.set_seed(int(cfg.seed))

    if not cfg.get("run_distribute", False):
        return DeviceInfo(target)
    from mindspore.communication import get_group_size, get_rank, init
    from mindspore.context import ParallelMode

    init()
    rank, group_size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=group_size)
    return DeviceInfo(target, rank, group_size)
