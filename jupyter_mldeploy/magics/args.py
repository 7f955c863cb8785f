"""Magic lines and `%%deploy` bodies -> validated requests. Pure: no cluster, no display.

Everything a user can get wrong is caught here, before any connection is made, and reported as ONE
`UsageError` sentence: argparse's own complaints are reworded, spec rules come from `DeploySpec`
(SpecError), and a broken YAML body names its line. The parsers are built with IPython's
`@magic_arguments` on the stub functions below, whose generated docstrings are the magics' help.

`{name}` and `{name.attr}` in a magic line or a `%%deploy` body are replaced with values from the
notebook's namespace (`{{name}}` keeps the braces). Nothing else is evaluated.
"""

from __future__ import annotations

import argparse
import difflib
import numbers
import re
import secrets
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, argument_group, magic_arguments

from ..config import parse_seconds
from ..errors import SpecError
from ..spec import (
    DeploySpec,
    parse_env,
    parse_env_secrets,
    parse_pairs,
    validate_model_name,
    validate_namespace,
)

__all__ = ["AVAILABLE_STRATEGIES", "PLANNED_STRATEGIES", "ROLLOUT_ROUTERS", "ROLLOUT_STRATEGIES",
           "CanaryRequest", "DeployRequest", "ShadowRequest", "StepsRequest", "TargetRequest", "canary",
           "deploy", "mirror", "mldeploy", "parse_canary", "parse_deploy", "parse_mirror", "parse_shadow",
           "parse_steps", "parse_target", "promote", "release", "rollback", "rollout", "shadow", "steps",
           "substitute", "undeploy"]

# rolling and recreate update the model in place (a DeploySpec strategy); the others start a rollout
# beside the stable model (jupyter_mldeploy.rollout). Nothing is planned any more.
AVAILABLE_STRATEGIES = ("rolling", "recreate", "canary", "blue-green", "shadow")
PLANNED_STRATEGIES: tuple[str, ...] = ()
ROLLOUT_STRATEGIES = ("canary", "blue-green", "shadow")
# The traffic layers the rollout operations drive. knative also takes plain deploys (the model as a
# Knative Service; see rollout_knative).
ROLLOUT_ROUTERS = ("auto", "gateway", "istio", "knative", "nginx", "replicas")
COMPARE_MODES = ("auto", "exact", "numeric", "label", "topk")

_IDENT = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"
_VAR = re.compile(rf"\{{\{{({_IDENT})\}}\}}|\{{({_IDENT})\}}")


# ---------------------------------------------------------------------------------------------------
# requests


@dataclass(frozen=True)
class DeployRequest:
    """A parsed `%deploy` / `%%deploy`: the spec plus how to run it."""

    spec: DeploySpec | None  # None only for --panel without --image
    name: str | None
    namespace: str | None  # --namespace, or the body's namespace
    context: str | None
    wait: bool
    timeout: float | None  # None: from the configuration
    atomic: bool
    dry_run: str | None  # None | "client" | "server"
    output: str | None  # None | "yaml"
    panel: bool
    rollout: str | None = None  # canary | blue-green | shadow: start a rollout instead of a plain deploy
    weight: int | None = None  # canary: percent of requests to the candidate
    mirror: int | None = None  # shadow: percent of requests copied to the shadow
    router: str | None = None  # None: MLDeploy.router
    gateway: str | None = None  # the rollout's parent Gateway (when the model is not exposed through one)
    knative_scale: dict[str, int] | None = None  # --min-scale/--max-scale/--concurrency (router knative)
    # A rollout's candidate: only the fields given (line and body, with the name), which change the stable.
    changes: Mapping[str, Any] | None = None
    show_values: bool = False  # dry-run output shows literal env values instead of <redacted>
    create_namespace: bool = False  # Helm's --create-namespace: make the namespace when it is missing


@dataclass(frozen=True)
class TargetRequest:
    """A parsed `%undeploy` / `%rollout` / `%rollback` / `%mldeploy` line."""

    name: str | None
    namespace: str | None
    context: str | None
    wait: bool = True
    timeout: float | None = None
    revision: int | None = None
    watch: bool = False
    events: bool = False
    all_namespaces: bool = False


@dataclass(frozen=True)
class CanaryRequest:
    """A parsed `%canary NAME [PERCENT]`: weight None means show (the slider, or the current split)."""

    name: str
    weight: int | None
    namespace: str | None
    context: str | None


@dataclass(frozen=True)
class StepsRequest:
    """A parsed `%steps NAME 10,25,50,100 [--every 5m] [--once]`."""

    name: str
    schedule: tuple[int, ...]
    every: float  # seconds between steps
    once: bool
    namespace: str | None
    context: str | None
    timeout: float | None


@dataclass(frozen=True)
class ShadowRequest:
    """A parsed `%shadow NAME --data VAR ...` (`data` is the notebook variable's value itself) or
    `%shadow NAME --live [--since DURATION]` (data and data_name None: nothing is sent)."""

    name: str
    data: Any
    data_name: str | None
    primary_url: str | None
    shadow_url: str | None
    mode: str
    tolerance: float
    model: str | None
    timeout: float | None
    namespace: str | None
    context: str | None
    live: bool = False  # join the pods' prediction logs of mirrored traffic instead of sending rows
    since: float | None = None  # with live: seconds of log to read; None: all the pods still have


# ---------------------------------------------------------------------------------------------------
# the parsers (their docstrings, completed by @magic_arguments, are the magics' help)


def _where(func: Callable) -> Callable:
    """--namespace and --context, shared by every magic."""
    func = argument("--context", metavar="CTX", help="kube context to use (default: MLDeploy.context, "
                    "MLDEPLOY_CONTEXT, pyproject.toml, then the kubeconfig's current context)")(func)
    return argument("-n", "--namespace", metavar="NS", help="namespace (default: MLDeploy.namespace, "
                    "MLDEPLOY_NAMESPACE, pyproject.toml, then the kube context's namespace)")(func)


@magic_arguments()
@argument("name", nargs="?", metavar="NAME",
          help="model name: lower-case letters, digits and '-', starting with a letter (at most 55)")
