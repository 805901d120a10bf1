"""The chart, offline, with the real Helm v4 SDK (helm-python-sdk): lint, render, schema, and the
agreements the chart must keep with the code: its env configures OperatorSettings, its CRDs are
the generated ones, its dashboard queries only metrics the operator exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.helm.helm_support import (
    AGENTENSOR,
    CHART,
    REPO,
    decode_secret,
    objects,
    one,
    operator_container,
    plain_env,
    render,
    render_notes,
    rules_of,
)

NAMESPACE = "agentensor-system"
NON_DEFAULT: dict[str, Any] = {
    "image": {"repository": "registry.example.com/ml/agentensor", "tag": "1.2.3"},
    "watchNamespaces": ["team-a", "team-b"],
    "maxConcurrentJobs": 7,
    "runner": {
        "image": "registry.example.com/ml/agentensor-runner:2",
        "dataDir": "/data",
        "allowedModules": ["mycompany.agents", "mycompany.scorers"],
        "allowedSecrets": ["llm-keys", "hf/token"],
        "allowedMountPaths": ["/data", "/srv/datasets"],
        "allowedMetadataKeys": ["kubectl.kubernetes.io/default-container"],
        "allowedServiceAccounts": ["team-runner"],
        "allowedImages": ["registry.example.com/ml/"],
        "modelKeyEnvs": ["VLLM_API_KEY"],
        "modelHosts": ["vllm.llm.svc", "*.models.example.com", "10.0.0.0/8"],
        "modelHostsStrict": True,
        "backoffLimit": 1,
        "activeDeadlineSeconds": 600,
        "ttlSecondsAfterFinished": 60,
        "serviceAccount": {"create": True, "name": "runners"},
    },
    "database": {"existingSecret": "pg-dsn", "existingSecretKey": "dsn"},
    "metrics": {
        "port": 9100,
        "service": {"port": 9100},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    },
    "liveness": {"port": 8081},
    "grafanaDashboard": {"enabled": True, "namespace": "monitoring"},
    "crds": {"install": True, "keep": False},
    "verbose": True,
    "networkPolicy": {"enabled": True},
    "extraEnv": [{"name": "AGENTENSOR_STATUS_POLL_INTERVAL_SECONDS", "value": "2"}],
}
BUNDLED: dict[str, Any] = {"watchNamespaces": ["team-a"], "database": {"bundled": {"enabled": True}}}


# -- lint ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [pytest.param({}, id="defaults"), pytest.param(NON_DEFAULT, id="non-default"), pytest.param(BUNDLED, id="bundled")],
)
def test_lint_is_clean_in_strict_mode(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.20.2")
    assert report["errors"] == []
    # severity 1 is "info" (only "icon is recommended"); 2 warning and 3 error would fail strict mode
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


# -- render ----------------------------------------------------------------------------------------


def test_defaults_render_a_cluster_wide_operator() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["CustomResourceDefinition"] * 3
        + ["ServiceAccount"] * 2  # the operator's and the runners'
        + ["ClusterRole", "ClusterRoleBinding", "Deployment", "Service"]
    )
    env = plain_env(operator_container(docs))
    assert "AGENTENSOR_WATCH_NAMESPACES" not in env  # cluster-wide
    assert not objects(docs, "Role")
    sas = {d["metadata"]["name"]: d for d in objects(docs, "ServiceAccount")}
    assert sas["agentensor-runner"]["automountServiceAccountToken"] is False
    assert sas["agentensor-runner"]["metadata"]["namespace"] == NAMESPACE


def test_deployment_is_one_recreated_hardened_replica() -> None:
    deployment = one(render(), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container([deployment])
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe == {"path": "/healthz", "port": "healthz"}
    assert ports == {"metrics": 9090, "healthz": 8080}
    # the read-only root filesystem leaves /tmp as the only writable path
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


def _settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    from agentensor_operator import OperatorSettings

    with monkeypatch.context() as m:
        for name in [k for k in os.environ if k.startswith("AGENTENSOR_")]:
            m.delenv(name)
        for name, value in env.items():
            m.setenv(name, value)
        return OperatorSettings()


@pytest.mark.parametrize("values", [pytest.param({}, id="defaults"), pytest.param(NON_DEFAULT, id="non-default")])
def test_deployment_env_configures_the_operator(values: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The env the chart sets is read by OperatorSettings, field by field, and every variable counts."""
    docs = render(values)
    merged = _merged_values(values)
    container = operator_container(docs)
    env = plain_env(container)
    settings = _settings_from_env(env, monkeypatch)

    assert settings.watch.namespaces == merged["watchNamespaces"]
    assert settings.jobs.max_concurrent_jobs == merged["maxConcurrentJobs"]
    runner = merged["runner"]
    image = merged["image"]
    assert settings.jobs.image == (runner["image"] or f"{image['repository']}:{image['tag'] or '0.1.0'}")
    assert settings.jobs.service_account_name == runner["serviceAccount"]["name"]
    assert settings.jobs.data_dir == runner["dataDir"]
    assert settings.jobs.allowed_modules == runner["allowedModules"]
    assert settings.jobs.allowed_secrets == runner["allowedSecrets"]
    assert settings.jobs.allowed_mount_paths == runner["allowedMountPaths"]
    assert settings.jobs.allowed_metadata_keys == runner["allowedMetadataKeys"]
    assert settings.jobs.allowed_service_accounts == runner["allowedServiceAccounts"]
    assert settings.jobs.allowed_images == runner["allowedImages"]
    assert settings.jobs.model_key_envs == runner["modelKeyEnvs"]
    assert settings.jobs.model_hosts == runner["modelHosts"]
    assert settings.jobs.model_hosts_strict == runner["modelHostsStrict"]
    assert settings.jobs.backoff_limit == runner["backoffLimit"]
    assert settings.jobs.active_deadline_seconds == runner["activeDeadlineSeconds"]
    assert settings.jobs.ttl_seconds_after_finished == runner["ttlSecondsAfterFinished"]
    assert settings.database.secret_name == merged["database"]["existingSecret"]
    assert settings.database.secret_key == merged["database"]["existingSecretKey"]
    assert settings.server.metrics_port == merged["metrics"]["port"]
    assert settings.server.liveness_port == merged["liveness"]["port"]
    # the operator's own DSN comes from the same Secret the runners use, never inline
    dsn = next(e for e in container["env"] if e["name"] == "AGENTENSOR_DATABASE_URL")
    assert dsn["valueFrom"]["secretKeyRef"] == {
        "name": merged["database"]["existingSecret"],
        "key": merged["database"]["existingSecretKey"],
    }
    # every variable has an effect: a misspelt name would be silently ignored by pydantic-settings
    baseline = settings.model_dump()
    for name in env:
        without = {k: v for k, v in env.items() if k != name}
        if env[name] != _default_env_value(name, monkeypatch):
            assert _settings_from_env(without, monkeypatch).model_dump() != baseline, f"{name} has no effect"


