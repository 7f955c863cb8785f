"""Why a container is not running: image pulls, crash loops, OOM kills, failed starts and configuration
errors, with the crashed container's last log lines."""

from __future__ import annotations

import re

from .model import LOG_TAIL_LINES, Diagnosis, Obj
from .objects import (
    container_spec,
    event_count,
    event_message,
    events_for_container,
    metadata,
    newest_event,
    number_text,
    plural,
    quote_cut,
    times_phrase,
)
from .readiness import probe_words

_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


def diagnose_container(pod: Obj, pod_name: str | None, cs: Obj, init: bool, evs: list[Obj],
               logs: str | None) -> Diagnosis | None:
    cname = cs.get("name") or "?"
    what = f"init container {cname}" if init else f"container {cname}"
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    last = (cs.get("lastState") or {}).get("terminated") or {}
    restarts = int(cs.get("restartCount") or 0)
    cevs = events_for_container(evs, cname, init)

    if reason in _PULL_REASONS:
        return _image_pull(pod, pod_name, cs, init, reason, waiting.get("message") or "", cevs)
    if reason == "CrashLoopBackOff":
        if last.get("reason") == "OOMKilled":
            return _oom(pod, pod_name, cname, init, what, restarts, last, logs, fatal=True,
                        why="CrashLoopBackOff")
        if last.get("reason") in ("StartError", "ContainerCannotRun"):
            return _start_failed(pod_name, what, "CrashLoopBackOff", last.get("message") or "", repeated=True)
        return _crash_loop(pod, pod_name, cname, init, what, restarts, last, waiting, logs, cevs, fatal=True)
    if reason == "CreateContainerConfigError":
        return _config_error(pod, pod_name, what, waiting.get("message") or "", cevs)
    if reason in ("RunContainerError", "CreateContainerError"):
        failures = sum(event_count(e) for e in cevs if e.get("reason") == "Failed")
        return _start_failed(pod_name, what, reason, waiting.get("message") or "",
                             repeated=restarts >= 1 or failures >= 2)

    term = state.get("terminated")
    if term:
        if term.get("reason") == "OOMKilled":
            return _oom(pod, pod_name, cname, init, what, restarts, term, logs, fatal=True, why="OOMKilled")
        if init and term.get("exitCode") == 0:
            return None  # an init container that finished is what we want
        # first exit: the kubelet restarts it; wait for the back-off to confirm before calling it fatal
        return _crash_loop(pod, pod_name, cname, init, what, restarts, term, {}, logs, cevs, fatal=False)
    if state.get("running") and last.get("reason") == "OOMKilled":
        # running again after an out-of-memory kill: worth saying, not yet a reason to give up
        return _oom(pod, pod_name, cname, init, what, restarts, last, logs, fatal=False, why="OOMKilled")
    return None


def _image_pull(pod: Obj, pod_name: str | None, cs: Obj, init: bool, reason: str, message: str,
                evs: list[Obj]) -> Diagnosis:
    cname = cs.get("name") or ""
    image = container_spec(pod, cname, init).get("image") or cs.get("image")
    if not image:
        m = re.search(r'image "([^"]+)"', message)
        image = m.group(1) if m else "(unknown)"
    where = f"pod {pod_name}, {reason}"
    if reason == "InvalidImageName":
        return Diagnosis("image-pull", pod_name,
                         f'The image name "{image}" is not a valid image reference ({where}).',
                         message or None, "write it as registry/repository:tag in lower case, "
                         "e.g. ghcr.io/acme/churn:1.4", fatal=True)
    if reason == "ErrImageNeverPull":
        return Diagnosis("image-pull", pod_name,
                         f"The image {image} is not on the node and its pull policy is Never ({where}).",
                         message or None, "use the pull policy IfNotPresent, or load the image onto the node",
                         fatal=True)
    pull_failures = [e for e in evs if e.get("reason") == "Failed" and "pull" in event_message(e).lower()
                     and not event_message(e).startswith("Error: ")]
    back_off = any(e.get("reason") == "BackOff" and "pulling image" in event_message(e).lower() for e in evs)
    informative = newest_event(pull_failures)
    detail = event_message(informative) if informative is not None else message
    if message and detail != message:
        detail = f"{message}\n{detail}"
    text = " ".join([message, *(event_message(e) for e in pull_failures)]).lower()
    why, hint = _pull_cause(text)
    # one failed pull may be a registry hiccup; the kubelet's back-off (or a repeat) means it is not
    fatal = reason == "ImagePullBackOff" or back_off or sum(event_count(e) for e in pull_failures) >= 2
    return Diagnosis("image-pull", pod_name, f"The image {image} could not be pulled: {why} ({where}).",
                     detail or None, hint, fatal)


