"""DeploySpec: what to deploy, every field validated in `__post_init__`. Pure.

Its dict/YAML form (`from_dict`, `to_dict`, SPEC_FIELDS) is written in dict_form.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import labels as L
from ..duration import parse_seconds
from ..errors import SpecError
from .dict_form import SPEC_FIELDS, spec_from_dict, spec_to_dict
from .image import ImageRef
from .parts import (
    STARTUP_MAX,
    STARTUP_TIMEOUT,
    Autoscale,
    Probe,
    Toleration,
    startup_probe,
)
from .resources import Resources
from .rules import (
    _DNS1123_SUBDOMAIN,
    _LABEL_VALUE,
    _LABEL_VALUE_RULE,
    _PERCENT,
    CLUSTER_ISSUER,
    IN_PLACE_STRATEGIES,
    ISSUER,
    LIVE_PATH,
    READY_PATH,
    REDACTED,
    SERVICE_TYPES,
    Expose,
    FrozenMap,
    ServiceType,
    Strategy,
    Track,
    _check,
    _choice,
    _describe,
    _dns1123_label,
    _int,
    _label_value,
    _mount_path,
    _refuse_unknown,
    _str,
    _string_map,
    _strings,
    _subdomain,
    parse_secret_ref,
    validate_gateway,
    validate_model_name,
)

__all__ = ["SPEC_FIELDS", "DeploySpec"]

def _surge(value: object, field_: str) -> int | str:
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value) or int(value[:-1]) > 100:
            raise SpecError(f"{field_} {value!r} is not valid: use a whole number of pods or a percentage "
                            f"from 0% to 100%, such as 1 or 25%.")
        return value
    return _int(value, field_, minimum=0)


def _is_zero(value: int | str) -> bool:
    return value in (0, "0%") or (isinstance(value, str) and int(value[:-1]) == 0)


def _host(value: object) -> str:
    host = _str(value, "host", example="churn.example.com")
    bare = host[2:] if host.startswith("*.") else host
    if not _check(_DNS1123_SUBDOMAIN, bare, 253):
        raise SpecError(f"host {host!r} is not a valid host name: use lower-case letters, digits, '-' and "
                        f"'.' (DNS subdomain), optionally starting with '*.'.")
    return host


@dataclass(frozen=True)
class DeploySpec:
    """Everything needed to render one track of one model. Validated on construction and on replace().

    `replicas` None means 1, or "owned by the HorizontalPodAutoscaler" when `autoscale` is set; giving
    both is refused. `version` None means: the image tag, else the first 12 hex digits of its digest
    (read the result from `effective_version`). `max_surge`/`max_unavailable` None mean 25% and 0 with
    the rolling strategy, so ready capacity never drops during an update.
    """

    name: str
    image: ImageRef
    namespace: str | None = None
    resources: Resources = Resources()
    replicas: int | None = None
    autoscale: Autoscale | None = None
    port: int = 8080
    env: Mapping[str, str] = field(default_factory=FrozenMap)
    env_from_secret: Mapping[str, str] = field(default_factory=FrozenMap)  # NAME -> "SECRET:KEY"
    args: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    readiness: Probe | None = Probe(READY_PATH)
    liveness: Probe | None = Probe(LIVE_PATH)
    startup: Probe | None = None  # for models that load for minutes: readiness and liveness wait for it
    startup_timeout: float | None = None  # seconds the startup probe allows; None: STARTUP_TIMEOUT
    model_pvc: str | None = None
    model_path: str = "/mnt/models"
    node_selector: Mapping[str, str] = field(default_factory=FrozenMap)
    tolerations: tuple[Toleration, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None
    labels: Mapping[str, str] = field(default_factory=FrozenMap)
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)
    version: str | None = None
    expose: Expose | None = None
    host: str | None = None
    gateway: str | None = None
    ingress_class: str | None = None  # None: no ingressClassName, the cluster's default IngressClass
    tls_secret: str | None = None  # the Ingress's spec.tls Secret (with cert_issuer: cert-manager writes it)
    cert_issuer: str | None = None  # cert-manager ClusterIssuer NAME, or Issuer/NAME in the namespace
    ingress_annotations: Mapping[str, str] = field(default_factory=FrozenMap)  # on the Ingress only
    service_type: ServiceType = "ClusterIP"
    pod_security: Literal["restricted"] | None = None
    strategy: Strategy = "rolling"
    max_surge: int | str | None = None
    max_unavailable: int | str | None = None
    track: Track = "stable"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise containers once, here

        validate_model_name(self.name)

        if isinstance(self.image, str):
            set_(self, "image", ImageRef.parse(self.image))
        elif not isinstance(self.image, ImageRef):
            raise SpecError(f"image must be an image reference string or an ImageRef, got "
                            f"{_describe(self.image)}.")
        if self.namespace is not None:
            _dns1123_label(self.namespace, "namespace")
        _choice(self.track, "track", L.TRACKS)

        if not isinstance(self.resources, Resources):
            raise SpecError(f"resources must be a Resources value, got {_describe(self.resources)}.")
        if self.replicas is not None:
            _int(self.replicas, "replicas", minimum=0)
        if self.autoscale is not None:
            if not isinstance(self.autoscale, Autoscale):
                set_(self, "autoscale", Autoscale.from_value(self.autoscale))
            if self.replicas is not None:
                raise SpecError("replicas and autoscale are exclusive: with autoscale the "
                                "HorizontalPodAutoscaler sets the replica count between min and max.")
            if self.resources.cpu is None and self.resources.cpu_limit is None:
                raise SpecError("autoscale needs a cpu request (cpu=...), because the "
                                "HorizontalPodAutoscaler measures CPU utilization as a percentage of the "
                                "request.")

        _choice(self.strategy, "strategy", IN_PLACE_STRATEGIES)
        for knob in ("max_surge", "max_unavailable"):
            value = getattr(self, knob)
            if value is not None:
                if self.strategy == "recreate":
                    raise SpecError(f"{knob} only applies to the rolling strategy, not recreate.")
                _surge(value, knob)
        if self.strategy == "rolling" and _is_zero(self.surge) and _is_zero(self.unavailable):
            raise SpecError("max_surge and max_unavailable are both zero: a rolling update could never "
                            "replace a pod, so allow at least one of them.")

        _int(self.port, "port", minimum=1, maximum=65535)
        set_(self, "env", _string_map(self.env, "env", key_rule="env"))
        refs = self.env_from_secret
        if not isinstance(refs, Mapping):
            raise SpecError(f"env_from_secret must be a mapping of env names to SECRET:KEY, got "
                            f"{_describe(refs)}.")
        refs = {k: parse_secret_ref(v, f"env_from_secret {k!r}" if isinstance(k, str) else "env_from_secret")
                for k, v in refs.items()}
        set_(self, "env_from_secret", _string_map(refs, "env_from_secret", key_rule="env"))
        both = [k for k in self.env_from_secret if k in self.env]
        if both:
            raise SpecError(f"env {both[0]!r} is given both as a value (env) and from a Secret "
                            f"(env_from_secret); give it in one place.")
        set_(self, "args", _strings(self.args, "args"))
        if self.command is not None:
            set_(self, "command", _strings(self.command, "command"))
        for probe in ("readiness", "liveness"):
            value = getattr(self, probe)
            if value is not None and not isinstance(value, Probe):
                default = READY_PATH if probe == "readiness" else LIVE_PATH
                set_(self, probe, Probe.from_value(value, default, probe))

        self._check_startup()

        if self.model_pvc is not None:
            _subdomain(self.model_pvc, "model_pvc")
        _mount_path(self.model_path, "model_path")

        set_(self, "node_selector", _string_map(self.node_selector, "node_selector", key_rule="qualified"))
        for key, value in self.node_selector.items():
            _label_value(value, f"node_selector {key!r} value")
        gpu_label = self.resources.gpu_node_label
        if gpu_label and self.node_selector.get(gpu_label[0], gpu_label[1]) != gpu_label[1]:
            raise SpecError(f"gpu_type {gpu_label[1]!r} contradicts node_selector {gpu_label[0]!r}="
                            f"{self.node_selector[gpu_label[0]]!r}: give the GPU type in one place.")
        if isinstance(self.tolerations, (str, Mapping)) or not isinstance(self.tolerations, Iterable):
            raise SpecError(f"tolerations must be a list, got {_describe(self.tolerations)}.")
        set_(self, "tolerations", tuple(Toleration.from_value(t) for t in self.tolerations))
        set_(self, "image_pull_secrets", _strings(self.image_pull_secrets, "image_pull_secrets"))
        for secret in self.image_pull_secrets:
            _subdomain(secret, "image_pull_secrets name")
        if self.service_account is not None:
            _subdomain(self.service_account, "service_account")
        if self.pod_security is not None:
            _choice(self.pod_security, "pod_security", ("restricted",))

        set_(self, "labels", _string_map(self.labels, "labels", key_rule="qualified"))
        for key, value in self.labels.items():
            if key in L.RESERVED_LABELS:
                raise SpecError(f"label {key!r} is set by jupyter-mldeploy itself (from the name, version "
                                f"and track), so it cannot be given in labels.")
            _label_value(value, f"label {key!r} value")
        set_(self, "annotations", _string_map(self.annotations, "annotations", key_rule="qualified"))
        for kind, mapping in (("label", self.labels), ("annotation", self.annotations)):
            for key in mapping:
                if key.startswith(L.PREFIX):
                    raise SpecError(f"{kind} {key!r} uses the {L.PREFIX} prefix, which jupyter-mldeploy "
                                    f"reserves for its own track and rollout state.")
        size = sum(len(k.encode()) + len(v.encode()) for k, v in self.annotations.items())
        if size > 256 * 1024:
            raise SpecError(f"annotations total {size} bytes: Kubernetes allows at most 262144 per object.")

        if self.version is not None:
            if _label_value(self.version, "version") == "":
                raise SpecError("version is empty: give a version such as '1.4', or leave it unset to use "
                                "the image tag.")
        elif not _check(_LABEL_VALUE, self.effective_version, 63):
            raise SpecError(f"version: the image tag {self.image.tag!r} is not a valid label value "
                            f"({_LABEL_VALUE_RULE}), so set version explicitly.")

        if self.expose is not None:
            _choice(self.expose, "expose", ("gateway", "ingress"))
        if self.host is not None:
            _host(self.host)
            if self.expose is None:
                raise SpecError("host is set but expose is not: host only applies with expose='gateway' or "
                                "expose='ingress'.")
        if self.gateway is not None:
            validate_gateway(self.gateway)
            if self.expose != "gateway":
                raise SpecError("gateway is set but expose is not 'gateway': the parent Gateway only applies "
                                "to an HTTPRoute.")
        elif self.expose == "gateway":
            raise SpecError("expose='gateway' needs gateway, the parent Gateway as 'namespace/name' (or "
                            "'name' in the model's namespace).")
        if self.ingress_class is not None:
            _subdomain(self.ingress_class, "ingress_class")
            if self.expose != "ingress":
                raise SpecError("ingress_class is set but expose is not 'ingress': the IngressClass only "
                                "applies to an Ingress.")
        self._check_ingress_extras()
        _choice(self.service_type, "service_type", SERVICE_TYPES)

    def _check_ingress_extras(self) -> None:
        """tls_secret, cert_issuer and ingress_annotations: an Ingress's, so they need expose='ingress'."""
        set_ = object.__setattr__
        set_(self, "ingress_annotations", _string_map(self.ingress_annotations, "ingress_annotations",
                                                      key_rule="qualified"))
        given = [f for f in ("tls_secret", "cert_issuer") if getattr(self, f) is not None]
        given += ["ingress_annotations"] if self.ingress_annotations else []
        if not given:
            return
        if self.expose == "gateway":
            where = ("load-balancer settings live on the Gateway" if given[0] == "ingress_annotations"
                     else "TLS lives on the Gateway's listener (its certificateRefs)")
            raise SpecError(f"{given[0]} applies to an Ingress; with expose='gateway' {where}, so set it on "
                            f"the Gateway {self.gateway} and drop {given[0]}.")
        if self.expose != "ingress":
            raise SpecError(f"{given[0]} is set but expose is not 'ingress': it only applies to the model's "
                            f"Ingress (expose='ingress').")
        if self.tls_secret is not None:
            _subdomain(self.tls_secret, "tls_secret")
        if self.cert_issuer is not None:
            kind, slash, name = _str(self.cert_issuer, "cert_issuer", example="letsencrypt").rpartition("/")
            if slash and kind != "Issuer":
                raise SpecError(f"cert_issuer {self.cert_issuer!r} is not valid: write the name of a "
                                f"ClusterIssuer (letsencrypt), or Issuer/NAME for an Issuer in the model's "
                                f"namespace.")
            _subdomain(name, "cert_issuer name")
        if (self.tls_secret is not None or self.cert_issuer is not None) and self.host is None:
            raise SpecError(f"{given[0]} needs host: a TLS certificate is for a host name, such as "
                            f"host='churn.example.com'.")
        for key, value in self.ingress_annotations.items():
            if key.startswith(L.PREFIX):
                raise SpecError(f"ingress annotation {key!r} uses the {L.PREFIX} prefix, which "
                                f"jupyter-mldeploy reserves for its own track and rollout state.")
            if key in (CLUSTER_ISSUER, ISSUER) and self.cert_issuer is not None:
                raise SpecError(f"ingress annotation {key!r} and cert_issuer both name the cert-manager "
                                f"issuer; give it in one place.")
            if key in self.annotations and self.annotations[key] != value:
                raise SpecError(f"annotation {key!r} is {self.annotations[key]!r} in annotations but "
                                f"{value!r} in ingress_annotations; give it in one place.")

    @property
    def ingress_extras(self) -> tuple[str, ...]:
        """The Ingress-only fields this spec sets (tls_secret, cert_issuer, ingress_annotations)."""
        return tuple(f for f in ("tls_secret", "cert_issuer", "ingress_annotations") if getattr(self, f))

    @property
    def ingress_tls_secret(self) -> str | None:
        """The Secret the Ingress's TLS uses: tls_secret, else `<name>-tls` for cert-manager to write."""
        if self.tls_secret is not None:
            return self.tls_secret
        return f"{self.name}-tls" if self.cert_issuer is not None else None

    def _check_startup(self) -> None:
        set_ = object.__setattr__
        if self.startup is not None and not isinstance(self.startup, Probe):
            set_(self, "startup", startup_probe(self.startup))
        if self.startup_timeout is not None:
            if self.startup is None:
                raise SpecError("startup_timeout is set but startup is not: give the startup probe's path "
                                "too (--startup /v2/health/ready), the endpoint that answers once the model "
                                "has loaded.")
            seconds = parse_seconds(self.startup_timeout, "startup_timeout")
            if seconds > STARTUP_MAX:
                raise SpecError(f"startup_timeout {self.startup_timeout!r} is more than the "
                                f"{STARTUP_MAX // 3600} hours a startup window may last.")
            set_(self, "startup_timeout", seconds)
        if self.startup is not None and self.startup.failure_threshold != Probe.failure_threshold:
            raise SpecError("startup failure_threshold comes from startup_timeout (the window the probe "
                            "allows): give startup_timeout instead.")

    def __repr__(self) -> str:
        """The dataclass form with literal env values redacted: a password printed in a notebook stays in
        its output. The values themselves are in `env`."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "env" and value:
                value = FrozenMap(dict.fromkeys(value, REDACTED))
            parts.append(f"{f.name}={value!r}")
        return f"DeploySpec({', '.join(parts)})"

    # Derived values -------------------------------------------------------------------------------------

    @property
    def startup_window(self) -> float | None:
        """Seconds the startup probe allows before the kubelet restarts the container; None: no probe."""
        if self.startup is None:
            return None
        return self.startup_timeout if self.startup_timeout is not None else STARTUP_TIMEOUT

    @property
    def effective_version(self) -> str:
        """The version label: `version`, else the image tag, else the short digest."""
        if self.version is not None:
            return self.version
        return self.image.tag or self.image.short_digest or ""

    @property
    def object_name(self) -> str:
        """`name` for the stable track, `<name>-<track>` for the others."""
        return L.track_name(self.name, self.track)

    @property
    def surge(self) -> int | str:
        return self.max_surge if self.max_surge is not None else "25%"

    @property
    def unavailable(self) -> int | str:
        return self.max_unavailable if self.max_unavailable is not None else 0

    def with_(self, **changes: Any) -> DeploySpec:
        """A copy with some fields changed; the whole spec is validated again.

        Resources fields (cpu, memory, gpu, ...) may be given directly and change `resources`.
        """
        res_names = [f.name for f in dataclasses.fields(Resources)]
        names = [f.name for f in dataclasses.fields(self)]
        _refuse_unknown(changes, names + res_names, "changes")
        res = {k: changes.pop(k) for k in res_names if k in changes}
        if res:
            base = changes.get("resources", self.resources)
            changes["resources"] = dataclasses.replace(base, **res)
        return dataclasses.replace(self, **changes)

    # Dict form: its one home is dict_form.py -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploySpec:
        """Build from a YAML/JSON body with the keys in SPEC_FIELDS; `null` means the default."""
        return spec_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """The dict form, leaving out defaults; `DeploySpec.from_dict(spec.to_dict()) == spec`."""
        return spec_to_dict(self)