def _default_env_value(name: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """What a variable would have to say to leave OperatorSettings at its default (None: unknown)."""
    defaults = _settings_from_env({}, monkeypatch).model_dump(mode="json")
    flat = {
        "AGENTENSOR_MAX_CONCURRENT_JOBS": defaults["jobs"]["max_concurrent_jobs"],
        "AGENTENSOR_JOB_IMAGE": defaults["jobs"]["image"],
        "AGENTENSOR_JOB_DATA_DIR": defaults["jobs"]["data_dir"],
        "AGENTENSOR_JOB_MODEL_HOSTS_STRICT": "false",
        "AGENTENSOR_JOB_BACKOFF_LIMIT": defaults["jobs"]["backoff_limit"],
        "AGENTENSOR_JOB_ACTIVE_DEADLINE_SECONDS": defaults["jobs"]["active_deadline_seconds"],
        "AGENTENSOR_JOB_TTL_SECONDS_AFTER_FINISHED": defaults["jobs"]["ttl_seconds_after_finished"],
        "AGENTENSOR_JOB_ALLOWED_MOUNT_PATHS": ",".join(defaults["jobs"]["allowed_mount_paths"]),
        # JSON, as Helm's toJson writes it (sorted keys, compact)
        "AGENTENSOR_JOB_RESOURCES": json.dumps(defaults["jobs"]["resources"], sort_keys=True, separators=(",", ":")),
        "AGENTENSOR_DB_SECRET_NAME": defaults["database"]["secret_name"],
        "AGENTENSOR_DB_SECRET_KEY": defaults["database"]["secret_key"],
        "AGENTENSOR_METRICS_PORT": defaults["server"]["metrics_port"],
        "AGENTENSOR_LIVENESS_PORT": defaults["server"]["liveness_port"],
    }
    value = flat.get(name)
    return None if value is None else str(value)


def _merged_values(values: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(values)


def test_allowed_modules_reach_the_operator_env_comma_joined() -> None:
    assert "AGENTENSOR_JOB_ALLOWED_MODULES" not in plain_env(operator_container(render()))
    env = plain_env(operator_container(render({"runner": {"allowedModules": ["mycompany.agents", "tests"]}})))
    assert env["AGENTENSOR_JOB_ALLOWED_MODULES"] == "mycompany.agents,tests"


def test_what_a_run_may_reach_is_the_admins_chart_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults: no Secret, the data folders, no refused Pod key, the runner account, any image."""
    env = plain_env(operator_container(render()))
    for name in ("SECRETS", "METADATA_KEYS", "SERVICE_ACCOUNTS", "IMAGES"):
        assert f"AGENTENSOR_JOB_ALLOWED_{name}" not in env
    jobs = _settings_from_env(env, monkeypatch).jobs
    assert jobs.allowed_secrets == [] and jobs.allowed_service_accounts == [] and jobs.allowed_images == []
    assert jobs.allowed_mount_paths == ["/data", "/mnt", "/models", "/cache", "/scratch", "/var/agentensor"]
    # an empty list is "no mounts", not "the operator's default"
    env = plain_env(operator_container(render({"runner": {"allowedMountPaths": [], "allowedSecrets": ["a", "a/k"]}})))
    assert env["AGENTENSOR_JOB_ALLOWED_MOUNT_PATHS"] == ""
    assert env["AGENTENSOR_JOB_ALLOWED_SECRETS"] == "a,a/k"
    assert _settings_from_env(env, monkeypatch).jobs.allowed_mount_paths == []


def test_schema_module_pattern_is_the_operator_settings_pattern() -> None:
    from agentensor_operator._setting_checks import MODULE_PREFIX

    with helm.Chart.load(CHART) as chart:
        schema = chart.schema
    assert schema is not None
    items = schema["properties"]["runner"]["properties"]["allowedModules"]["items"]
    assert items["pattern"] == MODULE_PREFIX.pattern


def test_operator_command_line_is_accepted_by_the_cli() -> None:
    container = operator_container(render(NON_DEFAULT))
    argv = [*container["command"], *container["args"]]
    assert argv[:2] == ["agentensor", "operator"]
    assert "--verbose" in argv
    # an unknown option would exit 2 before --help is reached
    done = subprocess.run([*AGENTENSOR, *argv[1:], "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_watch_namespaces_get_a_role_each_and_only_observation_cluster_wide() -> None:
    docs = render(NON_DEFAULT)
    assert plain_env(operator_container(docs))["AGENTENSOR_WATCH_NAMESPACES"] == "team-a,team-b"
    for ns in ("team-a", "team-b"):
        role = one(docs, "Role", ns)
        binding = one(docs, "RoleBinding", ns)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "ae-agentensor-operator", "namespace": NAMESPACE}
        ]
        resources = {res for rule in role["rules"] for res in rule["resources"]}
        assert {"trainingruns", "trainingruns/status", "jobs", "configmaps", "events"} <= resources
        runner_sa = next(d for d in objects(docs, "ServiceAccount", ns) if d["metadata"]["name"] == "runners")
        assert runner_sa["automountServiceAccountToken"] is False
    cluster_rules = one(docs, "ClusterRole")["rules"]
    assert cluster_rules == [
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    # no Role in the release namespace: the operator does not serve it
    assert not objects(docs, "Role", NAMESPACE)


@pytest.mark.parametrize("values", [pytest.param({}, id="cluster-wide"), pytest.param(NON_DEFAULT, id="namespaced")])
def test_no_rule_grants_secrets_pods_wildcards_or_crd_writes(values: dict[str, Any]) -> None:
    rules = rules_of(render(values))
    assert rules
    for _ns, rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert not {"secrets", "pods", "pods/exec", "serviceaccounts/token"} & set(rule["resources"]), rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
        if "apiextensions.k8s.io" in rule["apiGroups"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


# -- CRDs ------------------------------------------------------------------------------------------


def _strip(crd: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in crd["metadata"].items() if k not in ("labels", "annotations")}
    return {**crd, "metadata": meta}


def test_chart_crds_are_the_generated_crds() -> None:
    """files/crds/ is byte-for-byte what `agentensor crds` writes, and renders to crds/."""
    from agentensor_api import render_crds

    generated = render_crds()
    chart_files = {p.name: p.read_text(encoding="utf-8") for p in (CHART / "files" / "crds").glob("*.yaml")}
    repo_files = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "crds").glob("*.yaml")}
    assert chart_files == generated, "charts/agentensor-operator/files/crds drifted: run `make crds`"
    assert repo_files == generated, "crds/ drifted: run `make crds`"
    rendered = {d["metadata"]["name"]: _strip(d) for d in objects(render(), "CustomResourceDefinition")}
    expected = {(d := yaml.safe_load(text))["metadata"]["name"]: d for text in generated.values()}
    assert rendered == expected


@pytest.mark.parametrize(
    ("crds", "count", "keep"),
    [
        pytest.param({"install": True, "keep": True}, 3, True, id="install-keep"),
        pytest.param({"install": True, "keep": False}, 3, False, id="install-no-keep"),
        pytest.param({"install": False, "keep": True}, 0, None, id="not-installed"),
    ],
)
def test_crd_install_and_keep_switches(crds: dict[str, bool], count: int, keep: bool | None) -> None:
    found = objects(render({"crds": crds}), "CustomResourceDefinition")
    assert len(found) == count
    for crd in found:
        annotations = crd["metadata"].get("annotations") or {}
        assert (annotations.get("helm.sh/resource-policy") == "keep") is keep
        assert (annotations.get("argocd.argoproj.io/sync-options") == "Delete=false,Prune=false") is keep
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


# -- database --------------------------------------------------------------------------------------


def test_bundled_postgres_writes_one_password_into_every_namespace_that_needs_the_dsn() -> None:
    from sqlalchemy.engine import make_url

    docs = render(BUNDLED)
    secrets = {d["metadata"]["namespace"]: d for d in objects(docs, "Secret")}
    assert set(secrets) == {NAMESPACE, "team-a"}
    urls = {ns: make_url(decode_secret(s, "url")) for ns, s in secrets.items()}
    assert len({u.password for u in urls.values()}) == 1
    url = urls[NAMESPACE]
    assert url.drivername == "postgresql+psycopg"
    assert url.host == f"ae-agentensor-operator-postgresql.{NAMESPACE}.svc"
    assert len(str(url.password)) == 32
    assert decode_secret(secrets[NAMESPACE], "password") == url.password
    assert "password" not in secrets["team-a"]["data"]  # only the URL leaves the release namespace
    statefulset = one(docs, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 1
    pg = statefulset["spec"]["template"]["spec"]
    assert pg["securityContext"]["runAsNonRoot"] is True
    assert pg["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    deployment = one(docs, "Deployment")
    container = operator_container(docs)
    dsn = next(e for e in container["env"] if e["name"] == "AGENTENSOR_DATABASE_URL")
    assert dsn["valueFrom"]["secretKeyRef"] == {"name": "ae-agentensor-operator-postgresql", "key": "url"}
    assert plain_env(container)["AGENTENSOR_DB_SECRET_NAME"] == "ae-agentensor-operator-postgresql"
    init = deployment["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["wait-for-postgresql"]


def test_bundled_postgres_password_can_be_pinned() -> None:
    from sqlalchemy.engine import make_url

    docs = render({"database": {"bundled": {"enabled": True, "password": "dev-only-secret"}}})
    assert make_url(decode_secret(one(docs, "Secret"), "url")).password == "dev-only-secret"


def test_no_database_is_refused_naming_the_value() -> None:
    with pytest.raises(helm.HelmRenderError, match=r"database\.existingSecret"):
        render({"database": {"existingSecret": ""}})


@pytest.mark.parametrize("entry", [pytest.param("pg-dsn", id="name"), pytest.param("pg-dsn/dsn", id="name-key")])
def test_allowed_secrets_may_not_list_the_database_secret(entry: str) -> None:
    values = {
        "database": {"existingSecret": "pg-dsn", "existingSecretKey": "dsn"},
        "runner": {"allowedSecrets": [entry]},
    }
    with pytest.raises(helm.HelmRenderError, match=r"runner\.allowedSecrets: .*database Secret"):
        render(values)
    render({**values, "runner": {"allowedSecrets": ["pg-dsn-other", "llm/pg-dsn"]}})  # names that only look alike


def test_runner_serviceaccount_needs_a_name_when_created() -> None:
    with pytest.raises(helm.HelmRenderError, match=r"runner\.serviceAccount\.name"):
        render({"runner": {"serviceAccount": {"create": True, "name": ""}}})
    # not created and unnamed: runner Pods use their namespace's default ServiceAccount
    docs = render({"runner": {"serviceAccount": {"create": False, "name": ""}}})
    assert "AGENTENSOR_JOB_SERVICE_ACCOUNT_NAME" not in plain_env(operator_container(docs))
    assert [d["metadata"]["name"] for d in objects(docs, "ServiceAccount")] == ["ae-agentensor-operator"]


# -- metrics, dashboard, notes ---------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service() -> None:
    docs = render(NON_DEFAULT)
    service = one(docs, "Service")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["spec"]["selector"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    policy = one(docs, "NetworkPolicy")
    assert {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]} == {"metrics", "healthz"}


def test_dashboard_configmap_carries_the_dashboard() -> None:
    docs = render(NON_DEFAULT)
    cm = one(docs, "ConfigMap")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "agentensor-operator.json").read_text())
    assert json.loads(cm["data"]["agentensor-operator.json"]) == shipped


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "agentensor-operator.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _exported_metric_names() -> set[str]:
    """Names the operator's registry exposes, by family type (no label values needed)."""
    from agentensor_operator._metrics import Metrics

    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def test_dashboard_queries_only_metrics_the_operator_exports() -> None:
    exported = _exported_metric_names()
    used = {m for expr in _dashboard_exprs() for m in re.findall(r"\bagentensor_[a-z_]+", expr)}
    assert used, "the dashboard queries no agentensor metric"
    assert used <= exported, f"not exported by the operator: {sorted(used - exported)}"
    # nearly every metric has a panel: not the counters' _created timestamps, nor _sum/_count
    assert len(used) >= len({m for m in exported if not m.endswith("_created")}) - 2


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (Grafana's $__rate_interval/$namespace substituted) as a rule."""
    rules = [
        {"record": f"dashboard:q{i}", "expr": e.replace("$__rate_interval", "5m").replace("$namespace", ".*")}
        for i, e in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_notes_tell_how_to_create_the_database_secret() -> None:
    notes = render_notes({"watchNamespaces": ["team-a"]}, namespace="ops")
    assert "kubectl -n ops create secret generic agentensor-db" in notes
    assert "--from-literal=url=" in notes
    assert "namespaces team-a" in notes
    assert "kept on uninstall" in notes
    bundled = render_notes(BUNDLED)
    assert "bundled single-pod PostgreSQL" in bundled and "create secret" not in bundled


# -- values.schema.json ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "where"),
    [
        pytest.param({"maxConcurrentJobs": -1}, "/maxConcurrentJobs", id="negative-cap"),
        pytest.param({"maxConcurrentJobs": 0}, "/maxConcurrentJobs", id="zero-cap"),
        pytest.param({"maxConcurrentJobs": "4"}, "/maxConcurrentJobs", id="cap-as-string"),
        pytest.param({"maxConcurrentJobs": 2.5}, "/maxConcurrentJobs", id="fractional-cap"),
        pytest.param({"watchNamespaces": "team-a"}, "/watchNamespaces", id="namespaces-not-a-list"),
        pytest.param({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0", id="namespace-not-a-dns-label"),
        pytest.param({"watchNamespaces": ["a", "a"]}, "/watchNamespaces", id="duplicate-namespace"),
        pytest.param({"crds": {"install": "yes"}}, "/crds/install", id="crds-install-not-bool"),
        pytest.param({"crds": {"keep": 1}}, "/crds/keep", id="crds-keep-not-bool"),
        pytest.param({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", id="pull-policy-enum"),
        pytest.param({"image": {"digest": "latest"}}, "/image/digest", id="digest-not-sha256"),
        pytest.param({"metrics": {"port": 70000}}, "/metrics/port", id="port-out-of-range"),
        pytest.param({"runner": {"backoffLimit": -1}}, "/runner/backoffLimit", id="negative-backoff"),
        pytest.param({"runner": {"dataDir": "app"}}, "/runner/dataDir", id="relative-data-dir"),
        pytest.param({"runner": {"allowedModules": "mycompany"}}, "/runner/allowedModules", id="modules-not-a-list"),
        pytest.param({"runner": {"allowedSecrets": ["Bad_Name"]}}, "/runner/allowedSecrets/0", id="secret-name"),
        pytest.param({"runner": {"allowedMountPaths": ["/"]}}, "/runner/allowedMountPaths/0", id="mount-root"),
        pytest.param({"runner": {"allowedMountPaths": ["data"]}}, "/runner/allowedMountPaths/0", id="mount-relative"),
        pytest.param(
            {"runner": {"allowedMountPaths": ["/a/../usr"]}}, "/runner/allowedMountPaths/0", id="mount-dotdot"
        ),
        pytest.param(
            {"runner": {"allowedServiceAccounts": ["Admin"]}}, "/runner/allowedServiceAccounts/0", id="account-name"
        ),
        pytest.param(
            {"runner": {"allowedModules": ["mycompany.agents", "my-company"]}},
            "/runner/allowedModules/1",
            id="module-not-a-dotted-name",
        ),
        pytest.param(
            {"runner": {"allowedModules": ["mycompany.agents:factory"]}},
            "/runner/allowedModules/0",
            id="entrypoint-instead-of-module",
        ),
        pytest.param({"database": {"existingSecretKey": ""}}, "/database/existingSecretKey", id="empty-secret-key"),
        pytest.param(
            {"database": {"bundled": {"password": "p@ss"}}}, "/database/bundled/password", id="password-url-unsafe"
        ),
        pytest.param({"extraEnv": [{"value": "x"}]}, "/extraEnv/0", id="env-without-name"),
        pytest.param(
            {"metrics": {"serviceMonitor": {"interval": "often"}}},
            "/metrics/serviceMonitor/interval",
            id="bad-duration",
        ),
        pytest.param({"replicaCount": 2}, "replicaCount", id="unknown-key"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(values: dict[str, Any], where: str) -> None:
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError) as raised:
            chart.validate_schema(values)
        assert where in str(raised.value)
        # what `helm install`/`helm template` do with such values: refuse before rendering
        with pytest.raises(helm.HelmValuesError):
            chart.render(values, name="ae", namespace=NAMESPACE)


def test_schema_accepts_defaults_and_documented_variants() -> None:
    with helm.Chart.load(CHART) as chart:
        for values in ({}, NON_DEFAULT, BUNDLED, {"image": {"digest": "sha256:" + "0" * 64}}):
            chart.validate_schema(values)
        schema = chart.schema
    assert schema is not None
    # every top-level default value is described by the schema (and nothing else is allowed)
    assert schema["additionalProperties"] is False
    assert set(yaml.safe_load((CHART / "values.yaml").read_text())) == set(schema["properties"])


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)
def test_documented_alerts_are_valid_rules(tmp_path: Path) -> None:
    """The alert rules in docs/observability.md parse, and query only exported metrics."""
    text = (REPO / "docs" / "observability.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if b.startswith("groups:"))
    rules = yaml.safe_load(block)
    used = {m for g in rules["groups"] for r in g["rules"] for m in re.findall(r"\bagentensor_[a-z_]+", r["expr"])}
    assert used and used <= _exported_metric_names()
    path = tmp_path / "alerts.yaml"
    path.write_text(block)
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@pytest.mark.parametrize("values", [pytest.param({}, id="defaults"), pytest.param(BUNDLED, id="bundled")])
def test_pods_meet_the_restricted_pod_security_standard(values: dict[str, Any]) -> None:
    """The checks of the Pod Security Standards' "restricted" profile, on every Pod template."""
    workloads = [d for d in render(values) if d["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == (2 if values else 1)
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext") or {}
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container.get("securityContext") or {}
            where = f"{workload['kind']}/{container['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert (sc.get("runAsUser", pod_sc.get("runAsUser")) or 1) != 0, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}, where
            assert not sc.get("privileged"), where
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            assert seccomp in ("RuntimeDefault", "Localhost"), where
            assert sc.get("readOnlyRootFilesystem") is True, where  # beyond "restricted": ours are read-only
            assert not any("hostPort" in p for p in container.get("ports", [])), where
