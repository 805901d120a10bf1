"""Cost of reading the live prompts in an application with ``agentensor_api.active.ActiveConfigReader``.

Usage:
    .venv/bin/python benchmarks/active_reader.py [--prompts 77,1000,10000] [--calls 100000]

For each size (prompts in the version, 40-character texts as in Banking77) it lays out a
ConfigMap volume as the kubelet's AtomicWriter does (``..<timestamp>/``, ``..data`` symlink,
key symlinks), then measures ``get()`` when nothing changed (the per-request cost: one readlink
and one lstat), the first ``get()`` after an atomic swap (a full read, JSON parse and checksum),
and ``get()`` after one bad update (a swap to a version whose checksum is wrong: the reader keeps
the last good config; it should cost the unchanged path again, since the refused state is read
once). Prints a Markdown table and the reader's ``reads`` counter; the machine may be shared, so
read the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "api"), str(REPO)]

from agentensor_api import config_checksum  # noqa: E402
from agentensor_api.active import ActiveConfigReader  # noqa: E402
from tests.api.test_active_reader import KubeletVolume  # noqa: E402


def _data(version: int, n: int) -> dict[str, str]:
    import json

    prompts = {f"intent.p{i:05d}": f"description {i} of version {version}".ljust(40, ".") for i in range(n)}
    return {
        "prompts.json": json.dumps(prompts, indent=2, sort_keys=True),
        "parameters.json": "{}",
        "version": str(version),
        "checksum": config_checksum(prompts, {}),
    }


def _per_call_us(reader: ActiveConfigReader, calls: int) -> float:
    """Median microseconds of one ``get()`` over 5 rounds of ``calls`` calls."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            reader.get()
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(rounds)


def measure(n: int, calls: int, root: Path) -> tuple[float, float, float, int]:
    """(median µs of an unchanged get(), median ms of a get() after a swap, median µs of a get()
    after one bad update, the reader's file reads during the bad-update rounds)."""
    volume = KubeletVolume(root)
    volume.write(_data(1, n))
    reader = ActiveConfigReader(root)
    reader.get()
    unchanged = _per_call_us(reader, calls)
    reloads = []
    for version in range(2, 12):
        volume.write(_data(version, n))
        start = time.perf_counter()
        assert reader.get().version == version
        reloads.append((time.perf_counter() - start) * 1e3)
    volume.write({**_data(99, n), "checksum": "0" * 64})
    good = reader.get()
    reads = reader.reads
    after_bad = _per_call_us(reader, calls)
    assert reader.get() is good and reader.rejected_updates == 1
    return unchanged, statistics.median(reloads), after_bad, reader.reads - reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", default="77,1000,10000")
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    print(
        f"| prompts | get() unchanged (µs, median of 5 x {args.calls}) | get() after a swap (ms, median of 10)"
        " | get() after one bad update (µs) | file reads during those calls |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.prompts.split(",")):
            same, reload, bad, reads = measure(n, args.calls, Path(tmp) / f"v{n}")
            print(f"| {n} | {same:.1f} | {reload:.2f} | {bad:.1f} | {reads} |")
    print(f"\n(os.cpu_count() = {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
