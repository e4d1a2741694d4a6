"""Compile a kernel source next to this file into a shared library, once per source, headers and compiler flags.

The library lands in a cache folder (FDET_KERNEL_CACHE, default ~/.cache/fdet/kernels) under a name that holds
the hash of the source and flags, written under a temporary name and renamed, so that concurrent ranks and killed
builds never leave a half-written library behind.
"""
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# -march=native: the library is built on the machine that runs it. Reassociation lets the compiler vectorise the
# sums, without -ffast-math's assumption that no NaN or inf occurs (training watches for both).
CXX_FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros",
             "-fno-trapping-math", "-std=c++17", "-pthread", "-shared", "-fPIC")


log = logging.getLogger("ssd")


# Per-source additions. The focal loss is exp/log-bound: -ffast-math lets them vectorise (about 5x here); its
# source finds non-finite values from their bits, which fast-math cannot assume away.
SOURCE_FLAGS = {"focal_loss.cc": ("-ffast-math",)}


class KernelBuildError(RuntimeError):
    pass


def cache_dir():
    return Path(os.environ.get("FDET_KERNEL_CACHE", Path.home() / ".cache" / "fdet" / "kernels"))


def compiler():
    """The C++ compiler to use (CXX, else g++ or c++ on PATH), or None."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def build_library(source_name):
    """Path of the compiled library for `src/kernels/<source_name>`; raises KernelBuildError if it cannot be built."""
    source = Path(__file__).with_name(source_name)
    cxx = compiler()
    if cxx is None:
        raise KernelBuildError("no C++ compiler found (set CXX, or install g++)")
    flags = CXX_FLAGS + SOURCE_FLAGS.get(source_name, ())
    # The headers beside the source count too: a change to any of them must rebuild.
    inputs = [source.read_bytes()] + [h.read_bytes() for h in sorted(source.parent.glob("*.h"))]
    digest = hashlib.sha256(b"".join(inputs) + " ".join((cxx,) + flags).encode()).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}-{digest}.so"
    if target.exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run([cxx, *flags, "-o", tmp, str(source)], capture_output=True, text=True)
        if result.returncode != 0:
            raise KernelBuildError(f"{cxx} failed on {source}:\n{result.stderr.strip()[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return str(target)


SOURCES = ("depthwise_conv.cc", "batch_norm.cc", "focal_loss.cc")
_failures = {}


@functools.lru_cache(maxsize=None)
def library(source_name):
    """build_library's path, or None (with one warning per source) when it cannot be built here; `failure` then
    tells why, with the compiler's message."""
    try:
        return build_library(source_name)
    except (KernelBuildError, OSError) as err:
        _failures[source_name] = str(err)
        log.warning(f"CPU kernel {source_name} unavailable, MindSpore's own op is used instead: {err}")
        return None


def failure(source_name):
    """Why `library(source_name)` returned None (the compiler's message), or None."""
    return _failures.get(source_name)
