"""The ``agentensor`` command line: run manifests locally, manage checkpoints, the DB and CRDs."""

from ._app import app, main

__all__ = ["app", "main"]
