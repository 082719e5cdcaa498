"""RT-PRD-001 (SHOULD): an install's outcome agrees with `bpfcert probe --package`'s prediction for that target.

The prediction is `bpfcert probe --package`'s: what the package's code needs (bpfcert.portability.code_needs)
against the target's probe findings (bpfcert.portability.predict_code). The outcome is the runtime's install on that
target: installed (then uninstalled), or refused for the kernel's sake (requirements-unmet, verifier-rejected,
attach-failed). A package predicted to run must install; one predicted not to must be refused so. A disagreement is
a FAIL with both sides in the evidence, unless the prediction left something unknown (then SKIP, saying what).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from bpfcert.results import Result, Status
from bpfcert.runners.protocol import Failure, Options

if TYPE_CHECKING:
    from bpfcert.runners.client import RunnerClient
    from bpfcert.targets.target import Target

KERNEL_REFUSALS = ("requirements-unmet", "verifier-rejected", "attach-failed")


def predictions(target: Target, packages: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """("name@version", predict_code's prediction) per package path, from one probe of `target` covering them all,
    as `bpfcert probe --package` makes it; named as bpfcert.package.package_subject names it (NAME@VERSION, a
    big-endian build NAME@VERSION+bpfeb)."""
    from bpfcert.package import open_package, package_subject
    from bpfcert.portability import code_needs, predict_code
    from bpfcert.probe_cmd import kconfig_from_kernel_cache, probe_request

    opened = []
    for path in packages:
        with open_package(path) as pkg:
            requires = pkg.manifest.get("requires") if isinstance(pkg.manifest, dict) else None
            kconfig = requires.get("kconfig") if isinstance(requires, dict) else None
            opened.append((package_subject(pkg), code_needs(pkg), kconfig if isinstance(kconfig, dict) else {}))
    request = probe_request(
        prog_types=[t for _, needs, _ in opened for t in needs.prog_types],
        kfuncs=[k for _, needs, _ in opened for k in needs.kfuncs if not k.startswith("btf_id:")],
        kconfig=[k for _, _, kconfig in opened for k in kconfig],
    )
    entry = {"name": target.name, "findings": target.call("probe", **request)}
    kconfig_from_kernel_cache(entry, request.get("kconfig", []))
    return [(name, predict_code(needs, entry["findings"], target.name, kconfig)) for name, needs, kconfig in opened]


def rt_prd_001(
    client: RunnerClient, target: Target, packages: list[str], options: Options | None = None
) -> list[Result]:
    """One Result per package path (on the target's filesystem): its install through `client` against the
    prediction. XDP and tc programs get an interface made for the check (traffic_interface: a veth, or lo)."""
    veth = target.call("traffic_interface", name="bp" + uuid.uuid4().hex[:8])
    try:
        install_options = replace(options or Options(), interface=veth["interface"])
        return [
            _judge(client, target, path, name, prediction, install_options)
            for path, (name, prediction) in zip(packages, predictions(target, packages), strict=True)
        ]
    finally:
        target.call("traffic_interface_del", interface=veth["interface"])


def _judge(
    client: RunnerClient, target: Target, path: str, name: str, prediction: dict[str, Any], options: Options
) -> Result:
    row = partial(Result.of, "RT-PRD-001", subject=f"package:{name}", target=target.name)
    reply = client.install(path, options)
    if isinstance(reply, Failure):
        outcome = {"installed": False, "code": reply.code, "message": reply.message}
    else:
        client.uninstall(reply.name)
        outcome = {"installed": True}
    evidence = {"prediction": prediction, "outcome": outcome}
    predicted = "runs" if prediction["meets"] else f"does not run ({prediction['limiting']})"
    if isinstance(reply, Failure) and reply.code == "unsupported":  # the runtime's limit, not the kernel's
        return row(Status.SKIP, f"not applicable: the runtime does not support {name} here ({reply.message}), so its "
                   "install says nothing about the kernel the prediction is about", evidence=evidence)  # fmt: skip
    if isinstance(reply, Failure) and reply.code not in KERNEL_REFUSALS:
        return row(Status.ERROR, f"cannot compare: the install was refused for another reason, {reply.code}: "
                   f"{reply.message}", evidence=evidence)  # fmt: skip
    if prediction["meets"] == outcome["installed"]:
        got = "installed" if outcome["installed"] else f"refused ({outcome['code']})"
        return row(Status.PASS, f"predicted: {predicted}; {got}", evidence=evidence)
    got = "installed" if outcome["installed"] else f"refused, {outcome['code']}: {outcome['message']}"
    message = f"predicted: {predicted}, but {got}"
    if prediction["unknown"]:
        return row(Status.SKIP, f"{message}; the prediction left open: {'; '.join(prediction['unknown'])}",
                   evidence=evidence)  # fmt: skip
    return row(Status.FAIL, message, evidence=evidence)
