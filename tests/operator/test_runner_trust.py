"""What a run author may put into a runner Pod: the admin's grants (issue 20), as tables.

A run body goes through the same path as in the operator (``run_facts`` then ``check_grants``),
so each row fails on code that renders the field into the Job without asking the settings.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentensor_api import ManifestError
from agentensor_operator import _decisions as d
from agentensor_operator._settings import DatabaseSettings, JobSettings
from tests.operator.test_decisions import run_body

APPARMOR = "container.apparmor.security.beta.kubernetes.io/runner"
MODEL_REF = {"model": "openai:gpt-4o-mini", "apiKeySecretRef": {"name": "llm", "key": "openai"}}


def _body(runner: dict[str, Any] | None = None, models: dict[str, Any] | None = None, image: str | None = None) -> Any:
    body = run_body()
    spec = copy.deepcopy(body["spec"])
    if runner is not None:
        spec["runner"] = runner
    if models is not None:
        spec["models"] = models
    if image is not None:
        spec["workflow"]["image"] = image
    return run_body(spec=spec)


def _check(body: dict[str, Any], jobs: JobSettings | None = None, database: DatabaseSettings | None = None) -> None:
    facts = d.run_facts(body)
    d.check_grants(facts.grants, facts.runner, facts.image, jobs or JobSettings(), database or DatabaseSettings())


def _secret_env(name: str, key: str = "k") -> dict[str, Any]:
    return {"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}]}


def _secret_volume(name: str, path: str = "/data/keys") -> dict[str, Any]:
    return {
        "volumes": [{"name": "keys", "secret": {"secretName": name}}],
        "volumeMounts": [{"name": "keys", "mountPath": path, "readOnly": True}],
    }


def _mount(path: str, sub_path: str | None = None) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": "d", "mountPath": path}
    if sub_path is not None:
        mount["subPath"] = sub_path
    return {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [mount]}


REFUSED = [
    # Secrets: none by default, the database Secret never
    pytest.param(_body(models={"judge": MODEL_REF}), {}, "spec.models.judge.apiKeySecretRef.name",
                 "Secret 'llm' is not in the operator's allowed Secrets (chart value runner.allowedSecrets)",
                 id="model-key-secret-not-allowed"),
    pytest.param(_body(models={"judge": {**MODEL_REF, "apiKeySecretRef": {"name": "agentensor-db", "key": "url"}}}),
                 {"allowed_secrets": ["agentensor-db"]}, "spec.models.judge.apiKeySecretRef.name",
                 "holds the operator's database URL", id="model-key-from-dsn-secret-even-if-listed"),
    pytest.param(_body(_secret_env("other-team")), {"allowed_secrets": ["llm"]},
                 "spec.runner.env[0].valueFrom.secretKeyRef.name", "'other-team' is not in", id="env-secret"),
    pytest.param(_body(_secret_env("agentensor-db", "url")), {}, "spec.runner.env[0].valueFrom.secretKeyRef.name",
                 "database URL", id="env-secret-dsn"),
    pytest.param(_body(_secret_env("db2", "url")), {"allowed_secrets": ["db2/other"]},
                 "spec.runner.env[0].valueFrom.secretKeyRef.name", "not in", id="env-secret-other-key"),
    pytest.param(_body(_secret_volume("agentensor-db")), {}, "spec.runner.volumes[0].secret.secretName",
                 "database URL", id="volume-dsn"),
    pytest.param(_body(_secret_volume("llm")), {"allowed_secrets": ["llm/openai"]},
                 "spec.runner.volumes[0].secret.secretName", "may not be mounted", id="volume-needs-whole-secret"),
    pytest.param(_body(_secret_volume("llm")), {}, "spec.runner.volumes[0].secret.secretName", "allowed Secrets",
                 id="volume-not-allowed"),
    # the variable the operator fills from a Secret is checked like spec.runner.env
    pytest.param(_body(models={"judge": {**MODEL_REF, "apiKeyEnv": "PYTHONPATH"}}), {"allowed_secrets": ["llm"]},
                 "spec.models.judge.apiKeyEnv", "PYTHONPATH: a run may not set", id="apiKeyEnv-pythonpath"),
    pytest.param(_body(models={"judge": {**MODEL_REF, "apiKeyEnv": "LD_PRELOAD"}}), {"allowed_secrets": ["llm"]},
                 "spec.models.judge.apiKeyEnv", "dynamic loader", id="apiKeyEnv-ld-preload"),
    # mounts: only under the allowed folders
    pytest.param(_body(_mount("/opt/agentensor/lib/python3.11/site-packages")), {},
                 "spec.runner.volumeMounts[0].mountPath", "allowed mount paths", id="mount-site-packages"),
    pytest.param(_body(_mount("/usr/local/lib/python3.11")), {}, "spec.runner.volumeMounts[0].mountPath",
                 "runner.allowedMountPaths", id="mount-stdlib"),
    pytest.param(_body(_mount("/home/agentensor/.local")), {}, "spec.runner.volumeMounts[0].mountPath", "allowed",
                 id="mount-user-site"),
    pytest.param(_body(_mount("/opt/agentensor/bin")), {}, "spec.runner.volumeMounts[0].mountPath", "allowed",
                 id="mount-script-dir"),
    pytest.param(_body(_mount("/usr/bin")), {}, "spec.runner.volumeMounts[0].mountPath", "allowed", id="mount-usr-bin"),
    pytest.param(_body(_mount("/lib")), {}, "spec.runner.volumeMounts[0].mountPath", "allowed", id="mount-lib"),
    pytest.param(_body(_mount("/datax")), {}, "spec.runner.volumeMounts[0].mountPath", "allowed",
                 id="mount-prefix-not-folder"),
    pytest.param(_body(_mount("//usr/lib/python3")), {}, "spec.runner.volumeMounts[0].mountPath", "'/usr/lib/python3'",
                 id="mount-double-slash-normalised"),
    # Pod metadata keys
    pytest.param(_body({"annotations": {APPARMOR: "unconfined"}}), {}, f"spec.runner.annotations.{APPARMOR}",
                 "'container.apparmor.security.beta.kubernetes.io'", id="apparmor-unconfined"),
    pytest.param(_body({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}), {},
                 "spec.runner.annotations.seccomp.security.alpha.kubernetes.io/pod", "runner.allowedMetadataKeys",
                 id="seccomp"),
    pytest.param(_body({"labels": {"kubernetes.io/metadata.name": "x"}}), {}, "spec.runner.labels.", "not a run's",
                 id="label-kubernetes-io"),
    pytest.param(_body({"annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}}), {},
                 "spec.runner.annotations.", "not a run's", id="subdomain-kubernetes-io"),
    pytest.param(_body({"annotations": {"k8s.v1.cni.cncf.io/networks": "host-net"}}), {}, "spec.runner.annotations.",
                 "network", id="multus"),
    pytest.param(_body({"annotations": {"vault.hashicorp.com/agent-inject-secret-db": "secret/db"}}), {},
                 "spec.runner.annotations.", "not a run's", id="vault-injector"),
    pytest.param(_body({"annotations": {"iam.amazonaws.com/role": "admin"}}), {}, "spec.runner.annotations.",
                 "not a run's", id="kube2iam-role"),
    pytest.param(_body({"annotations": {"sidecar.istio.io/inject": "false"}}), {}, "spec.runner.annotations.",
                 "not a run's", id="istio-sidecar-off"),
    pytest.param(_body({"labels": {"azure.workload.identity/use": "true"}}), {}, "spec.runner.labels.",
                 "not a run's", id="azure-workload-identity"),
    pytest.param(_body({"annotations": {"node.k8s.io/x": "y"}}), {"allowed_metadata_keys": ["node.k8s.io/y"]},
                 "spec.runner.annotations.", "not a run's", id="allowed-key-is-exact"),
    # identity
    pytest.param(_body({"serviceAccountName": "deployer"}), {"service_account_name": "agentensor-runner"},
                 "spec.runner.serviceAccountName", "'deployer' is not an allowed ServiceAccount", id="service-account"),
    pytest.param(_body(image="evil.example.com/x:1"), {"allowed_images": ["registry.example.com/agents/"]},
                 "spec.workflow.image", "allowed image prefixes", id="image-not-allowed"),
    # model credentials at admission (the runner checks the same again before any call)
    pytest.param(_body(models={"m": {"model": "openai:x", "apiKeyEnv": "AGENTENSOR_DATABASE_URL",
                                     "baseUrl": "http://127.0.0.1:9/v1"}}), {},
                 "spec.models.m.apiKeyEnv", "AGENTENSOR_DATABASE_URL", id="model-key-env-dsn"),
    pytest.param(_body(models={"m": {"model": "openai:x", "apiKeyEnv": "GITHUB_TOKEN"}}), {},
                 "spec.models.m.apiKeyEnv", "GITHUB_TOKEN", id="model-key-env-not-granted"),
    pytest.param(_body(models={"m": {"model": "openai:x", "baseUrl": "https://evil.example.com/v1"}}), {},
                 "spec.models.m.baseUrl", "evil.example.com", id="model-default-key-to-foreign-host"),
    pytest.param(_body(models={"m": {"model": "ollama:x", "baseUrl": "http://elsewhere.example.com"}}),
                 {"model_hosts_strict": True}, "spec.models.m.baseUrl", "elsewhere.example.com",
                 id="model-host-strict"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "jobs", "field", "needle"), REFUSED)
def test_a_grant_the_admin_did_not_give_is_refused_naming_the_field(
    body: dict[str, Any], jobs: dict[str, Any], field: str, needle: str
) -> None:
    with pytest.raises(ManifestError) as e:
        _check(body, JobSettings(**jobs))
    assert e.value.field.startswith(field), e.value
    assert needle in e.value.reason, e.value


ACCEPTED = [
    pytest.param(_body(), {}, id="no-spec-runner"),
    pytest.param(_body(models={"judge": MODEL_REF}), {"allowed_secrets": ["llm"]}, id="model-key-name-listed"),
    pytest.param(_body(models={"judge": MODEL_REF}), {"allowed_secrets": ["llm/openai"]}, id="model-key-exact-key"),
    pytest.param(_body(models={"judge": {**MODEL_REF, "apiKeyEnv": "OPENAI_API_KEY"}}),
                 {"allowed_secrets": ["llm"]}, id="model-key-provider-variable"),
    pytest.param(_body(_secret_env("hf", "token")), {"allowed_secrets": ["hf/token"]}, id="env-secret-exact-key"),
    pytest.param(_body(_secret_volume("llm")), {"allowed_secrets": ["llm"]}, id="volume-listed-by-name"),
    pytest.param(_body(_mount("/data")), {}, id="mount-data"),
    pytest.param(_body(_mount("/scratch/a/b")), {}, id="mount-below-default"),
    pytest.param(_body(_mount("/opt/team", "sub/dir")), {"allowed_mount_paths": ["/opt/team"]}, id="mount-admin-path"),
    pytest.param(_body(_mount("/data//x/./y/")), {}, id="mount-normalised-inside"),
    pytest.param(_body({"annotations": {"example.com/owner": "a"}, "labels": {"team": "a"}}), {}, id="own-domain"),
    pytest.param(_body({"annotations": {"kubectl.kubernetes.io/default-container": "runner"}}),
                 {"allowed_metadata_keys": ["kubectl.kubernetes.io/default-container"]}, id="admin-allowed-key"),
    pytest.param(_body({"annotations": {"prometheus.io/scrape": "true"}}), {}, id="prometheus-io-is-not-k8s"),
    pytest.param(_body({"annotations": {"a.example.kubernetes.io/x": "1"}}),
                 {"allowed_metadata_keys": ["a.example.kubernetes.io/"]}, id="admin-allowed-prefix"),
    pytest.param(_body({"serviceAccountName": "agentensor-runner"}), {"service_account_name": "agentensor-runner"},
                 id="service-account-the-charts"),
    pytest.param(_body({"serviceAccountName": "team-runner"}), {"allowed_service_accounts": ["team-runner"]},
                 id="service-account-allowed"),
    pytest.param(_body(image="anything:1"), {}, id="any-image-by-default"),
    pytest.param(_body(image="registry.example.com/agents/x:1"), {"allowed_images": ["registry.example.com/agents/"]},
                 id="image-allowed-prefix"),
    pytest.param(_body(image="agentensor:0.1.0"), {"allowed_images": ["registry.example.com/"]}, id="default-image"),
    pytest.param(_body(models={"m": {"model": "openai:x", "apiKeyEnv": "VLLM_KEY", "baseUrl": "http://vllm.svc/v1"}}),
                 {"model_key_envs": ["VLLM_KEY"], "model_hosts": ["vllm.svc"]}, id="model-granted-pairing"),
    pytest.param(_body(models={"m": {"model": "ollama:x", "baseUrl": "http://ollama.svc:11434"}}), {},
                 id="model-keyless-any-host"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "jobs"), ACCEPTED)
def test_what_the_admin_granted_is_accepted(body: dict[str, Any], jobs: dict[str, Any]) -> None:
    _check(body, JobSettings(**jobs))


def test_the_database_secret_is_refused_under_any_name_the_admin_configures() -> None:
    database = DatabaseSettings(secret_name="pg-dsn")
    with pytest.raises(ManifestError, match="database URL"):
        _check(_body(_secret_env("pg-dsn", "url")), JobSettings(allowed_secrets=["pg-dsn"]), database)
    _check(_body(_secret_env("agentensor-db", "url")), JobSettings(allowed_secrets=["agentensor-db"]), database)


def test_a_normalised_mount_path_is_what_reaches_the_pod() -> None:
    facts = d.run_facts(_body(_mount("//data/./x/")))
    job = d.runner_job(
        d.run_ref(_body()), image=None, jobs=JobSettings(), database=DatabaseSettings(), runner=facts.runner
    )
    mounts = job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "d", "mountPath": "/data/x"} in mounts


@pytest.mark.parametrize(
    ("env", "entries", "message"),
    [
        pytest.param("AGENTENSOR_JOB_ALLOWED_SECRETS", "llm,Bad_Name", "'Bad_Name' is not a Secret name", id="secret"),
        pytest.param("AGENTENSOR_JOB_ALLOWED_MOUNT_PATHS", "/data,/", "'/' would allow", id="mount-root"),
        pytest.param("AGENTENSOR_JOB_ALLOWED_MOUNT_PATHS", "data", "not an absolute path", id="mount-relative"),
        pytest.param("AGENTENSOR_JOB_ALLOWED_MOUNT_PATHS", "/data/../usr", "'..' part", id="mount-dotdot"),
    ],
)
def test_bad_allow_lists_are_refused_at_startup(
    env: str, entries: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv(env, entries)
    with pytest.raises(ValidationError, match=message):
        JobSettings()


def test_allow_lists_are_read_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTENSOR_JOB_ALLOWED_SECRETS", "llm, hf/token")
    monkeypatch.setenv("AGENTENSOR_JOB_ALLOWED_MOUNT_PATHS", "/data,//srv/x/")
    monkeypatch.setenv("AGENTENSOR_JOB_ALLOWED_METADATA_KEYS", "kubectl.kubernetes.io/default-container")
    monkeypatch.setenv("AGENTENSOR_JOB_ALLOWED_SERVICE_ACCOUNTS", "team-runner")
    monkeypatch.setenv("AGENTENSOR_JOB_ALLOWED_IMAGES", "registry.example.com/")
    jobs = JobSettings()
    assert jobs.allowed_secrets == ["llm", "hf/token"]
    assert jobs.allowed_mount_paths == ["/data", "/srv/x"]
    assert jobs.allowed_metadata_keys == ["kubectl.kubernetes.io/default-container"]
    assert jobs.allowed_service_accounts == ["team-runner"]
    assert jobs.allowed_images == ["registry.example.com/"]
    assert JobSettings.model_fields["allowed_mount_paths"].default_factory is not None


@pytest.mark.parametrize("entry", [pytest.param("pg-dsn", id="name"), pytest.param("pg-dsn/url", id="name-key")])
def test_the_operator_does_not_start_when_the_database_secret_is_allowed(entry: str) -> None:
    from agentensor_operator import ConfigurationError, OperatorSettings, build

    settings = OperatorSettings(
        jobs=JobSettings(allowed_secrets=["llm", entry]), database=DatabaseSettings(secret_name="pg-dsn")
    )
    with pytest.raises(ConfigurationError, match=r"AGENTENSOR_JOB_ALLOWED_SECRETS .* 'pg-dsn"):
        build(settings)
