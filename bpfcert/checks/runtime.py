"""Runtime checks (profiles runtime-core and runtime-upgrade): one function per requirement ID, each driving a runtime
through its RunnerClient on one target and judging what the kernel holds afterwards.

What the kernel holds is always read through the target's `kernel_state` op (and `map_element` for map contents),
never from the runtime's answers. A package's objects are those that appeared while it was installed and are pinned
under the pin root the check gave the install, the maps its programs use, the links running its programs and every
pin holding any of them; a runtime that pins nothing there is judged by the names of the objects that appeared (other
runs of the same package on the same kernel then blur the picture). Each check cleans up after itself
(uninstall) so that the next one starts from nothing. A runner that breaks the protocol makes an ERROR result for
that step, with its stderr tail, and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfcert import spec
from bpfcert.errors import RunnerProtocolError, TargetError, TargetErrorKind
from bpfcert.kernel_state import KINDS, OBJECT_KINDS, Snapshot, diff, wait_vanished
from bpfcert.results import Result, Status
from bpfcert.runners.client import RunnerClient
from bpfcert.runners.protocol import Failure, Options, PackageState

if TYPE_CHECKING:
    from bpfcert.targets.target import Target

BPFFS = "/sys/fs/bpf"
NAME_LEN = 15  # the kernel keeps the first 15 characters of a program or map name (BPF_OBJ_NAME_LEN - 1)
PIN_KINDS = {"programs": "prog", "maps": "map", "links": "link"}
RELEASE_TIMEOUT = 5.0  # seconds the kernel gets to free what a runtime let go of (maps take about one)
CRASH_POINTS = (0.2, 0.5, 0.8)  # where in a command's usual duration RT-CRS-001 kills the runtime

CANNOT_HERE = ("requirements-unmet", "unsupported")  # refusals that leave a check nothing to judge on this target
RuntimeCheck = Callable[..., list[Result]]
RUNTIME_CHECKS: dict[str, RuntimeCheck] = {}


def runtime_check(req_id: str) -> Callable[[RuntimeCheck], RuntimeCheck]:
    """Register `fn` as the runtime check of requirement `req_id` (which must be in the catalogue)."""

    def register(fn: RuntimeCheck) -> RuntimeCheck:
        spec.requirement(req_id)
        RUNTIME_CHECKS[req_id] = fn
        return fn

    return register


@dataclass(frozen=True)
class Deployment:
    """A package as the checks install it: its path on the target, its manifest and the install options (a pin
    root of its own, the interface for XDP and tc)."""

    path: str
    manifest: Mapping[str, Any]
    options: Options

    @classmethod
    def of(cls, path: str | Path, pin_root: str, interface: str | None = None) -> Deployment:
        from bpfcert.package import open_package

        with open_package(path) as pkg:
            manifest = pkg.manifest
        assert isinstance(manifest, dict), f"{path}: no manifest"
        return cls(str(path), manifest, Options(interface=interface, pin_root=pin_root))

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def pin_root(self) -> str:
        return self.options.pin_root or BPFFS

    def programs(self) -> dict[str, str]:
        """Kernel program name -> declared type, of the programs loaded on install."""
        return {p["name"][:NAME_LEN]: p["type"] for p in self.manifest.get("programs", []) if p.get("autoload", True)}

    def maps(self) -> dict[str, str]:
        """Kernel map name -> declared type."""
        return {m["name"][:NAME_LEN]: m["type"] for m in self.manifest.get("maps", [])}

    def attached(self) -> set[str]:
        """Kernel names of the programs the manifest attaches (socket filters are only loaded)."""
        return {p["name"][:NAME_LEN] for p in self.manifest.get("programs", []) if p["type"] != "socket_filter"}

    def preserved(self) -> list[Mapping[str, Any]]:
        return [m for m in self.manifest.get("maps", []) if m.get("preserve_on_upgrade")]


@dataclass(frozen=True)
class Owned:
    """A package's objects in the kernel, by kind ("programs", "maps", "links", "pins"): kernel_state records."""

    objects: dict[str, list[dict[str, Any]]]

    def ids(self) -> dict[str, set[int]]:
        return {kind: {r["id"] for r in self.objects.get(kind, [])} for kind in OBJECT_KINDS}

    def __bool__(self) -> bool:
        return any(self.objects.values())

    def evidence(self) -> dict[str, list[str]]:
        """What there is, short: "name (id N, type)" per object, the path per pin."""
        out = {k: [f"{r.get('name', '')} (id {r['id']}, {r['type']})" for r in self.objects[k]] for k in OBJECT_KINDS}
        out["pins"] = [str(p["path"]) for p in self.objects["pins"]]
        return {k: v for k, v in out.items() if v}


