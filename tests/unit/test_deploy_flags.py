"""%deploy flags added for a newcomer's first steps: --create-namespace, the startup probe, exposure
(TLS, cert-manager, Ingress-only annotations, Service type). Pure: parsing, spec rules and rendering;
the API server's verdict on the same objects is in tests/integration.
"""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from jupyter_mldeploy.magics import args

IMAGE = "ghcr.io/acme/churn:1.4"


def deploy(line: str, cell: str | None = None) -> args.DeployRequest:
    return args.parse_deploy(line, cell, {})


def usage(line: str, cell: str | None = None) -> str:
    with pytest.raises(UsageError) as e:
        args.parse_deploy(line, cell, {})
    text = str(e.value)
    assert text and "\n" not in text and text.endswith((".", "?")), text
    return text


# -- --create-namespace ------------------------------------------------------------------------------


def test_create_namespace_is_off_unless_asked():
    assert deploy(f"churn --image {IMAGE}").create_namespace is False
    assert deploy(f"churn --image {IMAGE} --namespace ml --create-namespace").create_namespace is True


@pytest.mark.parametrize(("line", "words"), [
    (f"churn --image {IMAGE} --strategy canary --create-namespace",
     "--create-namespace is for a first deploy: a canary rollout starts beside the deployed stable model"),
    (f"churn --image {IMAGE} --strategy shadow --mirror 5 --create-namespace", "drop --create-namespace."),
    (f"churn --image {IMAGE} --panel --create-namespace",
     "drop --dry-run, -o, --atomic and --create-namespace"),
    (f"churn --image {IMAGE} --create-namespaces", "has no option --create-namespaces (did you mean "
                                                   "--create-namespace?)"),
])
def test_create_namespace_refusals_are_one_sentence(line, words):
    assert words in usage(line)


def test_create_namespace_is_in_the_help():
    assert "--create-namespace" in args.deploy.__doc__ and "Helm" in args.deploy.__doc__


# -- the startup probe -------------------------------------------------------------------------------


def _container(spec):
    from jupyter_mldeploy.render import render

    return render(spec, "ml")[0]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(("timeout", "window"), [("15m", 900), ("90s", 90), ("1h", 3600), ("7", 7),
                                                 (None, 600), ("61", 61)])
def test_startup_probe_covers_the_window(timeout, window):
    line = f"llm --image {IMAGE} --startup /v2/health/ready"
    line += f" --startup-timeout {timeout}" if timeout else ""
    spec = deploy(line).spec
    probe = _container(spec)["startupProbe"]
    assert probe["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    covered = probe["initialDelaySeconds"] + probe["failureThreshold"] * probe["periodSeconds"]
    assert window <= covered < window + probe["periodSeconds"]  # the whole window, not a period more
    assert spec.startup_window == window


def test_startup_probe_round_trips_through_the_release_record():
    from jupyter_mldeploy.spec import DeploySpec

    for body in ({"startup": "/health", "startup_timeout": "15m"},
                 {"startup": {"path": "/health", "period": 30, "initial_delay": 60}, "startup_timeout": 900},
                 {"startup": {"period": 5}}):
        spec = DeploySpec.from_dict({"name": "llm", "image": IMAGE, **body})
        assert DeploySpec.from_dict(spec.to_dict()) == spec
    slow = {"path": "/h", "initial_delay": 60, "period": 30}
    spec = DeploySpec.from_dict({"name": "llm", "image": IMAGE, "startup": slow, "startup_timeout": 900})
    probe = _container(spec)["startupProbe"]
    assert (probe["initialDelaySeconds"], probe["periodSeconds"], probe["failureThreshold"]) == (60, 30, 28)


def test_no_startup_probe_unless_asked():
    assert "startupProbe" not in _container(deploy(f"churn --image {IMAGE}").spec)


@pytest.mark.parametrize(("line", "words"), [
    (f"llm --image {IMAGE} --startup-timeout 15m", "startup_timeout is set but startup is not: give the "
                                                  "startup probe's path too (--startup /v2/health/ready)"),
    (f"llm --image {IMAGE} --startup /h --startup-timeout soon", "startup_timeout 'soon' is not a duration"),
    (f"llm --image {IMAGE} --startup /h --startup-timeout 0", "startup_timeout must be more than zero"),
    (f"llm --image {IMAGE} --startup /h --startup-timeout 25h", "more than the 24 hours a startup window"),
    (f"llm --image {IMAGE} --startup health", "probe path 'health' is not valid: it must start with '/'"),
])
def test_startup_refusals_are_one_sentence(line, words):
    assert words in usage(line)


def test_a_startup_failure_threshold_is_refused_in_favour_of_the_window():
    from jupyter_mldeploy.errors import SpecError
    from jupyter_mldeploy.spec import DeploySpec

    with pytest.raises(SpecError, match="give startup_timeout instead"):
        DeploySpec.from_dict({"name": "llm", "image": IMAGE,
                              "startup": {"path": "/h", "failure_threshold": 90}})


def _loading_pod(started_ago: float, window_s: int, *, started: bool = False, now: float = 1_000_000.0):
    from datetime import datetime, timezone

    ts = datetime.fromtimestamp(now - started_ago, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": "llm-5d8f9c7b6d-abcde", "creationTimestamp": ts,
                     "labels": {"mldeploy.io/track": "stable"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "model", "startupProbe": {
            "httpGet": {"path": "/h", "port": "http"}, "initialDelaySeconds": 0, "periodSeconds": 10,
            "failureThreshold": window_s // 10}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                   "containerStatuses": [{"name": "model", "ready": False, "started": started,
                                          "restartCount": 0, "state": {"running": {"startedAt": ts}}}]},
    }