@argument_group("What to run")
@argument("--image", metavar="REF", help="container image, pinned by tag or digest: ghcr.io/acme/churn:1.4")
@argument("--allow-latest", action="store_true", help="accept an image without tag or with ':latest'")
@argument("--port", metavar="P", help="port the model server listens on (default 8080)")
@argument("--env", metavar="K=V", nargs="+", action="extend", help="environment variables (repeatable)")
@argument("--env-secret", metavar="NAME=SECRET:KEY", nargs="+", action="extend",
          help="environment variables read from a Secret's key by the kubelet, never copied (repeatable)")
@argument("--pvc", metavar="CLAIM:/path", help="mount a PersistentVolumeClaim with the model files")
@argument("--label", metavar="K=V", nargs="+", action="extend", help="extra labels on the pods (repeatable)")
@argument("--pull-secret", metavar="S", action="append", help="image pull secret name (repeatable)")
@argument("--readiness", metavar="PATH", help="readiness probe path (default /v2/health/ready; 'none': off)")
@argument("--liveness", metavar="PATH", help="liveness probe path (default /v2/health/live; 'none': off)")
@argument("--startup", metavar="PATH", help="startup probe path, for a model that loads for minutes: "
          "readiness and liveness wait until it answers (such as /v2/health/ready)")
@argument("--startup-timeout", metavar="DURATION", help="with --startup: how long the model may take to load "
          "before it is restarted: seconds, or 90s, 15m, 1h (default 10m)")
@argument_group("Resources")
@argument("--cpu", metavar="Q", help="CPU request: 500m, 2 (cores)")
@argument("--memory", metavar="Q", help="memory request: 512Mi, 4Gi (also the memory limit unless given)")
@argument("--cpu-limit", metavar="Q", help="CPU limit (unset by default: throttling hurts latency)")
@argument("--memory-limit", metavar="Q", help="memory limit (default: the memory request)")
@argument("--gpu", metavar="N", help="whole GPUs per pod")
@argument("--gpu-type", metavar="T", help="GPU model, matched on the node label: NVIDIA-A100-SXM4-80GB")
@argument("--gpu-resource", metavar="R", help="GPU extended resource (default nvidia.com/gpu)")
@argument_group("Scaling and rollout")
@argument("--replicas", metavar="N", help="number of pods (default 1)")
@argument("--autoscale", metavar="MIN:MAX[:CPU%]", help="autoscale on CPU between MIN and MAX pods: 2:10:70")
@argument("--strategy", metavar="S", help="rolling (default) or recreate update the model in place; canary, "
          "blue-green and shadow start a rollout of this image beside the stable model (then %%canary, "
          "%%steps, %%shadow, %%promote, %%rollback, %%release)")
@argument("--weight", metavar="PERCENT", help="with --strategy canary: percent of requests the canary "
          "answers, 0 to 100 (default 0)")
@argument("--mirror", metavar="PERCENT", help="with --strategy shadow: percent of requests copied to the "
          "shadow, whose answers are discarded (default 100)")
@argument("--router", choices=ROLLOUT_ROUTERS, metavar="R", help="traffic layer of a rollout: "
          f"{', '.join(ROLLOUT_ROUTERS)} (default MLDeploy.router; auto: Gateway API with --gateway, "
          "then Istio, then ingress-nginx, else the replica ratio); knative also without --strategy: the "
          "model as a Knative Service, each new image or spec a new revision")
@argument("--min-scale", metavar="N", help="with --router knative: pods Knative keeps (default 1; 0 lets it "
          "scale to zero when idle)")
@argument("--max-scale", metavar="N", help="with --router knative: at most this many pods (default: no "
          "limit)")
@argument("--concurrency", metavar="N", help="with --router knative: the autoscaler's target of concurrent "
          "requests per pod (default Knative's 100)")
@argument_group("Exposure")
@argument("--expose", metavar="gateway|ingress", help="make the model reachable from outside the cluster")
@argument("--host", metavar="H", help="host name for --expose")
@argument("--ingress-class", metavar="NAME", help="with --expose ingress: the IngressClass that serves it, "
          "such as nginx (default: none named, the cluster's default class)")
@argument("--gateway", metavar="NS/NAME", help="the parent Gateway for --expose gateway, or for a rollout's "
          "Gateway API route")
@argument("--tls-secret", metavar="NAME", help="with --expose ingress and --host: the Secret holding the TLS "
          "certificate (the Ingress's spec.tls); a Gateway's TLS is on its listener instead")
@argument("--cert-issuer", metavar="NAME", help="with --expose ingress and --host: the cert-manager "
          "ClusterIssuer (or Issuer/NAME) that makes the certificate, into --tls-secret (default NAME-tls)")
@argument("--ingress-annotation", metavar="K=V", nargs="+", action="extend", help="an annotation on the "
          "Ingress alone, such as kubernetes.io/ingress.global-static-ip-name=churn-ip (repeatable)")
@argument("--service-type", metavar="TYPE", help="the Service's type: ClusterIP (default), NodePort (as "
          "GKE's Ingress needs) or LoadBalancer")
@argument_group("Where, waiting and output")
@_where
@argument("--create-namespace", action="store_true", help="create the namespace if it is missing (as Helm's "
          "flag does) and wait until pods may be created there")
@argument("--wait", action=argparse.BooleanOptionalAction, default=None,
          help="wait until the rollout is ready, showing progress (default: wait)")
@argument("--timeout", metavar="S", help="how long to wait: seconds, or 90s, 10m (default MLDeploy.timeout)")
@argument("--atomic", action="store_true", help="if the rollout fails, put back the previous release")
@argument("--dry-run", nargs="?", const="client", choices=("client", "server"), metavar="server",
          help="show what would be written; with 'server' the API server checks it and diffs with what runs")
@argument("-o", "--output", choices=("yaml",), metavar="yaml", help="with --dry-run: the manifests as YAML")
@argument("--show-values", action="store_true", help="with --dry-run: show literal env values (default: "
          "<redacted>)")
