"""The ownership contract for Knative models, tested as an adversary would: a foreign Knative Service or
Service holding the name, a plain deploy over a Knative model, two kernels at once, a write on a stale
view and in a race, Ctrl-C in the middle of a promote, undeploy beside a look-alike. Against the sandbox
with Knative Serving's real components; nothing here is mocked but the timing of a write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import other_kernel
import pytest
from k8s_helpers import exists

from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy import rollout_knative as rk
from jupyter_mldeploy.errors import Interrupted, NotDeployed, NotOurs, StaleState
from jupyter_mldeploy.kube import apply as kapply
from jupyter_mldeploy.kube import owner
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.kube.resources import collection_path, named_path
from jupyter_mldeploy.magics.display import MLDeployFailed
from jupyter_mldeploy.spec import DeploySpec

pytestmark = [pytest.mark.sandbox, pytest.mark.knative]

V1, V2, V3 = "ghcr.io/acme/fraud:1.0", "ghcr.io/acme/fraud:2.0", "ghcr.io/acme/fraud:3.0"
API = "serving.knative.dev/v1"


def ksvc_path(ns: str, name: str = "fraud") -> str:
    return named_path(API, "Service", ns, name)


def read(kube: Kube, path: str) -> dict:
    return kube.request("GET", path)[1]


def spec(ns: str, image: str = V1, name: str = "fraud") -> DeploySpec:
    return DeploySpec(name=name, image=image, namespace=ns)


def foreign_ksvc(kube: Kube, ns: str, name: str = "fraud", **labels: str) -> dict:
    """A Knative Service someone else made (kubectl), dressed as ours: our labels and annotations."""
    body = {"apiVersion": API, "kind": "Service",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"app.kubernetes.io/managed-by": "jupyter-mldeploy",
                                    "app.kubernetes.io/instance": "fraud", **labels},
                         "annotations": {"mldeploy.io/router": "knative", "mldeploy.io/strategy": "canary",
                                         "mldeploy.io/stable-version": "1.0",
                                         "mldeploy.io/candidate-version": "2.0"}},
            "spec": {"template": {"spec": {"containers": [{"image": "dev.local/theirs:1"}]}}}}
    return kube.request("POST", collection_path(API, "Service", ns), body=body,
                        query={"fieldManager": "kubectl-create"})[1]


def unchanged(after: dict, before: dict) -> None:
    """Nobody but Knative's own controllers (status) wrote the object: same uid, generation, spec and
    metadata we could have touched."""
    for key in ("uid", "generation", "labels", "annotations"):
        assert after["metadata"].get(key) == before["metadata"].get(key), key
    assert after["metadata"].get("ownerReferences") == before["metadata"].get("ownerReferences")
    assert after["spec"] == before["spec"]


def routed(kube: Kube, ns: str, timeout: float = 30) -> dict[str, int]:
    """status.traffic once the route controller has applied the newest spec (0% tagged entries too)."""
    deadline = time.monotonic() + timeout
    while True:
        st = rk.status("fraud", namespace=ns, kube=kube)
        if st.settled:
            return st.routed
        assert time.monotonic() < deadline, f"the route never caught up: {st}"
        time.sleep(0.3)


# -- a same-named object that is not ours ---------------------------------------------------------------


def test_a_foreign_knative_service_dressed_as_ours_is_refused_and_left_alone(ip, kube, namespace):
    before = foreign_ksvc(kube, namespace)
    with pytest.raises(MLDeployFailed, match="The Knative Service fraud in namespace .* is not "
                                             "jupyter-mldeploy's .* it was left as it was"):
        ip.run_line_magic("deploy", f"fraud --image {V1} --router knative")
    # The refused first release leaves no anchor behind, so nothing claims the name afterwards either.
    assert not exists(kube, named_path("v1", "ConfigMap", namespace, "fraud.mldeploy"))
    # Its rollout annotations look like ours: every operation reads the owner, not the annotations.
    with pytest.raises(NotOurs):
        ro.set_weight("fraud", 50, namespace=namespace, kube=kube)
    with pytest.raises(NotOurs):
        ro.promote("fraud", namespace=namespace, kube=kube, wait=False)
    with pytest.raises(NotOurs):
        rk.status("fraud", namespace=namespace, kube=kube)
    with pytest.raises(MLDeployFailed):
        ip.run_line_magic("rollback", "fraud")
    with pytest.raises(MLDeployFailed, match="Nothing named fraud was deployed by jupyter-mldeploy"):
        ip.run_line_magic("undeploy", "fraud")
    assert ip.run_line_magic("mldeploy", "").knative_models == []  # not listed as a model of ours
    unchanged(read(kube, ksvc_path(namespace)), before)


def test_a_foreign_plain_service_of_that_name_is_refused_and_left_alone(kube, knative, namespace):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fraud", "namespace": namespace},
           "spec": {"ports": [{"port": 80}]}}
    before = kube.request("POST", f"/api/v1/namespaces/{namespace}/services", body=svc,
                          query={"fieldManager": "kubectl-create"})[1]
    with pytest.raises(NotOurs, match="A Service named fraud already exists .* is not jupyter-mldeploy's "
                                      r"\(it is managed by kubectl-create\)"):
        rk.deploy(spec(namespace), kube=kube, timeout=120)
    assert not exists(kube, ksvc_path(namespace))
    assert not exists(kube, named_path("v1", "ConfigMap", namespace, "fraud.mldeploy"))
    after = read(kube, named_path("v1", "Service", namespace, "fraud"))
    assert after["metadata"]["uid"] == before["metadata"]["uid"] and after["spec"] == before["spec"]


def test_a_plain_deploy_over_a_knative_model_is_refused_and_prunes_nothing(ip, kube, namespace):
    model = ip.run_line_magic("deploy", f"fraud --image {V1} --router knative")
    before = read(kube, ksvc_path(namespace))
    with pytest.raises(MLDeployFailed, match="fraud is served as a Knative Service: deploy it with "
                                             "--router knative"):
        ip.run_line_magic("deploy", f"fraud --image {V2}")
    unchanged(read(kube, ksvc_path(namespace)), before)  # not pruned, not rewritten
    assert not exists(kube, named_path("apps/v1", "Deployment", namespace, "fraud"))  # undone
    a = owner.read(kube, namespace, "fraud")
    assert [(o.kind, o.uid, o.track) for o in a.objects.values()] == [
        ("Service", before["metadata"]["uid"], None)]
    assert routed(kube, namespace) == {model.revision: 100}


# -- two kernels, a stale view, a race ---------------------------------------------------------------------

# A second kernel's Knative deploy of fraud (tests/other_kernel.py starts it, its writes held if asked).
_DEPLOY = """
    from jupyter_mldeploy import rollout_knative as rk
    from jupyter_mldeploy.spec import DeploySpec
    try:
        m = rk.deploy(DeploySpec(name="fraud", image=image, namespace=ns), kube=kube, wait=False)
        print(json.dumps({"ok": True, "revision": m.revision}), flush=True)
    except MLDeployError as e:
        print(json.dumps({"ok": False, "error": str(e), "type": type(e).__name__}), flush=True)