def snapshot(target: Target) -> Snapshot:
    """The target's kernel_state; read again (up to 3 times) when a link being released answers EAGAIN."""
    for attempt in range(3):
        try:
            state: Snapshot = target.call("kernel_state", bpffs=BPFFS)
            return state
        except TargetError as exc:
            if exc.kind != TargetErrorKind.OP_FAILED or "temporarily unavailable" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def owned(before: Snapshot, after: Snapshot, dep: Deployment, *, by_name: bool = True) -> Owned:
    """The objects of `dep` among those that appeared from `before` to `after` (see the module docstring); without
    `by_name`, only what is pinned under the pin root and what that holds."""
    appeared = diff(before, after).appeared
    anchors = [p for p in appeared["pins"] if _under(p["path"], dep.pin_root)]
    pinned = {kind: {p["id"] for p in anchors if p["kind"] == PIN_KINDS[kind]} for kind in OBJECT_KINDS}
    if anchors or not by_name:  # pinned there, or using a map pinned there
        programs = [
            p for p in appeared["programs"] if p["id"] in pinned["programs"] or pinned["maps"] & set(p["map_ids"])
        ]
    else:  # nothing pinned where asked: the names are all there is to go by
        programs = [p for p in appeared["programs"] if p["name"] in dep.programs()]
    used = {m for p in programs for m in p.get("map_ids", [])} | pinned["maps"]
    maps = [m for m in appeared["maps"] if m["id"] in used or (not anchors and by_name and m["name"] in dep.maps())]
    prog_ids = {p["id"] for p in programs}
    links = [link for link in appeared["links"] if link.get("prog_id") in prog_ids or link["id"] in pinned["links"]]
    ids = {PIN_KINDS[k]: {r["id"] for r in v} for k, v in (("programs", programs), ("maps", maps), ("links", links))}
    pins = [p for p in appeared["pins"] if _under(p["path"], dep.pin_root) or p["id"] in ids.get(p["kind"], ())]
    return Owned({"programs": programs, "maps": maps, "links": links, "pins": pins})


def residue(target: Target, made: Owned, dep: Deployment) -> Owned:
    """What of `made` is still in the kernel (waiting for the kernel's asynchronous frees), and any pin left under
    the deployment's pin root or holding one of those objects."""
    taken: list[Snapshot] = []

    def take() -> Snapshot:
        taken[:] = [snapshot(target)]
        return taken[0]

    left = wait_vanished(take, made.ids(), timeout=RELEASE_TIMEOUT)
    now = taken[0]  # the snapshot that showed what is left
    objects = {kind: [r for r in now.get(kind, []) if r["id"] in left[kind]] for kind in OBJECT_KINDS}
    ids = {PIN_KINDS[kind]: {r["id"] for r in made.objects[kind]} for kind in OBJECT_KINDS}
    pins = [p for p in now["pins"] if _under(p["path"], dep.pin_root) or p["id"] in ids.get(p["kind"], ())]
    return Owned({**objects, "pins": pins})


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Step(Exception):
    """A step of a check that could not be carried out: the runner broke the protocol, or refused what the check
    needs done (install of a valid package...). Becomes one ERROR or FAIL result."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


@dataclass
class Judge:
    """Builds the results of one requirement on one target: the ID, the target and the subject said once."""

    req_id: str
    target: str
    subject: str = ""

    def result(self, status: Status, message: str, **evidence: Any) -> Result:
        return Result.of(self.req_id, status, message, subject=self.subject, target=self.target, evidence=evidence)

    def passed(self, message: str, **evidence: Any) -> Result:
        return self.result(Status.PASS, message, **evidence)

    def failed(self, message: str, **evidence: Any) -> Result:
        return self.result(Status.FAIL, message, **evidence)

    def call(self, what: str, op: Callable[[], Any]) -> Any:
        """Run one runner command; a protocol break stops the check as ERROR with the runner's stderr tail."""
        try:
            return op()
        except RunnerProtocolError as exc:
            raise Step(self.result(Status.ERROR, f"{what}: {exc}", step=exc.step, stderr=exc.stderr[-2000:])) from None

    def must(self, what: str, op: Callable[[], Any]) -> Any:
        """Run a command the check needs to succeed; the runtime refusing it FAILs the requirement."""
        value = self.call(what, op)
        if isinstance(value, Failure):
            raise Step(self.failed(f"{what} refused ({value.code}): {value.message}", code=value.code))
        return value


