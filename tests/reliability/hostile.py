"""Hostile entrypoint targets: an allow-listed module (under ``tests``) that re-exports what it must not run."""

from __future__ import annotations

from os import system

__all__ = ["system"]