@argument("--panel", action="store_true", help="open the deploy panel (widgets) filled with these values")
def deploy(line: str = "", cell: str | None = None) -> None:
    """Deploy a model to Kubernetes and (by default) wait until it is ready.

    Every object (Deployment, Service, ...) is written at once with server-side apply; while the
    rollout goes on the cell shows the pods live (a progress bar and table in a notebook, progress
    lines in papermill or a terminal), and a failure is explained in plain words. Nothing is sent
    to the cluster until the whole line is valid. `d = %deploy ...` keeps the Deployment handle
    (d.status(), d.history(), d.rollback(), d.undeploy()).

    As a cell magic the body is a YAML spec with the fields of DeploySpec.from_dict (name, image,
    cpu, memory, gpu, replicas, autoscale, env, labels, node_selector, tolerations, ...). In the line
    and the body, {var} and {var.attr} are replaced with the notebook's variables.

    Examples::

      %deploy churn --image ghcr.io/acme/churn:1.4 --cpu 2 --memory 4Gi
      %deploy churn --image ghcr.io/acme/churn:1.4 --gpu 1 --gpu-type NVIDIA-A100-SXM4-80GB
      %deploy churn --image {image} --autoscale 2:10:70 --cpu 500m --env MODEL_NAME=churn LOG=info
      %deploy churn --image ghcr.io/acme/churn:1.5 --dry-run -o yaml
      %deploy churn --image ghcr.io/acme/churn:1.4 --namespace ml --create-namespace
      %deploy llm --image vllm/vllm-openai:v0.6.3 --gpu 1 --startup /health --startup-timeout 15m
      %deploy churn --image {image} --expose ingress --host churn.example.com --ingress-class nginx
      %deploy churn --image {image} --expose ingress --host churn.example.com --tls-secret churn-tls
      %deploy churn --image {image} --expose ingress --service-type NodePort --ingress-annotation K=V
      %deploy churn --image {image} --expose ingress --host churn.example.com --cert-issuer letsencrypt
      d = %deploy churn --image ghcr.io/acme/churn:1.5 --no-wait

      %%deploy churn --namespace ml
      image: ghcr.io/acme/churn:{version}
      cpu: 2
      memory: 4Gi
      env: {MODEL_NAME: churn}

    Secrets are referenced, never copied: `--env-secret DB_PASSWORD=db-creds:password` (in the body
    `env_from_secret: {DB_PASSWORD: db-creds:password}`). A dry run shows literal env values as
    <redacted> unless --show-values.

    Rollouts (the model must already be deployed: that is the stable track). The candidate is the
    stable model's spec with only the fields given on the line (or in the body) changed, so its env,
    resources, probes and annotations carry over; --dry-run shows the candidate's differences::

      %deploy churn --image ghcr.io/acme/churn:1.5 --strategy canary --weight 10
      %deploy churn --image ghcr.io/acme/churn:1.5 --strategy canary --dry-run
      %deploy churn --image ghcr.io/acme/churn:1.5 --strategy canary --weight 5 --gateway infra/public
      %deploy churn --image ghcr.io/acme/churn:1.5 --strategy shadow --mirror 50
      %deploy churn --image ghcr.io/acme/churn:1.5 --strategy blue-green     (then %promote churn)
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model to remove")
@_where
def undeploy(line: str = "") -> None:
    """Remove a model: every object jupyter-mldeploy created for it (all tracks), at once.

    Objects that jupyter-mldeploy did not create are never touched.

    Examples::

      %undeploy churn
      %undeploy churn --namespace ml
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model")
@_where
@argument("--watch", action="store_true", help="follow the rollout until it is ready")
@argument("--timeout", metavar="S", help="with --watch: how long to follow (default MLDeploy.timeout)")
@argument("--events", action="store_true", help="also list the recent events")
def rollout(line: str = "") -> None:
    """A model's rollout: its pods (status table) and its revisions (history).

    Examples::

      %rollout churn
      %rollout churn --watch
      %rollout churn --events --namespace ml
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model")
@argument("--to", metavar="REVISION", help="the revision to go back to (default: the previous one)")
@_where
@argument("--wait", action=argparse.BooleanOptionalAction, default=None,
          help="wait until the rollback is ready (default: wait)")
@argument("--timeout", metavar="S", help="how long to wait (default MLDeploy.timeout)")
def rollback(line: str = "") -> None:
    """Roll a model back: its rollout in progress, or else to an earlier revision.

    While a canary, blue-green or shadow rollout is in progress, `%rollback NAME` rolls that rollout
    back: all traffic to the stable model first, then the candidate removed (after a blue-green
    switch, traffic goes back to the old stable). Otherwise, and always with --to, it goes back to an
    earlier revision of the stable model, every object as it was then; the revisions are the ones
    `%rollout NAME` lists.

    Examples::

      %rollback churn
      %rollback churn --to 2
    """


@magic_arguments()
@_where
@argument("-A", "--all-namespaces", action="store_true", help="list models in every namespace")
def mldeploy(line: str = "") -> None:
    """Where %deploy goes: the kube context and namespace, the models jupyter-mldeploy runs there (and
    each one's rollout in progress), and the traffic layers the cluster serves (for canary and shadow
    rollouts).

    Examples::

      %mldeploy
      %mldeploy --namespace ml
      %mldeploy -A
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a canary rollout in progress")
@argument("weight", nargs="?", metavar="PERCENT",
          help="percent of requests the canary answers, 0 to 100; without it: a slider in a notebook, the "
               "current split elsewhere")
@_where
def canary(line: str = "") -> None:
    """Move a canary rollout's traffic: the percent of requests the canary answers.

    One write to the route object (an HTTPRoute, a VirtualService or the canary Ingress); without a
    router the stable and canary Deployments are resized, and the result says what split the replica
    count really allows. In a notebook, `%canary NAME` alone shows a slider (one write once the slider
    stops moving, disabled while the canary has no ready pod) with Promote and Roll back buttons.

    Examples::

      %canary churn 30
      %canary churn 0
      %canary churn
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a shadow rollout in progress")
@argument("percent", nargs="?", metavar="PERCENT",
          help="percent of requests copied to the shadow, 0 to 100; without it: the current mirror")
@_where
def mirror(line: str = "") -> None:
    """Change how much traffic a shadow rollout copies to the shadow model.

    One write to the route object (an HTTPRoute's RequestMirror percent or a VirtualService's
    mirrorPercentage). Users are always answered by the stable model; the shadow's answers are
    discarded by the router; compare them with `%shadow NAME --live` (or send rows: --data VAR).

    Examples::

      %mirror churn 100
      %mirror churn 10
      %mirror churn
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a rollout in progress")
@_where
@argument("--timeout", metavar="S", help="how long to wait for the stable model to roll (default "
          "MLDeploy.timeout)")
