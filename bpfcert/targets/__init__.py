"""Kernel targets: the host kernel and Debian kernels booted under QEMU."""

SERIES = ("5.10", "6.1", "6.12", "7.2")
