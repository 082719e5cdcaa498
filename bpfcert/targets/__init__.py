"""Kernel targets: the host kernel (in-process) and Debian kernels booted under QEMU, behind one protocol.

What a target is and how one is named and opened: `target`; the host: `host`; QEMU VMs: `vm`; which targets there
are: `series`; opening many of them, once each, a few VMs at a time: `schedule`. This package's __init__ imports
none of its modules, so that they may import each other through it without a cycle.
"""
