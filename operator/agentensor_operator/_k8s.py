"""The one module that imports the Kubernetes client.

The official client (37+, pydantic-generated models) is synchronous; every call here runs in a
bounded pool of its own (:data:`CONNECTION_POOL_SIZE` threads, one kept-alive connection each)
with ``_preload_content=False`` so bodies stay plain dicts (JSON in, JSON out: no model
classes, less memory). Patches are JSON merge patches.
Errors become :class:`~agentensor_operator._errors.KubernetesApiError`; a 404 on a read is
``None``. Watching is kopf's job, not this module's.
"""

from __future__ import annotations

import asyncio
import decimal
import functools
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, config
from kubernetes.utils.quantity import parse_quantity
from urllib3.exceptions import HTTPError

from agentensor_api import GROUP, VERSION

from ._errors import KubernetesApiError

JsonDict = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"

REQUEST_TIMEOUT_SECONDS = 15.0
"""Per request; the API server answers reads and writes in milliseconds, 15 s covers a
loaded control plane without letting a dead connection hang a handler."""


CONNECTION_POOL_SIZE = 16
"""Kept-alive connections to the API server, and as many worker threads for requests (a pool of
the facade's own, not asyncio's default executor): with one connection per thread no request
waits for a connection or redoes a TLS handshake. Watches are kopf's (aiohttp), so these only
carry writes and point reads; 16 in flight at ~10 ms each is over 1,000 requests/s."""


def _load_config() -> Any:
    cfg = client.Configuration()
    cfg.connection_pool_maxsize = CONNECTION_POOL_SIZE
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return cfg