def _progress(pods, now=1_000_000.0, desired=1):
    from jupyter_mldeploy.status import format_progress_line, rollout_status

    dep = {"metadata": {"name": "llm", "generation": 1}, "spec": {"replicas": desired},
           "status": {"observedGeneration": 1, "replicas": desired, "updatedReplicas": desired}}
    return format_progress_line(rollout_status(dep, pods, now=now))


def test_the_progress_line_says_the_model_is_loading_and_how_far_into_the_window():
    assert _progress([_loading_pod(200, 900)]).endswith("0/1 ready  loading (startup probe, 3 of 15 min)")
    assert _progress([_loading_pod(30, 60)]).endswith("loading (startup probe, 30 of 60 s)")
    two = _progress([_loading_pod(200, 900), _loading_pod(500, 900)], desired=2)
    assert two.endswith("0/2 ready  2 loading (startup probe, 8 of 15 min)")  # the one nearest its end
    # once the startup probe passed, the pod is waiting for readiness like any other: no "loading"
    assert "loading" not in _progress([_loading_pod(200, 900, started=True)])


# -- exposure: TLS, cert-manager, Ingress-only annotations, Service type -----------------------------

EXPOSED = f"churn --image {IMAGE} --expose ingress --host churn.example.com"


def _objects(line: str) -> dict[str, dict]:
    from jupyter_mldeploy.render import render

    return {m["kind"]: m for m in render(deploy(line).spec, "ml")}


def test_tls_secret_becomes_the_ingress_tls():
    ing = _objects(f"{EXPOSED} --tls-secret churn-tls")["Ingress"]
    assert ing["spec"]["tls"] == [{"hosts": ["churn.example.com"], "secretName": "churn-tls"}]
    assert "annotations" not in ing["metadata"]


@pytest.mark.parametrize(("flags", "annotation", "secret"), [
    ("--cert-issuer letsencrypt", ("cert-manager.io/cluster-issuer", "letsencrypt"), "churn-tls"),
    ("--cert-issuer Issuer/team-ca --tls-secret own", ("cert-manager.io/issuer", "team-ca"), "own"),
])
def test_cert_issuer_is_cert_managers_annotation_with_a_tls_secret(flags, annotation, secret):
    ing = _objects(f"{EXPOSED} {flags}")["Ingress"]
    assert ing["metadata"]["annotations"] == dict([annotation])
    assert ing["spec"]["tls"] == [{"hosts": ["churn.example.com"], "secretName": secret}]


