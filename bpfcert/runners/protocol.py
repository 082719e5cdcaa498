"""The runner protocol's commands as values (spec/runner.schema.json): each knows its name, builds its request from
typed arguments, parses its success reply into a typed value and judges that reply against the request.

The wire format is derived from them: `encode` turns a command into a request line and `decode` turns the runner's
line into the command's reply value or a `Failure`; both check the message against the schema (one jsonschema-rs
validator per message type, compiled once). A line that is not JSON, off-schema or contradicting its request raises
RunnerProtocolError naming the command.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from bpfcert import spec
from bpfcert.errors import RunnerProtocolError
from bpfcert.runners.serve import PROTOCOL_VERSION

if TYPE_CHECKING:
    from bpfcert.json_schema import Validate

R = TypeVar("R")


@dataclass(frozen=True)
class Failure:
    """An `ok: false` reply: the runner refused or failed the command as the protocol allows (checks judge it)."""

    code: str  # one of the schema's errorCode values
    message: str


@dataclass(frozen=True)
class Runtime:
    name: str
    vendor: str
    version: str
    homepage: str
    source: str


@dataclass(frozen=True)
class Claims:
    profiles: tuple[str, ...]
    capabilities: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Claims:
        return cls(tuple(data["profiles"]), tuple(data["capabilities"]))


@dataclass(frozen=True)
class Hello:
    """The start reply: who the runtime is and what it claims."""

    protocol_version: int
    runtime: Runtime
    claims: Claims


@dataclass(frozen=True)
class Attach:
    kind: str
    target: str


@dataclass(frozen=True)
class ProgramState:
    name: str
    id: int  # kernel program ID
    type: str
    attach: Attach | None
    link_id: int | None


@dataclass(frozen=True)
class MapState:
    name: str
    id: int  # kernel map ID
    type: str
    pin: str | None


def _attach(data: dict[str, Any] | None) -> Attach | None:
    return None if data is None else Attach(data["kind"], data["target"])


@dataclass(frozen=True)
class PackageState:
    """An installed package as the runtime reports it."""

    name: str
    version: str
    programs: tuple[ProgramState, ...]
    maps: tuple[MapState, ...]
    pins: tuple[str, ...]
    source: dict[str, str] | None = None  # installed from a hub: {reference, digest} (HUB-CLI-004)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackageState:
        programs = tuple(
            ProgramState(p["name"], p["id"], p["type"], _attach(p["attach"]), p["link_id"]) for p in data["programs"]
        )
        maps = tuple(MapState(m["name"], m["id"], m["type"], m["pin"]) for m in data["maps"])
        return cls(data["name"], data["version"], programs, maps, tuple(data["pins"]), data.get("source"))


@dataclass(frozen=True)
class Moved:
    """How one attachment moved to another version: link-update, make-before-break or replace."""

    program: str
    method: str


@dataclass(frozen=True)
class VersionChange:
    """An upgrade or rollback reply."""

    package: PackageState
    attachments: tuple[Moved, ...]
    from_version: str
    to_version: str


@dataclass(frozen=True)
class Listed:
    name: str
    version: str


@dataclass(frozen=True)
class Options:
    """Install and upgrade options; unset ones are not sent."""

    interface: str | None = None
    cgroup: str | None = None
    tunables: dict[str, bool | int | str] | None = None
    pin_root: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Command(Generic[R]):
    """One request: its fields are the arguments; `parse` makes the reply value, `judge` says what in a
    schema-valid reply contradicts the request (None if nothing)."""

    cmd: ClassVar[str]

    def arguments(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def parse(self, reply: dict[str, Any]) -> R:
        raise NotImplementedError

    def judge(self, value: R) -> str | None:
        return None


@dataclass(frozen=True)
class Start(Command[Hello]):
    cmd = "start"
    protocol_version: int = PROTOCOL_VERSION

    def parse(self, reply: dict[str, Any]) -> Hello:
        runtime = Runtime(*(reply["runtime"][f.name] for f in fields(Runtime)))
        return Hello(reply["protocol_version"], runtime, Claims.from_json(reply["claims"]))

    def judge(self, value: Hello) -> str | None:
        theirs, ours = value.protocol_version, self.protocol_version
        mismatch = f"protocol version mismatch: the runner speaks {theirs}, bpfcert speaks {ours}"
        return None if theirs == ours else mismatch


@dataclass(frozen=True)
class Install(Command[PackageState]):
    cmd = "install"
    package: str
    options: Options = Options()

    def arguments(self) -> dict[str, Any]:
        return {"package": self.package, "options": self.options.to_json()}

    def parse(self, reply: dict[str, Any]) -> PackageState:
        return PackageState.from_json(reply["package"])


@dataclass(frozen=True)
class ListPackages(Command[tuple[Listed, ...]]):
    cmd = "list"

    def parse(self, reply: dict[str, Any]) -> tuple[Listed, ...]:
        return tuple(Listed(p["name"], p["version"]) for p in reply["packages"])

    def judge(self, value: tuple[Listed, ...]) -> str | None:
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        return f"lists {', '.join(twice)} more than once" if twice else None


def _same_name(asked: str, answered: str) -> str | None:
    return None if asked == answered else f"asked about {asked!r}, answered about {answered!r}"


def _version_change(reply: dict[str, Any]) -> VersionChange:
    moved = tuple(Moved(a["program"], a["method"]) for a in reply["attachments"])
    return VersionChange(PackageState.from_json(reply["package"]), moved, reply["from_version"], reply["to_version"])


def _judge_version_change(value: VersionChange) -> str | None:
    if value.package.version != value.to_version:
        return f"to_version {value.to_version!r} but the package is at {value.package.version!r}"
    return None


@dataclass(frozen=True)
class Status(Command[PackageState]):
    cmd = "status"
    name: str

    def parse(self, reply: dict[str, Any]) -> PackageState:
        return PackageState.from_json(reply["package"])

    def judge(self, value: PackageState) -> str | None:
        return _same_name(self.name, value.name)


@dataclass(frozen=True)
class Upgrade(Command[VersionChange]):
    cmd = "upgrade"
    package: str
    options: Options = Options()

    def arguments(self) -> dict[str, Any]:
        return {"package": self.package, "options": self.options.to_json()}

    def parse(self, reply: dict[str, Any]) -> VersionChange:
        return _version_change(reply)

    def judge(self, value: VersionChange) -> str | None:
        return _judge_version_change(value)


@dataclass(frozen=True)
class Rollback(Command[VersionChange]):
    cmd = "rollback"
    name: str

    def parse(self, reply: dict[str, Any]) -> VersionChange:
        return _version_change(reply)

    def judge(self, value: VersionChange) -> str | None:
        return _same_name(self.name, value.package.name) or _judge_version_change(value)


@dataclass(frozen=True)
class Uninstall(Command[str]):
    cmd = "uninstall"
    name: str

    def parse(self, reply: dict[str, Any]) -> str:
        name: str = reply["name"]
        return name

    def judge(self, value: str) -> str | None:
        return _same_name(self.name, value)


@dataclass(frozen=True)
class Exec(Command[int]):
    """Run `program` (instructions, 8 bytes each) with `memory` on an ISA engine; the reply is r0."""

    cmd = "exec"
    program: bytes
    memory: bytes = b""

    def arguments(self) -> dict[str, Any]:
        return {"program_hex": self.program.hex(), "memory_hex": self.memory.hex()}

    def parse(self, reply: dict[str, Any]) -> int:
        r0: int = reply["r0"]
        return r0


@dataclass(frozen=True)
class Stop(Command[None]):
    cmd = "stop"

    def parse(self, reply: dict[str, Any]) -> None:
        return None


@functools.cache
def _validator(definition: str) -> Validate:
    """The validator of one message type, `definition` in the runner schema's $defs."""
    from bpfcert import json_schema

    return json_schema.validator(spec.schema("runner"), definition)


