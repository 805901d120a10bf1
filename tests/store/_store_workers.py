"""Entry points for the multi-process race tests (importable by ``spawn`` children)."""

from __future__ import annotations

from typing import Any

from agentensor_store import Store


def register_versions(url: str, workflow: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    """Register ``count`` distinct configs plus one shared config; report (checksum, version)."""
    store = Store(url)
    out: list[tuple[str, int, int]] = []
    try:
        barrier.wait(timeout=60)
        for i in range(count):
            rec = store.register_version(workflow, {"system": f"w{worker} prompt {i}"}, {"i": i})
            out.append((rec.checksum, rec.version, rec.id))
        shared = store.register_version(workflow, {"system": "shared"}, {})
        out.append((shared.checksum, shared.version, shared.id))
        results.put((worker, out, None))
    except BaseException as e:
        results.put((worker, out, f"{type(e).__name__}: {e}"))
    finally:
        store.close()