def test_ingress_annotations_land_on_the_ingress_only_and_annotations_everywhere():
    body = "annotations:\n  team.example.com/owner: ml\n"
    from jupyter_mldeploy.render import render

    spec = deploy(f"{EXPOSED} --ingress-annotation kubernetes.io/ingress.global-static-ip-name=churn-ip "
                  f"ingress.gcp.kubernetes.io/pre-shared-cert=churn-cert", body).spec
    by_kind = {m["kind"]: m for m in render(spec, "ml")}
    gke = {"kubernetes.io/ingress.global-static-ip-name": "churn-ip",
           "ingress.gcp.kubernetes.io/pre-shared-cert": "churn-cert"}
    assert by_kind["Ingress"]["metadata"]["annotations"] == {"team.example.com/owner": "ml", **gke}
    for kind in ("Deployment", "Service"):
        assert not set(gke) & set(by_kind[kind]["metadata"].get("annotations", {})), kind
    template = by_kind["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert not set(gke) & set(template)


@pytest.mark.parametrize("kind", ["ClusterIP", "NodePort", "LoadBalancer"])
def test_service_type(kind):
    assert _objects(f"churn --image {IMAGE} --service-type {kind}")["Service"]["spec"]["type"] == kind


def test_default_service_is_cluster_ip_and_the_dict_form_leaves_it_out():
    spec = deploy(f"churn --image {IMAGE}").spec
    assert spec.service_type == "ClusterIP" and "service_type" not in spec.to_dict()


def test_exposure_fields_round_trip_through_the_release_record():
    from jupyter_mldeploy.spec import DeploySpec

    spec = deploy(f"{EXPOSED} --cert-issuer Issuer/ca --tls-secret s --ingress-annotation a.example.com/x=1 "
                  f"--service-type NodePort").spec
    assert DeploySpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(("line", "words"), [
    (f"churn --image {IMAGE} --tls-secret churn-tls",
     "tls_secret is set but expose is not 'ingress': it only applies to the model's Ingress"),
    (f"churn --image {IMAGE} --expose ingress --tls-secret churn-tls", "tls_secret needs host: a TLS "
                                                                        "certificate is for a host name"),
    (f"churn --image {IMAGE} --expose ingress --cert-issuer letsencrypt", "cert_issuer needs host"),
    (f"{EXPOSED} --tls-secret Churn_TLS", "tls_secret 'Churn_TLS' is not a valid name"),
    (f"{EXPOSED} --cert-issuer ClusterIssuer/le", "write the name of a ClusterIssuer (letsencrypt), or "
                                                  "Issuer/NAME"),
    (f"{EXPOSED} --ingress-annotation nokey", "ingress annotation 'nokey' is not valid: write KEY=VALUE"),
    (f"{EXPOSED} --ingress-annotation 'bad key=1'", "ingress_annotations"),
    (f"{EXPOSED} --ingress-annotation mldeploy.io/weight=5", "reserves for its own track and rollout state"),
    (f"{EXPOSED} --cert-issuer le --ingress-annotation cert-manager.io/cluster-issuer=other",
     "both name the cert-manager issuer; give it in one place"),
    (f"churn --image {IMAGE} --service-type nodeport", "service_type 'nodeport' is not one of"),
    (f"churn --image {IMAGE} --service-type ExternalName", "service_type 'ExternalName' is not one of"),
])
def test_exposure_refusals_are_one_sentence(line, words):
    assert words in usage(line)


@pytest.mark.parametrize("flags", ["--tls-secret churn-tls", "--cert-issuer letsencrypt",
                                   "--ingress-annotation a.example.com/b=c"])
def test_the_gateway_needs_none_of_it_and_says_why(flags):
    text = usage(f"churn --image {IMAGE} --expose gateway --gateway infra/public --host churn.example.com "
                 f"{flags}")
    field = flags.split()[0][2:].replace("-", "_")
    field = "ingress_annotations" if field == "ingress_annotation" else field
    assert text.startswith(f"{field} applies to an Ingress; with expose='gateway' ")
    assert "set it on the Gateway infra/public" in text
    if field != "ingress_annotations":
        assert "TLS lives on the Gateway's listener (its certificateRefs)" in text


def test_the_nginx_router_refuses_to_drop_a_models_tls():
    from jupyter_mldeploy.errors import SpecError
    from jupyter_mldeploy.render.routers import nginx

    spec = deploy(f"{EXPOSED} --ingress-class nginx --tls-secret churn-tls").spec
    with pytest.raises(SpecError, match="without the tls_secret it has now"):
        nginx.check_exposure("churn", spec.expose, spec.ingress_class, strategy="canary",
                             ingress_extras=spec.ingress_extras)
    plain = deploy(f"{EXPOSED} --ingress-class nginx").spec
    nginx.check_exposure("churn", plain.expose, plain.ingress_class, strategy="canary",
                         ingress_extras=plain.ingress_extras)
