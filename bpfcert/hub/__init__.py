"""The service hub: eBPF packages as OCI artifacts in a registry or an OCI image layout (spec/STANDARD.md, section
9): references, the artifact format, digest verification, the registry client, image layouts, push and pull."""