def _pull_cause(text: str) -> tuple[str, str]:
    if "no match for platform" in text or "no matching manifest" in text:
        return ("the image has no build for the node's platform (e.g. amd64 vs arm64)",
                "build the image for the node's platform, e.g. docker buildx build --platform linux/amd64")
    if "toomanyrequests" in text or "rate limit" in text:
        return ("the registry is limiting how often images may be pulled",
                "wait and deploy again, or pull with an account via --pull-secret")
    if "x509" in text or "certificate" in text:
        return ("the node does not trust the registry's TLS certificate",
                "ask your platform team to trust the registry's certificate on the nodes")
    if any(s in text for s in ("no such host", "i/o timeout", "connection refused", "network is unreachable",
                               "dial tcp")):
        return ("the node could not reach the registry",
                "check the registry address; the cluster's nodes must be able to reach it")
    exists_or_auth = "does not exist or may require" in text or "repository does not exist" in text
    if not exists_or_auth:
        # \b keeps a digest's hex digits from reading as an HTTP status
        if re.search(r"unauthorized|authentication required|\b40[13]\b|forbidden|denied|insufficient_scope",
                     text):
            return ("the registry refused access: it needs credentials",
                    "add an image pull secret with --pull-secret")
        if any(s in text for s in ("not found", "manifest unknown", "name unknown")):
            return ("the registry says this name or tag does not exist",
                    "check the image name and tag (was it pushed?)")
    return ("the registry says it does not exist or needs credentials",
            "check the tag, or add an image pull secret with --pull-secret")


_SIGNALS = {
    134: "aborted (SIGABRT, exit code 134)",
    137: "was killed (SIGKILL, exit code 137)",
    139: "crashed with a segmentation fault (exit code 139)",
    143: "was stopped (SIGTERM, exit code 143)",
}


def _exit_words(term: Obj) -> str:
    code = term.get("exitCode")
    if code is None:
        return "stopped"
    code = int(code)
    if code == 0:
        return "exited normally (exit code 0), but a model server must keep running"
    if code == 127:
        return "could not find its command in the image (exit code 127)"
    if code == 126:
        return "could not execute its command (exit code 126)"
    if code in _SIGNALS:
        return _SIGNALS[code]
    if code > 128:
        return f"was killed by signal {code - 128} (exit code {code})"
    return f"exited with an error (exit code {code})"


