"""Device, execution mode and distributed set-up: the one place that calls `mindspore.set_context`."""
import contextlib
import os
import sys
from dataclasses import dataclass

import mindspore as ms

from .config import ConfigError

# The `mode` and `device_target` keys' values.
MODES = {"GRAPH": ms.GRAPH_MODE, "PYNATIVE": ms.PYNATIVE_MODE}
DEVICE_TARGETS = ("auto", "CPU", "GPU", "Ascend")
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

    def exit_process(self, code=0):
        """End this rank's process once its work is written: wait for every rank, run the exit handlers (MindSpore's
        unregisters the node from the scheduler), flush, and skip the interpreter's final garbage collection.

        MindSpore 2.10's CPU workers can segfault in that collection after they have unregistered (seen under
        mpirun with the machine loaded), which makes the launcher report a finished job as failed.
        """
        import atexit
        import logging

        self.barrier()
        logging.shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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


def _device_id(configured):
    """The device index: the DEVICE_ID environment variable (as launchers set it; checked by the config), else the
    config's."""
    value = os.environ.get("DEVICE_ID")
    return int(configured) if value is None else int(value)


@contextlib.contextmanager
def native_stderr_silenced():
    """Drop what MindSpore's C++ code writes to stderr inside the block: where a failure is reported as one line of
    ours, its own log lines would only bury it."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _backend_available(target):
    """Whether MindSpore can use `target` (its probe lists, on stderr, the plugins it fails to load)."""
    with native_stderr_silenced():
        return bool(ms.hal.is_available(target))


def setup_device(mode="GRAPH", device_target="auto", device_id=0, seed=1, distributed=False, device_num=0):
    """Set the execution mode and the device; with `distributed`, initialise communication.

    `device_id` is overridden by the DEVICE_ID environment variable, as launchers set it. `device_num` (the model
    zoo's flag) is checked against the launcher's group size when it is not 0.
    """
    mode = str(mode).upper()
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    ms.set_context(mode=MODES[mode])
    target = str(device_target)
    if target.lower() != "auto":
        if target not in DEVICE_TARGETS:
            raise ConfigError(f"device_target must be one of {', '.join(DEVICE_TARGETS)}, got {target!r}")
        if target == "CPU":
            ms.set_device("CPU")
        else:
            index = _device_id(device_id)
            if not _backend_available(target):
                raise ConfigError(f"--device_target {target}: this MindSpore install has no {target} backend (the "
                                  f"package or its drivers are missing); use --device_target CPU or auto")
            ms.set_device(target, index)
    target = ms.get_context("device_target")
    ms.set_seed(int(seed))  # the same on every rank: the dataset shards are cut from one shuffled order

    if not distributed:
        if device_num > 1:
            raise ConfigError(f"--device_num {device_num} needs --run_distribute True and a launcher that starts "
                              "one process per device (scripts/run_distribute_train*.sh)")
        return DeviceInfo(target)
    check_launcher(target)
    from mindspore.communication import get_group_size, get_rank, init
    from mindspore.context import ParallelMode

    init()  # under msrun's scheduler role this call serves the job and never returns
    rank, group_size = get_rank(), get_group_size()
    if device_num and device_num != group_size:
        raise ConfigError(f"--device_num {device_num} disagrees with the launcher, which started {group_size} "
                          "processes; leave it at 0 to take the launcher's count")
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=group_size)
    return DeviceInfo(target, rank, group_size, distributed=True)


def device_from_config(cfg, training=False):
    """setup_device with the config's device keys. Only training reads `run_distribute` and `device_num`: eval,
    export and predict run on one device even when they read the config of a distributed run."""
    if not training:
        return setup_device(cfg.mode, cfg.device_target, cfg.device_id, cfg.get("seed", 1))
    return setup_device(cfg.mode, cfg.device_target, cfg.device_id, cfg.seed, cfg.run_distribute, cfg.device_num)
