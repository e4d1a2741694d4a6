"""C++ kernels for MindSpore's CPU backend, compiled on first use (aot-type Custom ops)."""
