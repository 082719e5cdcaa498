"""The `bpfcert` command: argument parsing and exit codes. Work is done by the library, imported lazily
so that start-up stays cheap (a `bpfcert check` must finish well inside 150 ms)."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TypeAlias, cast

from bpfcert import __version__

EXIT_UNUSABLE = 2  # 0 conformant and 1 nonconformant are the handlers' verdicts
EXIT_INTERNAL = 3  # an uncaught exception: a bug, never a verdict
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process killed by SIGPIPE
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# command -> "module:function"; each function takes the parsed arguments and returns the exit code.
HANDLERS = {
    "check": "bpfcert.commands:check",
    "pack": "bpfcert.commands:pack",
    "import": "bpfcert.commands:import_package",
    "examples": "bpfcert.commands:examples",
    "requirements": "bpfcert.catalogue_cmd:requirements",
    "explain": "bpfcert.catalogue_cmd:explain",
    "kernels": "bpfcert.targets.kernels:command",
    "probe": "bpfcert.probe_cmd:command",
    "certify": "bpfcert.certify_cmd:command",
    "report": "bpfcert.report_cmd:command",
    "site": "bpfcert.report_cmd:site",
    "ci": "bpfcert.ci_cmd:command",
    "isa": "bpfcert.isa_cmd:command",
    "push": "bpfcert.hub_cmd:push",
    "pull": "bpfcert.hub_cmd:pull",
    "hub": "bpfcert.hub_cmd:hub",
}

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# The exit codes every command shares after its own 0 (and 1).
UNUSABLE = (
    "2  unusable input or environment (a one-line error on stderr)",
    "3  internal error (a bug: please report it)",
)


def _add(sub: Subcommands, name: str, about: str, examples: str, *exits: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with examples and its exit codes."""
    codes = "\n".join(f"  {line}" for line in (*exits, *UNUSABLE))
    epilog = f"Examples:\n{examples}\n\nexit codes:\n{codes}"
    return sub.add_parser(
        name, help=about, description=about, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def _profile_list(text: str) -> list[str]:
    """`--profile a,b`: a comma list; unknown names are left for the command to refuse in one line."""
    return [name.strip() for name in text.split(",") if name.strip()]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `bpfcert` parser; each subcommand's arguments, examples and exit codes are in its `_add_*`.

    Given a `command` of HANDLERS, only that subcommand is built: all that its command line (and its --help)
    needs, without the others' cost at every start-up (a `bpfcert check` must finish inside 150 ms)."""
    from bpfcert import spec

    profiles = list(spec.profiles())
    p = argparse.ArgumentParser(
        prog="bpfcert",
        description="Conformance and certification for eBPF software.",
        epilog="Examples:\n  bpfcert check examples/xdp-counter-v1\n  bpfcert explain PKG-ART-003\n\n"
        "exit codes (each command's --help says what 0 and 1 mean for it):\n"
        + "\n".join(f"  {line}" for line in ("0  success, conformant", "1  a negative verdict", *UNUSABLE)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"bpfcert {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    builders: dict[str, Callable[[], None]] = {
        "check": lambda: _add_check(sub, profiles),
        "pack": lambda: _add_pack(sub),
        "import": lambda: _add_import(sub),
        "examples": lambda: _add_examples(sub),
        "requirements": lambda: _add_requirements(sub, profiles),
        "explain": lambda: _add_explain(sub),
        "kernels": lambda: _add_kernels(sub),
        "probe": lambda: _add_probe(sub),
        "certify": lambda: _add_certify(sub, profiles),
        "report": lambda: _add_report(sub),
        "site": lambda: _add_site(sub),
        "ci": lambda: _add_ci(sub),
        "isa": lambda: _add_isa(sub),
        "push": lambda: _add_push(sub),
        "pull": lambda: _add_pull(sub),
        "hub": lambda: _add_hub(sub),
    }
    for name, build in builders.items():
        if command in (None, name):
            build()
    return p


def _add_check(sub: Subcommands, profiles: list[str]) -> None:
    from bpfcert.report import writers

    c = _add(
        sub,
        "check",
        "check a package statically against the standard",
        "  bpfcert check examples/xdp-counter-v1\n"
        "  bpfcert check pkg.tar.gz --profile package-core,package-portable --format junit -o junit.xml",
        "0  conformant",
        "1  nonconformant (a MUST requirement failed)",
    )
    c.add_argument("package", help="package directory, .tar.gz archive, manifest file, or hub reference "
                   "(oci://HOST:PORT/REPO:TAG, @sha256:..., oci-layout:DIR:TAG)")
    c.add_argument(
        "--profile",
        action="extend",
        type=_profile_list,
        help="profile(s) to check, comma-separated or repeated: "
        f"{', '.join(n for n in profiles if n.startswith('package-'))} (default: those the package claims)",
    )
    c.add_argument("--format", choices=list(writers()), default="text")
    c.add_argument("-o", "--output", help="write the report here instead of standard output")


def _add_pack(sub: Subcommands) -> None:
    k = _add(
        sub,
        "pack",
        "derive a manifest from BPF objects and write a package",
        "  bpfcert pack prog.bpf.o -o mypkg --name mypkg --license GPL-2.0-only",
        "0  package written",
    )
    k.add_argument("objects", nargs="+", help="BPF ELF objects (or executables embedding them)")
    k.add_argument("-o", "--output", required=True, help="package directory to write")
    k.add_argument("--name", help="package name (default: from the first object's file name)")
    k.add_argument("--version", dest="pkg_version", default="0.1.0", help="package version (SemVer)")
    k.add_argument("--license", help="SPDX license expression (default: from the objects' license section)")
    k.add_argument("--sign-key", help="Ed25519 private key (PEM) to sign the manifest with")
    k.add_argument("--force", action="store_true", help="write into a non-empty output directory")


def _add_import(sub: Subcommands) -> None:
    i = _add(
        sub,
        "import",
        "convert another package format into a bpfcert package",
        '  bpfcert import bpfman prog.o --programs \'{"xdp_stats":"xdp"}\' -o pkg\n'
        "  bpfcert import eunomia package.json -o pkg",
        "0  package written",
    )
    isub = i.add_subparsers(dest="format", required=True, metavar="FORMAT")
    ib = _add(
        isub,
        "bpfman",
        "bpfman bytecode image contents (object + io.ebpf.* label values)",
        '  bpfcert import bpfman prog.o --programs \'{"xdp_stats":"xdp"}\' \\\n'
        '      --maps \'{"xdp_stats_map":"per_cpu_array"}\' -o pkg',
        "0  package written",
    )
    ib.add_argument("object")
    ib.add_argument("--programs", required=True, help="io.ebpf.programs label value (JSON or @file)")
    ib.add_argument("--maps", default="{}", help="io.ebpf.maps label value (JSON or @file)")
    ib.add_argument("-o", "--output", required=True)
    ie = _add(
        isub,
        "eunomia",
        "eunomia-bpf package.json",
        "  bpfcert import eunomia package.json -o pkg",
        "0  package written",
    )
    ie.add_argument("package_json")
    ie.add_argument("-o", "--output", required=True)


def _add_examples(sub: Subcommands) -> None:
    e = _add(
        sub,
        "examples",
        "check the bundled example packages and write reports",
        "  bpfcert examples --reports reports/examples",
        "0  every example conformant",
        "1  one is not",
    )
    e.add_argument("--reports", default="reports/examples", help="directory for the JSON and JUnit reports")


def _add_requirements(sub: Subcommands, profiles: list[str]) -> None:
    r = _add(
        sub,
        "requirements",
        "list the standard's requirements: ID, level, profile, title",
        "  bpfcert requirements --profile package-portable\n  bpfcert requirements --format json",
        "0  listed",
    )
    r.add_argument(
        "--profile",
        action="extend",
        type=_profile_list,
        help=f"only these profiles and those they include, comma-separated or repeated: {', '.join(profiles)}",
    )
    r.add_argument("--format", choices=["text", "json"], default="text")


def _add_explain(sub: Subcommands) -> None:
    x = _add(
        sub,
        "explain",
        "explain a requirement: its clause in the standard and how to fix a failure",
        "  bpfcert explain PKG-ART-003",
        "0  explained (an unknown ID is unusable input: close matches are suggested)",
    )
    x.add_argument("id", metavar="ID", help="requirement ID, e.g. PKG-REQ-005 (any case)")


def _add_kernels(sub: Subcommands) -> None:
    from bpfcert.targets import series

    kn = _add(
        sub,
        "kernels",
        "manage the cache of Debian kernels booted as targets",
        "  bpfcert kernels list\n  bpfcert kernels fetch --if-missing 6.1",
        "0  done",
    )
    ksub = kn.add_subparsers(dest="action", required=True, metavar="ACTION")
    kl = _add(ksub, "list", "series, exact version, cached or not", "  bpfcert kernels list --format json", "0  listed")
    kl.add_argument("--format", choices=["text", "json"], default="text")
    kf = _add(
        ksub,
        "fetch",
        "download the newest point release of each series",
        "  bpfcert kernels fetch --if-missing\n  bpfcert kernels fetch 5.10 7.2",
        "0  every requested series cached",
    )
    kf.add_argument("series", nargs="*", help=f"{', '.join(series.ALL_ARCH)} or all-arch (default: the x86_64 ones)")
    kf.add_argument("--if-missing", action="store_true", help="only fetch series not cached yet (no network when warm)")


def _add_probe(sub: Subcommands) -> None:
    from bpfcert.targets import series

    pr = _add(
        sub,
        "probe",
        "probe kernel features on targets",
        "  bpfcert probe --target host,6.1\n  bpfcert probe --target all --package examples/core-tracing",
        "0  every target probed (and, with --package, able to run it)",
        "1  a target failed or cannot run the package",
    )
    pr.add_argument("--target", default="host", help=series.target_help())
    pr.add_argument("--format", choices=["text", "json"], default="text")
    pr.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    pr.add_argument(
        "--package", action="append", help="predict from this package's code whether each target runs it (repeatable)"
    )
    pr.add_argument("-o", "--output", help="also save the JSON report here")
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def _add_certify(sub: Subcommands, profiles: list[str]) -> None:
    from bpfcert.targets import series

    ce = _add(
        sub,
        "certify",
        "the main job (no arguments: examples, reference runtime, ISA engines; host + cached kernels), or certify a "
        "runtime (and packages) by running the conformance suite; reports into the output directory",
        "  bpfcert certify   (the main job: examples, reference runtime, ISA engines; host + cached kernels)\n"
        "  bpfcert certify --runtime reference --target all\n"
        "  bpfcert certify --runner ./my-runner --output out\n  bpfcert certify pkg1 pkg2   (the package suite only)\n"
        "  bpfcert certify --hub oci://127.0.0.1:5000",
        "0  every claimed profile passes",
        "1  something does not conform, or the run did not complete",
    )
    who = ce.add_mutually_exclusive_group()
    who.add_argument("--runtime", help="a runner shipped with bpfcert, by name (e.g. reference)")
    who.add_argument("--runner", help="a runner folder anywhere (holding runner.json)")
    who.add_argument("--hub", metavar="URL", help="certify an OCI registry as a hub (oci://HOST:PORT; profiles hub, "
                     "hub-client)")
    ce.add_argument("--hub-storage", metavar="DIR", help="with --hub: the registry's filesystem root (distribution's "
                    "rootdirectory), so the tampered-blob check (HUB-CLI-001) can edit a blob there; skipped without")
    ce.add_argument("--target", help=f"{series.target_help()} (default: host; the main job: host + cached kernels)")
    ce.add_argument("--engine", help="ISA engine(s) certified too, comma-separated: linux-kernel (each target's JIT "
                    "and interpreter, named for its architecture off x86_64), python-reference, ... (default: none)")
    ce.add_argument("--output", default="bpfcert-report", help="directory for results.jsonl and the reports "
                    "(report.json, junit.xml, report.html, summary.md, badge.json)")
    ce.add_argument("--product", metavar="FILE", help="product.yaml: vendor, product, version, contact and the "
                    "profiles claimed (certified unless --profile says otherwise)")
    ce.add_argument("--certified", action="store_true", help="certified mode: no skip allowed; any skip, error or "
                    "failure of a profile makes it 'Not certified'")
    ce.add_argument(
        "--profile",
        action="extend",
        type=_profile_list,
        help=f"profile(s) certified, comma-separated or repeated: {', '.join(profiles)} (default: those claimed)",
    )
    ce.add_argument("--sign", metavar="KEY", help="Ed25519 private key (PEM): add a certificate to report.json and "
                    "sign it (report.json.sig)")
    ce.add_argument("--expected-failures", metavar="FILE", help="known failures (spec/expected-failures.schema.json): "
                    "they become xfail, and a pass among them an xpass that fails the run")
    ce.add_argument("packages", nargs="*", metavar="PACKAGE", help="packages to certify (default: the examples)")


def _add_report(sub: Subcommands) -> None:
    rp = _add(
        sub,
        "report",
        "sign, verify, compare and merge certification reports",
        "  bpfcert report verify report.json --trusted-keys reports/trusted-keys\n"
        "  bpfcert report diff old/report.json new/report.json\n"
        "  bpfcert report merge shards/*/results.jsonl -o merged",
        "0  done: signed, valid, no regression, merged report conformant",
        "1  invalid, expired or untrusted signature; a regression; merged report not conformant or incomplete",
    )
    rsub = rp.add_subparsers(dest="action", required=True, metavar="ACTION")
    rs = _add(rsub, "sign", "sign a report document (writes REPORT.sig)",
              "  bpfcert report sign report.json --key key.pem", "0  signed")
    rs.add_argument("report")
    rs.add_argument("--key", required=True, help="Ed25519 private key (PEM)")
    rv = _add(rsub, "verify", "check a signed report: unedited, by a trusted signer, certificate not expired",
              "  bpfcert report verify report.json --trusted-keys reports/trusted-keys",
              "0  valid", "1  edited, badly signed, by an untrusted signer, or expired")
    rv.add_argument("report")
    rv.add_argument("--signature", help="the signature sidecar (default: REPORT.sig)")
    rv.add_argument("--trusted-keys", help="accept only signers listed here (base64 key and name, one a line)")
    rd = _add(rsub, "diff", "regressions, fixes, new and removed rows from report A to report B",
              "  bpfcert report diff a/report.json b/report.json --format json",
              "0  no regression", "1  something regressed")
    rd.add_argument("a", help="the earlier report.json (or results.jsonl)")
    rd.add_argument("b", help="the later report.json (or results.jsonl)")
    rd.add_argument("--format", choices=["text", "json"], default="text")
    rm = _add(rsub, "merge", "merge shards' results streams into one report (a missing shard makes it incomplete)",
              "  bpfcert report merge host/results.jsonl 6.1/results.jsonl -o merged",
              "0  the merged report is conformant", "1  it is not, or a shard is missing or incomplete")
    rm.add_argument("streams", nargs="+", metavar="STREAM", help="a shard's results.jsonl")
    rm.add_argument("-o", "--output", required=True, help="directory for report.json, junit.xml")
    rm.add_argument("--expected-failures", metavar="FILE", help="known failures, as for certify")


def _add_site(sub: Subcommands) -> None:
    st = _add(sub, "site", "build a static site of the registry's submissions (runtimes x kernels x profiles)",
              "  bpfcert site reports/ -o site", "0  built, every submission valid",
              "1  built, but a submission is not valid (the page says why)")
    st.add_argument("registry", help="the registry root (reports/)")
    st.add_argument("-o", "--output", required=True, help="directory for index.html and the submissions' files")


def _add_ci(sub: Subcommands) -> None:
    ci = _add(sub, "ci", "CI helpers", "  bpfcert ci matrix --format github", "0  done")
    csub = ci.add_subparsers(dest="action", required=True, metavar="ACTION")
    cm = _add(csub, "matrix", "the certification's shards (targets x profiles) as a CI matrix",
              "  bpfcert ci matrix --format github --target host,6.1", "0  printed")
    cm.add_argument("--format", choices=["github"], default="github")
    cm.add_argument("--target", action="extend", type=_profile_list,
                    help="targets, or all (x86_64) or all-arch (default: all: host and every series)")
    cm.add_argument("--profile", action="extend", type=_profile_list, help="profiles (default: all)")
    cm.add_argument("--shard-by", choices=["target", "arch"], default="target",
                    help="one shard per target (default) or per architecture, x profile")


def _add_isa(sub: Subcommands) -> None:
    from bpfcert.report import writers

    ia = _add(
        sub,
        "isa",
        "run ISA conformance cases (RFC 9669) on an execution engine, or fuzz it against the reference",
        "  bpfcert isa --runtime linux-kernel --target host,6.1\n"
        "  bpfcert isa --suite bpf_conformance/tests --runtime plugin:./my-plugin --format json\n"
        "  bpfcert isa fuzz --runtime dpdk-interp --examples 2000 --save found/",
        "0  every case the engine claims passes (fuzz: no disagreement found)",
        "1  a case failed or errored (fuzz: a disagreement, saved as a case)",
    )
    ia.add_argument("action", nargs="?", choices=["fuzz"], help="fuzz: differential fuzzing instead of the cases")
    ia.add_argument(
        "--runtime", required=True, help="the engine: python-reference, linux-kernel[-jit|-interp], dpdk-interp, "
        "dpdk-jit or plugin:PATH (a bpf_conformance plugin)"
    )
    ia.add_argument("--suite", help="directory of .data cases (default: the bundled conformance/isa)")
    ia.add_argument("--target", help="kernel targets of the linux-kernel engines, e.g. host,6.1 (default: host)")
    ia.add_argument("--format", choices=list(writers()), default="text")
    ia.add_argument("--output", help="keep results.jsonl in this directory (default: a temporary one)")
    ia.add_argument("--examples", type=int, default=1000, help="fuzz: programs to try (default 1000)")
    ia.add_argument("--seconds", type=float, default=120.0, help="fuzz: stop after this long (default 120)")
    ia.add_argument("--save", help="fuzz: directory the counterexamples are written to as .data cases")
    ia.add_argument("--findings", type=int, help="fuzz: stop after this many disagreements (default: go on)")
    ia.add_argument("--seed", type=int, help="fuzz: seed the generation, to repeat a run exactly (default: random)")


def _add_push(sub: Subcommands) -> None:
    pu = _add(
        sub,
        "push",
        "publish a package to an OCI registry (STANDARD.md section 9)",
        "  bpfcert push examples/xdp-counter-v1 oci://127.0.0.1:5000/xdp-counter:1.0.0 --sign-key key.pem\n"
        "  bpfcert push pkg-bpfel pkg-bpfeb oci://127.0.0.1:5000/pkg:1.0   (an index, one entry per byte order)",
        "0  pushed (the digest is printed)",
    )
    pu.add_argument("package", nargs="+", help="package directory or archive (one per byte order for an index)")
    pu.add_argument("ref", metavar="REF", help="oci://HOST:PORT/REPO:TAG")
    pu.add_argument("--format", choices=["native", "bpfman"], default="native", help="artifact layout")
    pu.add_argument("--sign-key", help="Ed25519 private key (PEM): also push the sha256-<hex>.sig signature")


def _add_pull(sub: Subcommands) -> None:
    pl = _add(
        sub,
        "pull",
        "pull a package from an OCI registry or image layout, verifying every digest before writing",
        "  bpfcert pull oci://127.0.0.1:5000/xdp-counter:1.0.0 -o pkg\n"
        "  bpfcert pull oci-layout:mirror:1.0.0 -o pkg --require-signature --trusted-key key.pub",
        "0  pulled and verified",
    )
    pl.add_argument("ref", metavar="REF", help="oci://HOST:PORT/REPO[:TAG][@sha256:HEX] or oci-layout:DIR[:TAG]")
    pl.add_argument("-o", "--output", required=True, help="new or empty directory for the package")
    pl.add_argument("--arch", choices=["bpfel", "bpfeb"], help="byte order to pick from an index (default: host)")
    pl.add_argument("--trusted-key", action="append", default=[], help="trusted public key (base64, or a file)")
    pl.add_argument("--require-signature", action="store_true", help="refuse a package without a trusted signature")


def _add_hub(sub: Subcommands) -> None:
    hb = _add(
        sub,
        "hub",
        "list a registry, export packages to OCI image layouts and import them",
        "  bpfcert hub ls oci://127.0.0.1:5000/xdp-counter\n  bpfcert hub export oci://127.0.0.1:5000/x:1 mirror\n"
        "  bpfcert hub import mirror oci://127.0.0.1:5000/x:1",
        "0  done",
    )
    hsub = hb.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = _add(hsub, "ls", "tags of a repository, or the registry's catalogue", "  bpfcert hub ls oci://h:5000",
              "0  listed")
    ls.add_argument("where", metavar="REPO|REGISTRY", help="oci://HOST:PORT/REPO or oci://HOST:PORT")
    ls.add_argument("--format", choices=["text", "json"], default="text")
    ls.add_argument("-n", type=int, default=None, help="page size asked of the registry")
    ex = _add(hsub, "export", "copy a package (and its signature) into an OCI image layout",
              "  bpfcert hub export oci://h:5000/x:1 DIR", "0  exported, digests kept")
    ex.add_argument("ref", metavar="REF")
    ex.add_argument("directory", metavar="DIR")
    im = _add(hsub, "import", "copy a package from an OCI image layout into a registry",
              "  bpfcert hub import DIR oci://h:5000/x:1", "0  imported, digests kept")
    im.add_argument("directory", metavar="DIR")
    im.add_argument("ref", metavar="REF")
    im.add_argument("--name", help="the manifest's name in the layout's index.json (default: REF's tag)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv and argv[0] in HANDLERS else None).parse_args(argv)
    from bpfcert.errors import BpfcertError

    module, _, func = HANDLERS[args.command].partition(":")
    try:
        handler = cast(Callable[[argparse.Namespace], int], getattr(importlib.import_module(module), func))
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at exit
        return code
    except BpfcertError as exc:
        _say(args.command, f"error: {exc}")
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        _say(args.command, "interrupted")
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if os.environ.get("BPFCERT_DEBUG"):
            import traceback

            traceback.print_exc()
        _say(args.command, f"internal error: {type(exc).__name__}: {exc} (please report)")
        return EXIT_INTERNAL


def _say(command: str, message: str) -> None:
    """One line on stderr: control characters (from names in hostile input) are shown escaped."""
    line = CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
    print(f"bpfcert {command}: {line}", file=sys.stderr)


def _discard_stdout() -> None:
    """The reader of standard output went away: send what is still buffered nowhere, so that the interpreter's
    final flush does not fail again."""
    stdout = sys.stdout
    if stdout is sys.__stdout__ and stdout is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        os.close(devnull)