def schema_error(definition: str, message: Any) -> str | None:
    """The first way `message` breaks $defs/`definition` of the runner schema ("at $.path: why"), or None."""
    for error in _validator(definition)(message):
        path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in error.instance_path)
        why = error.message if len(error.message) <= 200 else error.message[:197] + "..."  # it quotes the value
        return f"at ${path}: {why}"
    return None


def encode(command: Command[Any]) -> str:
    """The request line for `command`. ValueError if its arguments make an off-schema request (a caller's bug)."""
    request = {"cmd": command.cmd, **command.arguments()}
    problem = schema_error(f"{command.cmd}Request", request)
    if problem:
        raise ValueError(f"{command.cmd} request off-schema {problem}")
    return json.dumps(request, separators=(",", ":"))


def decode(command: Command[R], line: str) -> R | Failure:
    """The reply value (or Failure) the runner's `line` gives to `command`; RunnerProtocolError if the line is not
    JSON, breaks the schema or contradicts the request."""
    try:
        reply = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        shown = line if len(line) <= 80 else line[:77] + "..."
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
        raise RunnerProtocolError(command.cmd, f"answered with a line that is not JSON ({reason}): {shown!r}") from None
    ok = reply.get("ok") if isinstance(reply, dict) else None
    definition = f"{command.cmd}Reply"  # judged as a whole when ok is neither true nor false
    if ok is True:
        definition = f"{command.cmd}Success"
    elif ok is False:
        definition = "failure"
    try:
        problem = schema_error(definition, reply)
    except ValueError:  # jsonschema-rs cannot convert an instance nested beyond its recursion limit
        problem = "at $: nested too deep"
    if problem:
        raise RunnerProtocolError(command.cmd, f"answered off-schema ({definition}) {problem}")
    if ok is False:
        return Failure(reply["error"]["code"], reply["error"]["message"])
    value = command.parse(reply)
    contradiction = command.judge(value)
    if contradiction:
        raise RunnerProtocolError(command.cmd, f"answered a contradicting reply: {contradiction}")
    return value