def log_tail(logs: str | None, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last `lines` lines, headed by how many there were, so nothing is dropped without saying so."""
    if logs is None:
        return None
    all_lines = logs.rstrip("\n").splitlines()
    if not all_lines:
        return "The container wrote no log lines."
    if len(all_lines) <= lines:
        return f"Log (all {plural(len(all_lines), 'line')}):\n" + "\n".join(all_lines)
    return f"Log (last {lines} of {len(all_lines)} lines):\n" + "\n".join(all_lines[-lines:])


def _last_log_line(logs: str | None) -> str | None:
    if not logs:
        return None
    for line in reversed(logs.splitlines()):
        if line.strip():
            return line.strip()
    return None


def _crash_loop(pod: Obj, pod_name: str | None, cname: str, init: bool, what: str, restarts: int,
                term: Obj, waiting: Obj, logs: str | None, evs: list[Obj], *, fatal: bool) -> Diagnosis:
    killed_by_probe = newest_event(
        e for e in evs
        if (e.get("reason") == "Unhealthy" and event_message(e).startswith(("Liveness probe failed",
                                                                          "Startup probe failed")))
        or (e.get("reason") == "Killing" and "probe" in event_message(e)))
    spec = container_spec(pod, cname, init)
    code = term.get("exitCode")
    last_line = _last_log_line(logs)
    if killed_by_probe is not None and code in (137, 143, None):
        probe = spec.get("livenessProbe") or spec.get("startupProbe")
        how = f"its liveness probe ({probe_words(probe)}) fails, so the kubelet restarts it"
        hint = ("make the server answer its liveness probe, or give it more time to start "
                "(a startup probe or a longer initial delay) if the model loads slowly")
    else:
        how = _exit_words(term)
        if code == 0:
            hint = "the server process must stay in the foreground and keep running"
        elif code in (126, 127):
            hint = "check the image's entrypoint, or the command you set for the container"
        elif logs is not None:
            hint = "read the log below; running the image locally (docker run) usually reproduces it"
        else:
            hint = (f"read its log (kubectl logs {pod_name} -c {cname} --previous); running the image "
                    "locally (docker run) usually reproduces it")
        if last_line:
            how += f', last saying "{quote_cut(last_line)}"'
    restarted = f", restarted {times_phrase(restarts)}" if restarts else ""
    label = waiting.get("reason") or term.get("reason") or "Error"
    verb = "keeps crashing" if fatal else "stopped"
    summary = f"The {what} {verb}: it {how} (pod {pod_name}, {label}{restarted})."
    detail_parts = [p for p in (waiting.get("message"), term.get("message"),
                                event_message(killed_by_probe) if killed_by_probe else None,
                                log_tail(logs)) if p]
    return Diagnosis("crash-loop", pod_name, summary, "\n".join(detail_parts) or None, hint, fatal)


def _oom(pod: Obj, pod_name: str | None, cname: str, init: bool, what: str, restarts: int, term: Obj,
         logs: str | None, *, fatal: bool, why: str) -> Diagnosis:
    limit = ((container_spec(pod, cname, init).get("resources") or {}).get("limits") or {}).get("memory")
    restarted = f", restarted {times_phrase(restarts)}" if restarts else ""
    if limit:
        how = f"it was killed for using more than its memory limit of {limit}"
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(limit))
        bigger = f" (for example --memory {number_text(float(m.group(1)) * 2)}{m.group(2)})" if m else ""
        hint = f"raise --memory{bigger}, or load a smaller model"
    else:
        how = "the kernel killed it for using too much memory (it has no memory limit, so the node ran short)"
        hint = "set --memory to what the model needs, so it lands on a node with that much free"
    if not fatal:
        how += "; it is running again and may be killed again"
    summary = f"The {what} ran out of memory: {how} (pod {pod_name}, {why}{restarted})."
    detail = "\n".join(p for p in (term.get("message"), log_tail(logs)) if p) or None
    return Diagnosis("oom-killed", pod_name, summary, detail, hint, fatal)


def _start_failed(pod_name: str | None, what: str, reason: str, message: str, *, repeated: bool) -> Diagnosis:
    low = message.lower()
    exec_missing = re.search(r'exec: "([^"]+)": (?:executable file not found|stat [^:]+: no such file)',
                             message)
    deterministic = True
    if exec_missing:
        why = f'its command "{exec_missing.group(1)}" is not in the image'
        hint = "check the image's entrypoint, or the command you set for the container"
    elif "permission denied" in low:
        why = "its command is not executable in the image"
        hint = "make the entrypoint executable (chmod +x) when building the image"
    elif "no command specified" in low:
        why = "the image has no command (no ENTRYPOINT or CMD) and none was given"
        hint = "give the container a command, or set ENTRYPOINT/CMD in the image"
    else:
        deterministic = False
        why = "the container runtime failed to start it"
        hint = "read the message below; if it names the node or runtime, ask your platform team"
    summary = f"The {what} could not be started: {why} (pod {pod_name}, {reason})."
    return Diagnosis("start-failed", pod_name, summary, message or None, hint,
                     fatal=deterministic or repeated)


def _config_error(pod: Obj, pod_name: str | None, what: str, message: str, evs: list[Obj]) -> Diagnosis:
    ns = metadata(pod).get("namespace") or "its namespace"
    missing = re.search(r'(secret|configmap) "([^"]+)" not found', message, re.I)
    key = re.search(r"couldn't find key (\S+) in (Secret|ConfigMap) (\S+)", message)
    if missing:
        kind = "Secret" if missing.group(1).lower() == "secret" else "ConfigMap"
        why = f'the {kind} "{missing.group(2)}" it refers to does not exist in namespace {ns}'
        hint = f"create the {kind} {missing.group(2)} in namespace {ns}, or remove the reference"
    elif key:
        why = f"the {key.group(2)} {key.group(3)} has no key {key.group(1)}"
        hint = f"add the key {key.group(1)} to the {key.group(2)}, or fix the key's name"
    else:
        why = "its configuration is invalid"
        hint = "read the message below"
    # The Secret may be applied in the same instant as the Deployment; give up only once the kubelet has
    # retried and it is still missing.
    retries = sum(event_count(e) for e in evs if e.get("reason") == "Failed")
    return Diagnosis("config-error", pod_name,
                     f"The {what} cannot be created: {why} (pod {pod_name}, CreateContainerConfigError).",
                     message or None, hint, fatal=retries >= 2)
