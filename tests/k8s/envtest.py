"""A real Kubernetes API server for tests, in the style of controller-runtime's envtest.

`EnvTest` runs etcd, kube-apiserver and kube-controller-manager (Kubernetes 1.20.2) as local
processes on free ports of 127.0.0.1, writes an admin kubeconfig, and stops every process it
started, by PID, on `stop()`. Nothing schedules or runs Pods; pair it with
`tests.k8s.node_agent.NodeAgent` when a test needs Jobs to complete (import both by package
path: ``from tests.k8s.envtest import EnvTest``).

The binaries come from ``hack/envtest-assets.sh``: ``$KUBEBUILDER_ASSETS`` if it holds them,
else a cache outside the repository, else a build from Debian's source package (minutes, once).
See /work/shared/ENVTEST.md for the recipe and the version caveats (no CEL validation rules).

Usage::

    with EnvTest() as env:
        env.kubectl("create", "namespace", "demo")
"""

from __future__ import annotations

import atexit
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from tests._wait import WaitTimeout, wait_for

__all__ = ["EnvTest", "EnvTestError", "KubectlError", "resolve_assets"]

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSETS_SCRIPT = REPO_ROOT / "hack" / "envtest-assets.sh"
DEFAULT_KUBECTL = "/usr/bin/kubectl"

CONTROLLERS = (
    "job",
    "garbagecollector",
    "namespace",
    "serviceaccount",
    "serviceaccount-token",
    "ttl-after-finished",
)
"""Controllers kube-controller-manager runs: enough for Jobs, owner-reference GC, namespace
deletion and the default ServiceAccount (without which the Job controller cannot create Pods)."""


class EnvTestError(RuntimeError):
    """The control plane could not be provided or started; the message names the log to read."""


