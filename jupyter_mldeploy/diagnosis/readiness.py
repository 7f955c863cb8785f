"""Why a running pod is not ready: its probes, and how long they are given before that is a problem."""

from __future__ import annotations

import re

from .model import Diagnosis, Obj
from .objects import container_spec, event_message, events_for_container, format_age, newest_event, parse_time


def probe_words(probe: Obj | None) -> str:
    if not probe:
        return "its probe"
    if "httpGet" in probe:
        g = probe["httpGet"]
        return f"GET {g.get('path') or '/'} on port {g.get('port')}"
    if "tcpSocket" in probe:
        return f"a TCP connection to port {probe['tcpSocket'].get('port')}"
    if "grpc" in probe:
        return f"a gRPC health check on port {probe['grpc'].get('port')}"
    if "exec" in probe:
        return "the command " + " ".join(str(c) for c in probe["exec"].get("command") or [])
    return "its probe"


def _probe_window(probe: Obj | None) -> float:
    if not probe:
        return 0.0
    return float((probe.get("initialDelaySeconds") or 0)
                 + (probe.get("periodSeconds") or 10) * (probe.get("failureThreshold") or 3))


def never_ready(pod: Obj, pod_name: str | None, status: Obj, evs: list[Obj], now: float) -> Diagnosis | None:
    for cs in status.get("containerStatuses") or []:
        running = (cs.get("state") or {}).get("running")
        if cs.get("ready") or not running:
            continue
        cname = cs.get("name") or "?"
        spec = container_spec(pod, cname, False)
        rp, sp = spec.get("readinessProbe"), spec.get("startupProbe")
        if not rp and not sp:
            continue  # without probes the kubelet calls a running container ready; nothing to judge
        started = parse_time(running.get("startedAt"))
        window = _probe_window(sp) + _probe_window(rp)
        if started is None or now - started <= window:
            continue  # still within the time its probes allow
        cevs = events_for_container(evs, cname, False)
        failure = newest_event(e for e in cevs if e.get("reason") == "Unhealthy"
                          and event_message(e).startswith(("Readiness probe failed", "Startup probe failed")))
        probe = rp or sp
        port = ((probe or {}).get("httpGet") or (probe or {}).get("tcpSocket") or {}).get("port")
        msg = event_message(failure) if failure is not None else ""
        low = msg.lower()
        code = re.search(r"statuscode: (\d+)", low)
        if "connection refused" in low:
            why = f"nothing answers on port {port} yet"
            hint = (f"check that the server listens on port {port} on all interfaces (0.0.0.0); "
                    "if the model loads slowly, give it more time with a startup probe")
        elif code and code.group(1) == "404":
            why = f"the server answers 404 Not Found to {probe_words(probe)}"
            hint = "point the readiness probe at a path your server answers (many images use /healthz)"
        elif code:
            why = f"the server answers {code.group(1)}: not ready yet, perhaps still loading the model"
            hint = "if the model takes long to load, give it more time with a startup probe or longer delay"
        elif "timeout" in low or "deadline exceeded" in low:
            why = f"the server does not answer within {(probe or {}).get('timeoutSeconds') or 1}s"
            hint = "make the health endpoint answer quickly, or raise the probe's timeout"
        elif failure is not None:
            why = "its readiness probe keeps failing"
            hint = "read the probe message below"
        else:
            why = f"its readiness probe ({probe_words(probe)}) has not passed"
            hint = "check the container's log and its readiness probe"
        summary = (f"The container {cname} is running but not ready after {format_age(now - started)}: "
                   f"{why} (pod {pod_name}).")
        return Diagnosis("never-ready", pod_name, summary, msg or None, hint, fatal=False)
    return None
