"""Pytest wiring for the tests that need a real Kubernetes API server (see `envtest.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

# `envtest` and `node_agent` are imported as top-level modules from this folder, whatever the
# import mode (pytest's default "prepend" mode already does this; "importlib" mode does not).
_HERE = str(Path(__file__).resolve().parent)
REPO = Path(__file__).resolve().parents[2]
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# The marker and the session fixtures `k8s` / `k8s_with_crds` live in tests/conftest.py, so that
# tests/helm shares the same API server (one per session).