class KubectlError(subprocess.CalledProcessError):
    """`kubectl` exited non-zero; unlike the base class, the message includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}"


def resolve_assets(script: Path = ASSETS_SCRIPT, timeout_seconds: float = 3600.0) -> Path:
    """Run ``hack/envtest-assets.sh`` and return the folder it prints (its last stdout line).

    The first call on a machine may build Kubernetes (about 4 minutes on 2 cores); hence the
    generous default timeout of one hour. The script's progress log goes to this process's stderr.
    """
    try:
        done = subprocess.run(
            ["bash", str(script)],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=timeout_seconds,
        )
    except subprocess.CalledProcessError as e:
        raise EnvTestError(f"{script} failed with exit code {e.returncode}; see its stderr") from e
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise EnvTestError(f"{script} printed no assets folder")
    return Path(lines[-1])


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class EnvTest:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, as a context manager.

    After `start()`: `kubeconfig` is an admin kubeconfig file (token in ``system:masters``),
    `server` the API URL, `token` the bearer token, and `logdir` holds one log file per process.
    The API server's serving certificate is signed by a throwaway CA that the kubeconfig trusts.
    """

    def __init__(
        self,
        *,
        assets_dir: Path | None = None,
        ready_timeout_seconds: float = 90.0,
        service_account_timeout_seconds: float = 60.0,
        stop_timeout_seconds: float = 10.0,
        kubectl_binary: str = DEFAULT_KUBECTL,
    ) -> None:
        """Configure, without starting anything.

        Args:
            assets_dir: folder with the three binaries; default: run ``hack/envtest-assets.sh``.
            ready_timeout_seconds: how long to wait for ``/readyz``; it usually answers in about
                10 s, 90 s leaves room for a loaded 2-core machine.
            service_account_timeout_seconds: how long to wait for the "default" ServiceAccount
                and its token Secret in namespace "default" (a few seconds normally).
            stop_timeout_seconds: per process, how long `stop()` waits after SIGTERM before SIGKILL.
            kubectl_binary: the kubectl used by `kubectl()`.
        """
        self._assets_dir = assets_dir
        self._ready_timeout_seconds = ready_timeout_seconds
        self._service_account_timeout_seconds = service_account_timeout_seconds
        self._stop_timeout_seconds = stop_timeout_seconds
        self._kubectl_binary = kubectl_binary
        self._processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._argvs: dict[str, list[str]] = {}
        self._tmpdir: Path | None = None
        self._server: str | None = None
        self._token = secrets.token_hex(16)
        self._ssl_context: ssl.SSLContext | None = None
        self.start_seconds: float | None = None
        """Wall-clock seconds the last `start()` took (assets resolution included)."""

    # ----------------------------------------------------------------------------- properties

    @property
    def server(self) -> str:
        """The API server URL, e.g. ``https://127.0.0.1:34567``."""
        if self._server is None:
            raise EnvTestError("EnvTest is not started")
        return self._server

    @property
    def token(self) -> str:
        """The admin bearer token (member of ``system:masters``)."""
        return self._token

    @property
    def tmpdir(self) -> Path:
        """The temporary folder holding data, certificates, logs and the kubeconfig."""
        if self._tmpdir is None:
            raise EnvTestError("EnvTest is not started")
        return self._tmpdir

    @property
    def kubeconfig(self) -> Path:
        """Path of the admin kubeconfig file."""
        return self.tmpdir / "kubeconfig"

    @property
    def logdir(self) -> Path:
        """Folder with ``etcd.log``, ``kube-apiserver.log`` and ``kube-controller-manager.log``."""
        return self.tmpdir / "logs"

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signed the API server's serving certificate."""
        return self.tmpdir / "certs" / "ca.crt"

    # ------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> EnvTest:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> EnvTest:
        """Start the control plane; return once the API server is ready and the "default"
        ServiceAccount (with its token) exists. On failure, stop what was started and raise."""
        if self._tmpdir is not None:
            raise EnvTestError("EnvTest is already started")
        began = time.monotonic()
        assets = self._assets_dir or resolve_assets()
        self._tmpdir = Path(tempfile.mkdtemp(prefix="agentensor-envtest-"))
        atexit.register(self.stop)
        try:
            self._start(assets)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _start(self, assets: Path) -> None:
        tmp = self.tmpdir
        certs = tmp / "certs"
        certs.mkdir()
        self.logdir.mkdir()
        self._make_certificates(certs)
        (tmp / "tokens.csv").write_text(f"{self._token},admin,admin,system:masters\n")

        etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            "etcd",
            [
                str(assets / "etcd"),
                f"--data-dir={tmp / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(assets / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--secure-port={api_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--cert-dir={certs}",
                f"--tls-cert-file={certs / 'apiserver.crt'}",
                f"--tls-private-key-file={certs / 'apiserver.key'}",
                f"--token-auth-file={tmp / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={certs / 'sa.crt'}",
                f"--service-account-signing-key-file={certs / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
            ],
        )
        self._server = f"https://127.0.0.1:{api_port}"
        self._write_kubeconfig()
        self._ssl_context = ssl.create_default_context(cafile=str(self.ca_file))
        self._wait_until(
            lambda: self._get("/readyz") == 200,
            self._ready_timeout_seconds,
            "kube-apiserver /readyz",
        )
        self._spawn(
            "kube-controller-manager",
            [
                str(assets / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--service-account-private-key-file={certs / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                "--secure-port=0",
                "--port=0",
            ],
        )
        self._wait_until(
            self._default_service_account_ready,
            self._service_account_timeout_seconds,
            'ServiceAccount "default" with a token in namespace "default"',
        )

    def stop(self) -> None:
        """Kill every process this instance started (SIGTERM, then SIGKILL) and delete its
        temporary folder. Safe to call twice, and called at interpreter exit as a last resort."""
        while self._processes:
            _name, proc = self._processes.pop()  # reverse start order: etcd goes last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self._stop_timeout_seconds)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self._server = None
        atexit.unregister(self.stop)

    def restart_apiserver(self, down_seconds: float = 0.0) -> float:
        """Stop kube-apiserver (SIGTERM, then SIGKILL after ``stop_timeout_seconds``), keep etcd and
        kube-controller-manager running, wait ``down_seconds``, and start it again with the same
        port, certificates and token; return once ``/readyz`` answers.

        Returns the seconds from the stop signal to ``/readyz`` (the outage clients saw).
        Raises `EnvTestError` if it is not ready within ``ready_timeout_seconds``.
        """
        index = next(i for i, (name, _) in enumerate(self._processes) if name == "kube-apiserver")
        _name, proc = self._processes[index]
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self._stop_timeout_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        time.sleep(down_seconds)
        self._spawn("kube-apiserver", self._argvs["kube-apiserver"])
        self._processes[index] = self._processes.pop()  # in the old one's place: etcd still stops last
        self._wait_until(lambda: self._get("/readyz") == 200, self._ready_timeout_seconds, "kube-apiserver /readyz")
        return time.monotonic() - began

    # -------------------------------------------------------------------------------- kubectl

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,  # the name subprocess.run uses
        timeout_seconds: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl --kubeconfig=<ours> *args``, capturing text stdout and stderr.

        Raises `KubectlError` (whose message includes stderr) on a non-zero exit if `check`.
        """
        argv = [self._kubectl_binary, f"--kubeconfig={self.kubeconfig}", *args]
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
        if check and done.returncode != 0:
            raise KubectlError(done.returncode, argv, done.stdout, done.stderr)
        return done

    # -------------------------------------------------------------------------------- helpers

    def _make_certificates(self, certs: Path) -> None:
        """A CA, a serving certificate for 127.0.0.1/localhost, and the service-account key pair."""
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=agentensor-envtest-ca",
            cwd=certs,
        )  # fmt: skip
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-CA", "ca.crt", "-CAkey", "ca.key",
            "-keyout", "apiserver.key", "-out", "apiserver.crt", "-subj", "/CN=kube-apiserver",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth",
            cwd=certs,
        )  # fmt: skip
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "sa.key", "-out", "sa.crt", "-subj", "/CN=service-accounts",
            cwd=certs,
        )  # fmt: skip

    def _write_kubeconfig(self) -> None:
        # JSON is valid YAML, and kubectl and the Python client both read it.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self._token}}],
            "contexts": [
                {
                    "name": "envtest",
                    "context": {"cluster": "envtest", "user": "admin", "namespace": "default"},
                }
            ],
            "current-context": "envtest",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))
        self.kubeconfig.chmod(0o600)

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        self._argvs[name] = list(argv)
        log = (self.logdir / f"{name}.log").open("ab")  # appended: a restarted process keeps the log
        with log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmpdir,
                start_new_session=True,  # a Ctrl-C in the terminal is not forwarded to it
            )
        self._processes.append((name, proc))

    def _check_processes(self) -> None:
        for name, proc in self._processes:
            if proc.poll() is not None:
                log = self.logdir / f"{name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise EnvTestError(f"{name} exited with code {proc.returncode}; {log}:\n{tail}")

    def _request(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.server + path, headers={"Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=5, context=self._ssl_context) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, b""

    def _get(self, path: str) -> int:
        return self._request(path)[0]

    def _default_service_account_ready(self) -> bool:
        status, body = self._request("/api/v1/namespaces/default/serviceaccounts/default")
        # Kubernetes 1.20 admission refuses Pods until the ServiceAccount's token Secret exists.
        return status == 200 and bool(json.loads(body).get("secrets"))

    def _wait_until(self, ready: Callable[[], bool], timeout_seconds: float, what: str) -> None:
        try:
            wait_for(ready, timeout_seconds, what, interval=0.25, alive=self._check_processes)
        except WaitTimeout as e:
            raise EnvTestError(f"{e}; logs in {self.logdir}") from e
