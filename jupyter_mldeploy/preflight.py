"""Pre-flight: could any node run one pod of this spec? Pure code over node and pod JSON.

Checks what the scheduler would: the node is Ready and schedulable, its NoSchedule/NoExecute taints
are tolerated, the node selector matches, and the pod's requests fit the node's allocatable. A spec
no node could ever hold is refused before any write, naming the largest free capacity.

This is the one node-fit rule: capacity.py (what a form offers) asks `node_ready` and `admits` too.
The checks take the pod spec that was rendered for the write (api.deploy renders once); a DeploySpec
is rendered here only when no pod spec is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from .render.workload import pod_template
from .spec import DeploySpec, quantity_value

_TERMINATED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class NodeFit:
    node: str
    fits: bool
    why_not: str | None  # "does not tolerate the taint nvidia.com/gpu=present:NoSchedule", ...
    free: dict[str, Decimal]  # allocatable minus the requests of pods already there


def pod_requests(pod_spec: Mapping) -> dict[str, Decimal]:
    """Effective requests of a pod: the sum over containers (limits stand in for missing requests)."""
    total: dict[str, Decimal] = {}
    for c in pod_spec.get("containers") or []:
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for k, v in merged.items():
            total[k] = total.get(k, Decimal(0)) + quantity_value(v)
    return total


def tolerates(tolerations: Iterable[Mapping], taint: Mapping) -> bool:
    """Whether one of `tolerations` tolerates `taint` (the scheduler's matching: effect, key, operator)."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def node_ready(node: Mapping) -> bool:
    """The node's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def blocking_taint(node: Mapping, tolerations: Iterable[Mapping]) -> Mapping | None:
    """The first NoSchedule/NoExecute taint of `node` that `tolerations` do not tolerate, else None."""
    tolerations = list(tolerations)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint
    return None


def admits(node: Mapping, pod_spec: Mapping) -> str | None:
    """Why the scheduler would keep this pod off `node` before counting resources (cordoned, not Ready,
    an untolerated taint, a missing label), or None when it may land there."""
    if (node.get("spec") or {}).get("unschedulable"):
        return "is cordoned"
    if not node_ready(node):
        return "is not Ready"
    taint = blocking_taint(node, pod_spec.get("tolerations") or [])
    if taint is not None:
        shown = f"{taint['key']}={taint['value']}" if taint.get("value") else taint["key"]
        return f"has the taint {shown}:{taint['effect']}, which the pod does not tolerate"
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, want in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != want:
            return f"lacks the label {key}={want}"
    return None


def node_fit(pod_spec: Mapping, node: Mapping, used: Mapping[str, Decimal] | None = None) -> NodeFit:
    name = node["metadata"]["name"]
    alloc = {k: quantity_value(v) for k, v in (node.get("status", {}).get("allocatable") or {}).items()}
    free = {k: v - (used or {}).get(k, Decimal(0)) for k, v in alloc.items()}

    def verdict(why: str | None) -> NodeFit:
        return NodeFit(name, why is None, why, free)

    why = admits(node, pod_spec)
    if why is not None:
        return verdict(why)
    for resource, amount in pod_requests(pod_spec).items():
        if amount > alloc.get(resource, Decimal(0)):
            have = alloc.get(resource, Decimal(0))
            return verdict(f"has {_fmt(resource, have)} in all, less than the {_fmt(resource, amount)} asked")
    return verdict(None)


def used_by_node(pods: Iterable[Mapping]) -> dict[str, dict[str, Decimal]]:
    used: dict[str, dict[str, Decimal]] = {}
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if not node or pod.get("status", {}).get("phase") in _TERMINATED:
            continue
        acc = used.setdefault(node, {})
        for k, v in pod_requests(pod["spec"]).items():
            acc[k] = acc.get(k, Decimal(0)) + v
    return used


def _pod_spec(spec: DeploySpec | Mapping) -> Mapping:
    return pod_template(spec)["spec"] if isinstance(spec, DeploySpec) else spec


def check(spec: DeploySpec | Mapping, nodes: list[Mapping]) -> list[NodeFit]:
    """Fit of one pod on each node, by capacity (what the node could ever hold). `spec` is the
    rendered pod spec (a pod template's "spec"), or a DeploySpec to render it from."""
    pod_spec = _pod_spec(spec)
    return [node_fit(pod_spec, n) for n in nodes]


def refusal(spec: DeploySpec, nodes: list[Mapping], pods: Iterable[Mapping] | None, *,
            pod_spec: Mapping | None = None) -> str:
    """The sentence for a spec no node can hold, naming the largest free capacity. `pod_spec` is the
    one rendered for the write (rendered from `spec` when not given)."""
    pod_spec = _pod_spec(spec) if pod_spec is None else pod_spec
    asked = pod_requests(pod_spec)
    used = used_by_node(pods) if pods is not None else {}
    fits = [node_fit(pod_spec, n, used.get(n["metadata"]["name"])) for n in nodes]
    want = ", ".join(_fmt(k, v) for k, v in sorted(asked.items())) or "no resources"
    if not fits:
        return f"No node in the cluster can run {spec.name}: the cluster has no nodes."
    reasons = "; ".join(f"{f.node} {f.why_not}" for f in fits)
    key = _main_resource(asked)
    best = max(fits, key=lambda f: (f.free.get(key, Decimal(0)), f.free.get("cpu", Decimal(0))))
    free_words = ", ".join(_fmt(k, best.free[k]) for k in ("cpu", "memory", *sorted(
        r for r in best.free if "/" in r)) if k in best.free)
    basis = "free" if pods is not None else "allocatable (pod usage could not be read)"
    return (f"No node can run a pod of {spec.name}, which asks for {want}: {reasons}. "
            f"The largest {basis} capacity is on {best.node}: {free_words}.")


def _main_resource(asked: Mapping[str, Decimal]) -> str:
    extended = [k for k in asked if "/" in k]
    return extended[0] if extended else "cpu"


def _num(value: Decimal) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _fmt(resource: str, value: Decimal) -> str:
    if resource == "memory":
        gib = value / Decimal(2**30)
        return f"{_num(gib)}Gi memory" if gib >= 1 else f"{_num(value / 2**20)}Mi memory"
    if resource == "cpu":
        return f"{_num(value)} cpu"
    return f"{_num(value)} {resource}"