"""


def _kernel(cluster, ns: str, image: str, hold: str = "") -> subprocess.Popen:
    return other_kernel.start(cluster, _DEPLOY, ns, image, hold)


def test_two_kernels_deploying_at_once_one_wins_the_other_writes_nothing(cluster, kube, knative, namespace,
                                                                          tmp_path):
    go = tmp_path / "go"
    a = _kernel(cluster, namespace, V1, hold=str(go))
    try:
        assert a.stdout.readline().strip() == "WRITING"  # A holds the lease and is about to write
        b = _kernel(cluster, namespace, V2)
        out_b = json.loads(b.communicate(timeout=60)[0].splitlines()[-1])
    finally:
        go.touch()
    out_a = json.loads(a.communicate(timeout=60)[0].splitlines()[-1])
    assert out_a["ok"] is True and out_a["revision"].startswith("fraud-1-0-")
    assert out_b["ok"] is False and out_b["type"] == "StaleState"
    assert "being deployed from another kernel" in out_b["error"] and "nothing was written" in out_b["error"]
    svc = read(kube, ksvc_path(namespace))
    assert svc["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    assert svc["metadata"]["generation"] == 1  # B wrote nothing, not even a no-op
    # Once A is done, B's deploy goes through: the lease was dropped.
    assert rk.deploy(spec(namespace, V2), kube=kube, wait=False).revision.startswith("fraud-2-0-")


def test_a_weight_moved_from_a_stale_view_is_refused(cluster, kube, knative, namespace):
    rk.deploy(spec(namespace), kube=kube, timeout=120)
    seen = ro.start(spec(namespace, V2), strategy="canary", router="knative", weight=20, kube=kube,
                    timeout=120)
    # Another kernel (its own connection and caches) promotes and starts another canary.
    other = Kube(str(cluster.kubeconfig), cluster.context)
    ro.promote("fraud", namespace=namespace, kube=other, timeout=120)
    ro.start(spec(namespace, V3), strategy="canary", router="knative", weight=10, kube=other, timeout=120)
    before = read(kube, ksvc_path(namespace))
    with pytest.raises(StaleState, match=r"rollout changed since this view was read \(it is now canary "
                                         r"from 2\.0 to 3\.0, not canary from 1\.0 to 2\.0\); nothing was "
                                         r"written"):
        rk.set_weight(seen, 50)
    with pytest.raises(StaleState):
        rk.promote(seen, wait=False)
    with pytest.raises(StaleState):
        rk.abort(seen, wait=False)
    unchanged(read(kube, ksvc_path(namespace)), before)
    # By name, the rollout that is there now is the one moved.
    assert ro.set_weight("fraud", 40, namespace=namespace, kube=kube).candidate_version == "3.0"


def test_a_write_racing_another_kernels_is_refused_not_won(cluster, kube, knative, namespace, monkeypatch):
    rk.deploy(spec(namespace), kube=kube, timeout=120)
    ro.start(spec(namespace, V2), strategy="canary", router="knative", weight=20, kube=kube, timeout=120)
    other = Kube(str(cluster.kubeconfig), cluster.context)
    real = kapply.apply_all
    raced = []

    def after_our_read(k, manifests, **kw):
        # Between this kernel's read of the Service and its write, the other kernel moves the weight.
        if k is kube and not raced:
            raced.append(ro.set_weight("fraud", 70, namespace=namespace, kube=other))
        return real(k, manifests, **kw)
    monkeypatch.setattr(kapply, "apply_all", after_our_read)
    with pytest.raises(StaleState, match="changed while this operation ran .* nothing was written"):
        ro.set_weight("fraud", 50, namespace=namespace, kube=kube)
    monkeypatch.undo()
    svc = read(kube, ksvc_path(namespace))
    assert sorted(t["percent"] for t in svc["spec"]["traffic"]) == [30, 70]  # the other kernel's split
    assert svc["metadata"]["annotations"]["mldeploy.io/weight"] == "70"


# -- Ctrl-C ------------------------------------------------------------------------------------------------


def _interrupt_the_knative_write(monkeypatch) -> None:
    """Ctrl-C (a real SIGINT to this process) while the Knative Service's write is in flight."""
    real = kapply.apply_owned

    def slow(kube, manifest, anchor, **kw):
        if manifest["apiVersion"] == API:
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            time.sleep(1.0)
        return real(kube, manifest, anchor, **kw)
    monkeypatch.setattr(kapply, "apply_owned", slow)


