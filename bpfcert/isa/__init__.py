"""ISA conformance (RFC 9669): test cases, the assembler, conformance groups, execution engines and their verdicts."""
