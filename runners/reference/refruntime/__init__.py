"""bpfcert's reference runtime: an eBPF package manager on libbpf (install, list, status, upgrade, rollback,
uninstall), usable by hand (`python -m refruntime ...`) and as a runner (`python -m refruntime serve`)."""

VERSION = "0.1.0"
