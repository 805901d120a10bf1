"""Building evaluators: option errors name the field, the python allow-list, build_evaluators."""

from __future__ import annotations

from typing import Any

import pytest

from agentensor_api import ManifestError
from agentensor_runner.evaluators import (
    ALLOWLIST_ENV,
    EvaluatorConfigError,
    build_evaluator,
    build_evaluators,
)
from agentensor_runner.llm import Embedder, HashingEmbedder

from ._support import SCORERS, make, make_spec

# (type, options, offending option, reason fragment)
BAD_OPTIONS = [
    pytest.param("regex", {}, "pattern", "is required for regex evaluators", id="regex-no-pattern"),
    pytest.param("regex", {"pattern": "(unclosed"}, "pattern", "invalid regular expression", id="regex-invalid"),
    pytest.param("regex", {"pattern": 3}, "pattern", "must be a string", id="regex-not-str"),
    pytest.param("regex", {"pattern": ""}, "pattern", "must not be empty", id="regex-empty"),
    pytest.param(
        "regex", {"pattern": "a", "fullmatch": "yes"}, "fullmatch", "true or false", id="regex-fullmatch-not-bool"
    ),
    pytest.param("exact_match", {"ignoreCase": 1}, "ignoreCase", "must be true or false", id="exact-ignore-case-int"),
    pytest.param(
        "exact_match", {"ignore_case": True}, "ignore_case", "did you mean 'ignoreCase'?", id="exact-snake-case-hint"
    ),
    pytest.param("exact_match", {"stirp": True}, "stirp", "did you mean 'strip'?", id="exact-typo-hint"),
    pytest.param("contains", {"substring": ""}, "substring", "must not be empty", id="contains-empty-substring"),
    pytest.param("contains", {"substring": ["a"]}, "substring", "must be a string", id="contains-substring-list"),
    pytest.param("json_schema", {}, "schema", "is required", id="schema-missing"),
    pytest.param("json_schema", {"schema": "object"}, "schema", "must be a JSON Schema object", id="schema-not-object"),
    pytest.param(
        "json_schema",
        {"schema": {"type": "nope"}},
        "schema",
        "not a valid JSON Schema (Draft 2020-12)",
        id="schema-invalid",
    ),
    pytest.param(
        "json_schema", {"schema": {}, "checkFormats": "no"}, "checkFormats", "true or false", id="schema-check-formats"
    ),
    pytest.param("numeric", {"tolerance": -1}, "tolerance", "finite number >= 0", id="numeric-negative"),
    pytest.param("numeric", {"tolerance": "0.1"}, "tolerance", "must be a number", id="numeric-text"),
    pytest.param("numeric", {"tolerance": True}, "tolerance", "must be a number", id="numeric-bool"),
    pytest.param("numeric", {"relativeTolerance": float("inf")}, "relativeTolerance", "finite", id="numeric-inf"),
    pytest.param(
        "numeric", {"relTolerance": 0.1}, "relTolerance", "did you mean 'relativeTolerance'?", id="numeric-typo-hint"
    ),
    pytest.param(
        "embedding_similarity",
        {"model": "minilm"},
        "model",
        "unknown option for embedding_similarity evaluators",
        id="embedding-no-options",
    ),
    pytest.param("python", {}, "entrypoint", "is required", id="python-no-entrypoint"),
    pytest.param(
        "python",
        {"entrypoint": "tests.evaluators.sample_scorers"},
        "entrypoint",
        "must look like 'package.module:function'",
        id="python-no-function",
    ),
    pytest.param(
        "python",
        {"entrypoint": "tests.evaluators.nope:fn"},
        "entrypoint",
        "cannot import module 'tests.evaluators.nope': ModuleNotFoundError",
        id="python-import-error",
    ),
    pytest.param(
        "python",
        {"entrypoint": f"{SCORERS}:missing"},
        "entrypoint",
        f"module {SCORERS!r} has no attribute 'missing'",
        id="python-no-attribute",
    ),
    pytest.param(
        "python",
        {"entrypoint": f"{SCORERS}:NOT_CALLABLE"},
        "entrypoint",
        "is not callable (it is a int)",
        id="python-not-callable",
    ),
    pytest.param(
        "python",
        {"entrypoint": f"{SCORERS}:wrong_signature"},
        "entrypoint",
        "must accept keyword arguments input, output, expected",
        id="python-wrong-signature",
    ),
]