def _judged(req_id: str, client: RunnerClient, subject: str, body: Callable[[Judge], Iterator[Result]]) -> list[Result]:
    judge = Judge(req_id, client.target.name, subject)
    results: list[Result] = []
    try:
        results.extend(body(judge))
    except Step as step:
        results.append(step.result)
    except TargetError as exc:  # the target could not read its kernel: nothing judged, the run goes on
        results.append(judge.result(Status.ERROR, f"the target failed: {exc}"))
    return results


def _cleanup(client: RunnerClient, name: str) -> None:
    """Uninstall `name` if the runner still answers; what it leaves is the business of RT-UNI-001."""
    with contextlib.suppress(RunnerProtocolError):
        client.uninstall(name)


def _install(judge: Judge, client: RunnerClient, dep: Deployment) -> tuple[Snapshot, PackageState, Snapshot]:
    """Install `dep` (it must succeed): the kernel state before, the runtime's answer, the kernel state after."""
    before = snapshot(client.target)
    state = judge.call(f"install {dep.path}", lambda: client.install(dep.path, dep.options))
    if isinstance(state, Failure) and state.code in CANNOT_HERE:  # whether rightly so is RT-PRD-001's question
        raise Step(
            judge.result(Status.SKIP, f"the runtime cannot install {dep.name} here ({state.code}): {state.message}")
        )
    if isinstance(state, Failure):
        raise Step(judge.failed(f"install {dep.path} refused ({state.code}): {state.message}", code=state.code))
    return before, state, snapshot(client.target)


# --- runtime-core -----------------------------------------------------------------------------------------------


@runtime_check("RT-INS-001")
def install_makes_what_is_declared(client: RunnerClient, dep: Deployment) -> list[Result]:
    def body(judge: Judge) -> Iterator[Result]:
        before, _, after = _install(judge, client, dep)
        try:
            made = owned(before, after, dep)
            problems: list[str] = []
            for kind, declared in (("programs", dep.programs()), ("maps", dep.maps())):
                actual: dict[str, list[str]] = {}
                for r in made.objects[kind]:
                    actual.setdefault(r["name"], []).append(r["type"])
                for name, kind_type in declared.items():
                    if actual.get(name) != [kind_type]:
                        problems.append(f"{kind[:-1]} {name}: want one {kind_type}, kernel has {actual.get(name, [])}")
                if kind == "programs":
                    problems += [f"program {n} is not declared" for n in actual if n not in declared]
            linked = {
                p["name"] for p in made.objects["programs"] if p["id"] in {k["prog_id"] for k in made.objects["links"]}
            }
            links_seen = "links" not in after.get("unsupported", [])
            unattached = sorted(dep.attached() - linked) if links_seen else []
            stray = [p["path"] for p in made.objects["pins"] if not _under(p["path"], dep.pin_root)]
            problems += [f"pinned outside the pin root {dep.pin_root}: {path}" for path in stray]
            evidence = {
                "expected": {"programs": dep.programs(), "maps": dep.maps(), "pin_root": dep.pin_root},
                "actual": made.evidence(),
            }
            if unattached:
                evidence["not_attached_by_a_bpf_link"] = unattached  # netlink attachments do not show as links
            if problems:
                yield judge.failed("; ".join(problems), **evidence)
            else:
                yield judge.passed(f"install made exactly the declared programs and maps of {dep.name}", **evidence)
        finally:
            _cleanup(client, dep.name)

    return _judged("RT-INS-001", client, f"package:{dep.name}", body)


