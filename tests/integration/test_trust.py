"""The engine's promises, tried as a hostile reviewer would, against the sandbox's real API server.

- never touches what is not ours: a same-named object of every kind we write, with and without
  conflicting fields, is left byte for byte as it was; objects carrying our labels survive undeploy;
- nothing half-deployed: a write refused half way (a real admission policy) or Ctrl-C during the
  writes leaves the previous release, or nothing at all for a first release;
- prune: what a release no longer renders goes, ours only;
- order comes from the API server: a kernel clock an hour off changes nothing;
- another kernel can carry on: two processes deploying at once, one wins and the other writes nothing;
- bad namespaces and names never reach a path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid

import other_kernel
import pytest
from k8s_helpers import exists, get, labelled

import jupyter_mldeploy as mld
from jupyter_mldeploy import labels as L
from jupyter_mldeploy.errors import ClusterError, Interrupted, NotDeployed, NotOurs, SpecError
from jupyter_mldeploy.kube import apply as kapply
from jupyter_mldeploy.kube import owner
from jupyter_mldeploy.kube.resources import collection_path, named_path
from jupyter_mldeploy.spec import DeploySpec

pytestmark = pytest.mark.sandbox

FAIL = "sandbox.mldeploy.io/fail"


def spec(name="churn", image="ghcr.io/acme/churn:1.4", **kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": name, "image": image, **kw})


def _post(kube, manifest: dict, manager: str = "kubectl-create") -> dict:
    m = manifest["metadata"]
    return kube.request("POST", collection_path(manifest["apiVersion"], manifest["kind"], m["namespace"]),
                        body=manifest, query={"fieldManager": manager})[1]


def _untouched(after: dict, before: dict) -> None:
    """What a writer owns is unchanged and we wrote nothing (controllers may write status)."""
    for part in ("spec", "data"):
        assert after.get(part) == before.get(part)
    for key in ("uid", "labels", "ownerReferences"):
        assert after["metadata"].get(key) == before["metadata"].get(key)
    theirs = {k: v for k, v in (after["metadata"].get("annotations") or {}).items()
              if not k.startswith("deployment.kubernetes.io/")}  # the Deployment controller's
    assert theirs == (before["metadata"].get("annotations") or {})
    assert not [m for m in after["metadata"].get("managedFields", []) if m["manager"] == L.FIELD_MANAGER]


def _live(kube, manifest: dict) -> dict:
    m = manifest["metadata"]
    return get(kube, named_path(manifest["apiVersion"], manifest["kind"], m["namespace"], m["name"]))


# -- foreign objects ------------------------------------------------------------------------------------

def _foreign(kind: str, ns: str, *, conflicting: bool) -> tuple[dict, DeploySpec]:
    """A same-named object someone else made (kubectl), and the spec whose deploy would write it.

    Without conflicting fields it shares no field with what we would write (the hard case: a plain
    server-side apply would merge into it silently)."""
    labels = {"team": "x"}
    meta = {"name": "h3", "namespace": ns, "labels": labels}
    if kind == "Service":  # the issue's own case: one port, no selector
        port = {"port": 80, "targetPort": 8080, "name": "http"} if conflicting else {"port": 9000}
        return ({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"ports": [port]}},
                spec("h3"))
    if kind == "Deployment":
        image = "ghcr.io/acme/churn:1.4" if conflicting else "ghcr.io/other/thing:9"
        return ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "other"}},
                         "spec": {"containers": [{"name": "other" if not conflicting else "model",
                                                  "image": image}]}}}}, spec("h3"))
    if kind == "HorizontalPodAutoscaler":
        return ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
                 "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": "h3" if conflicting else "elsewhere"},
            "minReplicas": 1, "maxReplicas": 2 if not conflicting else 10}},
            spec("h3", cpu="100m", autoscale="2:10:70"))
    if kind == "PodDisruptionBudget":
        return ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta, "spec": {
            "maxUnavailable": 1, "selector": {"matchLabels": {"app": "other"}}}}, spec("h3", replicas=2))
    if kind == "Ingress":
        host = "h3.example" if conflicting else "elsewhere.example"
        return ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": {
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "other", "port": {"number": 80}}}}]}}]}},
            spec("h3", expose="ingress", host="h3.example"))
    if kind == "HTTPRoute":
        return ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
                 "spec": {
            "hostnames": ["h3.example" if conflicting else "other.example"],
            "rules": [{"backendRefs": [{"name": "other", "port": 80}]}]}},
            spec("h3", expose="gateway", host="h3.example", gateway="infra/public"))
    if kind == "ConfigMap":  # the anchor's own name
        return ({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {**meta, "name": owner.anchor_name("h3")},
                 "data": {"revision": "7"} if conflicting else {"notes": "mine"}}, spec("h3"))
    raise AssertionError(kind)


KINDS = ["Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "HTTPRoute",
         "ConfigMap"]


@pytest.mark.parametrize("conflicting", [False, True], ids=["no-conflicting-field", "conflicting-fields"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_foreign_object_of_every_kind_is_never_changed(kube, namespace, kind, conflicting):
    theirs, s = _foreign(kind, namespace, conflicting=conflicting)
    before = _post(kube, theirs)
    with pytest.raises((NotOurs, ClusterError)) as err:  # the anchor's name: an MLDeployError, see below
        mld.deploy(s, namespace=namespace, kube=kube, wait=False)
    text = str(err.value)
    assert "left as it was" in text and "\n" not in text
    if kind != "ConfigMap":
        assert "kubectl-create" in text  # who manages it
    _untouched(_live(kube, theirs), before)
    # Nothing of ours stays beside it (the foreign object keeps its own labels only).
    assert labelled(kube, namespace, "h3") == []
    # Undeploy has nothing to remove, and removes nothing.
    with pytest.raises(NotDeployed):
        mld.undeploy("h3", namespace=namespace, kube=kube)
    _untouched(_live(kube, theirs), before)


def test_the_anchor_name_taken_is_one_sentence(kube, namespace):
    theirs, s = _foreign("ConfigMap", namespace, conflicting=False)
    _post(kube, theirs)
    with pytest.raises(mld.MLDeployError) as err:
        mld.deploy(s, namespace=namespace, kube=kube, wait=False)
    assert "is not jupyter-mldeploy's anchor for h3" in str(err.value)


def test_objects_carrying_our_labels_survive_undeploy(kube, namespace):
    mld.deploy(spec(replicas=2), namespace=namespace, kube=kube, timeout=120)
    ours_looking = {L.APP_INSTANCE: "churn", L.APP_MANAGED_BY: L.MANAGED_BY, L.TRACK: "canary"}
    cm = _post(kube, {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "churn-notes", "namespace": namespace, "labels": ours_looking}})
    dep = _post(kube, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "churn-canary", "namespace": namespace, "labels": ours_looking}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "x"}},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "x",
                                                                                   "image": "x:1"}]}}}})
    gone = mld.undeploy("churn", namespace=namespace, kube=kube)
    assert "deployment/churn" in gone and "deployment/churn-canary" not in gone
    assert get(kube, named_path("v1", "ConfigMap", namespace, "churn-notes"))["metadata"]["uid"] == \
        cm["metadata"]["uid"]
    assert get(kube, named_path("apps/v1", "Deployment", namespace, "churn-canary"))["metadata"]["uid"] == \
        dep["metadata"]["uid"]
    assert labelled(kube, namespace, "churn") == ["configmap/churn-notes", "deployment/churn-canary"]


def test_a_same_named_object_made_again_by_someone_else_is_not_taken_over(kube, namespace):
    """Ours by uid, not by name: our Service deleted and made again by kubectl is theirs now."""
    mld.deploy(spec(), namespace=namespace, kube=kube, timeout=120)
    kube.request("DELETE", named_path("v1", "Service", namespace, "churn"))
    for _ in range(50):
        if not exists(kube, named_path("v1", "Service", namespace, "churn")):
            break
        time.sleep(0.1)
    theirs = _post(kube, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "churn",
                                                                             "namespace": namespace},
                          "spec": {"ports": [{"port": 9000}]}})
    with pytest.raises(NotOurs):
        mld.deploy(spec(image="ghcr.io/acme/churn:1.5"), namespace=namespace, kube=kube, wait=False)
    _untouched(get(kube, named_path("v1", "Service", namespace, "churn")), theirs)
    dep = get(kube, named_path("apps/v1", "Deployment", namespace, "churn"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"  # undone
    gone = mld.undeploy("churn", namespace=namespace, kube=kube)
    assert "deployment/churn" in gone
    assert get(kube, named_path("v1", "Service", namespace, "churn"))["metadata"]["uid"] == \
        theirs["metadata"]["uid"]


def test_undo_after_kubectl_edit_treats_our_object_as_ours(kube, namespace):
    mld.deploy(spec(), namespace=namespace, kube=kube, timeout=120)
    # `kubectl edit` / `kubectl set image`: another manager now writes fields of our Deployment.
    kube.request("PATCH", named_path("apps/v1", "Deployment", namespace, "churn"),
                 body={"metadata": {"annotations": {"edited-by": "platform"}}},
                 content_type="application/merge-patch+json", query={"fieldManager": "kubectl-edit"})
    _post(kube, _foreign("HTTPRoute", namespace, conflicting=False)[0] | {
        "metadata": {"name": "churn", "namespace": namespace}})
    with pytest.raises(NotOurs) as err:
        mld.deploy(spec(image="ghcr.io/acme/churn:2.0", expose="gateway", host="churn.example",
                        gateway="infra/public"), namespace=namespace, kube=kube, wait=False)
    assert "restored deployment/churn" in str(err.value)
    dep = get(kube, named_path("apps/v1", "Deployment", namespace, "churn"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"
    assert dep["metadata"]["annotations"]["edited-by"] == "platform"  # their field kept


# -- a write refused half way, by a real admission policy -----------------------------------------------

@pytest.fixture
def deny_pdbs(kube, namespace):
    """A ValidatingAdmissionPolicy that makes the API server refuse PodDisruptionBudgets here."""
    name = f"deny-pdb-{uuid.uuid4().hex[:6]}"
    base = "/apis/admissionregistration.k8s.io/v1"
    kube.request("POST", f"{base}/validatingadmissionpolicies", body={
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name}, "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["policy"], "apiVersions": ["v1"],
                                                    "operations": ["CREATE", "UPDATE"],
                                                    "resources": ["poddisruptionbudgets"]}]},
            "validations": [{"expression": "false",
                             "message": "PodDisruptionBudgets are not allowed here"}]}})
    kube.request("POST", f"{base}/validatingadmissionpolicybindings", body={
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name}, "spec": {
            "policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": namespace}}}}})
    probe = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": "probe", "namespace": namespace},
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"x": "y"}}}}
    for _ in range(100):  # the policy takes effect once the API server's informer has it
        try:
            _post(kube, probe)
            kube.request("DELETE", named_path("policy/v1", "PodDisruptionBudget", namespace, "probe"))
            time.sleep(0.1)
        except ClusterError as e:
            if "not allowed here" in str(e):
                break
            raise
    else:
        pytest.fail("the admission policy never took effect")
    yield
    kube.request("DELETE", f"{base}/validatingadmissionpolicybindings/{name}")
    kube.request("DELETE", f"{base}/validatingadmissionpolicies/{name}")


def test_first_release_refused_half_way_leaves_nothing(kube, namespace, deny_pdbs):
    with pytest.raises(ClusterError) as err:
        mld.deploy(spec(replicas=2, expose="ingress", host="churn.example"), namespace=namespace, kube=kube,
                   wait=False)
    assert "not allowed here" in str(err.value) and "deleted deployment/churn" in str(err.value)
    assert labelled(kube, namespace, "churn") == []
    assert not exists(kube, named_path("v1", "ConfigMap", namespace, owner.anchor_name("churn")))


def test_later_release_refused_half_way_puts_the_previous_back(kube, namespace, deny_pdbs):
    mld.deploy(spec(), namespace=namespace, kube=kube, timeout=120)
    with pytest.raises(ClusterError):
        mld.deploy(spec(image="ghcr.io/acme/churn:1.5", replicas=2, env={"STAGE": "prod"}),
                   namespace=namespace, kube=kube, wait=False)
    dep = get(kube, named_path("apps/v1", "Deployment", namespace, "churn"))
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "ghcr.io/acme/churn:1.4" and "env" not in c
    # The lease is gone: the next deploy goes through at once.
    d = mld.deploy(spec(image="ghcr.io/acme/churn:1.6"), namespace=namespace, kube=kube, wait=False)
    assert d.changed and not d.first_release


# -- prune ---------------------------------------------------------------------------------------------

def test_a_redeploy_prunes_what_it_no_longer_renders(kube, namespace):
    mld.deploy(spec(cpu="100m", autoscale="2:5:70", expose="ingress", host="churn.example"),
               namespace=namespace, kube=kube, wait=False)
    assert exists(kube, named_path("networking.k8s.io/v1", "Ingress", namespace, "churn"))
    assert exists(kube, named_path("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "churn"))
    assert exists(kube, named_path("policy/v1", "PodDisruptionBudget", namespace, "churn"))
    foreign = _post(kube, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
        "name": "churn-extra", "namespace": namespace, "labels": {L.APP_INSTANCE: "churn",
                                                                  L.APP_MANAGED_BY: L.MANAGED_BY}},
        "spec": {"defaultBackend": {"service": {"name": "churn", "port": {"number": 80}}}}})
    d = mld.deploy(spec(replicas=1), namespace=namespace, kube=kube, wait=False)
    assert set(d.pruned) == {"ingress/churn", "horizontalpodautoscaler/churn", "poddisruptionbudget/churn"}
    assert "removed, no longer in the spec: " in str(d) and "ingress/churn" in d._repr_html_()
    for kind, api in (("Ingress", "networking.k8s.io/v1"), ("HorizontalPodAutoscaler", "autoscaling/v2"),
                      ("PodDisruptionBudget", "policy/v1")):
        assert not exists(kube, named_path(api, kind, namespace, "churn"))
    _untouched(get(kube, named_path("networking.k8s.io/v1", "Ingress", namespace, "churn-extra")), foreign)


# -- server-side order ---------------------------------------------------------------------------------

@pytest.mark.parametrize("skew", [-3600, 3600], ids=["clock-an-hour-behind", "clock-an-hour-ahead"])
def test_a_kernel_clock_an_hour_off_changes_nothing(kube, namespace, monkeypatch, skew):
    mld.deploy(spec(), namespace=namespace, kube=kube, timeout=120)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + skew)
    failing = spec(image="ghcr.io/acme/churn:1.5", labels={FAIL: "crash-loop"})
    with pytest.raises(mld.RolloutFailed) as err:
        mld.deploy(failing, namespace=namespace, kube=kube, timeout=60, atomic=True)
    assert "previous release (revision 1) was put back" in str(err.value)
    dep = get(kube, named_path("apps/v1", "Deployment", namespace, "churn"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"
    records = get(kube, collection_path("v1", "Secret", namespace),
                  labelSelector=f"{L.APP_INSTANCE}=churn,mldeploy.io/record=release")["items"]
    assert sorted(r["metadata"]["name"] for r in records) == [
        "churn.release.v1", "churn.release.v2", "churn.release.v3"]
    assert mld.history("churn", namespace=namespace, kube=kube)[-1].current


def test_atomic_first_release_is_removed_whole(kube, namespace):
    with pytest.raises(mld.RolloutFailed) as err:
        mld.deploy(spec(labels={FAIL: "crash-loop"}, replicas=2), namespace=namespace, kube=kube,
                   timeout=60, atomic=True)
    assert "it was the first release, so it was removed" in str(err.value)
    assert labelled(kube, namespace, "churn") == []


def test_records_are_secrets_and_the_anchor_holds_no_values(kube, namespace):
    mld.deploy(spec(env={"DB_PASSWORD": "hunter2"}), namespace=namespace, kube=kube, wait=False)
    cms = get(kube, collection_path("v1", "ConfigMap", namespace), labelSelector=f"{L.APP_INSTANCE}=churn")
    assert [c["metadata"]["name"] for c in cms["items"]] == [owner.anchor_name("churn")]
    assert "hunter2" not in json.dumps(cms)
    record = get(kube, named_path("v1", "Secret", namespace, "churn.release.v1"))
    assert record["type"] == "mldeploy.io/release.v1"
    assert record["metadata"]["ownerReferences"][0]["name"] == owner.anchor_name("churn")


# -- two kernels -----------------------------------------------------------------------------------------

# A second kernel's deploy of churn (tests/other_kernel.py starts it, with its writes held if asked).
_DEPLOY = """
    import jupyter_mldeploy as mld
    try:
        d = mld.deploy(mld.DeploySpec.from_dict({"name": "churn", "image": image}), namespace=ns,
                       kube=kube, wait=False)
        print(json.dumps({"ok": True, "revision": d.revision}), flush=True)
    except MLDeployError as e:
        print(json.dumps({"ok": False, "error": str(e), "type": type(e).__name__}), flush=True)