def promote(line: str = "") -> None:
    """Promote a rollout's candidate.

    canary and shadow: the stable Deployment takes the candidate's image and rolls (new pods first, so
    ready capacity never drops), then all traffic goes to it and the candidate track is removed.
    blue-green: the switch; all traffic moves to the preview at once, and the old stable stays for an
    instant %rollback until %release.

    Examples::

      %promote churn
      %promote churn --timeout 5m
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a switched blue-green rollout")
@_where
@argument("--timeout", metavar="S", help="how long to wait for the stable model to roll (default "
          "MLDeploy.timeout)")
def release(line: str = "") -> None:
    """Finish a blue-green rollout after the switch: the preview becomes the stable model and the old
    stable is removed (until then, %rollback switches back at once).

    Examples::

      %promote churn
      %release churn
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a canary rollout in progress")
@argument("schedule", nargs="?", metavar="PERCENTS",
          help="rising canary weights separated by commas, the last one usually 100: 10,25,50,100")
@_where
@argument("--every", metavar="DURATION", help="how long each step is watched before the next: seconds, or "
          "30s, 5m, 1h (default 5m)")
@argument("--once", action="store_true", help="take one step and return (for a scheduled pipeline: the next "
          "run takes the next step)")
@argument("--timeout", metavar="S", help="how long to wait for the promotion at 100%% (default "
          "MLDeploy.timeout)")
def steps(line: str = "") -> None:
    """Move a canary through rising weights, promoting it at the end.

    Before each step the canary must have a ready pod and no failing one; otherwise the rollout is
    rolled back and the cell fails with the reason. Reaching 100 promotes the canary. The step reached
    is kept on the cluster, so `--once` in tomorrow's run takes the next one.

    Examples::

      %steps churn 10,25,50,100 --every 5m
      %steps churn 50,100 --every 30s
      %steps churn 10,25,50,100 --once
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model: Services NAME (primary) and NAME-shadow")
@argument("--data", metavar="VAR", help="the notebook variable holding the rows to send: a list, a NumPy "
          "array or a pandas DataFrame")
@argument("--live", action="store_true", help="send nothing: join the prediction logs of the stable and "
          "shadow pods, the requests the router mirrored (instead of --data)")
@argument("--since", metavar="DURATION", help="with --live: only log lines this recent: seconds, or 90s, "
          "10m, 1h (default: all the lines the pods still have)")
@argument("--primary-url", metavar="URL", help="base URL of the primary model server (with --shadow-url)")
@argument("--shadow-url", metavar="URL", help="base URL of the shadow model server (with --primary-url)")
@argument("--mode", choices=COMPARE_MODES, metavar="M", help=f"how answers are compared: "
          f"{', '.join(COMPARE_MODES)} (default auto: picked from the answers' types)")
@argument("--tolerance", metavar="X", help="with --mode numeric: the largest difference that still agrees "
          "(default 1e-6)")
@argument("--model", metavar="M", help="model name in /v2/models/M/infer (default NAME); not with --live")
@_where
@argument("--timeout", metavar="S", help="how long each request may take (default 10s; with --live, each "
          "pod's log read, default 30s)")
def shadow(line: str = "") -> None:
    """Compare the primary and the shadow model on the same rows, side by side.

    Every row of --data goes to both models at once (Open Inference Protocol v2), with the same request
    id; the answers are paired, compared, and shown with their agreement, the differences and both
    latencies (a table and a plot in a notebook, text elsewhere). Without URLs the Services NAME and
    NAME-shadow are asked through the API server's service proxy.

    With --live nothing is sent: the prediction logs of the stable and the shadow pods (read through
    the API server, like `kubectl logs [--since]`) are joined by request id, so the comparison is of
    the real traffic the router mirrored; latencies are the servers' own.

    Examples::

      %shadow churn --data X_test
      %shadow churn --data X_test --mode numeric --tolerance 0.01
      %shadow churn --data rows --primary-url http://127.0.0.1:8081 --shadow-url http://127.0.0.1:8082
      report = %shadow churn --data X_test
      %shadow churn --live --since 10m
    """


for _parser_func in (deploy, undeploy, rollout, rollback, mldeploy, canary, mirror, promote, release, steps,
                     shadow):
    # a typo like --ima must not silently mean --image, and later flags must not change old lines
    _parser_func.parser.allow_abbrev = False


# ---------------------------------------------------------------------------------------------------
# variables


def _lookup(path: str, user_ns: Mapping[str, Any], where: str) -> Any:
    first, *attrs = path.split(".")
    if first not in user_ns:
        raise UsageError(f"{{{path}}} in {where}: there is no variable {first!r} in the notebook.")
    value = user_ns[first]
    for i, attr in enumerate(attrs):
        here = ".".join([first, *attrs[:i]])
        if isinstance(value, Mapping) and attr in value:
            value = value[attr]
            continue
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise UsageError(f"{{{path}}} in {where}: {here} has no attribute {attr!r}.") from None
        except Exception as e:  # noqa: BLE001 - a property of the user's object failed; say so in one line
            raise UsageError(f"{{{path}}} in {where}: reading {here}.{attr} failed: "
                             f"{_one_line(e)}.") from None
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def substitute(text: str, user_ns: Mapping[str, Any], where: str) -> str:
    """Replace {name} / {name.attr} in text with the variables' str(); {{name}} keeps literal braces."""
    def repl(m: re.Match[str]) -> str:
        if m[1] is not None:
            return "{" + m[1] + "}"
        return _text(_lookup(m[2], user_ns, where))
    return _VAR.sub(repl, text)


