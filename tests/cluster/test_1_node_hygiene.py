"""hack/real-node.sh leaves the shared host as it found it: a full up/run-a-pod/down cycle, with the
host's sysctls (the ones unpatched kubelet 1.20 writes, among others), host iptables (iptables-nft),
mounts, network namespaces, links and kubelet/containerd leftover paths compared before and after."""

from __future__ import annotations

import json

import pytest

from tests.cluster.node import diff_state, host_state, kube_env, node_down, node_up, run

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "hygiene"},
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "localhost/node/pause:1",
                        "imagePullPolicy": "Never",
                        "command": ["/pause"],
                    }
                ],
            }
        },
    },
}


def test_up_down_leaves_the_host_as_it_found_it(node_possible: None) -> None:
    before = host_state()
    assert before["sysctls"]["vm/overcommit_memory"] is not None
    try:
        env = node_up()
        kube = kube_env(env)
        # a pod on the pod network, so that CNI, a sandbox netns and kube-proxy's rules all exist
        run("kubectl", "apply", "-f", "-", env=kube, input=json.dumps(JOB), timeout=60)
        run("kubectl", "wait", "--for=condition=Ready", "pod", "-l", "job-name=hygiene", "--timeout=180s", env=kube)
        pod = json.loads(run("kubectl", "get", "pod", "-l", "job-name=hygiene", "-o", "json", env=kube).stdout)[
            "items"
        ][0]
        assert pod["status"]["podIP"].startswith("10.88."), pod["status"]
        during = host_state()
        # while up: still no rule in the host's tables and no host sysctl changed
        assert during["iptables"] == before["iptables"]
        assert during["iptables-save"] == before["iptables-save"]
        assert during["sysctls"] == before["sysctls"]
    finally:
        node_down()
    assert diff_state(before, host_state()) == {}