"""


def _kernel(cluster, ns: str, image: str, hold: str = "") -> subprocess.Popen:
    return other_kernel.start(cluster, _DEPLOY, ns, image, hold)


def test_two_kernels_deploying_at_once_one_wins_the_other_writes_nothing(cluster, kube, namespace,
                                                                          tmp_path):
    go = tmp_path / "go"
    a = _kernel(cluster, namespace, "ghcr.io/acme/churn:1.4", hold=str(go))
    try:
        assert a.stdout.readline().strip() == "WRITING"  # A holds the lease and is about to write
        b = _kernel(cluster, namespace, "ghcr.io/acme/churn:9.9")
        out_b = json.loads(b.communicate(timeout=60)[0].splitlines()[-1])
    finally:
        go.touch()
    out_a = json.loads(a.communicate(timeout=60)[0].splitlines()[-1])
    assert out_a == {"ok": True, "revision": 1}
    assert out_b["ok"] is False and out_b["type"] == "StaleState"
    assert "being deployed from another kernel" in out_b["error"] and "nothing was written" in out_b["error"]
    dep = get(kube, named_path("apps/v1", "Deployment", namespace, "churn"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"
    assert not exists(kube, named_path("v1", "Secret", namespace, "churn.release.v2"))


def test_a_kernel_with_an_old_cache_acts_on_what_the_cluster_holds(cluster, kube, namespace):
    mld.deploy(spec(expose="ingress", host="churn.example"), namespace=namespace, kube=kube, wait=False)
    # Kernel B deploys a new release (and drops the exposure) behind this kernel's back.
    b = _kernel(cluster, namespace, "ghcr.io/acme/churn:2.0")
    assert json.loads(b.communicate(timeout=60)[0].splitlines()[-1]) == {"ok": True, "revision": 2}
    assert not exists(kube, named_path("networking.k8s.io/v1", "Ingress", namespace, "churn"))
    # This kernel's cached anchor is old; its next deploy reads the anchor again and goes on from there.
    d = mld.deploy(spec(image="ghcr.io/acme/churn:3.0"), namespace=namespace, kube=kube, wait=False)
    assert d.revision == 3 and d.changed


# -- Ctrl-C while writing -----------------------------------------------------------------------------------

def _interrupt_during_writes(monkeypatch, slow_kind: str = "Service") -> None:
    """Ctrl-C (a real SIGINT to this process) while the writes are in flight: one write is slow."""
    real = kapply.apply_owned

    def slow(kube, manifest, anchor, **kw):
        if manifest["kind"] == slow_kind:
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            time.sleep(1.0)
        return real(kube, manifest, anchor, **kw)
    monkeypatch.setattr(kapply, "apply_owned", slow)


def test_ctrl_c_during_a_first_release_leaves_nothing(kube, namespace, monkeypatch):
    _interrupt_during_writes(monkeypatch)
    with pytest.raises(Interrupted) as err:
        mld.deploy(spec(replicas=2), namespace=namespace, kube=kube, wait=False)
    assert isinstance(err.value, KeyboardInterrupt) and "deleted deployment/churn" in str(err.value)
    monkeypatch.undo()
    assert labelled(kube, namespace, "churn") == []


def test_ctrl_c_during_a_later_release_puts_the_previous_back(kube, namespace, monkeypatch):
    mld.deploy(spec(), namespace=namespace, kube=kube, timeout=120)
    _interrupt_during_writes(monkeypatch)
    with pytest.raises(Interrupted) as err:
        mld.deploy(spec(image="ghcr.io/acme/churn:1.5", expose="ingress", host="churn.example"),
                   namespace=namespace, kube=kube, wait=False)
    assert "restored deployment/churn" in str(err.value) and "deleted ingress/churn" in str(err.value)
    monkeypatch.undo()
    dep = get(kube, named_path("apps/v1", "Deployment", namespace, "churn"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"
    assert not exists(kube, named_path("networking.k8s.io/v1", "Ingress", namespace, "churn"))
    again = mld.deploy(spec(image="ghcr.io/acme/churn:1.6"), namespace=namespace, kube=kube, wait=False)
    assert again.changed


def test_ctrl_c_as_the_claim_returns_does_not_lock_this_kernel_out(kube, namespace, monkeypatch):
    """The revision was claimed on the server, but the answer never reached this kernel."""
    mld.deploy(spec(), namespace=namespace, kube=kube, wait=False)
    real = owner.claim

    def claimed_then_interrupted(*a, **kw):
        real(*a, **kw)
        raise KeyboardInterrupt
    monkeypatch.setattr(owner, "claim", claimed_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        mld.deploy(spec(image="ghcr.io/acme/churn:1.5"), namespace=namespace, kube=kube, wait=False)
    monkeypatch.undo()
    dep = get(kube, named_path("apps/v1", "Deployment", namespace, "churn"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"
    again = mld.deploy(spec(image="ghcr.io/acme/churn:1.6"), namespace=namespace, kube=kube, wait=False)
    assert "deployment/churn" in again.changed and not again.first_release


# -- deploy_many: all or none, updates included -----------------------------------------------------------

def test_deploy_many_all_or_none_for_updates(kube, namespace):
    mld.deploy_many([spec(name="a"), spec(name="b")], namespace=namespace, kube=kube)
    _post(kube, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
        "name": "b", "namespace": namespace}, "spec": {"defaultBackend": {"service": {
            "name": "x", "port": {"number": 80}}}}})
    with pytest.raises(NotOurs) as err:
        mld.deploy_many([spec(name="a", image="ghcr.io/acme/churn:2.0"),
                         spec(name="b", image="ghcr.io/acme/churn:2.0", expose="ingress", host="b.example")],
                        namespace=namespace, kube=kube)
    assert "wrote none of a, b" in str(err.value) and "restored deployment/a" in str(err.value)
    for name in ("a", "b"):
        dep = get(kube, named_path("apps/v1", "Deployment", namespace, name))
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"


# -- names and namespaces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["#", "/..", "?x=1", "/../../default", " ", "%2F.."])
def test_a_bad_namespace_never_reaches_a_path(kube, namespace, suffix):
    mld.deploy(spec(), namespace=namespace, kube=kube, wait=False)
    for call in (lambda ns: mld.undeploy("churn", namespace=ns, kube=kube),
                 lambda ns: mld.get("churn", namespace=ns, kube=kube),
                 lambda ns: mld.history("churn", namespace=ns, kube=kube),
                 lambda ns: mld.deploy(spec(), namespace=ns, kube=kube, wait=False)):
        with pytest.raises(SpecError) as err:
            call(namespace + suffix)
        assert "\n" not in str(err.value)
    assert get(kube, f"/api/v1/namespaces/{namespace}")["status"]["phase"] == "Active"
    assert exists(kube, named_path("apps/v1", "Deployment", namespace, "churn"))

