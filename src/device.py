"""Device, execution mode and distributed set-up: the one place that calls `mindspore.set_context`."""
import os
from dataclasses import dataclass

import mindspore as ms

from .config import ConfigError

_MODES = {"GRAPH": ms.GRAPH_MODE, "PYNATIVE": ms.PYNATIVE_MODE}
# What each launcher leaves in the environment of the processes it starts.
_MSRUN_ENV = "MS_ROLE"                                   # msrun, the mpirun CPU wrapper, or set by hand
_MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")          # mpirun (OpenMPI, MPICH)
_RANK_TABLE_ENV = ("RANK_TABLE_FILE", "MINDSPORE_HCCL_CONFIG_PATH")   # Ascend rank table


@dataclass
class DeviceInfo:
    device_target: str
    rank: int = 0
    group_size: int = 1
    distributed: bool = False

    @property
    def is_main(self):
        return self.rank == 0

    def barrier(self):
        """Block until every rank gets here (a no-op on one device).

        The Barrier primitive has no CPU kernel, and `comm_func.all_reduce` none in PyNative on the CPU, but the
        AllReduce primitive runs everywhere: summing one number across ranks waits for all of them.
        """
        if not self.distributed:
            return
        import numpy as np
        from mindspore import ops

        ops.AllReduce()(ms.Tensor(np.ones(1, np.float32))).asnumpy()


def check_launcher(target):
    """Raise ConfigError unless a distributed launcher started this process: init() would fail deep inside."""
    if os.environ.get(_MSRUN_ENV):
        return
    if any(os.environ.get(k) for k in _MPI_ENV):
        if target == "CPU":
            raise ConfigError("--run_distribute on the CPU under mpirun needs the scheduler wrapper: "
                              "DEVICE_TARGET=CPU bash scripts/run_distribute_train_gpu.sh ... "
                              "(or use scripts/run_distribute_train_msrun.sh)")
        return
    if target == "Ascend" and any(os.environ.get(k) for k in _RANK_TABLE_ENV):
        return
    raise ConfigError("--run_distribute True needs a launcher that starts one process per device: "
                      "bash scripts/run_distribute_train_msrun.sh DEVICE_NUM [CONFIG_PATH] [flags...] "
                      "(any device, also CPU), scripts/run_distribute_train_gpu.sh (mpirun) or "
                      "scripts/run_distribute_train.sh (Ascend rank table)")


def setup_device(cfg, distributed=False):
    """Set mode and device from `cfg.mode` / `cfg.device_target`; with `distributed`, initialise communication.

    Only train.py passes `distributed` (from `cfg.run_distribute`): eval, export and predict run on one device even
    when they read the config of a distributed run.
    """
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
    ms.set_seed(int(cfg.seed))  # the same on every rank: the dataset shards are cut from one shuffled order

    if not distributed:
        return DeviceInfo(target)
    check_launcher(target)
    from mindspore.communication import get_group_size, get_rank, init
    from mindspore.context import ParallelMode

    init()  # under msrun's scheduler role this call serves the job and never returns
    rank, group_size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=group_size)
    return DeviceInfo(target, rank, group_size, distributed=True)