def test_ctrl_c_during_promote_puts_the_split_back(kube, knative, namespace, monkeypatch):
    first = rk.deploy(spec(namespace), kube=kube, timeout=120)
    ro.start(spec(namespace, V2), strategy="canary", router="knative", weight=20, kube=kube, timeout=120)
    before = read(kube, ksvc_path(namespace))
    _interrupt_the_knative_write(monkeypatch)
    with pytest.raises(Interrupted) as err:
        ro.promote("fraud", namespace=namespace, kube=kube, timeout=120)
    monkeypatch.undo()
    assert isinstance(err.value, KeyboardInterrupt) and "restored ksvc/fraud" in str(err.value)
    after = read(kube, ksvc_path(namespace))
    assert after["spec"]["traffic"] == before["spec"]["traffic"]  # 80/20 again, by name and tag
    def ours(obj: dict) -> dict:
        return {k: v for k, v in obj["metadata"]["annotations"].items() if k.startswith("mldeploy.io/")}
    assert ours(after) == ours(before)
    r = ro.read("fraud", namespace=namespace, kube=kube)
    assert (r.strategy, r.weight, r.candidate_version) == ("canary", 20, "2.0")
    cand = after["metadata"]["annotations"]["mldeploy.io/candidate-revision"]
    assert routed(kube, namespace) == {first.revision: 80, cand: 20}
    ro.promote("fraud", namespace=namespace, kube=kube, timeout=120)  # and it can be done again, whole
    assert routed(kube, namespace) == {cand: 100}