@pytest.mark.parametrize(("type", "options", "option", "reason"), BAD_OPTIONS)
def test_bad_option_names_the_field(type: str, options: dict[str, Any], option: str, reason: str) -> None:
    with pytest.raises(EvaluatorConfigError) as info:
        make(type, options, index=2)
    err = info.value
    assert isinstance(err, ManifestError)
    assert err.field == f"spec.evaluators[2].options.{option}"
    assert reason in err.reason
    assert str(err).startswith(f"spec.evaluators[2].options.{option}: ")


def test_import_error_is_chained() -> None:
    with pytest.raises(EvaluatorConfigError) as info:
        make("python", {"entrypoint": "tests.evaluators.nope:fn"})
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_regex_error_is_chained() -> None:
    with pytest.raises(EvaluatorConfigError) as info:
        make("regex", {"pattern": "["})
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    "output_field",
    [
        pytest.param("a..b", id="empty-segment"),
        pytest.param(".a", id="leading-dot"),
        pytest.param("a.", id="trailing-dot"),
    ],
)
def test_malformed_output_field(output_field: str) -> None:
    with pytest.raises(EvaluatorConfigError) as info:
        make("exact_match", output_field=output_field, index=1)
    assert info.value.field == "spec.evaluators[1].outputField"


# (allowed prefixes, entrypoint, allowed?)
ALLOW_LIST = [
    pytest.param(("tests.evaluators",), f"{SCORERS}:exact", True, id="parent-package"),
    pytest.param(("tests",), f"{SCORERS}:exact", True, id="top-package"),
    pytest.param((SCORERS,), f"{SCORERS}:exact", True, id="exact-module"),
    pytest.param(("other", "tests.evaluators"), f"{SCORERS}:exact", True, id="any-of-several"),
    pytest.param((), f"{SCORERS}:exact", False, id="empty-refuses-all"),
    pytest.param(("tests.eval",), f"{SCORERS}:exact", False, id="not-a-dotted-prefix"),
    pytest.param(("tests.evaluators.sample",), f"{SCORERS}:exact", False, id="partial-name"),
    pytest.param((f"{SCORERS}.sub",), f"{SCORERS}:exact", False, id="child-does-not-allow-parent"),
    pytest.param(("tests",), "os:system", False, id="stdlib-refused"),
]


@pytest.mark.parametrize(("allowed", "entrypoint", "ok"), ALLOW_LIST)
def test_allow_list(allowed: tuple[str, ...], entrypoint: str, ok: bool) -> None:
    if ok:
        ev = make("python", {"entrypoint": entrypoint}, allowed=allowed)
        assert ev.spec.options["entrypoint"] == entrypoint
        return
    with pytest.raises(EvaluatorConfigError) as info:
        make("python", {"entrypoint": entrypoint}, allowed=allowed, index=4)
    err = info.value
    assert err.field == "spec.evaluators[4].options.entrypoint"
    module = entrypoint.split(":")[0]
    assert f"module {module!r} is not allow-listed" in err.reason
    assert ALLOWLIST_ENV in err.reason
    assert "comma-separated module prefixes" in err.reason


def test_refused_module_is_never_imported() -> None:
    with pytest.raises(EvaluatorConfigError) as info:
        make("python", {"entrypoint": "definitely_not_installed.mod:fn"}, allowed=("tests",))
    assert "not allow-listed" in info.value.reason
    assert info.value.__cause__ is None


def test_build_evaluator_defaults_to_no_allowed_modules() -> None:
    spec = make_spec("python", {"entrypoint": f"{SCORERS}:exact"})
    with pytest.raises(EvaluatorConfigError, match="allowed prefixes: none"):
        build_evaluator(spec, index=0)


