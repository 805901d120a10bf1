"""Fail when a function in the source packages is longer than 40 lines, or a module longer than 400
(docs/design.md, COMMON rules).

Usage: ``python hack/check_function_length.py [--max 40] [--max-module 400] [ROOT...]`` (default roots:
api store runner operator cli). A module's length is its number of lines. A function's length is
``end_lineno - lineno + 1`` of its ``def`` (decorators excluded, docstring included), nested functions
counted on their own. Exit 0 when none is longer, else 1 with one line per offender.
Migrations are not scanned (not a root).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOTS = ("api", "store", "runner", "operator", "cli")


def offenders(roots: list[Path], limit: int) -> list[str]:
    """``path:line: name is N lines (max M)`` for every function longer than ``limit`` lines."""
    found = []
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append(f"{path}:{node.lineno}: {node.name} is {length} lines (max {limit})")
    return found


def long_modules(roots: list[Path], limit: int) -> list[str]:
    """``path: N lines (max M)`` for every module longer than ``limit`` lines."""
    found = []
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        length = len(path.read_text(encoding="utf-8").splitlines())
        if length > limit:
            found.append(f"{path}: module is {length} lines (max {limit})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=40, help="longest allowed function, in lines")
    parser.add_argument("--max-module", type=int, default=400, help="longest allowed module, in lines")
    parser.add_argument("roots", nargs="*", type=Path, default=[Path(r) for r in ROOTS])
    args = parser.parse_args()
    found = offenders(args.roots, args.max) + long_modules(args.roots, args.max_module)
    ok = f"no function longer than {args.max} lines, no module longer than {args.max_module}"
    print("\n".join(found) or ok, file=sys.stderr if found else sys.stdout)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