def test_ctrl_c_during_a_first_knative_deploy_leaves_nothing(kube, knative, namespace, monkeypatch):
    _interrupt_the_knative_write(monkeypatch)
    with pytest.raises(Interrupted, match="deleted ksvc/fraud"):
        rk.deploy(spec(namespace), kube=kube, timeout=120)
    monkeypatch.undo()
    assert not exists(kube, ksvc_path(namespace))
    assert not exists(kube, named_path("v1", "ConfigMap", namespace, "fraud.mldeploy"))
    assert rk.deploy(spec(namespace), kube=kube, wait=False).revision  # the name is free again


# -- undeploy ----------------------------------------------------------------------------------------------


def test_undeploy_removes_the_model_and_what_knative_made_for_it_and_nothing_else(ip, kube, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1} --router knative")
    look_alike = foreign_ksvc(kube, namespace, "fraud-copy")  # our labels, instance=fraud, not ours
    gone = ip.run_line_magic("undeploy", "fraud")
    assert "ksvc/fraud" in str(gone)
    deadline = time.monotonic() + 90
    for kind in ("services", "configurations", "routes", "revisions"):
        path = f"/apis/serving.knative.dev/v1/namespaces/{namespace}/{kind}"
        while True:
            items = read(kube, path)["items"]
            names = {i["metadata"]["name"] for i in items if i["metadata"].get("labels", {}).get(
                "serving.knative.dev/service", i["metadata"]["name"]) == "fraud"}
            if not names:
                break
            assert time.monotonic() < deadline, f"{kind} of fraud left: {names}"
            time.sleep(0.5)
    unchanged(read(kube, ksvc_path(namespace, "fraud-copy")), look_alike)
    with pytest.raises(NotDeployed):
        rk.status("fraud", namespace=namespace, kube=kube)


# -- the router setting alone ------------------------------------------------------------------------------


def test_the_router_setting_alone_takes_a_knative_deploy_and_refuses_a_dry_run_that_would_write(
        ip, kube, namespace):
    import uuid

    ip.run_line_magic("config", "MLDeploy.router = 'knative'")
    for flags in ("--dry-run server", "--atomic"):
        with pytest.raises(MLDeployFailed, match=f"{flags} does not apply with the knative router"):
            ip.run_line_magic("deploy", f"fraud --image {V1} {flags}")
    assert not exists(kube, ksvc_path(namespace))
    assert not exists(kube, named_path("v1", "ConfigMap", namespace, "fraud.mldeploy"))
    # --create-namespace is kept, as for any first deploy.
    fresh = f"t-{uuid.uuid4().hex[:10]}"
    try:
        model = ip.run_line_magic("deploy", f"fraud --image {V1} -n {fresh} --create-namespace")
        assert isinstance(model, rk.KnativeModel) and f"Created namespace {fresh}." in model.notes
        assert read(kube, ksvc_path(fresh))["metadata"]["ownerReferences"][0]["name"] == "fraud.mldeploy"
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{fresh}")
