"""First kernel versions of instruction-level features that usage analysis detects in code.

Sources: bcc's docs/kernel-versions.md ("Main features": bpf() syscall 3.18, bpf2bpf function calls 4.16)
and the kernel history of the instruction set (Documentation/bpf/standardization/instruction-set.rst,
LLVM's -mcpu levels): CPU v2 (jlt/jle/jslt/jsle) in Linux 4.14 ("bpf: add BPF_J{LT,LE,SLT,SLE}
instructions"), v3 (the JMP32 class) in 5.1 ("bpf: JMP32 support"), atomics beyond add (fetch, and/or/xor,
xchg, cmpxchg) in 5.12 ("bpf: Add BPF_FETCH field / create atomic_fetch_add instruction" and its series),
v4 (sign extension, sdiv/smod, bswap, gotol) in 6.6 ("bpf: Support new sign-extension load insns" and its
series), global data (BPF_PSEUDO_MAP_VALUE for .data/.rodata/.bss) in 5.2 ("bpf: implement lookup-free
direct value access for maps"), kfunc calls from BPF programs in 5.13 ("bpf: Support bpf program calling
kernel function"), may_goto (BPF_JMP | BPF_JCOND) in 6.9 ("bpf: Introduce may_goto instruction"),
load-acquire/store-release in 6.15 ("bpf: Introduce load-acquire and store-release instructions").
Verifier limits: bounded loops in 5.3 ("bpf: introduce bounded loops"), programs past 4096 instructions
(BPF_MAXINSNS) for privileged loaders in 5.2 ("bpf: increase complexity limit and maximum program size").
"""

from __future__ import annotations

BPF_SYSCALL = (3, 18)
CPU_VERSION_SINCE: dict[int, tuple[int, int]] = {1: (3, 18), 2: (4, 14), 3: (5, 1), 4: (6, 6)}
EXTENDED_ATOMICS = (5, 12)
BPF_TO_BPF_CALLS = (4, 16)
GLOBAL_DATA = (5, 2)
KFUNC_CALLS = (5, 13)
MAY_GOTO = (6, 9)
LOAD_ACQUIRE_STORE_RELEASE = (6, 15)
BOUNDED_LOOPS = (5, 3)
LARGE_PROGRAMS = (5, 2)
