"""The chart on a real API server (EnvTest, Kubernetes 1.20), installed with the real Helm v4 SDK.

One release serves namespace ``helm-runs``; a second, cluster-wide release (``crds.install=false``)
is there for its RBAC. The operator then runs as a local process with exactly the Deployment's
command and environment, authenticated by a token of the chart's ServiceAccount, and carries a
TrainingRun to Succeeded: the RBAC is sufficient. `kubectl auth can-i` with the same token shows
that it is not excessive. Upgrade and uninstall come last: the CRDs, and the objects in them,
survive uninstall (``crds.keep``).

The session API server is shared with tests/k8s, which may have applied crds/ with kubectl
already; such CRDs are adopted into the release first (docs/install.md, "Adopting CRDs").
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.helm.helm_support import (
    AGENTENSOR,
    CHART,
    argocd_health,
    deployment_process,
    http_get,
    objects,
    one,
    operator_container,
    parse_manifests,
    resolve_env,
    sa_kubeconfig,
)
from tests.k8s.envtest import EnvTest, free_port

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

RELEASE, RELEASE_NS = "agentensor", "agentensor-system"
CW_RELEASE, CW_NS = "agentensor-cw", "agentensor-cw"
RUNS_NS, OTHER_NS = "helm-runs", "helm-other"
VALUES: dict[str, Any] = {"watchNamespaces": [RUNS_NS], "maxConcurrentJobs": 2}
CRD_NAMES = ("promptconfigs.agentensor.dev", "trainingruns.agentensor.dev", "evaluationruns.agentensor.dev")
OPERATOR_SA = f"{RELEASE}-agentensor-operator"
CW_OPERATOR_SA = f"{CW_RELEASE}-agentensor-operator"
RUNNER_SA = "agentensor-runner"


@dataclass
class Release:
    env: EnvTest
    config: helm.Config
    docs: list[dict[str, Any]]
    workdir: Path


def _kubectl_json(env: EnvTest, *args: str) -> dict[str, Any] | None:
    done = env.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def _ensure_namespace(env: EnvTest, name: str) -> None:
    if env.kubectl("get", "namespace", name, check=False).returncode != 0:
        env.kubectl("create", "namespace", name)


def adopt_crds(env: EnvTest, release: str, namespace: str) -> None:
    """Mark CRDs applied earlier with kubectl as belonging to ``release`` (Helm then adopts them)."""
    for name in CRD_NAMES:
        if env.kubectl("get", "crd", name, check=False).returncode == 0:
            env.kubectl(
                "annotate", "crd", name, "--overwrite",
                f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
            )  # fmt: skip
            env.kubectl("label", "crd", name, "--overwrite", "app.kubernetes.io/managed-by=Helm")


def token_for(env: EnvTest, service_account: str, namespace: str) -> str:
    """A token of the ServiceAccount from the TokenRequest API (`kubectl create token`)."""
    done = env.kubectl("create", "token", service_account, "-n", namespace, "--duration=1h")
    return str(done.stdout).strip()


def kubeconfig_for(env: EnvTest, service_account: str, namespace: str, workdir: Path) -> Path:
    token = token_for(env, service_account, namespace)
    return sa_kubeconfig(
        env.server, env.ca_file, token, namespace, workdir / f"{namespace}-{service_account}.kubeconfig"
    )


def can_i(kubeconfig: Path, verb: str, resource: str, namespace: str | None, subresource: str | None = None) -> bool:
    """`kubectl auth can-i` (a SelfSubjectAccessReview) as the identity of ``kubeconfig``.

    ``namespace``: a namespace, ``"*"`` for all namespaces, or None for a cluster-scoped resource.
    """
    argv = ["kubectl", f"--kubeconfig={kubeconfig}", "auth", "can-i", verb, resource]
    if namespace == "*":
        argv.append("--all-namespaces")
    elif namespace is not None:
        argv += ["-n", namespace]
    if subresource:
        argv.append(f"--subresource={subresource}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), f"{argv}: {done.stdout}{done.stderr}"
    return answer == "yes"


@pytest.fixture(scope="module")
def release(k8s: EnvTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """Release ``agentensor`` (watching helm-runs) and the cluster-wide ``agentensor-cw``."""
    env = k8s
    for ns in (RELEASE_NS, CW_NS, RUNS_NS, OTHER_NS):
        _ensure_namespace(env, ns)
    adopt_crds(env, RELEASE, RELEASE_NS)
    config = helm.Config(kubeconfig_path=str(env.kubeconfig), namespace=RELEASE_NS)
    cw_config = helm.Config(kubeconfig_path=str(env.kubeconfig), namespace=CW_NS)
    try:
        config.install(CHART, RELEASE, VALUES, timeout=120)
        cw_config.install(CHART, CW_RELEASE, {"crds": {"install": False, "keep": True}}, timeout=120)
        docs = parse_manifests({"manifest": config.status(RELEASE)["manifest"]})
        yield Release(env, config, docs, tmp_path_factory.mktemp("helm-install"))
    finally:
        for cfg, name in ((config, RELEASE), (cw_config, CW_RELEASE)):
            cfg.uninstall(name, ignore_not_found=True)
            cfg.close()
        for ns in (CW_NS, RUNS_NS, OTHER_NS):
            env.kubectl("delete", "namespace", ns, "--wait=false", check=False)


# -- install ---------------------------------------------------------------------------------------


def test_every_rendered_object_is_accepted(release: Release) -> None:
    kinds = {d["kind"] for d in release.docs}
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Role", "RoleBinding"} <= kinds
    for doc in release.docs:
        meta = doc["metadata"]
        args = [f"{doc['kind']}.{doc['apiVersion'].split('/')[0]}" if "/" in doc["apiVersion"] else doc["kind"]]
        args.append(meta["name"])
        if meta.get("namespace"):
            args += ["-n", meta["namespace"]]
        live = _kubectl_json(release.env, *args)
        assert live is not None, f"{doc['kind']} {meta['name']} was not created"
        assert live["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE
    # the Deployment as stored by the API server (defaults filled in) kept what the chart asked
    deployment = _kubectl_json(release.env, "deployment", OPERATOR_SA, "-n", RELEASE_NS)
    assert deployment is not None
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert deployment["spec"]["replicas"] == 1


def test_crds_are_established_and_kept(release: Release) -> None:
    for name in CRD_NAMES:
        crd = _kubectl_json(release.env, "crd", name)
        assert crd is not None
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"]
        assert established == "True"
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert release.config.status(RELEASE)["status"] == "deployed"


# -- RBAC: not excessive ---------------------------------------------------------------------------

Check = tuple[str, str, str | None, str | None, bool]
"""(verb, resource, namespace or "*" or None for cluster scope, subresource, allowed)."""


NAMESPACED_OPERATOR: list[Check] = [
    ("watch", "trainingruns.agentensor.dev", RUNS_NS, None, True),
    ("patch", "promptconfigs.agentensor.dev", RUNS_NS, None, True),
    ("patch", "trainingruns.agentensor.dev", RUNS_NS, "status", True),
    ("patch", "evaluationruns.agentensor.dev", RUNS_NS, "status", True),
    ("create", "jobs.batch", RUNS_NS, None, True),
    ("delete", "jobs.batch", RUNS_NS, None, True),
    ("create", "configmaps", RUNS_NS, None, True),
    ("create", "events", RUNS_NS, None, True),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", None, None, True),
    ("list", "namespaces", None, None, True),
    # not excessive
    ("list", "secrets", RUNS_NS, None, False),
    ("get", "secrets", RELEASE_NS, None, False),
    ("list", "secrets", "*", None, False),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", None, None, False),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", None, None, False),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", None, None, False),
    ("create", "jobs.batch", OTHER_NS, None, False),
    ("list", "trainingruns.agentensor.dev", OTHER_NS, None, False),
    ("list", "jobs.batch", "*", None, False),
    ("delete", "trainingruns.agentensor.dev", RUNS_NS, None, False),
    ("update", "trainingruns.agentensor.dev", RUNS_NS, None, False),
    ("create", "pods", RUNS_NS, None, False),
    ("create", "pods", RUNS_NS, "exec", False),
    ("delete", "configmaps", RUNS_NS, None, False),
    ("create", "rolebindings.rbac.authorization.k8s.io", RUNS_NS, None, False),
    ("impersonate", "serviceaccounts", RUNS_NS, None, False),
    ("create", "serviceaccounts", RUNS_NS, "token", False),
    ("delete", "namespaces", None, None, False),
]

CLUSTER_WIDE_OPERATOR: list[Check] = [
    ("list", "jobs.batch", "*", None, True),
    ("create", "jobs.batch", OTHER_NS, None, True),
    ("patch", "trainingruns.agentensor.dev", OTHER_NS, "status", True),
    ("watch", "promptconfigs.agentensor.dev", "*", None, True),
    # not excessive
    ("list", "secrets", "*", None, False),
    ("get", "secrets", CW_NS, None, False),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", None, None, False),
    ("list", "namespaces", None, None, False),  # kopf does not observe namespaces cluster-wide
    ("create", "pods", OTHER_NS, None, False),
    ("delete", "trainingruns.agentensor.dev", OTHER_NS, None, False),
]

RUNNER: list[Check] = [
    ("get", "configmaps", RUNS_NS, None, False),
    ("list", "secrets", RUNS_NS, None, False),
    ("get", "trainingruns.agentensor.dev", RUNS_NS, None, False),
    ("patch", "trainingruns.agentensor.dev", RUNS_NS, "status", False),
    ("create", "jobs.batch", RUNS_NS, None, False),
    ("list", "pods", RUNS_NS, None, False),
]


def _ids(table: Sequence[Check]) -> list[str]:
    return [
        f"{'can' if ok else 'cannot'}-{verb}-{res.split('.')[0]}{'-' + sub if sub else ''}-{ns or 'cluster'}"
        for verb, res, ns, sub, ok in table
    ]


@pytest.fixture(scope="module")
def operator_kubeconfig(release: Release) -> Path:
    return kubeconfig_for(release.env, OPERATOR_SA, RELEASE_NS, release.workdir)


@pytest.fixture(scope="module")
def cluster_wide_kubeconfig(release: Release) -> Path:
    return kubeconfig_for(release.env, CW_OPERATOR_SA, CW_NS, release.workdir)


@pytest.fixture(scope="module")
def runner_kubeconfig(release: Release) -> Path:
    return kubeconfig_for(release.env, RUNNER_SA, RUNS_NS, release.workdir)


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "sub", "allowed"), NAMESPACED_OPERATOR, ids=_ids(NAMESPACED_OPERATOR)
)
def test_operator_serviceaccount_rights(
    operator_kubeconfig: Path, verb: str, resource: str, namespace: str | None, sub: str | None, allowed: bool
) -> None:
    assert can_i(operator_kubeconfig, verb, resource, namespace, sub) is allowed


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "sub", "allowed"), CLUSTER_WIDE_OPERATOR, ids=_ids(CLUSTER_WIDE_OPERATOR)
)
def test_cluster_wide_operator_serviceaccount_rights(
    cluster_wide_kubeconfig: Path, verb: str, resource: str, namespace: str | None, sub: str | None, allowed: bool
) -> None:
    assert can_i(cluster_wide_kubeconfig, verb, resource, namespace, sub) is allowed


@pytest.mark.parametrize(("verb", "resource", "namespace", "sub", "allowed"), RUNNER, ids=_ids(RUNNER))
def test_runner_serviceaccount_has_no_api_rights(
    runner_kubeconfig: Path, verb: str, resource: str, namespace: str | None, sub: str | None, allowed: bool
) -> None:
    assert can_i(runner_kubeconfig, verb, resource, namespace, sub) is allowed


def test_runner_serviceaccount_mounts_no_token(release: Release) -> None:
    sa = _kubectl_json(release.env, "serviceaccount", RUNNER_SA, "-n", RUNS_NS)
    assert sa is not None and sa["automountServiceAccountToken"] is False


# -- RBAC: sufficient ------------------------------------------------------------------------------


def _apply_secret(env: EnvTest, namespace: str, name: str, data: dict[str, str]) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    env.kubectl("apply", "-f", "-", input=json.dumps(secret))


def _read_secret(env: EnvTest, namespace: str) -> Any:
    def read(name: str, key: str) -> str:
        secret = _kubectl_json(env, "secret", name, "-n", namespace)
        assert secret is not None, f"Secret {namespace}/{name} referenced by the Deployment does not exist"
        return base64.b64decode(secret["data"][key]).decode()

    return read


@pytest.mark.postgres
def test_operator_under_the_chart_serviceaccount_carries_a_trainingrun_to_succeeded(
    release: Release, operator_kubeconfig: Path
) -> None:
    from tests.k8s.node_agent import NodeAgent
    from tests.k8s.operator_harness import fresh_database, synthetic, synthetic_promptconfig

    env, workdir = release.env, release.workdir
    container = operator_container(release.docs)
    secret_ref = next(e for e in container["env"] if e["name"] == "AGENTENSOR_DATABASE_URL")["valueFrom"]
    secret_name, secret_key = secret_ref["secretKeyRef"]["name"], secret_ref["secretKeyRef"]["key"]
    log_path = workdir / "operator.log"
    metrics_port = free_port()
    with fresh_database() as url:
        # what an admin does after `helm install` (NOTES.txt): the DSN Secret where the operator and runners read it
        for ns in (RELEASE_NS, RUNS_NS):
            _apply_secret(env, ns, secret_name, {secret_key: url})
        pod_env = resolve_env(container, _read_secret(env, RELEASE_NS))
        agent = NodeAgent(
            env.kubeconfig,
            namespace=RUNS_NS,
            command_map={"agentensor": AGENTENSOR},
            workdir=workdir / "pods",
            extra_env={"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        with (
            agent,
            deployment_process(
                container, pod_env, kubeconfig=operator_kubeconfig, log_path=log_path,
                metrics_port=metrics_port, liveness_port=free_port(),
            ),
        ):  # fmt: skip
            docs = [synthetic_promptconfig("router", "helm-router"), synthetic("train", "router", epochs=1)]
            for doc in docs:
                doc["metadata"]["namespace"] = RUNS_NS
            env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
            waited = env.kubectl(
                "wait", "--for=condition=Succeeded", "trainingrun/train", "-n", RUNS_NS, "--timeout=180s",
                check=False, timeout_seconds=190,
            )  # fmt: skip
            log = log_path.read_text(errors="replace")
            assert waited.returncode == 0, f"{waited.stderr}\noperator log:\n{log[-4000:]}"
            status, metrics = http_get(metrics_port, "/metrics")
        run = _kubectl_json(env, "trainingrun", "train", "-n", RUNS_NS)
        assert run is not None
        assert run["status"]["phase"] == "Succeeded"
        assert run["status"]["bestVersion"] >= 1
        # Argo CD's view of the live objects (deploy/argocd/health/*.lua)
        assert argocd_health(run)["status"] == "Healthy"
        promptconfig = _kubectl_json(env, "promptconfig", "router", "-n", RUNS_NS)
        assert promptconfig is not None and argocd_health(promptconfig)["status"] == "Healthy"
        # the runner Job ran under the runner ServiceAccount and the chart's runner image
        jobs = _kubectl_json(env, "jobs", "-n", RUNS_NS)
        assert jobs is not None and len(jobs["items"]) == 1
        pod_spec = jobs["items"][0]["spec"]["template"]["spec"]
        assert pod_spec["serviceAccountName"] == RUNNER_SA
        runner_image = next(e["value"] for e in container["env"] if e["name"] == "AGENTENSOR_JOB_IMAGE")
        assert pod_spec["containers"][0]["image"] == runner_image
        # Events were posted and the PromptConfig's active ConfigMap written (events, configmaps rights)
        events = _kubectl_json(env, "events", "-n", RUNS_NS)
        assert events is not None
        reasons = {e["reason"] for e in events["items"] if e["involvedObject"]["name"] == "train"}
        assert "JobCreated" in reasons
        assert _kubectl_json(env, "configmap", "router-active", "-n", RUNS_NS) is not None
        assert status == 200 and "agentensor_reconcile_total" in metrics
        # nothing was refused along the way (kopf degrades quietly when it lacks a right)
        for refusal in ("Forbidden", "forbidden", "Not enough permissions", "Failed to post an event", " 403 "):
            assert refusal not in log, f"{refusal!r} in the operator log:\n{log[-4000:]}"


# -- upgrade and uninstall (last: they change the module's release) --------------------------------


def test_upgrade_applies_changed_values(release: Release, operator_kubeconfig: Path) -> None:
    env, config = release.env, release.config
    assert not can_i(operator_kubeconfig, "create", "jobs.batch", OTHER_NS)
    upgraded = config.upgrade(
        CHART, RELEASE, {**VALUES, "watchNamespaces": [RUNS_NS, OTHER_NS], "maxConcurrentJobs": 3, "verbose": True}
    )
    assert upgraded["revision"] == 2 and upgraded["status"] == "deployed"
    docs = parse_manifests({"manifest": config.status(RELEASE)["manifest"]})
    container = operator_container(docs)
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["AGENTENSOR_MAX_CONCURRENT_JOBS"] == "3"
    assert env_vars["AGENTENSOR_WATCH_NAMESPACES"] == f"{RUNS_NS},{OTHER_NS}"
    live = _kubectl_json(env, "deployment", OPERATOR_SA, "-n", RELEASE_NS)
    assert live is not None
    live_container = live["spec"]["template"]["spec"]["containers"][0]
    assert "--verbose" in live_container["args"]
    assert {"name": "AGENTENSOR_MAX_CONCURRENT_JOBS", "value": "3"} in live_container["env"]
    # RBAC followed the values: a Role and the runner ServiceAccount in the new namespace
    assert can_i(operator_kubeconfig, "create", "jobs.batch", OTHER_NS)
    assert _kubectl_json(env, "serviceaccount", RUNNER_SA, "-n", OTHER_NS) is not None
    # and back: the Role in OTHER_NS is removed again
    config.upgrade(CHART, RELEASE, VALUES)
    assert not can_i(operator_kubeconfig, "create", "jobs.batch", OTHER_NS)
    assert [r["revision"] for r in config.history(RELEASE)] == [1, 2, 3]


def test_uninstall_keeps_crds_and_promptconfigs_and_reinstall_adopts_them(release: Release) -> None:
    from tests.k8s.operator_harness import synthetic_promptconfig

    env, config = release.env, release.config
    kept = synthetic_promptconfig("kept", "helm-kept")
    kept["metadata"]["namespace"] = RUNS_NS
    env.kubectl("apply", "-f", "-", input=json.dumps(kept))
    uid = _kubectl_json(env, "promptconfig", "kept", "-n", RUNS_NS)["metadata"]["uid"]  # type: ignore[index]

    result = config.uninstall(RELEASE)
    assert "kept due to the resource policy" in str(result.get("info"))
    for name in CRD_NAMES:
        assert _kubectl_json(env, "crd", name) is not None, f"CRD {name} was deleted"
    after = _kubectl_json(env, "promptconfig", "kept", "-n", RUNS_NS)
    assert after is not None and after["metadata"]["uid"] == uid  # the same object, not a re-creation
    # everything else of the release is gone
    for args in (
        ("deployment", OPERATOR_SA, "-n", RELEASE_NS),
        ("serviceaccount", OPERATOR_SA, "-n", RELEASE_NS),
        ("serviceaccount", RUNNER_SA, "-n", RUNS_NS),
        ("role", OPERATOR_SA, "-n", RUNS_NS),
        ("clusterrole", OPERATOR_SA),
        ("clusterrolebinding", OPERATOR_SA),
    ):
        assert _kubectl_json(env, *args) is None, f"{args} survived uninstall"
    assert config.list(name_filter=f"^{RELEASE}$") == []

    # the kept CRDs still carry this release's ownership: installing it again adopts them
    reinstalled = config.install(CHART, RELEASE, VALUES, timeout=120)
    assert reinstalled["status"] == "deployed"
    assert objects(parse_manifests({"m": config.status(RELEASE)["manifest"]}), "CustomResourceDefinition")
    assert one(parse_manifests({"m": config.status(RELEASE)["manifest"]}), "Deployment")
    assert _kubectl_json(env, "promptconfig", "kept", "-n", RUNS_NS)["metadata"]["uid"] == uid  # type: ignore[index]
