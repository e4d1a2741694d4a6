"""The project must keep MindSpore's CPU convolutions off oneDNN's slow reference kernel (see FIELD_NOTES)."""
import os
import subprocess
import sys

PROBE = """
import src
import numpy as np, mindspore as ms, mindspore.nn as nn
ms.set_context(mode=ms.PYNATIVE_MODE)
conv = nn.Conv2d(32, 32, 3, pad_mode="pad", padding=1)
conv(ms.Tensor(np.ones((2, 32, 20, 20), np.float32))).asnumpy()
"""


def _conv_kernels(env_extra, repo_root):
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env.update(env_extra, ONEDNN_VERBOSE="1")
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Lines read: onednn_verbose,v1,primitive,exec,cpu,convolution,<implementation>,...
    return [line.split(",convolution,")[1].split(",")[0] for line in proc.stdout.splitlines()
            if ",exec," in line and ",convolution," in line]


def test_importing_src_selects_the_fast_convolution(repo_root):
    kernels = _conv_kernels({}, repo_root)
    assert kernels, "oneDNN printed no convolution: ONEDNN_VERBOSE output format changed?"
    assert not any("ref" in k or "ncsp" in k for k in kernels), kernels
    assert any("jit" in k for k in kernels), kernels


def test_a_users_own_setting_is_kept(repo_root):
    env = {k: v for k, v in os.environ.items()}
    env["ONEDNN_MAX_CPU_ISA"] = "SSE41"
    proc = subprocess.run([sys.executable, "-c", "import os, src; print(os.environ['ONEDNN_MAX_CPU_ISA'])"],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "SSE41"
