"""Importers: turn other eBPF package formats (bpfman images, eunomia-bpf package.json) into bpfcert packages."""
