"""Timing, memory and machine figures shared by the benchmarks."""
import os
import platform
import resource
import time

import numpy as np


def peak_rss_mb():
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, repeats, warmup=1):
    """Seconds per call of fn() for `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array(times)


def summary(seconds):
    """Median, mean, min and max of a list of durations, in seconds."""
    seconds = np.asarray(seconds, dtype=np.float64)
    return {"median_s": float(np.median(seconds)), "mean_s": float(seconds.mean()),
            "min_s": float(seconds.min()), "max_s": float(seconds.max()), "count": int(seconds.size)}


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    import mindspore as ms
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "mindspore": ms.__version__, "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
            "device_target": ms.get_context("device_target")}


def gemm_peak_gflops(size=2048, repeats=5):
    """The best float32 GEMM rate MindSpore reaches here: a [size, size] @ [size, size] MatMul in graph mode.

    The training FLOP fraction is measured against this, not against a data-sheet number.
    """
    import mindspore as ms
    import mindspore.nn as nn
    import mindspore.ops as ops

    class MatMul(nn.Cell):
        def construct(self, a, b):
            return ops.matmul(a, b)

    rng = np.random.default_rng(0)
    a = ms.Tensor(rng.standard_normal((size, size), dtype=np.float32))
    b = ms.Tensor(rng.standard_normal((size, size), dtype=np.float32))
    net = MatMul()
    seconds = timed(lambda: net(a, b).asnumpy(), repeats, warmup=2)
    return 2.0 * size ** 3 / float(seconds.min()) / 1e9
