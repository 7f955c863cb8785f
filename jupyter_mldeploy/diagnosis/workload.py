"""Why a Deployment or its ReplicaSets stopped: a progress deadline, or pods the controller could not
create."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .model import Diagnosis, Obj
from .objects import condition, event_count, event_message, event_object, metadata, newest_event


def diagnose_deployment(deployment: Obj) -> Diagnosis | None:
    """The Deployment controller's verdict: a ReplicaFailure or an exceeded progress deadline."""
    meta = metadata(deployment)
    status = deployment.get("status") or {}
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return None  # the conditions still describe the previous spec; a redeploy must not inherit them
    name = meta.get("name") or "?"
    failure = condition(deployment, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        # the condition carries no count: a missing ServiceAccount applied concurrently may still appear
        return _create_failed(name, failure.get("message") or failure.get("reason") or "", repeated=False)
    progressing = condition(deployment, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        secs = (deployment.get("spec") or {}).get("progressDeadlineSeconds") or 600
        return Diagnosis(
            "progress-deadline", None,
            f"The rollout of {name} made no progress for {secs}s (its progress deadline), "
            "so Kubernetes marked it failed.",
            progressing.get("message") or None,
            "look at the pods' reasons; fix the cause and deploy again, or roll back", fatal=True)
    return None


def diagnose_events(events: Iterable[Obj]) -> Diagnosis | None:
    """FailedCreate events on a ReplicaSet: how PodSecurity, quota and admission rejections show."""
    failed = [e for e in events
              if e.get("reason") == "FailedCreate" and event_object(e).get("kind") == "ReplicaSet"]
    latest = newest_event(failed)
    if latest is None:
        return None
    rs = event_object(latest).get("name") or "?"
    owner = rs.rsplit("-", 1)[0] if "-" in rs else rs
    repeats = sum(event_count(e) for e in failed if event_object(e).get("name") == rs)
    return _create_failed(owner, event_message(latest), repeated=repeats >= 2)


def _create_failed(owner: str, message: str, *, repeated: bool) -> Diagnosis:
    text = re.sub(r"^Error creating:\s*", "", message.strip())
    forbidden = re.search(r"is forbidden: (.*)", text, re.S)
    why_raw = forbidden.group(1) if forbidden else text
    transient = False
    if m := re.search(r'violates PodSecurity "([^"]+)": (.*)', text, re.S):
        names = [n.strip() for n in re.findall(r"(?:^|,)\s*([^,(]+?)\s*\(", m.group(2))] or [m.group(2)]
        why = (f'the namespace enforces the Pod Security level "{m.group(1)}" and the pod breaks it: '
               + ", ".join(names))
        hint = ("run the image as a non-root user with privilege escalation off and capabilities dropped, "
                "or deploy to a namespace with a less strict Pod Security level")
    elif m := re.search(r"exceeded quota: ([^,]+), requested: (.*?), used: (.*?), limited: (.*)", text, re.S):
        why = (f'they would exceed the namespace\'s resource quota "{m.group(1)}" (asked {m.group(2)}, '
               f"already used {m.group(3)}, allowed {m.group(4).strip()})")
        hint = ("ask for less (--cpu, --memory, --gpu), remove deployments you no longer need from the "
                "namespace, or ask your platform team for a larger quota")
    elif m := re.search(r"failed quota: ([^:]+): must specify (.*)", text, re.S):
        why = f'the namespace\'s quota "{m.group(1)}" requires every container to set {m.group(2).strip()}'
        hint = "set --cpu and --memory so the pods declare their requests and limits"
    elif m := re.search(r"(maximum|minimum) (\S+) usage per (Container|Pod) is (\S+), "
                        r"but (?:limit|request) is (\S+)", text):
        word = "at most" if m.group(1) == "maximum" else "at least"
        why = (f"the namespace allows {word} {m.group(4)} of {m.group(2)} per {m.group(3).lower()}, "
               f"and the pod asks for {m.group(5).rstrip('.')}")
        hint = f"ask for {word} {m.group(4)} of {m.group(2)}"
    elif m := re.search(r'serviceaccount "([^"]+)" not found', text):
        why = f'its ServiceAccount "{m.group(1)}" does not exist'
        hint = f"create the ServiceAccount {m.group(1)}, or deploy without it"
        transient = True  # may be applied in the same instant as the Deployment
    elif m := re.search(r'admission webhook "([^"]+)" denied the request: (.*)', text, re.S):
        why = f"the cluster's policy ({m.group(1)}) denied them: {m.group(2).strip()}"
        hint = "change the deployment to satisfy that policy, or ask your platform team about it"
    else:
        why = why_raw.strip()
        hint = "read the message below; it is the API server's reason"
        transient = "not found" in text
    summary = f"Kubernetes refused to create the pods of {owner}: {why.rstrip('.')}."
    return Diagnosis("create-failed", None, summary, message or None, hint, fatal=repeated or not transient)