@runtime_check("RT-LST-001")
def list_and_status_agree_with_the_kernel(client: RunnerClient, dep: Deployment) -> list[Result]:
    def body(judge: Judge) -> Iterator[Result]:
        before, _, after = _install(judge, client, dep)
        problems: list[str] = []
        try:
            made = owned(before, after, dep)
            listed = judge.must("list", client.list)
            if (dep.name, dep.version) not in {(p.name, p.version) for p in listed}:
                problems.append(f"list does not show {dep.name} {dep.version}: {[(p.name, p.version) for p in listed]}")
            state = judge.must(f"status {dep.name}", lambda: client.status(dep.name))
            kernel = {kind: {r["id"]: r for r in after[kind]} for kind in ("programs", "maps")}
            for kind, items in (("programs", state.programs), ("maps", state.maps)):
                for item in items:
                    record = kernel[kind].get(item.id)
                    if record is None or record["type"] != item.type:
                        found = record and record["type"]
                        problems.append(
                            f"status names {kind[:-1]} {item.name} id {item.id} ({item.type}); kernel: {found}"
                        )
            status_ids = {p.id for p in state.programs}
            missing = sorted(made.ids()["programs"] - status_ids)
            if missing:
                problems.append(f"status leaves out the package's programs with ids {missing}")
            pinned = [p["path"] for p in after["pins"]]  # a directory it names must hold some pin
            problems += [
                f"status names {pin}, where bpffs holds no pin"
                for pin in state.pins
                if not any(_under(path, pin) for path in pinned)
            ]
        finally:
            _cleanup(client, dep.name)
        listed = judge.must("list after uninstall", client.list)
        if dep.name in {p.name for p in listed}:
            problems.append(f"list still shows {dep.name} after uninstall")
        gone = judge.call(f"status {dep.name} after uninstall", lambda: client.status(dep.name))
        if not isinstance(gone, Failure) or gone.code != "not-installed":
            problems.append(f"status after uninstall answers {gone!r}, not not-installed")
        if problems:
            yield judge.failed("; ".join(problems), actual=problems)
        else:
            yield judge.passed(f"list and status of {dep.name} agree with the kernel before and after uninstall")

    return _judged("RT-LST-001", client, f"package:{dep.name}", body)


@runtime_check("RT-UNI-001")
def uninstall_leaves_nothing(client: RunnerClient, dep: Deployment) -> list[Result]:
    def body(judge: Judge) -> Iterator[Result]:
        before, _, after = _install(judge, client, dep)
        made = owned(before, after, dep)
        judge.must(f"uninstall {dep.name}", lambda: client.uninstall(dep.name))
        left = residue(client.target, made, dep)
        if left:
            yield judge.failed(f"uninstall left {_count(left)}", residue=left.evidence(), installed=made.evidence())
        else:
            yield judge.passed("uninstall left no program, map, link or pin", installed=made.evidence())

    return _judged("RT-UNI-001", client, f"package:{dep.name}", body)


def _count(left: Owned) -> str:
    return ", ".join(f"{len(v)} {k}" for k, v in left.objects.items() if v)


@dataclass(frozen=True)
class BadPackage:
    """An invalid package made from a valid one, and the error code its defect calls for."""

    defect: str
    path: Path
    code: str


def bad_packages(source: Path, into: Path) -> list[BadPackage]:
    """Invalid copies of the package directory `source` (JSON manifest) under `into`: a wrong artifact digest,
    a signature that does not verify, a program the verifier rejects (its first instruction reads the
    uninitialised r5; the digest updated), an unmet requires.kernel (>=99.0)."""
    import base64
    import hashlib

    def copy(defect: str, edit: Callable[[dict[str, Any], Path], None]) -> Path:
        root = into / defect
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(source, root)
        manifest = json.loads((root / "bpfpkg.json").read_text())
        edit(manifest, root)
        (root / "bpfpkg.json").write_text(json.dumps(manifest, indent=2))
        return root

    def bad_digest(m: dict[str, Any], _: Path) -> None:
        m["artifacts"][0]["sha256"] = "0" * 64

    def bad_signature(m: dict[str, Any], _: Path) -> None:
        raw = base64.b64encode(bytes(32)).decode()
        m["signature"] = {"algorithm": "ed25519", "public_key": raw, "value": base64.b64encode(bytes(64)).decode()}

    def rejected(m: dict[str, Any], root: Path) -> None:
        program = m["programs"][0]
        artifact = next(a for a in m["artifacts"] if a["path"] == program["artifact"])
        path = root / artifact["path"]
        data = bytearray(path.read_bytes())
        offset = _section_offset(path, program["section"])
        data[offset : offset + 8] = bytes.fromhex("bf50000000000000")  # r0 = r5: R5 !read_ok
        path.write_bytes(data)
        artifact["sha256"] = hashlib.sha256(data).hexdigest()

    def unmet(m: dict[str, Any], _: Path) -> None:
        m.setdefault("requires", {})["kernel"] = ">=99.0"

    return [
        BadPackage("bad-digest", copy("bad-digest", bad_digest), "invalid-package"),
        BadPackage("bad-signature", copy("bad-signature", bad_signature), "bad-signature"),
        BadPackage("verifier-rejected", copy("verifier-rejected", rejected), "verifier-rejected"),
        BadPackage("requirements-unmet", copy("requirements-unmet", unmet), "requirements-unmet"),
    ]


