"""Helm's `--create-namespace`: make the namespace when it is missing, and wait until pods may go in.

A brand-new namespace has no `default` ServiceAccount until the controller-manager makes one, and the
API server refuses a pod created in that moment; so `ensure` returns only once that account exists.
"""

from __future__ import annotations

import time

from ..errors import ClusterError
from .client import Kube

__all__ = ["ensure"]

SA_WAIT = 30.0  # seconds; the controller-manager usually takes well under one


def _refused(kube: Kube, namespace: str) -> ClusterError:
    return ClusterError(f"--create-namespace: user {kube.user} may not create namespaces, so namespace "
                        f"{namespace} cannot be made from here; ask your cluster admin for it, or deploy "
                        f"without --create-namespace to a namespace you may use.",
                        obj=f"namespace/{namespace}", status=403, reason="Forbidden")


def _writable(kube: Kube, namespace: str) -> bool:
    """Does the namespace exist for an identity that may not read Namespaces? A server-side dry-run
    create of a ConfigMap (which a deploy writes anyway) says so without writing anything: the API
    server answers 404 when the namespace is missing."""
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "mldeploy-probe-"}}
    try:
        kube.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=probe,
                     query={"dryRun": "All"})
        return True
    except ClusterError:
        return False


def ensure(kube: Kube, namespace: str, *, wait: float = SA_WAIT) -> bool:
    """Create `namespace` if it does not exist and wait for its default ServiceAccount.

    Returns True when this call created it. An identity that may not create namespaces gets one
    ClusterError sentence (and none when the namespace is already there, whether or not it may read it).
    """
    path = f"/api/v1/namespaces/{namespace}"
    try:
        kube.request("GET", path)
        return False
    except ClusterError as e:
        if e.status not in (403, 404):
            raise
        if e.status == 403 and _writable(kube, namespace):
            return False  # a namespaced identity: it may not read the Namespace, but it is there
    # Missing (or unknown to this identity): ask for it; 409 means it is there after all.
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    try:
        kube.request("POST", "/api/v1/namespaces", body=body, what=f"namespace/{namespace}")
    except ClusterError as e:
        if e.status == 409:
            return False
        if e.status == 403:
            raise _refused(kube, namespace) from None
        raise
    deadline = time.monotonic() + wait
    while True:
        try:
            kube.request("GET", f"{path}/serviceaccounts/default")
            return True
        except ClusterError as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise ClusterError(f"Created namespace {namespace}, but its default ServiceAccount did not "
                                   f"appear within {wait:.0f} s (is the controller-manager running?); pods "
                                   f"cannot be created there until it does.", obj=f"namespace/{namespace}",
                                   status=e.status) from None
        time.sleep(0.05)