@pytest.mark.parametrize(
    ("env", "ok"),
    [
        pytest.param(" other.pkg , tests.evaluators ,, ", True, id="listed-with-spaces"),
        pytest.param("other.pkg", False, id="not-listed"),
        pytest.param(None, False, id="unset"),
        pytest.param("", False, id="empty"),
    ],
)
def test_build_evaluators_reads_the_env_allow_list(monkeypatch: pytest.MonkeyPatch, env: str | None, ok: bool) -> None:
    if env is None:
        monkeypatch.delenv(ALLOWLIST_ENV, raising=False)
    else:
        monkeypatch.setenv(ALLOWLIST_ENV, env)
    specs = [make_spec("python", {"entrypoint": f"{SCORERS}:exact"})]
    if ok:
        assert [e.name for e in build_evaluators(specs)] == ["score"]
    else:
        with pytest.raises(EvaluatorConfigError, match=ALLOWLIST_ENV):
            build_evaluators(specs)


def test_explicit_allow_list_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWLIST_ENV, "tests")
    specs = [make_spec("python", {"entrypoint": f"{SCORERS}:exact"})]
    with pytest.raises(EvaluatorConfigError):
        build_evaluators(specs, allowed_entrypoints=())


def _spec(name: str, type: str, options: dict[str, Any] | None = None) -> Any:
    spec = make_spec(type, options)
    return spec.model_copy(update={"name": name})


def _no_embedder() -> Embedder:
    raise AssertionError("the embedder must not be created without embedding evaluators")


def test_build_evaluators_keeps_order_and_skips_the_embedder() -> None:
    specs = [
        _spec("exact", "exact_match"),
        _spec("pattern", "regex", {"pattern": "x"}),
        _spec("num", "numeric"),
    ]
    evs = build_evaluators(specs, embedder_factory=_no_embedder, allowed_entrypoints=())
    assert [e.name for e in evs] == ["exact", "pattern", "num"]
    assert [e.spec for e in evs] == specs


async def test_build_evaluators_creates_one_shared_embedder() -> None:
    made: list[HashingEmbedder] = []

    def factory() -> Embedder:
        made.append(HashingEmbedder())
        return made[-1]

    specs = [
        _spec("exact", "exact_match"),
        _spec("sim-a", "embedding_similarity"),
        _spec("sim-b", "embedding_similarity"),
    ]
    evs = build_evaluators(specs, embedder_factory=factory, allowed_entrypoints=())
    assert len(made) == 1
    assert [getattr(e, "embedder", None) for e in evs[1:]] == [made[0], made[0]]
    r = await evs[1].evaluate(input=None, output="late card", expected="card is late")
    assert 0.0 < r.score < 1.0


def test_embedder_failure_is_a_config_error() -> None:
    def factory() -> Embedder:
        raise RuntimeError("the embedding-router needs the 'embeddings' extra")

    specs = [_spec("exact", "exact_match"), _spec("sim", "embedding_similarity")]
    with pytest.raises(EvaluatorConfigError) as info:
        build_evaluators(specs, embedder_factory=factory)
    assert info.value.field == "spec.evaluators[1].type"
    assert "'embeddings' extra" in info.value.reason
    assert isinstance(info.value.__cause__, RuntimeError)


def test_error_index_is_the_position_in_the_list() -> None:
    specs = [
        _spec("a", "exact_match"),
        _spec("b", "contains"),
        _spec("c", "regex", {"pattern": "("}),
    ]
    with pytest.raises(EvaluatorConfigError) as info:
        build_evaluators(specs, allowed_entrypoints=())
    assert info.value.field == "spec.evaluators[2].options.pattern"


def test_duplicate_names_are_refused() -> None:
    specs = [_spec("same", "exact_match"), _spec("same", "contains")]
    with pytest.raises(EvaluatorConfigError) as info:
        build_evaluators(specs, allowed_entrypoints=())
    assert info.value.field == "spec.evaluators[1].name"
    assert "spec.evaluators[0]" in info.value.reason