def _section_offset(path: Path, section: str) -> int:
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        found = ELFFile(f).get_section_by_name(section)
        assert found is not None, f"{path}: no section {section}"
        return int(found["sh_offset"])


@runtime_check("RT-REJ-001")
def invalid_packages_are_refused(client: RunnerClient, dep: Deployment, bad: list[BadPackage]) -> list[Result]:
    results: list[Result] = []
    for package in bad:
        bad_dep = replace(dep, path=str(package.path))

        def body(judge: Judge, package: BadPackage = package, bad_dep: Deployment = bad_dep) -> Iterator[Result]:
            before = snapshot(client.target)
            answer = judge.call(f"install {package.path}", lambda: client.install(bad_dep.path, bad_dep.options))
            after = snapshot(client.target)
            problems = []
            if not isinstance(answer, Failure):
                _cleanup(client, bad_dep.name)
                problems.append(f"installed it (want {package.code})")
                code = None
            else:
                code = answer.code
                if code != package.code:
                    problems.append(f"refused with {code}, want {package.code}")
            # by pins only: other runs of the same package on this kernel would read as residue by name
            left = (
                owned(before, after, bad_dep, by_name=False)
                if isinstance(answer, Failure)
                else Owned({kind: [] for kind in KINDS})
            )
            if left:
                problems.append(f"left {_count(left)}")
            listed = judge.must("list", client.list)
            if isinstance(answer, Failure) and bad_dep.name in {p.name for p in listed}:
                problems.append(f"list shows {bad_dep.name} after the refusal")
            evidence = {"expected": package.code, "actual": code, "residue": left.evidence() if left else {}}
            if isinstance(answer, Failure):
                evidence["runner_message"] = answer.message
            if problems:
                yield judge.failed(f"{package.defect}: " + "; ".join(problems), **evidence)
            else:
                yield judge.passed(f"{package.defect}: refused with {code}, nothing left", **evidence)

        results += _judged("RT-REJ-001", client, f"package:{package.defect}", body)
    return results


@runtime_check("RT-IDM-001")
def second_install_is_idempotent_or_refused(client: RunnerClient, dep: Deployment) -> list[Result]:
    def body(judge: Judge) -> Iterator[Result]:
        before, _, first = _install(judge, client, dep)
        problems: list[str] = []
        try:
            answer = judge.call(f"install {dep.path} again", lambda: client.install(dep.path, dep.options))
            second = snapshot(client.target)
            if isinstance(answer, Failure) and answer.code != "already-installed":
                problems.append(f"the second install was refused with {answer.code}, not already-installed")
            changed = owned(first, second, dep)
            if changed:
                problems.append(f"the second install made {_count(changed)}")
            made = owned(before, second, dep)
            outcome = answer.code if isinstance(answer, Failure) else "ok"
        finally:
            judge.must(f"uninstall {dep.name}", lambda: client.uninstall(dep.name))
        left = residue(client.target, made, dep)
        if left:
            problems.append(f"one uninstall after two installs left {_count(left)}")
        evidence = {"second_install": outcome, "made_by_second": changed.evidence(), "residue": left.evidence()}
        if problems:
            yield judge.failed("; ".join(problems), **evidence)
        else:
            yield judge.passed(f"the second install answered {outcome} and changed nothing", **evidence)

    return _judged("RT-IDM-001", client, f"package:{dep.name}", body)


