"""Chart tests: `helm_support` imports as a top-level module from this folder (any import mode).
The session API server (`k8s`) and the `k8s` marker come from tests/conftest.py."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