def _plain(value: Any) -> Any:
    """A variable's value as the YAML loader would have produced it (so from_dict sees familiar types)."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _load_body(body: str, user_ns: Mapping[str, Any]) -> dict[str, Any]:
    """Parse the YAML body, replacing {var} with the variable's value.

    Each {var} becomes a unique plain word before parsing, so a value can never change the YAML's
    structure; afterwards a word that is a whole value becomes the variable itself (a number stays
    a number, a dict a mapping), one inside a longer string its str(). Variables only mentioned in
    comments are never looked up.
    """
    import yaml

    nonce = secrets.token_hex(4)
    words: dict[str, str] = {}

    def mark(m: re.Match[str]) -> str:
        if m[1] is not None:
            return "{" + m[1] + "}"
        word = f"mldeployvar{nonce}x{len(words)}x"
        words[word] = m[2]
        return word

    marked = _VAR.sub(mark, body)
    try:
        data = _safe_yaml(marked)
    except _AliasRefused as e:
        raise UsageError(f"The %%deploy body uses a YAML {e.what} (line {e.line}): write the value out "
                         f"instead; anchors and aliases are refused, so a few lines cannot expand into "
                         f"a huge spec.") from None
    except yaml.MarkedYAMLError as e:
        pos = e.problem_mark
        where = f" (line {pos.line + 1}, column {pos.column + 1})" if pos else ""
        problem = _one_line(e.problem or e.context or "unreadable")
        raise UsageError(f"The %%deploy body is not valid YAML: {_unmark(problem, words)}{where}.") from None
    except yaml.YAMLError as e:
        raise UsageError(f"The %%deploy body is not valid YAML: {_unmark(_one_line(e), words)}.") from None
    except RecursionError:
        raise UsageError("The %%deploy body is nested too deeply to be a spec.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"The %%deploy body must be a YAML mapping of fields such as image and cpu, got "
                         f"{'a list' if isinstance(data, list) else 'a single value'}.")

    pattern = re.compile("|".join(map(re.escape, words))) if words else None

    def text(node: str) -> str:
        if pattern is None:
            return node
        return pattern.sub(lambda m: _text(_lookup(words[m[0]], user_ns, "the %%deploy body")), node)

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            if node in words:
                return _plain(_lookup(words[node], user_ns, "the %%deploy body"))
            return text(node)
        if isinstance(node, dict):  # keys stay strings: a field name is never a whole value
            return {text(k) if isinstance(k, str) else k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    try:
        return fill(data)
    except RecursionError:
        raise UsageError("A variable in the %%deploy body refers to itself; give a plain value.") from None


class _AliasRefused(Exception):
    def __init__(self, what: str, line: int) -> None:
        super().__init__(what)
        self.what = what
        self.line = line


def _safe_yaml(text: str) -> Any:
    """yaml.safe_load, refusing any anchor (&a) or alias (*a) as the parser meets it: before a node is
    composed, so an alias bomb never expands (nor does a merge key `<<: *a`, which needs an alias)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise _AliasRefused(f"alias *{event.anchor}", event.start_mark.line + 1)
            if getattr(event, "anchor", None) is not None:
                raise _AliasRefused(f"anchor &{event.anchor}", event.start_mark.line + 1)
            return super().compose_node(parent, index)

    loader = Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _unmark(text: str, words: Mapping[str, str]) -> str:
    for word, path in words.items():
        text = text.replace(word, "{" + path + "}")
    return text


# ---------------------------------------------------------------------------------------------------
# parsing


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _sentence(text: str) -> str:
    text = _one_line(text)
    return text if text.endswith((".", "?", "!")) else text + "."


_ARGPARSE = (
    (re.compile(r"argument (\S+): expected one argument"), "{0} needs a value"),
    (re.compile(r"argument (\S+): expected at least one argument"), "{0} needs at least one value"),
    (re.compile(r"argument (\S+): invalid choice: '?(.*?)'? \(choose from (.+)\)"),
     "{0} {1!r} is not one of {2}"),
    (re.compile(r"argument (\S+): not allowed with argument (\S+)"), "{0} and {1} cannot be used together"),
    (re.compile(r"argument (\S+): ignored explicit argument '(.*)'"), "{0} takes no value, got {1!r}"),
)


