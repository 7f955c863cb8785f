"""No input to any public function produces a request outside the namespace path it names.

A property test over arbitrary strings as model names and namespaces, through the Python API, the
rollout operations and the shadow's pod-log reader. The transport records each request and answers
404 (no Kubernetes API semantics are simulated: this checks what would be sent, never what a cluster
would do). Every call either refuses with one sentence before sending anything, or sends only
requests whose path is `/api[s]/.../namespaces/<that namespace>/...` made of plain segments, plus
the cluster-scoped reads the pre-flight and discovery make (never a write there).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jupyter_mldeploy as mld
from jupyter_mldeploy import rollout, shadow
from jupyter_mldeploy.errors import MLDeployError
from jupyter_mldeploy.kube.client import Kube, check_path

CLUSTER_READS = {"/apis", "/api/v1/nodes", "/api/v1/pods", "/apis/networking.k8s.io/v1/ingressclasses"}
_NS = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")


class _Response:
    status = 404
    headers: dict = {}
    data = b'{"kind":"Status","reason":"NotFound","message":"not found"}'


class Recording(Kube):
    """A Kube whose transport records what it would send and answers 404."""

    def __init__(self) -> None:  # no kubeconfig, no connection
        self.server, self.namespace, self.context = "https://recording.invalid", "default", "recording"
        self.sent: list[tuple[str, str]] = []

    def _headers(self, content_type=None):
        return {}

    def _send(self, method, path, query, data, headers, timeout, what):
        check_path(path)  # the real transport's own check runs first, as in Kube._send
        self.sent.append((method, path))
        return _Response()


def _calls(name: str, ns: str):
    spec = {"name": name, "image": "ghcr.io/acme/churn:1.4", "namespace": ns}
    return {
        "undeploy": lambda k: mld.undeploy(name, namespace=ns, kube=k),
        "get": lambda k: mld.get(name, namespace=ns, kube=k),
        "history": lambda k: mld.history(name, namespace=ns, kube=k),
        "rollback": lambda k: mld.rollback(name, namespace=ns, kube=k),
        "deploy": lambda k: mld.deploy(mld.DeploySpec.from_dict(spec), kube=k, wait=False),
        "rollout.read": lambda k: rollout.read(name, namespace=ns, kube=k),
        "set_weight": lambda k: rollout.set_weight(name, 30, namespace=ns, kube=k),
        "promote": lambda k: rollout.promote(name, namespace=ns, kube=k),
        "abort": lambda k: rollout.abort(name, namespace=ns, kube=k),
        "live_from_pods": lambda k: shadow.live_from_pods(name, namespace=ns, kube=k),
        "shadow.compare": lambda k: shadow.compare(name, [[1.0, 2.0]], namespace=ns, kube=k, timeout=1),
    }


def _check(name: str, ns: str, which: str) -> None:
    k = Recording()
    try:
        _calls(name, ns)[which](k)
    except MLDeployError as e:
        assert "\n" not in str(e).split(" Undone:")[0]
    except (ValueError, TypeError) as e:  # a non-MLDeployError refusal must still send nothing
        assert not k.sent, (which, name, ns, e)
    for method, path in k.sent:
        if path in CLUSTER_READS:
            assert method == "GET", (method, path)
            continue
        parts = path.split("/")
        assert "namespaces" in parts, path
        i = parts.index("namespaces")
        expected = ns or k.namespace  # no namespace given: the context's, as kubectl does
        assert unquote(parts[i + 1]) == expected and _NS.fullmatch(expected) and len(expected) <= 63, path
        assert all(p not in ("", ".", "..") for p in parts[1:]), path


names = st.one_of(st.text(max_size=70), st.from_regex(r"[a-z][-a-z0-9]{0,60}", fullmatch=True),
                  st.sampled_from(["churn", "churn/../x", "churn?watch=1", "a#b", "..", "%2e%2e"]))
namespaces = st.one_of(st.text(max_size=70), st.from_regex(r"[a-z0-9][-a-z0-9]{0,62}", fullmatch=True),
                       st.sampled_from(["team-a#", "team-a/..", "team-a?x", "../kube-system", "ml",
                                        "team-a%2F..", " team-a", "team-a\n"]))


@pytest.mark.parametrize("which", list(_calls("x", "y")))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, ns=namespaces)
@example(name="\n", ns="0")  # once found by chance: live_from_pods put the name in a two-line sentence
def test_no_request_leaves_the_namespace_path(which, name, ns):
    _check(name, ns, which)


@pytest.mark.parametrize("ns", ["team-a#", "team-a/..", "team-a?x=1", "../default", "team-a%2F.."])
def test_the_issue_namespace_deletes_nothing(ns):
    """`mld.undeploy("churn", namespace="team-a#")` once sent DELETE /api/v1/namespaces/team-a."""
    k = Recording()
    with pytest.raises(MLDeployError) as err:
        mld.undeploy("churn", namespace=ns, kube=k)
    assert k.sent == [] and "not a valid name" in str(err.value)


@pytest.mark.parametrize("path", ["/api/v1/namespaces/a/../b/pods", "/api/v1/namespaces/a#/pods",
                                  "/api/v1/namespaces/A/pods", "/api/v1/namespaces/a/pods?x", "//x", "x"])
def test_the_transport_refuses_any_path_that_is_not_plain(path):
    with pytest.raises(MLDeployError):
        check_path(path)
