"""The plugin engine against a bpf_conformance-style plugin of our own (tests/data/isa_plugin.py: the reference
interpreter behind the plugin contract), well-behaved and misbehaving; and the python-reference runner through the
runner protocol's exec."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bpfcert import insn as b
from bpfcert.isa.engine import EngineCrash, Outcome
from bpfcert.isa.plugin_engine import PluginEngine
from bpfcert.runners import discovery
from bpfcert.runners.client import RunnerClient
from bpfcert.runners.protocol import Failure
from bpfcert.targets.host import HostTarget

PLUGIN = Path(__file__).parent / "data" / "isa_plugin.py"
LOAD_BYTE = b.assemble([b.ldx_mem("B", 0, 1, 1), b.exit_()])


def plugin(options: str = "", timeout: float = 10.0) -> PluginEngine:
    return PluginEngine([sys.executable, str(PLUGIN)], options=options, timeout=timeout)


def test_result_memory_and_refusal_go_through_the_contract() -> None:
    engine = plugin()
    assert engine.run(LOAD_BYTE, b"\x01\xfe") == Outcome(0xFE, None)
    assert engine.run(b.assemble([b.ld_imm64(0, -1), b.exit_()]), b"") == Outcome(2**64 - 1, None)
    refused = engine.run(b.assemble([b.call(7), b.exit_()]), b"")
    assert refused.r0 is None and "helper function 7 is not available" in str(refused.error)
    fault = engine.run(LOAD_BYTE, b"")  # no memory: out of bounds
    assert fault.r0 is None and "outside the memory" in str(fault.error)


@pytest.mark.parametrize(
    ("options", "crash"),
    [("crash", "killed by SIGSEGV"), ("garbage", "answered 'hello', not r0 in hex"), ("hang", "within 1 s")],
)
def test_a_misbehaving_plugin_is_a_contained_crash(options: str, crash: str) -> None:
    with pytest.raises(EngineCrash, match=crash):
        plugin(options, timeout=1).run(LOAD_BYTE, b"\x00\x01")


def test_a_plugin_that_cannot_start_is_a_crash(tmp_path: Path) -> None:
    with pytest.raises(EngineCrash, match="cannot start"):
        PluginEngine([str(tmp_path / "missing")]).run(LOAD_BYTE, b"")


def test_the_python_reference_runner_speaks_exec() -> None:
    target = HostTarget()
    try:
        with RunnerClient.start(target, discovery.find("python-reference")) as client:
            assert client.hello is not None and "isa-atomic64" in client.hello.claims.profiles
            assert client.exec(LOAD_BYTE, b"\x00\x2a") == 0x2A
            refused = client.exec(b.assemble([b.mov64_imm(10, 0), b.exit_()]))
            assert isinstance(refused, Failure) and refused.code == "verifier-rejected"
            fault = client.exec(LOAD_BYTE)
            assert isinstance(fault, Failure) and fault.code == "internal" and "outside" in fault.message
    finally:
        target.close()