class Kube:
    """Async facade over the API calls the operator makes (Jobs, ConfigMaps, custom objects).

    Requests go through the client's generic ``ApiClient`` by REST path: the typed ``*Api``
    classes would import hundreds of generated models (about 25 MB of RSS) for nothing.
    """

    def __init__(self, api_client: Any | None = None) -> None:
        self._api = api_client or client.ApiClient(_load_config())
        self._pool = ThreadPoolExecutor(max_workers=CONNECTION_POOL_SIZE, thread_name_prefix="agentensor-kube")

    def close(self) -> None:
        self._api.close()
        self._pool.shutdown(wait=False)

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
    ) -> JsonDict | None:
        def run() -> JsonDict | None:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            try:
                method_, url, headers_, body_, _ = self._api.param_serialize(
                    method=method,
                    resource_path=path,
                    query_params=list((query or {}).items()),
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                )
                response = self._api.call_api(
                    method_, url, header_params=headers_, body=body_, _request_timeout=REQUEST_TIMEOUT_SECONDS
                )
                data = response.read()
            except client.ApiException as e:
                raise KubernetesApiError(operation, int(e.status or 0), _reason(e)) from e
            except (HTTPError, OSError) as e:
                raise KubernetesApiError(operation, 0, type(e).__name__) from e
            if response.status == 404 and missing_ok:
                return None
            if response.status >= 400:
                raise KubernetesApiError(operation, int(response.status), _message(data, response.reason))
            result: JsonDict = json.loads(data) if data else {}
            return result

        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(run))

    # -- Jobs -----------------------------------------------------------------------------------

    async def create_job(self, namespace: str, body: JsonDict) -> bool:
        """Create a Job; ``False`` if one of that name exists already (409 counts as success)."""
        name = body["metadata"]["name"]
        try:
            await self._request(
                f"create Job {namespace}/{name}", "POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=body
            )
        except KubernetesApiError as e:
            if e.status == 409:
                return False
            raise
        return True

    async def list_jobs(
        self, namespaces: Sequence[str], label_selector: str, *, cached: bool = False
    ) -> list[JsonDict]:
        """Jobs matching the selector in ``namespaces`` (all namespaces when empty).

        ``cached``: ``resourceVersion=0``, served from the API server's watch cache instead of
        a quorum read from etcd (fine for a safety resync; a watch event may be a moment ahead).
        """
        query = {"labelSelector": label_selector}
        if cached:
            query["resourceVersion"] = "0"
        paths = [f"/apis/batch/v1/namespaces/{ns}/jobs" for ns in namespaces] or ["/apis/batch/v1/jobs"]
        items: list[JsonDict] = []
        for path in paths:
            data = await self._request(f"list Jobs ({path})", "GET", path, query=query)
            items.extend((data or {}).get("items") or [])
        return items

    async def patch_job(self, namespace: str, name: str, patch: JsonDict) -> None:
        await self._request(
            f"patch Job {namespace}/{name}",
            "PATCH",
            f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
            body=patch,
            content_type=MERGE_PATCH,
            missing_ok=True,
        )

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and (in the background, by the GC) its Pods; a missing Job is fine."""
        await self._request(
            f"delete Job {namespace}/{name}",
            "DELETE",
            f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
            body={"propagationPolicy": "Background"},
            missing_ok=True,
        )

    # -- ConfigMaps -----------------------------------------------------------------------------

    async def get_config_map(self, namespace: str, name: str) -> JsonDict | None:
        return await self._request(
            f"read ConfigMap {namespace}/{name}",
            "GET",
            f"/api/v1/namespaces/{namespace}/configmaps/{name}",
            missing_ok=True,
        )

    async def apply_config_map(self, namespace: str, body: JsonDict) -> None:
        """Create the ConfigMap, or merge its labels and data into the existing one."""
        name = body["metadata"]["name"]
        try:
            await self._request(
                f"create ConfigMap {namespace}/{name}", "POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body
            )
            return
        except KubernetesApiError as e:
            if e.status != 409:
                raise
        patch = {"metadata": {"labels": body["metadata"].get("labels") or {}}, "data": body.get("data") or {}}
        await self._request(
            f"patch ConfigMap {namespace}/{name}",
            "PATCH",
            f"/api/v1/namespaces/{namespace}/configmaps/{name}",
            body=patch,
            content_type=MERGE_PATCH,
        )

    # -- custom objects -------------------------------------------------------------------------

    async def get_custom(self, namespace: str, plural: str, name: str) -> JsonDict | None:
        return await self._request(
            f"read {plural} {namespace}/{name}",
            "GET",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}",
            missing_ok=True,
        )

    async def patch_status(self, namespace: str, plural: str, name: str, status: JsonDict) -> JsonDict | None:
        """Merge-patch a custom object's ``/status`` subresource; the object after the patch
        (``None`` if it is gone)."""
        return await self._request(
            f"patch {plural} {namespace}/{name} status",
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}/status",
            body={"status": status},
            content_type=MERGE_PATCH,
            missing_ok=True,
        )

    async def patch_custom(self, namespace: str, plural: str, name: str, patch: JsonDict) -> None:
        await self._request(
            f"patch {plural} {namespace}/{name}",
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}",
            body=patch,
            content_type=MERGE_PATCH,
        )


def _message(data: bytes | None, reason: str | None) -> str:
    """The API server's ``Status.message`` from an error body, else the HTTP reason."""
    try:
        body = json.loads(data) if data else {}
        return str(body.get("message") or reason or "")
    except (TypeError, ValueError, AttributeError):
        return str(reason or "")


def _reason(e: Any) -> str:
    """The API server's ``Status.message`` if the body has one, else the HTTP reason."""
    try:
        body = json.loads(e.body) if e.body else {}
        return str(body.get("message") or e.reason or "")
    except (TypeError, ValueError):
        return str(e.reason or "")


def quantity(value: str) -> decimal.Decimal:
    """A Kubernetes resource quantity (``"500m"``, ``"1Gi"``, ``"2"``) as a number of base units.

    The client's ``kubernetes.utils.quantity.parse_quantity``, kept behind this module like every
    other use of the client; pure (no API call), used by ``_decisions._jobs`` to hold runner
    requests to the chart's ``runner.maxResources``. Raises ``ValueError`` for a malformed quantity.
    """
    return decimal.Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
