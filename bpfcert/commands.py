"""Handlers of the package commands: check, pack, import, examples."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bpfcert.checks import check_package
from bpfcert.errors import BpfcertError

if TYPE_CHECKING:
    from bpfcert.results import Report


def _check(path: str, profiles: list[str] | None) -> Report:
    from bpfcert.hub.reference import is_reference
    from bpfcert.package import open_package

    if is_reference(path):
        from bpfcert.hub.pulled import check_reference

        return check_reference(path, profiles)
    with open_package(path) as pkg:
        return check_package(pkg, profiles)


def _emit(text: str, output: str | None) -> None:
    if output:
        try:
            Path(output).write_text(text)
        except OSError as exc:
            raise BpfcertError(f"cannot write {output}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)


def check(args: argparse.Namespace) -> int:
    from bpfcert.report import writers

    report = _check(args.package, args.profile)
    _emit(writers()[args.format].render([report]), args.output)
    return 0 if report.verdict == "conformant" else 1


def pack(args: argparse.Namespace) -> int:
    from bpfcert.pack import default_name, derive_manifest, read_inputs, read_key_file, write_package

    inputs = read_inputs(args.objects)
    manifest = derive_manifest(
        inputs, args.name or default_name(args.objects[0]), args.pkg_version, args.license
    )
    if args.sign_key:
        from bpfcert.signing import sign_manifest

        manifest = sign_manifest(manifest, read_key_file(args.sign_key))
    path = write_package(Path(args.output), manifest, inputs, force=args.force)
    print(f"wrote {_shown(path)} ({len(manifest['programs'])} programs, {len(manifest['maps'])} maps)")
    from bpfcert.pack import floor_reasons

    print(f"requires.kernel {manifest['requires']['kernel']} ({'; '.join(floor_reasons(inputs))})")
    return 0


def import_package(args: argparse.Namespace) -> int:
    from bpfcert.pack import write_package

    if args.format == "bpfman":
        from bpfcert.importers.bpfman import import_bpfman

        manifest, inputs = import_bpfman(args.object, args.programs, args.maps)
    else:
        from bpfcert.importers.eunomia import import_eunomia

        manifest, inputs = import_eunomia(args.package_json)
    path = write_package(Path(args.output), manifest, inputs)
    print(f"wrote {_shown(path)}")
    return 0


def _shown(path: Path) -> str:
    """A path as text standard output can always encode (a name that is not UTF-8 shows its bytes escaped)."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def examples(args: argparse.Namespace) -> int:
    """The main job: check every bundled example package, write JSON and JUnit reports."""
    from bpfcert import bundled
    from bpfcert.report import writers

    text_writer, json_writer, junit_writer = (writers()[name] for name in ("text", "json", "junit"))

    root = bundled.directory("examples")
    packages = sorted(p.parent for p in root.glob("*/bpfpkg.json"))
    if not packages:
        raise BpfcertError(f"no example packages under {root}")
    out = Path(args.reports)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for pkg in packages:
        report = _check(str(pkg), None)
        reports.append(report)
        (out / f"{pkg.name}{json_writer.suffix}").write_text(json_writer.render([report]))
        sys.stdout.write(text_writer.render([report]))
    (out / f"junit{junit_writer.suffix}").write_text(junit_writer.render(reports))
    failed = [r.source for r in reports if r.verdict != "conformant"]
    print(f"{len(reports) - len(failed)} of {len(reports)} example packages conformant; reports in {out}")
    return 1 if failed else 0