@runtime_check("RT-CRS-001")
def killed_runtime_recovers(client: RunnerClient, dep: Deployment, upgrade: Deployment | None = None) -> list[Result]:
    """Kill the runtime (its runner session, SIGKILL) at points through install, upgrade and uninstall, timed from
    one undisturbed run of each, restart it, and compare what it then lists with the kernel. The kill is the
    exchange timing out: runner_exchange SIGKILLs the runner's session at the deadline.

    One runner process per kill point: the one restarted after a kill is judged, uninstalls, then sets up and
    suffers the next kill. The undisturbed run is timed on a process started for it and asked `list`, as those
    are, after one run on `client` that lets the runtime see the packages first, so that the kill points fall
    within each command's own work; that process then suffers the first kill (a start costs seconds in a TCG
    guest). `client` is left as it was."""
    target, runner = client.target, client.runner
    commands: dict[str, Callable[[RunnerClient], object]] = {
        "install": lambda c: c.install(dep.path, dep.options),
        "upgrade": lambda c: c.upgrade(upgrade.path, upgrade.options) if upgrade else None,
        "uninstall": lambda c: c.uninstall(dep.name),
    }
    live: list[RunnerClient] = []  # the runtime restarted after the last kill (or timed), for the next one

    def started(judge: Judge) -> RunnerClient:
        fresh: RunnerClient = judge.call("start", lambda: RunnerClient.start(target, runner))
        return fresh

    def timed(judge: Judge) -> dict[str, float]:
        operations = ("install", "upgrade", "uninstall") if upgrade else ("install", "uninstall")
        for operation in operations:  # a runtime's first sight of a package may cost more (verifying, caching)
            judge.must(f"{operation} {dep.name}", partial(commands[operation], client))
        durations = {}
        fresh = started(judge)
        live.append(fresh)
        judge.must("list", fresh.list)
        for operation in operations:
            start = time.monotonic()
            judge.must(f"{operation} {dep.name}", partial(commands[operation], fresh))
            durations[operation] = time.monotonic() - start
        return durations

    def crash(judge: Judge, *, operation: str, point: float, duration: float) -> Iterator[Result]:
        # named by the point of the operation, not its seconds: rows of two runs match (report diff, xfail)
        judge.subject = f"package:{dep.name}@{operation}+{point:.0%}"
        after = duration * point
        before = snapshot(target)
        with live.pop() if live else started(judge) as setup:
            if operation in ("upgrade", "uninstall"):
                judge.must(f"install {dep.path}", lambda: setup.install(dep.path, dep.options))
            setup.timeout = after
            try:
                commands[operation](setup)
                killed = False
            except RunnerProtocolError:
                killed = True
        fresh = started(judge)
        live.append(fresh)
        now = snapshot(target)
        made = owned(before, now, dep)
        listed = judge.must("list after restart", fresh.list)
        ours = [p for p in listed if p.name == dep.name]
        problems: list[str] = []
        if ours:
            state = judge.must(f"status {dep.name}", lambda: fresh.status(dep.name))
            kernel = {kind: {r["id"]: r for r in now[kind]} for kind in ("programs", "maps")}
            for kind, items in (("programs", state.programs), ("maps", state.maps)):
                problems += [
                    f"lists {dep.name} with {kind[:-1]} id {i.id}, not in the kernel"
                    for i in items
                    if i.id not in kernel[kind]
                ]
            if {ours[0].version} - {dep.version, upgrade.version if upgrade else dep.version}:
                problems.append(f"lists version {ours[0].version}")
            judge.must(f"uninstall {dep.name}", lambda: fresh.uninstall(dep.name))
        left = residue(target, made, dep)
        if left:
            problems.append(f"{'after uninstall ' if ours else 'not listed, yet '}left {_count(left)}")
        evidence = {
            "killed": killed,
            "after_seconds": round(after, 3),
            "listed": [(p.name, p.version) for p in ours],
            "residue": left.evidence(),
        }
        if problems:
            yield judge.failed(f"killed during {operation}: " + "; ".join(problems), **evidence)
        else:
            yield judge.passed(f"killed during {operation}, restarted: what it lists matches the kernel", **evidence)

    def body(judge: Judge) -> Iterator[Result]:
        durations = timed(judge)
        for operation, duration in durations.items():
            for point in CRASH_POINTS:
                yield from _judged(
                    "RT-CRS-001", client, "", partial(crash, operation=operation, point=point, duration=duration)
                )

    try:
        return _judged("RT-CRS-001", client, f"package:{dep.name}", body)
    finally:
        for left_running in live:
            left_running.close()


# --- runtime-upgrade --------------------------------------------------------------------------------------------

