"""Numba kernels: pure array-in/array-out functions, one module per domain."""
