"""Compile a kernel source next to this file into a shared library, once per source and compiler flags.

The library lands in a cache folder (FDET_KERNEL_CACHE, default ~/.cache/fdet/kernels) under a name that holds
the hash of the source and flags, written under a temporary name and renamed, so that concurrent ranks and killed
builds never leave a half-written library behind.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# -march=native: the library is built on the machine that runs it. Reassociation lets the compiler vectorise the
# sums, without -ffast-math's assumption that no NaN or inf occurs (training watches for both).
CXX_FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros",
             "-fno-trapping-math", "-std=c++17", "-pthread", "-shared", "-fPIC")


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
    digest = hashlib.sha256(source.read_bytes() + " ".join((cxx,) + CXX_FLAGS).encode()).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}-{digest}.so"
    if target.exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run([cxx, *CXX_FLAGS, "-o", tmp, str(source)], capture_output=True, text=True)
        if result.returncode != 0:
            raise KernelBuildError(f"{cxx} failed on {source}:\n{result.stderr.strip()[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return str(target)