MARK_KEY = bytes.fromhex("ffffff7f")  # a key the example counters never use (protocol numbers stop at 256)


@runtime_check("RT-UPG-001")
def upgrade_keeps_preserved_maps(client: RunnerClient, old: Deployment, new: Deployment) -> list[Result]:
    def body(judge: Judge) -> Iterator[Result]:
        before, _, after = _install(judge, client, old)
        try:
            made = owned(before, after, old)
            marks = {}
            for m in old.preserved():
                kernel = next((r for r in made.objects["maps"] if r["name"] == m["name"][:NAME_LEN]), None)
                if kernel is None:
                    raise Step(judge.failed(f"no kernel map {m['name']} after installing {old.version}"))
                key = MARK_KEY[: m["key_size"]].ljust(m["key_size"], b"\x00")
                value = bytes((i * 37 + 11) % 256 for i in range(m["value_size"]))
                client.target.call("map_element", map_id=kernel["id"], key_hex=key.hex(), value_hex=value.hex())
                marks[m["name"]] = (kernel["id"], key, value)
            judge.must(f"upgrade to {new.path}", lambda: client.upgrade(new.path, new.options))
            now = snapshot(client.target)
            programs = [p for p in now["programs"] if p["name"] in new.programs()]
            used = {i for p in programs for i in p.get("map_ids", [])}
            for name, (map_id, key, value) in marks.items():
                judge.subject = f"map:{name}"
                if not any(r["id"] == map_id for r in now["maps"]):
                    yield judge.failed(f"the upgrade dropped map {name} (id {map_id})", map_id=map_id)
                    continue
                if map_id not in used:  # not read: no program holds it, the kernel may free it any moment
                    yield judge.failed(f"no program of {new.version} uses map {name} (id {map_id})", map_id=map_id)
                    continue
                read = client.target.call("map_element", map_id=map_id, key_hex=key.hex())
                evidence = {"map_id": map_id, "expected": value.hex(), "actual": read["value_hex"]}
                if read["value_hex"] != value.hex():
                    yield judge.failed(f"map {name} lost the value written before the upgrade", **evidence)
                else:
                    yield judge.passed(f"{new.version} uses the same map {name} with its contents", **evidence)
        finally:
            _cleanup(client, old.name)

    return _judged("RT-UPG-001", client, f"package:{old.name}", body)


@runtime_check("RT-RBK-001")
def rollback_restores_the_previous_version(client: RunnerClient, old: Deployment, new: Deployment) -> list[Result]:
    def body(judge: Judge) -> Iterator[Result]:
        before, _, after = _install(judge, client, old)
        try:
            first = _layout(owned(before, after, old))
            judge.must(f"upgrade to {new.path}", lambda: client.upgrade(new.path, new.options))
            judge.must(f"rollback {old.name}", lambda: client.rollback(old.name))
            now = _layout(owned(before, snapshot(client.target), old), current=True)
            listed = judge.must("list", client.list)
            problems = [f"{what} differs" for what in ("programs", "maps") if first[what] != now[what]]
            versions = [p.version for p in listed if p.name == old.name]
            if versions != [old.version]:
                problems.append(f"list shows {versions}, want [{old.version!r}]")
            evidence = {"expected": first, "actual": now}
            if problems:
                yield judge.failed("after rollback: " + "; ".join(problems), **evidence)
            else:
                yield judge.passed(f"rollback restored {old.version}'s programs and map layout", **evidence)
        finally:
            _cleanup(client, old.name)

    return _judged("RT-RBK-001", client, f"package:{old.name}", body)


def _layout(made: Owned, current: bool = False) -> dict[str, list[list[Any]]]:
    """Programs by (name, type, tag) and maps by (name, type, key and value size, entries); with `current`, only
    the programs still attached by a link and the maps they use (what runs now, not what was once loaded)."""
    programs = made.objects["programs"]
    if current:
        linked = {link["prog_id"] for link in made.objects["links"]}
        programs = [p for p in programs if p["id"] in linked] if linked else programs
    used = {i for p in programs for i in p.get("map_ids", [])}
    maps = [m for m in made.objects["maps"] if m["id"] in used or not current]
    return {
        "programs": sorted([p["name"], p["type"], p["tag"]] for p in programs),
        "maps": sorted(
            map(list, {(m["name"], m["type"], m["key_size"], m["value_size"], m["max_entries"]) for m in maps})
        ),
    }