def _argparse_error(magic: str, parser: argparse.ArgumentParser, message: str) -> UsageError:
    """argparse's complaint as one sentence that names the magic and, for a typo, the right option."""
    message = _one_line(message)
    if message.startswith("unrecognized arguments: "):
        extra = message[len("unrecognized arguments: "):].split()
        flag = next((t for t in extra if t.startswith("-") and len(t) > 1 and not _is_number(t)), None)
        if flag is not None:
            flag = flag.split("=", 1)[0]
            options = [o for a in parser._actions for o in a.option_strings]  # noqa: SLF001
            close = difflib.get_close_matches(flag, options, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return UsageError(f"%{magic} has no option {flag}{hint}; %{magic}? lists the options.")
        return UsageError(f"%{magic} got an unexpected value {extra[0]!r}: quote a value that contains "
                          f"spaces, and see %{magic}? for the options.")
    if message.startswith("the following arguments are required"):
        return UsageError(f"%{magic} needs a model name first, such as %{magic} churn.")
    for pattern, words in _ARGPARSE:
        m = pattern.fullmatch(message)
        if m:
            return UsageError(f"%{magic}: " + _sentence(words.format(*m.groups())))
    return UsageError(f"%{magic}: {_sentence(message)}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse(func: Callable, line: str, user_ns: Mapping[str, Any]) -> argparse.Namespace:
    magic = func.__name__
    try:
        argv = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"%{magic}: the line has {_one_line(e).lower().rstrip('.')}: close the quote or "
                         f"escape it with a backslash.") from None
    # A token that a {var} made start with "-" would read as an option: it goes to argparse as a
    # placeholder word and its value is put back afterwards, so a value always stays a value.
    nonce = secrets.token_hex(4)
    values: dict[str, str] = {}
    tokens = []
    for arg in argv:
        text = substitute(arg, user_ns, f"the %{magic} line")
        if text.startswith("-") and not arg.startswith("-"):
            word = f"mldeployvalue{nonce}x{len(values)}x"
            values[word] = text
            text = word
        tokens.append(text)
    parser = func.parser
    try:
        parsed = parser.parse_args(tokens)
    except UsageError as e:
        message = str(e)
        if message.startswith("unrecognized arguments: "):
            extra = next((w for w in message.split()[2:] if w in values), None)
            if extra is not None:
                raise UsageError(f"%{magic} got an unexpected value {values[extra]!r} from a {{variable}}: a "
                                 f"variable's value is never read as an option; see %{magic}? for the "
                                 f"options.") from None
        for word, text in values.items():
            message = message.replace(word, text)
        raise _argparse_error(magic, parser, message) from None
    def restore(value: Any) -> Any:
        if isinstance(value, str):
            return values.get(value, value)
        if isinstance(value, list):
            return [restore(v) for v in value]
        return value

    if values:
        for key, value in vars(parsed).items():
            setattr(parsed, key, restore(value))
    return parsed


def _count(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        extra = " (a GPU cannot be split by a Kubernetes request)" if flag == "--gpu" else ""
        raise UsageError(f"{flag} {value!r} is not a whole number{extra}.")
    return int(text)


def _model_name(name: str | None, magic: str) -> str:
    if name is None:
        raise UsageError(f"%{magic} needs a model name first, such as %{magic} churn.")
    try:
        return validate_model_name(name)  # the one model-name rule, the spec's
    except SpecError as e:
        raise UsageError(str(e)) from None


def _namespace(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_namespace(value)
    except SpecError as e:
        raise UsageError(str(e)) from None


def _timeout(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_seconds(value, "--timeout")
    except SpecError as e:
        raise UsageError(str(e)) from None


def _context(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise UsageError("--context is empty: give the name of a context in your kubeconfig.")
    return value


def _pairs(items: list[str] | None, flag: str) -> dict[str, str] | None:
    if items is None:
        return None
    try:
        if flag == "--env-secret":
            return parse_env_secrets(items)
        if flag == "--env":
            return parse_env(items)
        return parse_pairs(items, "ingress annotation" if flag == "--ingress-annotation" else "label", "KEY")
    except SpecError as e:
        raise UsageError(str(e)) from None


def _strategy(value: str | None) -> str | None:
    if value is None or value in AVAILABLE_STRATEGIES:
        return value
    if value in PLANNED_STRATEGIES:
        raise UsageError(f"--strategy {value} is not available yet: use "
                         f"{' or '.join(AVAILABLE_STRATEGIES)}.")
    known = (*AVAILABLE_STRATEGIES, *PLANNED_STRATEGIES)
    close = difflib.get_close_matches(value, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"--strategy {value!r} is not one of {', '.join(AVAILABLE_STRATEGIES)}{hint}.")


def _percent(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > 100:
        raise UsageError(f"{flag} {value!r} is not a whole percent from 0 to 100.")
    return int(text)


_GATEWAY = re.compile(r"(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?/)?[a-z0-9](?:[-.a-z0-9]*[a-z0-9])?")


def _rollout_options(a: argparse.Namespace, rollout: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """--weight, --mirror, --router and --gateway checked against the strategy; pure, one sentence each."""
    weight, mirror = _percent(a.weight, "--weight"), _percent(a.mirror, "--mirror")
    if weight is not None and rollout != "canary":
        raise UsageError("--weight is the share of requests a canary answers, so it needs --strategy canary "
                         "(a shadow takes --mirror, and blue-green switches all at once with %promote).")
    if mirror is not None and rollout != "shadow":
        raise UsageError("--mirror is the percent of requests copied to a shadow, so it needs --strategy "
                         "shadow.")
    scale = _knative_scale(a)
    if rollout is None:
        if a.router == "knative":
            for flag, given in (("--atomic", a.atomic), ("--panel", a.panel), ("--dry-run server",
                                                                                 a.dry_run == "server")):
                if given:
                    raise UsageError(f"{flag} does not apply with --router knative: Knative keeps the "
                                     f"current revision answering until the new one is Ready, and "
                                     f"%rollback {a.name or 'NAME'} goes back to an earlier revision.")
            return {"router": "knative", "knative_scale": scale}
        if a.router is not None:
            raise UsageError(f"--router chooses the traffic layer of a rollout, so it needs --strategy "
                             f"{', '.join(ROLLOUT_STRATEGIES[:-1])} or {ROLLOUT_STRATEGIES[-1]}.")
        return {}
    if a.create_namespace:
        raise UsageError(f"--create-namespace is for a first deploy: a {rollout} rollout starts beside the "
                         f"deployed stable model, so its namespace exists; drop --create-namespace.")
    for flag, given in (("--atomic", a.atomic), ("--panel", a.panel)):
        if given:
            raise UsageError(f"{flag} applies to plain deploys, not to a {rollout} rollout: drop {flag} (a "
                             f"rollout is undone with %rollback {a.name or 'NAME'}).")
    gateway = None
    if fields.get("expose") != "gateway" and "gateway" in fields:
        # Not exposed through the Gateway: the parent Gateway is the rollout route's, not the spec's.
        gateway = fields.pop("gateway")
        if not _GATEWAY.fullmatch(gateway):
            raise UsageError(f"--gateway {gateway!r} is not a Gateway: write NAMESPACE/NAME, such as "
                             f"infra/public.")
    if a.router not in (None, "auto"):
        from ..traffic import check_supported  # pure: what the strategy and router can do, no cluster

        try:
            check_supported(rollout, a.router, weight=weight, mirror=mirror)
        except SpecError as e:
            raise UsageError(_sentence(str(e))) from None
    return {"rollout": rollout, "weight": weight, "mirror": mirror, "router": a.router, "gateway": gateway,
            "knative_scale": scale}


def _knative_scale(a: argparse.Namespace) -> dict[str, int] | None:
    """--min-scale, --max-scale and --concurrency, which only Knative's autoscaler reads."""
    given = {k: v for k, v in (("min", a.min_scale), ("max", a.max_scale), ("target", a.concurrency))
             if v is not None}
    if not given:
        return None
    if a.router != "knative":
        flags = ", ".join(f for f, v in (("--min-scale", a.min_scale), ("--max-scale", a.max_scale),
                                         ("--concurrency", a.concurrency)) if v is not None)
        raise UsageError(f"{flags} size a Knative revision, so they need --router knative (other routers "
                         f"scale with --replicas or --autoscale).")
    out = {}
    for key, flag in (("min", "--min-scale"), ("max", "--max-scale"), ("target", "--concurrency")):
        if key in given:
            text = given[key].strip()
            if not (text.isascii() and text.isdigit()):
                raise UsageError(f"{flag} {given[key]!r} is not a whole number.")
            out[key] = int(text)
    from ..render.routers.knative import Scale  # pure: validation only

    try:
        Scale(**out)
    except SpecError as e:
        raise UsageError(_sentence(str(e))) from None
    return out


def _probe(value: str | None) -> str | None | bool:
    """A probe path; 'none' turns the probe off (None); False: not given."""
    if value is None:
        return False
    return None if value.lower() in ("none", "off") else value


def _spec_strategy(value: str | None) -> str | None:
    """The DeploySpec's own strategy: a rollout strategy is not one (it is handled by the magic)."""
    value = _strategy(value)
    return None if value in ROLLOUT_STRATEGIES else value


def _line_fields(a: argparse.Namespace) -> dict[str, Any]:
    """The spec fields given on the line, as DeploySpec.from_dict keys (only those given)."""
    fields: dict[str, Any] = {
        "image": a.image, "cpu": a.cpu, "memory": a.memory, "cpu_limit": a.cpu_limit,
        "memory_limit": a.memory_limit, "gpu": _count(a.gpu, "--gpu"), "gpu_type": a.gpu_type,
        "gpu_resource": a.gpu_resource, "replicas": _count(a.replicas, "--replicas"),
        "autoscale": a.autoscale, "port": _count(a.port, "--port"), "env": _pairs(a.env, "--env"),
        "env_from_secret": _pairs(a.env_secret, "--env-secret"),
        "pvc": a.pvc, "labels": _pairs(a.label, "--label"), "image_pull_secrets": a.pull_secret,
        "expose": a.expose, "host": a.host, "gateway": a.gateway, "ingress_class": a.ingress_class,
        "tls_secret": a.tls_secret, "cert_issuer": a.cert_issuer, "service_type": a.service_type,
        "ingress_annotations": _pairs(a.ingress_annotation, "--ingress-annotation"),
        "strategy": _spec_strategy(a.strategy), "startup": a.startup, "startup_timeout": a.startup_timeout,
        "allow_latest": True if a.allow_latest else None,
    }
    out = {k: v for k, v in fields.items() if v is not None}
    for probe in ("readiness", "liveness"):
        value = _probe(getattr(a, probe))
        if value is not False:
            out[probe] = value
    return out


_FLAG = {"image_pull_secrets": "--pull-secret", "labels": "--label", "env_from_secret": "--env-secret",
         "ingress_annotations": "--ingress-annotation"}


def parse_deploy(line: str, cell: str | None = None,
                 user_ns: Mapping[str, Any] | None = None) -> DeployRequest:
    """`%deploy LINE` or `%%deploy LINE` + body -> DeployRequest; any mistake is one UsageError."""
    user_ns = {} if user_ns is None else user_ns
    a = _parse(deploy, line, user_ns)
    fields = _line_fields(a)
    if cell is not None:
        body = _load_body(cell, user_ns)
        for key, value in fields.items():
            if key in body and body[key] != value and str(body[key]) != str(value):
                flag = _FLAG.get(key, "--" + key.replace("_", "-"))
                raise UsageError(f"{key} is given both on the %%deploy line ({flag}) and in the body; "
                                 f"give it in one place.")
        if a.name is not None and body.get("name") not in (None, a.name):
            raise UsageError(f"The %%deploy line names {a.name!r} but the body names {body['name']!r}; give "
                             f"the name in one place.")
        namespace = _namespace(a.namespace)
        if namespace is not None and body.get("namespace") not in (None, namespace):
            raise UsageError(f"--namespace {namespace} contradicts the body's namespace "
                             f"{body['namespace']!r}; give it in one place.")
        fields = {**body, **fields}
        if a.name is not None:
            fields["name"] = a.name
        if fields.get("name") is None:
            raise UsageError("%%deploy needs a model name, on the line (%%deploy churn) or in the body "
                             "(name: churn).")
        if namespace is None and isinstance(fields.get("namespace"), str):
            namespace = fields["namespace"]
    else:
        namespace = _namespace(a.namespace)
        if a.name is not None:
            fields["name"] = a.name
    if a.name is None and not a.panel and cell is None:
        raise UsageError("%deploy needs a model name first, such as %deploy churn --image "
                         "ghcr.io/acme/churn:1.4.")
    rollout = _rollout_strategy(a.strategy, fields)
    options = _rollout_options(a, rollout, fields)
    if a.show_values and a.dry_run is None:
        raise UsageError("--show-values shows the env values a dry run would write, so it needs --dry-run "
                         "(or --dry-run server).")
    if a.output is not None and a.dry_run is None:
        raise UsageError(f"-o {a.output} shows what would be written, so it needs --dry-run (or --dry-run "
                         f"server).")
    wait = a.wait is not False
    if a.atomic and not wait:
        raise UsageError("--atomic puts back the previous release when the rollout fails, so it needs "
                         "waiting: drop --no-wait.")
    if a.panel and (a.dry_run or a.output or a.atomic or a.create_namespace):
        raise UsageError("--panel opens the deploy panel, where you deploy with its button: drop --dry-run, "
                         "-o, --atomic and --create-namespace.")
    timeout = _timeout(a.timeout)
    context = _context(a.context)

    spec = None
    if "image" in fields or not a.panel:
        if "image" not in fields:
            raise UsageError("%deploy needs --image REF, the container image to serve, such as --image "
                             "ghcr.io/acme/churn:1.4.")
        try:
            spec = DeploySpec.from_dict(fields)
        except SpecError as e:
            raise UsageError(_sentence(str(e))) from None
    return DeployRequest(spec=spec, name=fields.get("name") if isinstance(fields.get("name"), str) else None,
                         namespace=namespace, context=context, wait=wait, timeout=timeout, atomic=a.atomic,
                         dry_run=a.dry_run, output=a.output, panel=a.panel, show_values=a.show_values,
                         create_namespace=a.create_namespace,
                         changes=dict(fields) if rollout is not None else None, **options)


def _rollout_strategy(line_value: str | None, fields: dict[str, Any]) -> str | None:
    """The rollout strategy from the line or the body (removed from the spec's fields), or None."""
    line_rollout = line_value if line_value in ROLLOUT_STRATEGIES else None
    body_value = fields.get("strategy")
    if line_rollout is not None and body_value is not None and body_value != line_rollout:
        raise UsageError(f"strategy is given both on the %%deploy line (--strategy {line_rollout}) and in "
                         f"the body ({body_value}); give it in one place.")
    if body_value in ROLLOUT_STRATEGIES:
        return fields.pop("strategy")
    return line_rollout


def parse_target(magic: str, line: str, user_ns: Mapping[str, Any] | None = None) -> TargetRequest:
    """`%undeploy`, `%rollout`, `%rollback`, `%mldeploy`, `%promote` or `%release` -> TargetRequest."""
    func = {"undeploy": undeploy, "rollout": rollout, "rollback": rollback, "mldeploy": mldeploy,
            "promote": promote, "release": release}[magic]
    a = _parse(func, line, {} if user_ns is None else user_ns)
    name = None if magic == "mldeploy" else _model_name(a.name, magic)
    namespace = _namespace(a.namespace)
    if getattr(a, "all_namespaces", False) and namespace is not None:
        raise UsageError("-A lists every namespace, so --namespace does not apply; give one of them.")
    revision = None
    if getattr(a, "to", None) is not None:
        revision = _count(a.to, "--to")
        if revision == 0:
            raise UsageError("--to 0 is not a revision: revisions count from 1 (see %rollout NAME).")
    return TargetRequest(name=name, namespace=namespace, context=_context(a.context),
                         wait=getattr(a, "wait", None) is not False,
                         timeout=_timeout(getattr(a, "timeout", None)), revision=revision,
                         watch=getattr(a, "watch", False), events=getattr(a, "events", False),
                         all_namespaces=getattr(a, "all_namespaces", False))


def parse_canary(line: str, user_ns: Mapping[str, Any] | None = None) -> CanaryRequest:
    """`%canary NAME [PERCENT]` -> CanaryRequest."""
    return _name_and_percent(canary, "canary", "weight", line, user_ns)


def parse_mirror(line: str, user_ns: Mapping[str, Any] | None = None) -> CanaryRequest:
    """`%mirror NAME [PERCENT]` -> CanaryRequest whose weight is the mirror percent."""
    return _name_and_percent(mirror, "mirror", "percent", line, user_ns)


def _name_and_percent(func: Callable, magic: str, field: str, line: str,
                      user_ns: Mapping[str, Any] | None) -> CanaryRequest:
    a = _parse(func, line, {} if user_ns is None else user_ns)
    name = _model_name(a.name, magic)
    value = getattr(a, field)
    percent = None if value is None else _percent(value.rstrip("%"), f"%{magic}'s {field}")
    return CanaryRequest(name, percent, _namespace(a.namespace), _context(a.context))


def _schedule(text: str | None, name: str) -> tuple[int, ...]:
    if text is None:
        raise UsageError(f"%steps needs the weights to go through, such as %steps {name} 10,25,50,100.")
    parts = [p.strip().rstrip("%") for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise UsageError(f"%steps {text!r} is not a list of whole percents: write rising weights separated "
                         f"by commas, such as 10,25,50,100.")
    values = tuple(int(p) for p in parts)
    if any(not 0 < v <= 100 for v in values) or list(values) != sorted(set(values)):
        raise UsageError(f"%steps {text!r} must rise from 1 to at most 100, each weight once, such as "
                         f"10,25,50,100.")
    return values


def parse_steps(line: str, user_ns: Mapping[str, Any] | None = None) -> StepsRequest:
    """`%steps NAME 10,25,50,100 [--every 5m] [--once]` -> StepsRequest."""
    a = _parse(steps, line, {} if user_ns is None else user_ns)
    name = _model_name(a.name, "steps")
    schedule = _schedule(a.schedule, name)
    every = 300.0
    if a.every is not None:
        if a.once:
            raise UsageError("--once takes one step and returns, so --every does not apply; give one of "
                             "them.")
        try:
            every = parse_seconds(a.every, "--every")
        except SpecError as e:
            raise UsageError(str(e)) from None
    return StepsRequest(name, schedule, every, a.once, _namespace(a.namespace), _context(a.context),
                        _timeout(a.timeout))


def _url(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{flag} {value!r} is not an http:// or https:// URL, such as http://127.0.0.1:8080.")
    return value


def _data(path: str | None, user_ns: Mapping[str, Any], name: str) -> Any:
    if path is None:
        raise UsageError(f"%shadow needs --data VAR, the notebook variable holding the rows to send, such as "
                         f"%shadow {name} --data X_test, or --live to compare the requests the router "
                         f"mirrored.")
    if not re.fullmatch(_IDENT, path):
        shown = path if len(path) <= 40 else path[:39] + "\u2026"
        raise UsageError(f"--data {_one_line(shown)!r} is not a variable name: give the name of the notebook "
                         f"variable holding the rows (without braces), such as --data X_test.")
    first = path.split(".")[0]
    if first not in user_ns:
        raise UsageError(f"--data {path}: there is no variable {first!r} in the notebook.")
    return _lookup(path, user_ns, "--data")


def _live_options(a: argparse.Namespace) -> float | None:
    """--live against --data, the URLs, --model and --since: one sentence each; the --since seconds."""
    if not a.live:
        if a.since is not None:
            raise UsageError("--since chooses which log lines --live reads, so it needs --live (--data "
                             "sends its rows now).")
        return None
    if a.data is not None:
        raise UsageError("--live compares the requests the router already mirrored and --data sends rows "
                         "now; give one of them.")
    for flag, given in (("--primary-url", a.primary_url), ("--shadow-url", a.shadow_url),
                        ("--model", a.model)):
        if given is not None:
            raise UsageError(f"{flag} applies to the rows --data sends; --live reads the stable and shadow "
                             f"pods' logs through the API server, so drop {flag}.")
    if a.since is None:
        return None
    try:
        return parse_seconds(a.since, "--since")
    except SpecError as e:
        raise UsageError(str(e)) from None


def parse_shadow(line: str, user_ns: Mapping[str, Any] | None = None) -> ShadowRequest:
    """`%shadow NAME --data VAR [--primary-url U --shadow-url U] ...` or `%shadow NAME --live [--since D]`
    -> ShadowRequest."""
    user_ns = {} if user_ns is None else user_ns
    a = _parse(shadow, line, user_ns)
    name = _model_name(a.name, "shadow")
    since = _live_options(a)
    primary_url, shadow_url = _url(a.primary_url, "--primary-url"), _url(a.shadow_url, "--shadow-url")
    if (primary_url is None) != (shadow_url is None):
        raise UsageError("--primary-url and --shadow-url go together: give both (model servers you can "
                         "reach) or neither (the Services, through the API server).")
    tolerance = 1e-6
    if a.tolerance is not None:
        try:
            tolerance = float(a.tolerance)
        except ValueError:
            raise UsageError(f"--tolerance {a.tolerance!r} is not a number, such as 0.01.") from None
        if not (tolerance >= 0 and tolerance != float("inf")):
            raise UsageError(f"--tolerance {a.tolerance!r} must be a finite number of 0 or more.")
    model = a.model
    if model is not None and not re.fullmatch(r"[A-Za-z0-9][-_.A-Za-z0-9]*", model):
        raise UsageError(f"--model {model!r} is not a model name: letters, digits, '-', '_' and '.'.")
    data = None if a.live else _data(a.data, user_ns, name)
    return ShadowRequest(name, data, a.data, primary_url, shadow_url, a.mode or "auto", tolerance, model,
                         _timeout(a.timeout), _namespace(a.namespace), _context(a.context), a.live, since)
