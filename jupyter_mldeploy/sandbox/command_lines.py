"""The control plane's command lines: each component's flags, ports and kwok's configuration, kept
apart from the code that starts and supervises them (control_plane.py) so the flags read as one list.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from . import ports

# kube-apiserver refuses a loopback advertise address and finds none on a machine without a default
# route; an address from TEST-NET-1 (RFC 5737) with the endpoint reconciler off is never dialled.
ADVERTISE_ADDRESS = "192.0.2.10"
# Simulated pods and nodes get loopback addresses, so nothing (the API server's pod-log or
# service proxy included) ever dials an address outside this machine. The node's kubelet
# endpoint is kwok's own server on 127.0.0.1.
POD_CIDR = "127.100.0.0/16"


@dataclass(frozen=True)
class Ports:
    """The control plane's ports: MLDEPLOY_SANDBOX_PORT (the API server's) and the five above it."""

    apiserver: int
    etcd: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def from_env(cls) -> Ports:
        base = ports.base_from_env()
        return cls(**{f.name: ports.port(base, f.name) for f in fields(cls)})


def data_path(name: str) -> str:
    return str(resources.files("jupyter_mldeploy.sandbox") / "data" / name)


def kwok_config(cluster_logs: str) -> str:
    """kwok's configuration: its options, then the cluster-wide pod-log defaults, then the stages."""
    stages = (resources.files("jupyter_mldeploy.sandbox") / "data" / "stages.yaml").read_text()
    options = (
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n"
        "  podPlayStageParallelism: 8\n  nodePlayStageParallelism: 4\n  nodeLeaseParallelism: 4\n"
        "  podsOnNodeSyncParallelism: 4\n"
        # The kubelet-like endpoints the API server proxies pod logs to. A --config file without
        # this key leaves them off (405 "Debug endpoints are disabled"), whatever kwok's docs say.
        "  enableDebuggingHandlers: true\n  enableProfilingHandler: false\n"
        # Logs objects come from the API server, so a pod's log file can be named once the pod
        # exists; the cluster-wide defaults stay in this file (see pod_logs.py).
        "  enableCRDs: [Logs]\n"
    )
    return options + "---\n" + cluster_logs + "---\n" + stages


def commands(b: Path, d: Path, p: Ports, components_kc: Path, kwok_config: Path) -> dict[str, list[str]]:
    """Each component's command line: binaries in `b`, state folder `d`, ports `p`."""
    k = d / "pki"
    auth = [f"--kubeconfig={components_kc}", f"--authentication-kubeconfig={components_kc}",
            f"--authorization-kubeconfig={components_kc}", "--leader-elect=false",
            "--bind-address=127.0.0.1"]
    return {
        "etcd": [
            str(b / "etcd"), "--name=sandbox", f"--data-dir={d / 'etcd'}",
            # TLS on loopback with client certificates from etcd's own CA: another local user can
            # open the port but not the store (the API server's certificate is the only client one).
            f"--listen-client-urls=https://127.0.0.1:{p.etcd}",
            f"--advertise-client-urls=https://127.0.0.1:{p.etcd}",
            f"--cert-file={k / 'etcd.crt'}", f"--key-file={k / 'etcd.key'}",
            "--client-cert-auth", f"--trusted-ca-file={k / 'etcd-ca.crt'}",
            f"--listen-peer-urls=https://127.0.0.1:{p.etcd_peer}",
            f"--initial-advertise-peer-urls=https://127.0.0.1:{p.etcd_peer}",
            f"--initial-cluster=sandbox=https://127.0.0.1:{p.etcd_peer}",
            f"--peer-cert-file={k / 'etcd.crt'}", f"--peer-key-file={k / 'etcd.key'}",
            "--peer-client-cert-auth", f"--peer-trusted-ca-file={k / 'etcd-ca.crt'}",
            # A throwaway store: skipping fsync makes every write much faster.
            "--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
        ],
        "kube-apiserver": [
            str(b / "kube-apiserver"), f"--etcd-servers=https://127.0.0.1:{p.etcd}",
            f"--etcd-cafile={k / 'etcd-ca.crt'}", f"--etcd-certfile={k / 'apiserver-etcd-client.crt'}",
            f"--etcd-keyfile={k / 'apiserver-etcd-client.key'}",
            "--bind-address=127.0.0.1", f"--secure-port={p.apiserver}",
            f"--advertise-address={ADVERTISE_ADDRESS}", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={k / 'apiserver.crt'}", f"--tls-private-key-file={k / 'apiserver.key'}",
            f"--client-ca-file={k / 'ca.crt'}", f"--token-auth-file={k / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={k / 'sa.pub'}",
            f"--service-account-signing-key-file={k / 'sa.key'}",
            "--authorization-mode=Node,RBAC", "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true", "--event-ttl=1h", "--profiling=false",
            # Logs and exec dial a node by its address, never by a hostname a resolver would look up.
            "--kubelet-preferred-address-types=InternalIP",
            # Webhooks and aggregated APIs are dialled at their endpoints, never at a ClusterIP (no
            # kube-proxy here: a ClusterIP would leave by the default route). Knative's webhook needs it.
            "--enable-aggregator-routing=true",
        ],
        "kube-controller-manager": [
            str(b / "kube-controller-manager"), *auth, f"--secure-port={p.controller_manager}",
            f"--service-account-private-key-file={k / 'sa.key'}", f"--root-ca-file={k / 'ca.crt'}",
            "--cluster-name=mldeploy-sandbox", "--kube-api-qps=200", "--kube-api-burst=400",
            "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
            "--profiling=false",
        ],
        "kube-scheduler": [
            str(b / "kube-scheduler"), *auth, f"--secure-port={p.scheduler}",
            "--kube-api-qps=200", "--kube-api-burst=400", "--profiling=false",
        ],
        "kwok": [
            str(b / "kwok"), f"--kubeconfig={components_kc}", f"--config={kwok_config}",
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40", f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1",
            f"--node-port={p.kwok}",
            f"--server-address=127.0.0.1:{p.kwok}",
        ],
    }
