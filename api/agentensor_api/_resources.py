"""Top-level resources and the manifest loader shared by the CLI and the operator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._base import API_VERSION
from ._errors import ManifestError, UnknownKindError
from ._limits import MAX_MANIFEST_BYTES, check_document, read_bounded, safe_load_all_limited
from ._prompt_config import PromptConfigSpec
from ._runs import EvaluationRunSpec, TrainingRunSpec
from ._status import PromptConfigStatus, RunStatus

SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_PATTERN = f"^{DNS1123_LABEL}$"
"""A DNS-1123 label (at most 63 characters): what Kubernetes requires of a namespace."""
DNS1123_SUBDOMAIN_PATTERN = rf"^{DNS1123_LABEL}(\.{DNS1123_LABEL})*$"
"""DNS-1123 labels joined by dots (at most 253 characters): what Kubernetes requires of the name
of a custom resource."""
UID_MAX_CHARS = 64
"""Longest ``metadata.uid``: it becomes the run id, an ``agentensor_runs.id`` ``VARCHAR(64)``
(the API server's uids are 36-character UUIDs)."""


class ObjectMeta(BaseModel):
    """The subset of ``metav1.ObjectMeta`` we read; other keys are kept as given.

    ``name`` and ``namespace`` are checked as the API server checks them (the CRD schema cannot:
    the API server refuses any keyword under ``metadata``), so a local ``agentensor run`` refuses
    what a cluster would, and no name can reach a database column that cannot hold it.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, max_length=253)
    namespace: str = Field(default="default", pattern=DNS1123_LABEL_PATTERN, max_length=63)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = Field(default=None, min_length=1, max_length=UID_MAX_CHARS, pattern=r"^[^\x00]*$")
    generation: int | None = None


class Resource(BaseModel, Generic[SpecT, StatusT]):
    """A custom resource document: apiVersion, kind, metadata, spec and optional status."""

    model_config = ConfigDict(extra="forbid")
    KIND: ClassVar[str]
    PLURAL: ClassVar[str]

    api_version: Literal["agentensor.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None
    source: str | None = Field(default=None, exclude=True)
    """Where this document was read from (``path#index``); not part of the manifest."""

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace


class PromptConfig(Resource[PromptConfigSpec, PromptConfigStatus]):
    KIND = "PromptConfig"
    PLURAL = "promptconfigs"
    kind: Literal["PromptConfig"] = "PromptConfig"


class TrainingRun(Resource[TrainingRunSpec, RunStatus]):
    KIND = "TrainingRun"
    PLURAL = "trainingruns"
    kind: Literal["TrainingRun"] = "TrainingRun"


class EvaluationRun(Resource[EvaluationRunSpec, RunStatus]):
    KIND = "EvaluationRun"
    PLURAL = "evaluationruns"
    kind: Literal["EvaluationRun"] = "EvaluationRun"


KINDS: dict[str, type[PromptConfig] | type[TrainingRun] | type[EvaluationRun]] = {
    "PromptConfig": PromptConfig,
    "TrainingRun": TrainingRun,
    "EvaluationRun": EvaluationRun,
}
AnyResource = PromptConfig | TrainingRun | EvaluationRun


def _loc_to_field(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-after", "function-before", "function-wrap")):
            continue
        else:
            out += ("." if out else "") + part
    return out or "<document>"


MAX_LISTED_ERRORS = 20
"""Invalid fields named in one ManifestError message (the rest are counted): a condition message
or an Event stays readable, and well under the API server's limits."""


def _manifest_error(e: ValidationError, source: str | None) -> ManifestError:
    """One ManifestError naming every invalid field of ``e``: ``a: why; b: why (and 3 more)``."""
    found = tuple((_loc_to_field(err["loc"]), err["msg"].removeprefix("Value error, ")) for err in e.errors())
    field, reason = found[0]
    rest = [f"{f}: {r}" for f, r in found[1:MAX_LISTED_ERRORS]]
    if len(found) > MAX_LISTED_ERRORS:
        rest.append(f"(and {len(found) - MAX_LISTED_ERRORS} more error(s))")
    return ManifestError(field, "; ".join([reason, *rest]), source=source, errors=found)


def parse_resource(doc: Any, *, source: str | None = None) -> AnyResource:
    """Validate one manifest document into a typed resource.

    Args:
        doc: the parsed YAML/JSON mapping.
        source: label for error messages, e.g. ``examples/x.yaml#1``.

    Validation is strict, as the API server's schema is: ``"8"`` or ``true`` is not an integer.
    Before the models see it, the document is checked for nesting deeper than ``MAX_DEPTH``,
    integers beyond 64 bits and NUL characters (allowed only in ``spec.dataset.inline``, whose
    rows become error rows).

    Raises:
        UnknownKindError: if apiVersion/kind is not ours.
        ManifestError: on invalid fields; ``field`` is the first one's dotted path (camelCase,
            as written in the manifest), ``errors`` lists every ``(field, reason)`` pydantic
            found, and the message names them all (up to ``MAX_LISTED_ERRORS``).
    """
    if not isinstance(doc, dict):
        raise ManifestError("<document>", f"expected a mapping, got {type(doc).__name__}", source=source)
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version != API_VERSION:
        raise UnknownKindError("apiVersion", f"expected {API_VERSION!r}, got {api_version!r}", source=source)
    cls = KINDS.get(str(kind))
    if cls is None:
        raise UnknownKindError("kind", f"expected one of {sorted(KINDS)}, got {kind!r}", source=source)
    check_document(doc, skip=("spec.dataset.inline",), source=source)
    try:
        res = cls.model_validate(doc, strict=True)
    except ValidationError as e:
        raise _manifest_error(e, source) from e
    res.source = source
    return res


def load_manifests(paths: Iterable[str | Path]) -> list[AnyResource]:
    """Read multi-document YAML files and return every agentensor resource in them.

    Documents of other kinds (e.g. a Secret next to a run) are skipped; empty documents too.
    Each file is read up to ``MAX_MANIFEST_BYTES`` (8 MiB, counted as read) and parsed with at
    most ``MAX_YAML_ALIASES`` aliases and ``MAX_DEPTH`` levels of nesting.

    Raises:
        ManifestError: on an unreadable, oversized, non-UTF-8 or invalid YAML file, or an invalid
            document (names file, index and field).
    """
    out: list[AnyResource] = []
    for path in paths:
        p = Path(path)
        try:
            raw = read_bounded(p, MAX_MANIFEST_BYTES, field="<file>")
        except ManifestError as e:
            raise ManifestError(e.field, e.reason, source=str(p)) from e
        try:
            docs = safe_load_all_limited(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ManifestError("<file>", f"not UTF-8 text (byte {e.start}): {e.reason}", source=str(p)) from e
        except (yaml.YAMLError, ValueError, RecursionError) as e:
            raise ManifestError("<file>", f"cannot read YAML: {e}", source=str(p)) from e
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).split("/")[0] != "agentensor.dev":
                continue
            res = parse_resource(doc, source=f"{p}#{i}")
            out.append(res)
    return out


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces, UTF-8) used for checksums and hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def config_checksum(prompts: dict[str, str], parameters: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``{"prompts": {name: text}, "parameters": {...}}``.

    ``requiresGrad`` is not part of the checksum: it says how a config may be trained, not what
    the config is.
    """
    body = canonical_json({"prompts": prompts, "parameters": parameters})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def run_spec_checksum(run: TrainingRun | EvaluationRun) -> str:
    """sha256 hex of the canonical JSON of a run's kind and spec (``spec.suspend`` left out).

    This is the run's identity in the store: a resume of the same run id with another kind or
    another spec (seed, split, dataset, optimizer...) is refused. ``suspend`` only holds a run
    and may change without making it another run.
    """
    spec = run.spec.to_wire()
    spec.pop("suspend", None)
    body = canonical_json({"kind": run.kind, "spec": spec})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
