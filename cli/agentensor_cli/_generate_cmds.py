"""``agentensor crds`` and ``agentensor docs``: the CRDs and the API reference generated from the models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from agentensor_api import render_crds

from ._common import fail


def crds(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Directory to write CRD YAML into.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the files in -o differ.")] = False,
) -> None:
    """Generate the CustomResourceDefinitions from the API models."""
    files = render_crds()
    if output is None:
        sys.stdout.write("---\n".join(files.values()))
        return
    if output.exists() and not output.is_dir():
        fail(f"-o {output}: is not a directory; name the directory to write the CRD files into")
    drift = []
    for fname, text in files.items():
        path = output / fname
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                drift.append(str(path))
        else:
            _write_text(path, text)
    if drift:
        fail(f"CRDs drifted from the models: {drift}; run `agentensor crds -o {output}`", code=1)


def docs(
    output: Annotated[Path, typer.Option("-o", "--output", help="Markdown file to write.")] = Path("docs/api.md"),
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the file differs.")] = False,
) -> None:
    """Generate the API reference from the models."""
    from agentensor_api import render_api_docs

    text = render_api_docs()
    if output.is_dir():
        fail(f"-o {output}: is a directory; name the Markdown file to write")
    if check:
        if not output.is_file() or output.read_text(encoding="utf-8", errors="replace") != text:
            fail(f"{output} drifted from the models; run `agentensor docs -o {output}`", code=1)
        return
    _write_text(output, text)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (creating its folder); exits 2 naming the path when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        fail(f"-o {path}: cannot write ({e.strerror or e})")


def register(app: typer.Typer) -> None:
    """Add ``crds`` and ``docs`` to the ``agentensor`` application."""
    app.command("crds")(crds)
    app.command("docs")(docs)
