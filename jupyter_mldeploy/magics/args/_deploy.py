"""`%deploy` / `%%deploy`: the line (and the YAML body) -> DeployRequest, a DeploySpec plus how to run it.
The stub's docstring, completed by @magic_arguments, is the magic's help."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, argument_group, magic_arguments

from ...errors import SpecError
from ...spec import DeploySpec, parse_env, parse_env_secrets, parse_pairs
from . import _parser as P
from ._rollout_flags import ROLLOUT_ROUTERS, rollout_options, rollout_strategy, spec_strategy
from ._vars import load_body

__all__ = ["DeployRequest", "deploy", "parse_deploy"]


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
@argument("--node-selector", metavar="K=V", nargs="+", action="extend", help="run only on nodes with these "
          "labels, such as pool=gpu, or the sandbox's real node: mldeploy.io/sandbox-node=real "
          "(repeatable; an empty value adds none)")
@argument("--toleration", metavar="KEY[=VALUE]:EFFECT", nargs="+", action="extend", help="tolerate a node's "
          "taint, in kubectl's taint syntax: nvidia.com/gpu:NoSchedule, mldeploy.io/sandbox-node=real:"
          "NoSchedule (repeatable; an empty value adds none)")
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
@P.where
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
      %deploy churn --image {image} --node-selector pool=batch --toleration dedicated=batch:NoSchedule
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


def _pairs(items: list[str] | None, flag: str) -> dict[str, str] | None:
    if items is None:
        return None
    try:
        if flag == "--env-secret":
            return parse_env_secrets(items)
        if flag == "--env":
            return parse_env(items)
        what = {"--ingress-annotation": "ingress annotation", "--node-selector": "node selector"}
        return parse_pairs(items, what.get(flag, "label"), "KEY")
    except SpecError as e:
        raise UsageError(str(e)) from None


def _given(items: list[str] | None) -> list[str] | None:
    """The non-empty items: an empty value (a notebook parameter left "") places nothing."""
    kept = [i for i in items or () if i]
    return kept or None


def _probe(value: str | None) -> str | None | bool:
    """A probe path; 'none' turns the probe off (None); False: not given."""
    if value is None:
        return False
    return None if value.lower() in ("none", "off") else value


def _line_fields(a: argparse.Namespace) -> dict[str, Any]:
    """The spec fields given on the line, as DeploySpec.from_dict keys (only those given)."""
    fields: dict[str, Any] = {
        "image": a.image, "cpu": a.cpu, "memory": a.memory, "cpu_limit": a.cpu_limit,
        "memory_limit": a.memory_limit, "gpu": P.count(a.gpu, "--gpu"), "gpu_type": a.gpu_type,
        "gpu_resource": a.gpu_resource, "replicas": P.count(a.replicas, "--replicas"),
        "autoscale": a.autoscale, "port": P.count(a.port, "--port"), "env": _pairs(a.env, "--env"),
        "env_from_secret": _pairs(a.env_secret, "--env-secret"),
        "pvc": a.pvc, "labels": _pairs(a.label, "--label"), "image_pull_secrets": a.pull_secret,
        "node_selector": _pairs(_given(a.node_selector), "--node-selector"),
        "tolerations": _given(a.toleration),
        "expose": a.expose, "host": a.host, "gateway": a.gateway, "ingress_class": a.ingress_class,
        "tls_secret": a.tls_secret, "cert_issuer": a.cert_issuer, "service_type": a.service_type,
        "ingress_annotations": _pairs(a.ingress_annotation, "--ingress-annotation"),
        "strategy": spec_strategy(a.strategy), "startup": a.startup, "startup_timeout": a.startup_timeout,
        "allow_latest": True if a.allow_latest else None,
    }
    out = {k: v for k, v in fields.items() if v is not None}
    for probe in ("readiness", "liveness"):
        value = _probe(getattr(a, probe))
        if value is not False:
            out[probe] = value
    return out


_FLAG = {"image_pull_secrets": "--pull-secret", "labels": "--label", "env_from_secret": "--env-secret",
         "ingress_annotations": "--ingress-annotation", "tolerations": "--toleration"}


def parse_deploy(line: str, cell: str | None = None,
                 user_ns: Mapping[str, Any] | None = None) -> DeployRequest:
    """`%deploy LINE` or `%%deploy LINE` + body -> DeployRequest; any mistake is one UsageError."""
    user_ns = {} if user_ns is None else user_ns
    a = P.parse(deploy, line, user_ns)
    fields = _line_fields(a)
    if cell is not None:
        body = load_body(cell, user_ns)
        for key, value in fields.items():
            if key in body and body[key] != value and str(body[key]) != str(value):
                flag = _FLAG.get(key, "--" + key.replace("_", "-"))
                raise UsageError(f"{key} is given both on the %%deploy line ({flag}) and in the body; "
                                 f"give it in one place.")
        if a.name is not None and body.get("name") not in (None, a.name):
            raise UsageError(f"The %%deploy line names {a.name!r} but the body names {body['name']!r}; give "
                             f"the name in one place.")
        namespace = P.namespace(a.namespace)
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
        namespace = P.namespace(a.namespace)
        if a.name is not None:
            fields["name"] = a.name
    if a.name is None and not a.panel and cell is None:
        raise UsageError("%deploy needs a model name first, such as %deploy churn --image "
                         "ghcr.io/acme/churn:1.4.")
    rollout = rollout_strategy(a.strategy, fields)
    options = rollout_options(a, rollout, fields)
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
    timeout = P.timeout(a.timeout)
    context = P.context(a.context)

    spec = None
    if "image" in fields or not a.panel:
        if "image" not in fields:
            raise UsageError("%deploy needs --image REF, the container image to serve, such as --image "
                             "ghcr.io/acme/churn:1.4.")
        try:
            spec = DeploySpec.from_dict(fields)
        except SpecError as e:
            raise UsageError(P.sentence(str(e))) from None
    return DeployRequest(spec=spec, name=fields.get("name") if isinstance(fields.get("name"), str) else None,
                         namespace=namespace, context=context, wait=wait, timeout=timeout, atomic=a.atomic,
                         dry_run=a.dry_run, output=a.output, panel=a.panel, show_values=a.show_values,
                         create_namespace=a.create_namespace,
                         changes=dict(fields) if rollout is not None else None, **options)
