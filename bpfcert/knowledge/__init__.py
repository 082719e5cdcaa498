"""Knowledge tables: facts about kernels and libbpf as data (helpers, program/map types, SEC() names)."""
