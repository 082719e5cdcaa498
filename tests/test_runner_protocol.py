"""The runner protocol (spec/runner.schema.json) and its client: every message type has examples the schema takes
and ones it rejects; commands derive their requests; a well-behaved runner is driven through the whole lifecycle on
a target; a runner that prints garbage, answers off-schema, dies, hangs or speaks another version gives a typed
RunnerProtocolError with its stderr tail, and the target runs the next runner as if nothing happened."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bpfcert import bundled, spec
from bpfcert.errors import BpfcertError, RunnerProtocolError
from bpfcert.runners import discovery, protocol
from bpfcert.runners.client import RunnerClient
from bpfcert.runners.discovery import Runner
from bpfcert.runners.protocol import Failure, Options
from bpfcert.targets.host import HostTarget
from bpfcert.targets.target import Target

ROOT = Path(__file__).resolve().parent.parent
RUNNERS = Path(__file__).resolve().parent / "data" / "runners"
EXAMPLES = ROOT / "examples"
V1, V2 = str(EXAMPLES / "xdp-counter-v1"), str(EXAMPLES / "xdp-counter-v2")

STATE = {
    "name": "xdp-counter",
    "version": "1.0.0",
    "programs": [
        {"name": "count", "id": 41, "type": "xdp", "attach": {"kind": "xdp", "target": "lo"}, "link_id": 7},
        {"name": "spare", "id": 42, "type": "xdp", "attach": None, "link_id": None},
    ],
    "maps": [{"name": "counts", "id": 9, "type": "array", "pin": "/sys/fs/bpf/bpfcert/xdp-counter/counts"}],
    "pins": ["/sys/fs/bpf/bpfcert/xdp-counter/counts"],
}
CHANGE = {
    "ok": True,
    "package": {**STATE, "version": "2.0.0"},
    "attachments": [{"program": "count", "method": "link-update"}],
    "from_version": "1.0.0",
    "to_version": "2.0.0",
}
RUNTIME = {"name": "r", "vendor": "v", "version": "1", "homepage": "https://x", "source": "https://y"}
NO_CLAIMS: dict[str, list[str]] = {"profiles": [], "capabilities": []}
FAILED = {"ok": False, "error": {"code": "not-installed", "message": "xdp-counter is not installed"}}

# $defs name -> (messages it takes, messages it rejects)
EXAMPLES_BY_DEF: dict[str, tuple[list[Any], list[Any]]] = {
    "startRequest": (
        [{"cmd": "start", "protocol_version": 1}],
        [{"cmd": "start"}, {"cmd": "start", "protocol_version": 0}, {"cmd": "begin", "protocol_version": 1}],
    ),
    "installRequest": (
        [
            {"cmd": "install", "package": "/p"},
            {"cmd": "install", "package": "/p.tar.gz", "options": {"interface": "lo", "tunables": {"t": 3, "u": True}}},
        ],
        [
            {"cmd": "install"},
            {"cmd": "install", "package": ""},
            {"cmd": "install", "package": "/p", "options": {"colour": "red"}},
            {"cmd": "install", "package": "/p", "options": {"tunables": {"t": 1.5}}},
        ],
    ),
    "listRequest": ([{"cmd": "list"}], [{"cmd": "list", "all": True}, {"cmd": "List"}]),
    "statusRequest": ([{"cmd": "status", "name": "a"}], [{"cmd": "status"}, {"cmd": "status", "name": ""}]),
    "upgradeRequest": ([{"cmd": "upgrade", "package": "/p", "options": {}}], [{"cmd": "upgrade", "name": "a"}]),
    "rollbackRequest": ([{"cmd": "rollback", "name": "a"}], [{"cmd": "rollback", "name": 3}]),
    "uninstallRequest": ([{"cmd": "uninstall", "name": "a", "x-why": "test"}], [{"cmd": "uninstall", "name": None}]),
    "execRequest": (
        [{"cmd": "exec", "program_hex": "b700000001000000" + "9500000000000000", "memory_hex": ""}],
        [
            {"cmd": "exec", "program_hex": "", "memory_hex": ""},
            {"cmd": "exec", "program_hex": "b7000000010000", "memory_hex": ""},
            {"cmd": "exec", "program_hex": "9500000000000000", "memory_hex": "abc"},
            {"cmd": "exec", "program_hex": "9500000000000000"},
        ],
    ),
    "stopRequest": ([{"cmd": "stop"}], [{"cmd": "stop", "now": True}]),
    "startReply": (
        [
            {
                "ok": True,
                "protocol_version": 1,
                "runtime": RUNTIME,
                "claims": {"profiles": ["runtime-core", "isa-v3"], "capabilities": ["attach:xdp", "pin"]},
            },
            FAILED,
        ],
        [
            {"ok": True, "protocol_version": 1, "runtime": RUNTIME},
            {
                "ok": True,
                "protocol_version": 1,
                "runtime": {**RUNTIME, "homepage": None},
                "claims": {"profiles": [], "capabilities": []},
            },
            {
                "ok": True,
                "protocol_version": 1,
                "runtime": RUNTIME,
                "claims": {"profiles": ["gold"], "capabilities": ["attach:everything"]},
            },
        ],
    ),
    "installReply": (
        [{"ok": True, "package": STATE}, FAILED],
        [
            {"ok": True, "package": {"name": "xdp-counter"}},
            {"ok": True, "package": {**STATE, "programs": [{**STATE["programs"][0], "id": 0}]}},
            {"ok": True, "package": {**STATE, "maps": [{**STATE["maps"][0], "pin": 5}]}},
            {"ok": False, "error": {"code": "out-of-coffee", "message": "m"}},
            {"ok": False, "error": {"code": "internal", "message": "two\nlines"}},
            {"ok": False},
            {"package": STATE},
        ],
    ),
    "listReply": (
        [{"ok": True, "packages": [{"name": "a", "version": "1"}]}, {"ok": True, "packages": []}],
        [{"ok": True, "packages": ["a"]}, {"ok": True}],
    ),
    "statusReply": ([{"ok": True, "package": STATE}, FAILED], [{"ok": True, "package": None}]),
    "upgradeReply": (
        [CHANGE, FAILED],
        [
            {**CHANGE, "attachments": [{"program": "count", "method": "teleport"}]},
            {k: v for k, v in CHANGE.items() if k != "from_version"},
        ],
    ),
    "rollbackReply": ([{**CHANGE, "attachments": []}, FAILED], [{**CHANGE, "ok": "yes"}]),
    "uninstallReply": ([{"ok": True, "name": "a"}, FAILED], [{"ok": True}, {"ok": True, "name": "a", "extra": 1}]),
    "execReply": (
        [{"ok": True, "r0": 0}, {"ok": True, "r0": 2**64 - 1}, FAILED],
        [{"ok": True, "r0": 2**64}, {"ok": True, "r0": -1}, {"ok": True, "r0": "7"}],
    ),
    "stopReply": ([{"ok": True}], [{"ok": True, "bye": 1}, {}]),
    "runnerFolder": (
        [
            {
                "name": "bpftool",
                "description": "bpftool prog loadall",
                "argv": ["{python}", "run.py"],
                "needs": ["bpftool"],
                "claims": {"profiles": [], "capabilities": ["pin"]},
            }
        ],
        [
            {"name": "x", "description": "d", "argv": [], "needs": [], "claims": NO_CLAIMS},
            {"name": "x", "description": "d", "argv": ["a"], "needs": ["/usr/bin/a"], "claims": {"profiles": []}},
            {"name": "X Y", "description": "d", "argv": ["a"], "needs": [], "claims": NO_CLAIMS},
        ],
    ),
}


def reference_validator(definition: str) -> jsonschema.Draft202012Validator:
    """The reference implementation (python-jsonschema) on one $def, independent of the jsonschema-rs bpfcert uses."""
    schema = spec.schema("runner")
    return jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})


def fake(fault: str | None = None) -> Runner:
    runner = discovery.find(path=str(RUNNERS / "fake"))
    return runner if fault is None else dataclasses.replace(runner, argv=(*runner.argv, "--fault", fault))


def test_every_command_has_a_request_and_a_reply_definition_with_examples() -> None:
    definitions = spec.schema("runner")["$defs"]
    commands = [c.cmd for c in protocol.Command.__subclasses__()]
    everything = ["start", "install", "list", "status", "upgrade", "rollback", "uninstall", "exec", "stop"]
    assert sorted(commands) == sorted(everything)
    for cmd in commands:
        assert {f"{cmd}Request", f"{cmd}Success", f"{cmd}Reply"} <= definitions.keys(), cmd
        assert f"{cmd}Request" in EXAMPLES_BY_DEF and f"{cmd}Reply" in EXAMPLES_BY_DEF, cmd
    codes = definitions["errorCode"]["enum"]
    assert {"invalid-package", "verifier-rejected", "requirements-unmet", "not-installed", "unsupported"} <= set(codes)


@pytest.mark.parametrize("definition", sorted(EXAMPLES_BY_DEF))
def test_schema_takes_good_messages_and_rejects_bad_ones(definition: str) -> None:
    good, bad = EXAMPLES_BY_DEF[definition]
    validator = reference_validator(definition)
    for message in good:
        assert [e.message for e in validator.iter_errors(message)] == [], message
        assert protocol.schema_error(definition, message) is None, message
    for message in bad:
        assert list(validator.iter_errors(message)), f"{definition} takes {message}"
        assert protocol.schema_error(definition, message), f"{definition} takes {message} (jsonschema-rs)"


def test_the_schema_root_takes_any_request_or_reply() -> None:
    validator = jsonschema.Draft202012Validator(spec.schema("runner"))
    assert validator.is_valid({"cmd": "list"}) and validator.is_valid(FAILED)
    assert not validator.is_valid({"cmd": "dance"}) and not validator.is_valid({"ok": True, "bogus": 1})


def test_commands_derive_their_request_lines() -> None:
    lines = [
        protocol.encode(protocol.Start()),
        protocol.encode(protocol.Install("/p", Options(interface="lo", tunables={"limit": 3}))),
        protocol.encode(protocol.ListPackages()),
        protocol.encode(protocol.Status("a")),
        protocol.encode(protocol.Upgrade("/q")),
        protocol.encode(protocol.Rollback("a")),
        protocol.encode(protocol.Uninstall("a")),
        protocol.encode(protocol.Exec(bytes.fromhex("9500000000000000"), b"\x01\x02")),
        protocol.encode(protocol.Stop()),
    ]
    assert [json.loads(line) for line in lines] == [
        {"cmd": "start", "protocol_version": 1},
        {"cmd": "install", "package": "/p", "options": {"interface": "lo", "tunables": {"limit": 3}}},
        {"cmd": "list"},
        {"cmd": "status", "name": "a"},
        {"cmd": "upgrade", "package": "/q", "options": {}},
        {"cmd": "rollback", "name": "a"},
        {"cmd": "uninstall", "name": "a"},
        {"cmd": "exec", "program_hex": "9500000000000000", "memory_hex": "0102"},
        {"cmd": "stop"},
    ]
    with pytest.raises(ValueError, match=r"exec request off-schema at \$.program_hex"):
        protocol.encode(protocol.Exec(b"\x95\x00\x00"))  # not whole instructions: a caller's bug, not the runner's


def test_replies_decode_to_typed_values_and_failures() -> None:
    state = protocol.decode(protocol.Install("/p"), json.dumps({"ok": True, "package": STATE}))
    assert isinstance(state, protocol.PackageState)
    assert state.programs[0].attach == protocol.Attach("xdp", "lo") and state.programs[1].attach is None
    assert state.maps[0].id == 9 and state.pins == ("/sys/fs/bpf/bpfcert/xdp-counter/counts",)
    change = protocol.decode(protocol.Upgrade("/q"), json.dumps(CHANGE))
    assert isinstance(change, protocol.VersionChange)
    assert change.attachments == (protocol.Moved("count", "link-update"),) and change.to_version == "2.0.0"
    assert protocol.decode(protocol.Status("xdp-counter"), json.dumps(FAILED)) == Failure(
        "not-installed", "xdp-counter is not installed"
    )
    assert protocol.decode(protocol.Exec(b"\x95" + bytes(7)), '{"ok":true,"r0":18446744073709551615}') == 2**64 - 1


@pytest.mark.parametrize(
    ("command", "line", "reason"),
    [
        (protocol.ListPackages(), "installing... done!", r"line that is not JSON \(Expecting value\)"),
        (protocol.ListPackages(), "[" * 100_000, r"line that is not JSON \(nested too deep\)"),
        (protocol.ListPackages(), '{"ok": true, "packages": ' + "[" * 500 + "]" * 500 + "}", r"at \$: nested too deep"),
        (protocol.ListPackages(), json.dumps({"ok": True, "packages": ["x" * 20_000]}), r"\[0\]: \"x{150,}\.\.\.$"),
        (protocol.ListPackages(), "[]", r"off-schema \(listReply\) at \$: "),
        (protocol.Status("a"), '{"ok": true}', r"off-schema \(statusSuccess\) at \$: \"package\" is a required"),
        (protocol.Status("a"), '{"ok": false, "error": {"code": "nope", "message": "m"}}', r"\(failure\) at \$.error"),
        (protocol.Status("a"), json.dumps({"ok": True, "package": STATE}), "asked about 'a', answered about 'xdp"),
        (protocol.Uninstall("a"), '{"ok": true, "name": "b"}', "asked about 'a', answered about 'b'"),
        (protocol.Upgrade("/q"), json.dumps({**CHANGE, "to_version": "3"}), "to_version '3' but the package is at"),
        (protocol.Rollback("b"), json.dumps(CHANGE), "asked about 'b'"),
        (
            protocol.ListPackages(),
            '{"ok": true, "packages": [{"name": "a", "version": "1"}, {"name": "a", "version": "2"}]}',
            "lists a more than once",
        ),
        (
            protocol.Start(),
            json.dumps({"ok": True, "protocol_version": 2, "runtime": RUNTIME, "claims": NO_CLAIMS}),
            "protocol version mismatch: the runner speaks 2, bpfcert speaks 1",
        ),
    ],
)
def test_bad_replies_raise_a_protocol_error_naming_the_command(
    command: protocol.Command[Any], line: str, reason: str
) -> None:
    with pytest.raises(RunnerProtocolError, match=reason) as raised:
        protocol.decode(command, line)
    assert raised.value.step == command.cmd and "\n" not in str(raised.value)


@pytest.fixture
def host() -> Any:
    target = HostTarget()
    yield target
    target.close()


def lifecycle(target: Target) -> None:
    """Drive the fake runner through every command on `target` and check each reply."""
    with RunnerClient.start(target, fake()) as client:
        assert client.hello is not None and client.hello.runtime.name == "fake"
        assert client.hello.claims == protocol.Claims((), ("rollback", "exec"))
        assert client.list() == ()
        installed = client.install(V1, Options(interface="lo"))
        assert isinstance(installed, protocol.PackageState)
        assert (installed.name, installed.version) == ("xdp-counter", "1.0.0")
        assert client.install(V1) == Failure("already-installed", "xdp-counter 1.0.0 is installed")
        assert client.list() == (protocol.Listed("xdp-counter", "1.0.0"),)
        upgraded = client.upgrade(V2)
        assert isinstance(upgraded, protocol.VersionChange)
        assert (upgraded.from_version, upgraded.to_version) == ("1.0.0", "2.0.0")
        status = client.status("xdp-counter")
        assert isinstance(status, protocol.PackageState) and status.version == "2.0.0"
        rolled = client.rollback("xdp-counter")
        assert isinstance(rolled, protocol.VersionChange) and rolled.package.version == "1.0.0"
        assert isinstance(client.rollback("xdp-counter"), Failure)
        assert client.uninstall("xdp-counter") == "xdp-counter"
        assert client.status("xdp-counter") == Failure("not-installed", "xdp-counter is not installed")
        missing = client.install("/nonexistent/package")
        assert isinstance(missing, Failure) and missing.code == "invalid-package"
        assert client.exec(bytes.fromhex("b700000001000000" + "9500000000000000")) == 2
        assert "fake runner: ready" in client.stop()


def test_a_well_behaved_runner_goes_through_every_command_on_the_host(host: HostTarget) -> None:
    lifecycle(host)


BROKEN = [
    ("garbage", "install", r"answered with a line that is not JSON .*'installing\.\.\. done!'", "ready"),
    ("off-schema", "install", r"off-schema \(installSuccess\) at \$\.package: \"version\" is a required", "ready"),
    ("bad-code", "install", r"off-schema \(failure\) at \$\.error\.code: \"out-of-coffee\"", "ready"),
    ("die", "install", r"exited before answering; exit status 7", "dying in the middle of install"),
    ("hang", "install", r"did not answer within 1s; exit status -9", "ready"),
    ("version", "start", "protocol version mismatch: the runner speaks 2, bpfcert speaks 1", "ready"),
    ("refuse", "start", r"refused \(unsupported\): protocol version 1; this runner speaks 2", "ready"),
    ("claims", "start", r"claims profiles \[runtime-core\] .* but its fake/runner.json claims profiles \[\]", "ready"),
]


def broken_run(target: Target, fault: str) -> RunnerProtocolError:
    """Start the fake runner with `fault` on `target` and install: the protocol error it gives."""
    timeout = 1 if fault == "hang" else 60  # a guest under TCG takes seconds to start Python
    with pytest.raises(RunnerProtocolError) as raised, RunnerClient.start(target, fake(fault), timeout) as client:
        client.install(V1)
    return raised.value


@pytest.mark.parametrize(("fault", "step", "reason", "stderr"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_runner_gives_a_typed_error_with_its_stderr_and_the_target_carries_on(
    host: HostTarget, fault: str, step: str, reason: str, stderr: str
) -> None:
    started = time.monotonic()
    error = broken_run(host, fault)
    assert time.monotonic() - started < 10
    assert (error.step, error.runner) == (step, "fake")
    assert re.search(reason, error.reason), error.reason
    assert stderr in error.stderr, error.stderr
    message = str(error)
    assert message.startswith(f"runner fake: {step}: ") and "\n" not in message and "(stderr: " in message
    if fault == "die":  # the last line of stderr shows (other runners may leave a broken-pipe note after it)
        assert message.endswith("(stderr: fake runner: dying in the middle of install)")
    lifecycle(host)  # the next runner on the same target works


def test_a_client_stops_using_a_runner_after_it_broke_the_protocol(host: HostTarget) -> None:
    client = RunnerClient.start(host, fake("garbage"))
    with pytest.raises(RunnerProtocolError, match="not JSON"):
        client.install(V1)
    with pytest.raises(RunnerProtocolError, match="list: the runner is stopped"):
        client.list()
    client.close()  # nothing left to stop: no error


def test_a_runner_that_cannot_start_is_a_launch_error(host: HostTarget, tmp_path: Path) -> None:
    runner = dataclasses.replace(fake(), folder=tmp_path, argv=("./missing-runner",))
    with pytest.raises(RunnerProtocolError, match=r"runner fake: launch: .*cannot start .*missing-runner"):
        RunnerClient.start(host, runner)


def test_a_runner_that_exits_badly_after_stop_is_reported(host: HostTarget, tmp_path: Path) -> None:
    script = tmp_path / "exit3.py"
    script.write_text(
        "import sys\nfrom bpfcert.runners.serve import serve\n"
        "serve({'runtime': dict.fromkeys(['name', 'vendor', 'version', 'homepage', 'source'], 'x'),"
        " 'claims': {'profiles': [], 'capabilities': ['rollback', 'exec']}}, {})\n"
        "print('leaving with 3', file=sys.stderr)\nsys.exit(3)\n"
    )
    client = RunnerClient.start(host, dataclasses.replace(fake(), argv=("{python}", str(script))))
    assert client.uninstall("a") == Failure("unsupported", "this runner does not implement uninstall")
    with pytest.raises(RunnerProtocolError, match=r"stop: exit status 3 after stop \(want 0\) \(stderr: leaving"):
        client.stop()


def test_runner_folders_are_found_by_name_or_path(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = discovery.find(path=str(RUNNERS / "fake"))
    assert (runner.name, runner.folder, runner.needs) == ("fake", RUNNERS / "fake", ())
    assert runner.missing() is None
    monkeypatch.setattr(bundled, "directory", lambda name: RUNNERS if name == "runners" else None)
    assert discovery.find("fake") == runner
    names = ["broken", "fake", "gap_upgrade", "leaky_uninstall", "strict_requires"]
    assert [r.name for r in discovery.shipped()] == names
    shipped = ", ".join(names)
    with pytest.raises(BpfcertError, match=rf"unknown runtime 'nope' \(shipped runners: {shipped}; --runner PATH"):
        discovery.find("nope")
    with pytest.raises(BpfcertError, match="not a folder"):
        discovery.find(path=str(RUNNERS / "fake" / "runner.json"))


def test_the_checkout_runners_folder_is_the_shipped_one() -> None:
    assert bundled.directory("runners") == ROOT / "runners"  # not bpfcert/runners, the protocol's code


def test_launch_gives_a_python_and_bpfcert_valid_on_every_target(tmp_path: Path) -> None:
    argv, cwd, env = fake().launch(HostTarget.python)
    assert argv == [os.path.realpath(sys.executable), "runner.py"] and cwd == str(RUNNERS / "fake")
    assert str(ROOT) in env["PYTHONPATH"].split(os.pathsep)
    script = dataclasses.replace(fake(), folder=tmp_path, argv=("./run", "--python={python}"))
    host = os.path.realpath(sys.executable)
    assert script.launch(HostTarget.python)[0] == [str(tmp_path / "run"), f"--python={host}"]
    assert fake().launch("/usr/bin/python3.11")[0] == ["/usr/bin/python3.11", "runner.py"]  # the target's, e.g. a VM's


def test_a_runner_needing_a_missing_tool_is_skipped_with_the_reason() -> None:
    runner = dataclasses.replace(fake(), needs=("sh", "no-such-tool-bpfcert"))
    assert runner.missing() == "runner fake needs no-such-tool-bpfcert, not found on PATH"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read the runner's runner.json"),
        ("{", "not a JSON runner.json"),
        (b"\xff\xfe", "not a JSON runner.json"),
        ("[" * 100_000 + "]" * 100_000, "not a JSON runner.json|nested too deep"),
        ('{"name": "x"}', r"does not follow the runner schema \(runnerFolder\) at \$: \"description\" is a required"),
        (
            '{"name": "x", "description": "d", "argv": ["a"], "needs": [], "claims": {"profiles": [], '
            '"capabilities": ["root"]}}',
            r"at \$\.claims\.capabilities\[0\]",
        ),
    ],
)
def test_a_bad_runner_json_is_one_clear_error(tmp_path: Path, content: str | bytes | None, problem: str) -> None:
    if isinstance(content, bytes):
        (tmp_path / "runner.json").write_bytes(content)
    elif content is not None:
        (tmp_path / "runner.json").write_text(content)
    with pytest.raises(BpfcertError, match=problem) as raised:
        discovery.find(path=str(tmp_path))
    assert str(tmp_path) in str(raised.value) and "\n" not in str(raised.value)


def test_the_runner_protocol_works_on_every_kernel_target(target: Target) -> None:
    """The guest path: the fake runner started inside the target (a VM's guest for VM targets) with the host's
    Python and bpfcert on its path; a dying runner is reported and the next one runs."""
    lifecycle(target)
    error = broken_run(target, "die")
    assert "exited before answering; exit status 7" in error.reason and "dying" in error.stderr
    lifecycle(target)
