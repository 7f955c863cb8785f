"""ingress-nginx router: the primary Ingress `<name>` and a canary Ingress `<name>-canary`.

ingress-nginx was retired upstream in 2026; this router is kept for clusters that still run it and
is offered only where an IngressClass named "nginx" exists.

The canary Ingress repeats the primary's host and path and carries `nginx.ingress.kubernetes.io/canary:
"true"` with `canary-weight` out of `canary-weight-total` (written as 100, so the weight is a percent).
ingress-nginx takes one canary Ingress per host and path, so a blue-green preview uses the same object
pointing at `<name>-preview`. After a promotion or rollback the canary Ingress is no longer rendered
and the rollout must delete it (on a rollback before the candidate's Service, as it holds the split).

Shadow traffic is `mirror-target` on the primary Ingress: the full URL of the shadow Service with
`$request_uri`. It has no percentage (every request or none, see `traffic.check_supported`), nginx
discards the mirror's answers, and it finishes a request only once its mirror subrequest has finished, so
a slow shadow model slows the primary (the next request on a keep-alive connection waits for it).

Service selectors: each backend is a per-track Service selecting `{instance, track}` (render's
default). This primary Ingress has the same name as `render()`'s exposure for expose='ingress': apply
this one instead of exposure's. Both are written by the same field manager, so the class must be the
same in both: `check_exposure` refuses a model exposed through an Ingress of another class (or of none,
the cluster default's), which the router would otherwise move onto nginx, and a plain redeploy of that
spec would then take the class off again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import SpecError
from . import Traffic, service_host

ROUTER = "nginx"
INGRESS_CLASS = "nginx"
_A = "nginx.ingress.kubernetes.io/"
CANARY = _A + "canary"
CANARY_WEIGHT = _A + "canary-weight"
CANARY_WEIGHT_TOTAL = _A + "canary-weight-total"
MIRROR_TARGET = _A + "mirror-target"


def _ingress(t: Traffic, name: str, backend: str, annotations: Mapping[str, str],
             ingress_class: str) -> dict[str, Any]:
    meta = t.metadata(name, ROUTER)
    meta["annotations"] = {**meta["annotations"], **annotations}
    rule: dict[str, Any] = {}
    if t.host is not None:
        rule["host"] = t.host
    rule["http"] = {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": backend, "port": {"number": t.port}}},
    }]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
            "spec": {"ingressClassName": ingress_class, "rules": [rule]}}


def check_exposure(name: str, expose: str | None, ingress_class: str | None, *, strategy: str,
                   ingress_extras: Sequence[str] = ()) -> None:
    """Refuse a rollout over a stable model whose own Ingress is not of class nginx (unset included),
    or has TLS or Ingress annotations (`ingress_extras`: the spec fields), which the router's primary
    Ingress, written in its place, would take off.

    A model with no Ingress exposure is fine: the router then writes its own Ingress `<name>`.
    """
    if expose == "ingress" and ingress_extras:
        raise SpecError(f"the nginx router writes {name}'s Ingress itself, without the {ingress_extras[0]} "
                        f"it has now, so a rollout would take it off; use the gateway or istio router.")
    if expose != "ingress" or ingress_class == INGRESS_CLASS:
        return
    has = "has no class (the cluster default)" if ingress_class is None else f"has class {ingress_class!r}"
    how = ("mirrors with an annotation that only ingress-nginx reads, on a main Ingress of class nginx"
           if strategy == "shadow" else
           "splits traffic with a canary Ingress that ingress-nginx serves only beside a main Ingress of "
           "class nginx")
    raise SpecError(f"the nginx router {how}; {name}'s Ingress {has}: redeploy it with --ingress-class "
                    f"nginx (ingress_class='nginx') first, or use another router.")


def route(name: str, namespace: str, *, stable_weight: int, candidate_weight: int,
          candidate_track: str | None = "canary", mirror_percent: int | None = None,
          mirror_track: str = "shadow", host: str | None = None, gateway: str | None = None,
          labels: Mapping[str, str], port: int = 80, state: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None,
          ingress_class: str = INGRESS_CLASS) -> list[dict[str, Any]]:
    """The primary Ingress, then the canary Ingress when there is a candidate."""
    t = Traffic(name, namespace, stable_weight, candidate_weight, candidate_track, mirror_percent,
                mirror_track, host, gateway, labels, port, state, annotations)
    if not isinstance(ingress_class, str) or not ingress_class:
        raise SpecError(f"ingress_class must be the name of an IngressClass, got {ingress_class!r}.")
    if t.gateway is not None:
        raise SpecError("the nginx router routes through the ingress-nginx controller, so gateway cannot be "
                        "set; use the gateway router for a Gateway.")
    if t.mirror_percent not in (None, 0, 100):
        raise SpecError(f"ingress-nginx mirrors every request or none (its mirror-target annotation has no "
                        f"percentage), so a {t.mirror_percent}% mirror cannot be honoured; use 100, or the "
                        f"gateway or istio router for a partial mirror.")
    primary: dict[str, str] = {}
    if t.mirror_percent == 100:  # 0 is "none": no mirror-target, the percent stays in the state
        target = service_host(t.track(t.mirror_track), t.namespace)
        port_part = "" if t.port == 80 else f":{t.port}"
        primary[MIRROR_TARGET] = f"http://{target}{port_part}$request_uri"
    objects = [_ingress(t, t.name, t.track("stable"), primary, ingress_class)]
    if t.candidate_track is not None:
        canary = {CANARY: "true", CANARY_WEIGHT: str(t.candidate_weight), CANARY_WEIGHT_TOTAL: "100"}
        objects.append(_ingress(t, t.track("canary"), t.track(t.candidate_track), canary, ingress_class))
    return objects
