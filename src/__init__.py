"""Single-shot detectors on MindSpore.

Importing this package sets `ONEDNN_MAX_CPU_ISA=AVX2` unless the user has set it: on AVX-512 CPUs MindSpore's
oneDNN otherwise picks a reference NCHW convolution that is about 60 times slower (see README, "CPU speed").
oneDNN reads the variable once, when MindSpore loads it, so this must run before the first `import mindspore`.
"""
import os
import sys
import warnings

if "ONEDNN_MAX_CPU_ISA" not in os.environ:
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    if "mindspore" in sys.modules:
        warnings.warn("mindspore was imported before src: ONEDNN_MAX_CPU_ISA=AVX2 may not take effect, and CPU "
                      "convolutions may be slow. Import src first, or export ONEDNN_MAX_CPU_ISA=AVX2.")
