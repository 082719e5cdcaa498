"""bpfcert: the conformance suite and certification harness for eBPF packages, runtimes and kernels."""

__version__ = "0.1.0"
SPEC_VERSION = "1.0"
