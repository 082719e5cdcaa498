"""Benchmark the hub client on loopback against a private Debian docker-registry: push + pull + verify of the XDP
example (fresh repository each round, so every blob is uploaded), and pulling 100 distinct packages with full
verification (manifest and blob digests, artifact sha256s, files written), one at a time and a few at a time,
through one open registry client (its connections reused).
The baseline, measured in the same run, is the same requests made raw (requests.Session, no verification, nothing
written): the ratio is bpfcert's cost over the wire's.

    python bench/bench_hub.py [--rounds N] [--packages N]

Prints figures; asserts nothing (goals: push + pull + verify <= 150 ms; >= 50 packages/s pulled and verified).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "xdp-counter-v1"


def raw_pull(session: object, base: str, repository: str, tag: str) -> None:
    """The baseline: GET the manifest and every blob it names, nothing checked."""
    from bpfcert.hub.registry import ACCEPT

    get = session.get  # type: ignore[attr-defined]
    manifest = get(f"{base}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}).content
    document = json.loads(manifest)
    for descriptor in [document["config"], *document["layers"]]:
        assert get(f"{base}/v2/{repository}/blobs/{descriptor['digest']}").content is not None


def variants(work: Path, count: int) -> list[str]:
    """`count` copies of the example whose manifests differ (distinct config blobs and digests)."""
    out = []
    for i in range(count):
        copy = work / f"pkg{i}"
        shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("src"))
        manifest = json.loads((copy / "bpfpkg.json").read_text())
        manifest["version"] = f"1.0.{i}"
        (copy / "bpfpkg.json").write_text(json.dumps(manifest, indent=2))
        out.append(str(copy))
    return out


def many(refs: list[Any], workers: int, out: Path, base: str) -> tuple[float, float]:
    """Seconds to pull and verify every package in `refs` (`workers` at a time, through one open registry client,
    as a client pulling many packages would), and to GET them raw (one requests.Session per worker)."""
    import requests

    from bpfcert.hub import transfer

    source = transfer.open_source(refs[0])

    def ours(item: tuple[int, Any]) -> None:
        transfer.write(transfer.fetch(item[1], source=source), out / str(item[0]))

    sessions = [requests.Session() for _ in range(workers)]

    def raw(item: tuple[int, Any]) -> None:
        raw_pull(sessions[item[0] % workers], base, item[1].repository, item[1].tag)

    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(ours, enumerate(refs)))
        verified = time.perf_counter() - start
        source.close()
        start = time.perf_counter()
        list(pool.map(raw, enumerate(refs)))
        return verified, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--packages", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4, help="concurrent pulls in the second measurement")
    args = parser.parse_args()

    import requests

    from bpfcert.hub import reference, transfer
    from bpfcert.hub.server import LocalRegistry

    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp, LocalRegistry(Path(tmp) / "registry") as reg:
        work = Path(tmp)
        transfer.push([str(EXAMPLE)], reference.parse(f"{reg.url}/warm:up"))  # imports, connections
        session = requests.Session()
        base = f"http://{reg.address}"

        ours, raw = [], []
        for i in range(args.rounds):
            ref = reference.parse(f"{reg.url}/round{i}/xdp-counter:1.0.0")
            start = time.perf_counter()
            transfer.push([str(EXAMPLE)], ref)
            transfer.write(transfer.fetch(ref), work / f"out{i}")
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            raw_pull(session, base, ref.repository, "1.0.0")
            raw.append(time.perf_counter() - start)
        one, wire = statistics.median(ours), statistics.median(raw)
        print(f"push + pull + verify, XDP example: median {one * 1000:.1f} ms over {args.rounds} rounds "
              f"(goal <= 150 ms); raw pull of the same {wire * 1000:.1f} ms; ratio {one / wire:.1f}x")

        packages = variants(work, args.packages)
        refs = []
        for i, path in enumerate(packages):
            refs.append(reference.parse(f"{reg.url}/many:v{i}"))
            transfer.push([path], refs[-1])
        for workers in (1, args.workers):
            verified, baseline = many(refs, workers, work / f"many{workers}", base)
            print(f"pull + verify of {len(refs)} packages, {workers} at a time: {len(refs) / verified:.0f} "
                  f"packages/s ({verified * 1000:.0f} ms; goal >= 50/s); raw GETs {len(refs) / baseline:.0f} "
                  f"packages/s; ratio {verified / baseline:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
