"""DeploySpec and its parts: every rule accepted and refused, with one clear sentence."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jupyter_mldeploy import labels as L
from jupyter_mldeploy.errors import MLDeployError, SpecError
from jupyter_mldeploy.spec import (
    GPU_TYPE_LABELS,
    LIVE_PATH,
    NAME_MAX,
    READY_PATH,
    SPEC_FIELDS,
    Autoscale,
    DeploySpec,
    ImageRef,
    Probe,
    Resources,
    Toleration,
    parse_env,
    parse_pvc,
    parse_quantity,
    quantity_value,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = "ghcr.io/acme/churn:1.4"


def spec(**kw) -> DeploySpec:
    return DeploySpec(kw.pop("name", "churn"), kw.pop("image", IMAGE), **kw)


def refused(fn, *args, **kwargs) -> str:
    """Call fn, expect a SpecError, return its message (checked to be one line)."""
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message[-1] in ".?)", message
    return message


# ---------------------------------------------------------------------------------------------------------
# names


def test_capital_name_refused_with_the_dns_rule():
    msg = refused(spec, name="Churn")
    assert msg == ("name 'Churn' is not a valid name: use lower-case letters, digits and '-', starting with "
                   "a letter and ending with a letter or digit, at most 63 characters (DNS-1035 label).")


@pytest.mark.parametrize("name", ["1churn", "churn-", "-churn", "ch_urn", "ch.urn", "", "chürn"])
def test_names_breaking_dns1035_refused(name):
    assert "DNS-1035" in refused(spec, name=name)


def test_64_char_name_refused():
    assert "DNS-1035" in refused(spec, name="a" * 64)


def test_name_longer_than_track_budget_refused_not_truncated():
    assert NAME_MAX == 63 - len("-preview") == 55
    msg = refused(spec, name="a" * 56)
    assert "at most 55" in msg and "-preview" in msg and "a" * 56 in msg


def test_name_of_exactly_the_max_length_accepted_and_kept():
    name = "m" + "1" * (NAME_MAX - 1)
    assert spec(name=name).name == name
    assert len(spec(name=name, track="preview").object_name) == 63


def test_name_must_be_a_string():
    assert "name must be a string" in refused(spec, name=["churn"])


# ---------------------------------------------------------------------------------------------------------
# images


def test_image_parts_and_composition():
    ref = ImageRef.parse(IMAGE)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("ghcr.io", "acme/churn", "1.4", None)
    assert str(ref) == IMAGE


def test_registry_with_port():
    ref = ImageRef.parse("localhost:5000/a/b:1")
    assert (ref.registry, ref.repository, ref.tag) == ("localhost:5000", "a/b", "1")
    assert str(ref) == "localhost:5000/a/b:1"


@pytest.mark.parametrize("text, registry, repository", [
    ("acme/churn:1", None, "acme/churn"),             # first component has no '.', ':' -> Docker Hub path
    ("localhost/churn:1", "localhost", "churn"),
    ("docker.io/library/nginx:1.25", "docker.io", "library/nginx"),
    ("registry:5000/churn:1", "registry:5000", "churn"),
    ("[::1]:5000/churn:1", "[::1]:5000", "churn"),
    ("nginx:1.25", None, "nginx"),
])
def test_registry_detection(text, registry, repository):
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository) == (registry, repository)
    assert str(ref) == text


def test_digest_only_image():
    ref = ImageRef.parse(f"ghcr.io/acme/churn@{DIGEST}")
    assert ref.tag is None and ref.digest == DIGEST
    assert ref.short_digest == "0123456789ab"
    assert str(ref) == f"ghcr.io/acme/churn@{DIGEST}"
    assert spec(image=ref).effective_version == "0123456789ab"


def test_tag_and_digest_both_kept():
    text = f"localhost:5000/a/b:1.0@{DIGEST}"
    ref = ImageRef.parse(text)
    assert (ref.tag, ref.digest) == ("1.0", DIGEST)
    assert str(ref) == text


def test_missing_tag_refused_unless_allowed():
    msg = refused(ImageRef.parse, "ghcr.io/acme/churn")
    assert "no tag or digest" in msg and "allow_latest" in msg and "restart" in msg
    ref = ImageRef.parse("ghcr.io/acme/churn", allow_latest=True)
    assert ref.tag == "latest" and str(ref) == "ghcr.io/acme/churn:latest" and ref.is_floating


def test_explicit_latest_refused_with_the_reason_unless_allowed():
    msg = refused(ImageRef.parse, "nginx:latest")
    assert "'latest'" in msg and "not reproducible" in msg and "would not restart pods" in msg
    assert ImageRef.parse("nginx:latest", allow_latest=True).tag == "latest"


def test_latest_pinned_by_digest_is_reproducible():
    ref = ImageRef.parse(f"nginx:latest@{DIGEST}")
    assert not ref.is_floating


@pytest.mark.parametrize("text, part", [
    ("ghcr.io/Acme/churn:1", "repository"),
    ("ghcr.io/acme//churn:1", "repository"),
    ("ghcr.io/acme/churn-:1", "repository"),
    ("ghcr.io/:1", "repository"),
    ("ghcr.io/acme/churn:", "tag"),
    ("ghcr.io/acme/churn:.1", "tag"),
    ("ghcr.io/acme/churn:" + "a" * 129, "tag"),
    ("ghcr.io/acme/churn:1 2", "tag"),
    ("ghcr.io/acme/churn@sha256:abc", "digest"),
    (f"ghcr.io/acme/churn@{DIGEST.upper()}", "digest"),
    (f"ghcr.io/acme/churn@{DIGEST}@{DIGEST}", "digest"),
    ("bad_host.io/churn:1", "registry"),
    ("ghcr.io/" + "a" * 250 + ":1", "name"),
])
def test_bad_image_names_the_part(text, part):
    msg = refused(ImageRef.parse, text)
    assert f"invalid {part}" in msg and repr(text) in msg


def test_long_almost_valid_repository_fails_fast():
    # The grammar's `[-]*` separator backtracks exponentially in Python's re; ours must not.
    assert "repository" in refused(ImageRef.parse, "a" * 60 + "A:1")
    assert "repository" in refused(ImageRef.parse, "a-" * 60 + "-!:1")


def test_image_must_be_a_string():
    assert "got a list" in refused(ImageRef.parse, ["nginx:1"])
    assert "empty" in refused(ImageRef.parse, "")


def test_build_validates_each_part_and_names_it():
    ref = ImageRef.build("ghcr.io", "acme/churn", "1.4", "")
    assert str(ref) == IMAGE
    assert ImageRef.build("", "nginx", "", DIGEST).registry is None
    assert refused(ImageRef.build, "ghcr.io", "Acme", "1").startswith("image repository 'Acme' is invalid")
    assert refused(ImageRef.build, "ghcr io", "acme", "1").startswith("image registry 'ghcr io' is invalid")
    assert refused(ImageRef.build, "ghcr.io", "acme", "-1").startswith("image tag '-1' is invalid")
    assert refused(ImageRef.build, "ghcr.io", "acme", None, "md5:x").startswith("image digest 'md5:x'")
    assert "latest" in refused(ImageRef.build, "ghcr.io", "acme", "latest")
    assert ImageRef.build("ghcr.io", "acme", None, None, allow_latest=True).tag == "latest"


def test_build_refuses_a_registry_that_would_read_back_as_a_path():
    msg = refused(ImageRef.build, "myregistry", "acme", "1")
    assert "registry 'myregistry'" in msg and "'.' or ':'" in msg


def test_direct_construction_is_validated():
    assert "neither a tag nor a digest" in refused(ImageRef, None, "nginx")
    assert "repository" in refused(ImageRef, None, "NGINX", "1")


def test_spec_accepts_an_image_string_and_refuses_other_types():
    assert spec(image="nginx:1.25").image == ImageRef(None, "nginx", "1.25")
    assert "image must be" in refused(spec, image=42)


@settings(max_examples=400)
@given(st.one_of(st.text(), st.text(alphabet="abcAB09:/@.-_[]sha256lcot ", max_size=40)))
def test_image_parse_never_raises_anything_but_spec_error(text):
    try:
        ref = ImageRef.parse(text, allow_latest=True)
    except SpecError:
        return
    assert ImageRef.parse(str(ref), allow_latest=True) == ref


_component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True).filter(
    lambda s: len(s) < 40)
_registries = ["ghcr.io", "localhost", "localhost:5000", "r.example.com:443"]


@given(
    registry=st.one_of(st.none(), st.sampled_from(_registries)),
    path=st.lists(_component, min_size=1, max_size=3),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
    digest=st.one_of(st.none(), st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)),
)
def test_valid_references_round_trip(registry, path, tag, digest):
    if tag is None and digest is None:
        tag = "v1"
    # Without a registry, a first component with '.' (or 'localhost') is read as one, per the grammar.
    assume(registry or ("." not in path[0] and path[0] != "localhost"))
    text = (f"{registry}/" if registry else "") + "/".join(path)
    text += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = ImageRef.parse(text, allow_latest=True)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, "/".join(path), tag, digest)
    assert str(ref) == text


# ---------------------------------------------------------------------------------------------------------
# quantities


@pytest.mark.parametrize("text", ["2", "500m", "1.5", "4Gi", "512Mi", "1e3", "1E3", "1E", "2k", "1.",
                                  ".5", "+1", "0", "100n", "7Ei", "1e-9", "9E", "1.5Gi"])
def test_quantities_accepted_and_kept_as_written(text):
    assert parse_quantity(text, "memory") == text


@pytest.mark.parametrize("text, why", [
    ("2 cores", "not a Kubernetes quantity"), ("", "not a Kubernetes quantity"),
    ("1.5.2", "not a Kubernetes quantity"), ("-1", "negative"), ("-500m", "negative"),
    (" 2", "not a Kubernetes quantity"), ("2Gb", "did you mean 2G or 2Gi?"),
    ("1K", "did you mean 1k or 1Ki?"), ("1e", "not a Kubernetes quantity"),
    ("Gi", "not a Kubernetes quantity"), (".", "not a Kubernetes quantity"),
    ("1mi", "not a Kubernetes quantity"), ("10E", "too large"), ("0.5n", "finer than 1n"),
    ("1e99999999999", "exponent out of range"), ("１", "not a Kubernetes quantity"),
])
def test_bad_quantities_refused(text, why):
    msg = refused(parse_quantity, text, "cpu")
    assert msg.startswith("cpu ") and why in msg


def test_quantity_numbers_from_yaml_kept_as_their_text():
    assert parse_quantity(2, "cpu") == "2"
    assert parse_quantity(0.5, "cpu") == "0.5"
    assert "got the boolean true" in refused(parse_quantity, True, "cpu")
    assert "not a Kubernetes quantity" in refused(parse_quantity, float("nan"), "cpu")


def test_quantity_value_in_base_units():
    assert quantity_value("4Gi") == 4 * 1024**3
    assert quantity_value("500m") == Decimal("0.5")
    assert quantity_value("1e3") == 1000
    assert quantity_value("1.5k") == 1500
    assert quantity_value("100n") == Decimal("1e-7")
    assert quantity_value("-2") == -2  # the grammar allows a sign; only resources refuse it


@given(st.one_of(st.text(), st.text(alphabet="0123456789.+-eEKMGTPinumk ", max_size=30)))
@settings(max_examples=400)
def test_parse_quantity_never_raises_anything_but_spec_error(text):
    try:
        out = parse_quantity(text, "q")
    except SpecError:
        return
    assert out == text and quantity_value(text) >= 0


_SCALES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "m": Fraction(1, 10**3),
           "u": Fraction(1, 10**6), "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


@given(whole=st.integers(0, 999_999),
       frac=st.one_of(st.just(""), st.from_regex(r"[0-9]{1,3}", fullmatch=True)),
       suffix=st.sampled_from(sorted(_SCALES)))
def test_generated_valid_quantities_always_parse_with_the_right_value(whole, frac, suffix):
    text = f"{whole}{'.' + frac if frac else ''}{suffix}"
    assert parse_quantity(text, "memory") == text
    expected = (whole + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)) * _SCALES[suffix]
    assert Fraction(quantity_value(text)) == expected


@given(mantissa=st.from_regex(r"[0-9]{1,12}(\.[0-9]{0,12})?", fullmatch=True), exponent=st.integers(-30, 30))
def test_exponent_quantities_match_an_exact_oracle(mantissa, exponent):
    text = f"{mantissa}e{exponent}"
    value = Fraction(mantissa) * Fraction(10) ** exponent
    if value > 2**63 - 1 or (value * 10**9).denominator != 1:
        refused(parse_quantity, text, "q")
    else:
        assert parse_quantity(text, "q") == text and Fraction(quantity_value(text)) == value


# ---------------------------------------------------------------------------------------------------------
# resources


def test_all_requests_and_limits_are_kept():
    r = Resources(cpu="2", memory="4Gi", cpu_limit="4", memory_limit="8Gi", gpu=1)
    assert r.requests() == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert r.limits() == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"}


def test_memory_limit_defaults_to_the_request_and_cpu_limit_stays_unset():
    r = Resources(cpu="500m", memory="1Gi")
    assert r.limits() == {"memory": "1Gi"}
    assert r.memory_limit is None  # the default is derived, so replacing memory moves the limit with it
    assert dataclasses.replace(r, memory="2Gi").limits() == {"memory": "2Gi"}


def test_no_resources_no_dicts():
    assert Resources().requests() == {} and Resources().limits() == {}


@pytest.mark.parametrize("kw, field", [
    ({"cpu": "3", "cpu_limit": "2500m"}, "cpu request '3'"),
    ({"memory": "1Gi", "memory_limit": "1000Mi"}, "memory request '1Gi'"),
])
def test_request_above_limit_refused_across_units(kw, field):
    msg = refused(Resources, **kw)
    assert msg.startswith(field) and "must not exceed its limit" in msg


def test_equal_request_and_limit_in_different_units_accepted():
    assert Resources(memory="1Gi", memory_limit="1024Mi").limits()["memory"] == "1024Mi"


def test_memory_in_milli_refused_with_the_unit_hint():
    msg = refused(Resources, memory="512m")
    assert "0.512 bytes" in msg and "'Mi'" in msg


def test_cpu_finer_than_a_millicore_refused():
    assert "finer than 1m" in refused(Resources, cpu="0.0005")
    assert Resources(cpu="0.001").cpu == "0.001"


def test_zero_limit_refused():
    assert "more than zero" in refused(Resources, cpu_limit="0")


def test_cpu_quantity_error_names_the_field():
    assert refused(Resources, cpu="2 cores").startswith("cpu '2 cores' is not a Kubernetes quantity")
    assert refused(Resources, memory_limit="-1Gi").startswith("memory_limit '-1Gi' is negative")


@pytest.mark.parametrize("gpu", [0.5, "1.5", -1, True, 1.0, "one", None])
def test_gpu_must_be_a_whole_non_negative_number(gpu):
    assert refused(Resources, gpu=gpu).startswith("gpu ")


def test_gpu_digit_string_from_the_cli_is_a_count():
    r = Resources(gpu="2")
    assert r.gpu == 2 and r.requests() == {"nvidia.com/gpu": "2"} and r.limits() == {"nvidia.com/gpu": "2"}


def test_gpu_is_an_integer_string_never_a_milli_quantity():
    r = Resources(gpu=1)
    assert r.requests()["nvidia.com/gpu"] == "1" and r.limits()["nvidia.com/gpu"] == "1"


def test_other_vendor_gpu_resources():
    assert Resources(gpu=1, gpu_resource="amd.com/gpu").limits() == {"amd.com/gpu": "1"}
    assert Resources(gpu=1, gpu_resource="gpu.intel.com/i915").requests() == {"gpu.intel.com/i915": "1"}


@pytest.mark.parametrize("resource", ["gpu", "nvidia/gpu", "nvidia.com/", "/gpu", "kubernetes.io/gpu",
                                      "NVIDIA.com/gpu"])
def test_gpu_resource_must_be_a_vendor_extended_resource(resource):
    assert refused(Resources, gpu=1, gpu_resource=resource).startswith("gpu_resource")


def test_gpu_type_without_gpu_refused():
    msg = refused(Resources, gpu_type="NVIDIA-A100-SXM4-40GB")
    assert "gpu_type" in msg and "gpu is 0" in msg


def test_gpu_type_maps_to_the_vendor_node_label():
    assert GPU_TYPE_LABELS["nvidia.com/gpu"] == "nvidia.com/gpu.product"
    assert GPU_TYPE_LABELS["amd.com/gpu"] == "amd.com/gpu.product-name"
    r = Resources(gpu=1, gpu_type="NVIDIA-A100-SXM4-40GB")
    assert r.gpu_node_label == ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB")


def test_gpu_type_for_a_vendor_without_a_known_label_refused():
    msg = refused(Resources, gpu=1, gpu_resource="gpu.intel.com/i915", gpu_type="flex")
    assert "node_selector" in msg


def test_gpu_type_contradicting_node_selector_refused_but_same_value_accepted():
    res = Resources(gpu=1, gpu_type="A100")
    assert "contradicts" in refused(spec, resources=res, node_selector={"nvidia.com/gpu.product": "H100"})
    assert spec(resources=res, node_selector={"nvidia.com/gpu.product": "A100"}).resources.gpu == 1


# ---------------------------------------------------------------------------------------------------------
# autoscale, replicas, strategy


@pytest.mark.parametrize("text, expected", [("2:10:70", (2, 10, 70)), ("1:3", (1, 3, 80)),
                                            ("2:2:50%", (2, 2, 50))])
def test_autoscale_parse(text, expected):
    a = Autoscale.parse(text)
    assert (a.min, a.max, a.cpu_percent) == expected


@pytest.mark.parametrize("text, why", [
    ("10:2", "min 10 is more than max 2"), ("0:2", "autoscale min 0 is out of range"),
    ("1:2:0", "cpu percent 0"), ("1:2:101", "cpu percent 101"), ("2", "MIN:MAX"), ("a:b", "MIN:MAX"),
    ("1:2:3:4", "MIN:MAX"), ("-1:2", "MIN:MAX"),
])
def test_autoscale_bad(text, why):
    assert why in refused(Autoscale.parse, text)


def test_autoscale_from_mapping_and_round_trip_text():
    a = Autoscale.from_value({"min": 2, "max": 5, "cpu": 60})
    assert a == Autoscale(2, 5, 60) and Autoscale.parse(str(a)) == a
    assert "did you mean 'max'" in refused(Autoscale.from_value, {"min": 1, "maxi": 3})


def test_autoscale_needs_a_cpu_request():
    msg = refused(spec, autoscale=Autoscale(1, 3))
    assert "cpu request" in msg
    assert spec(autoscale=Autoscale(1, 3), resources=Resources(cpu="1")).autoscale.max == 3


def test_replicas_and_autoscale_are_exclusive():
    msg = refused(spec, replicas=2, autoscale=Autoscale(1, 3), resources=Resources(cpu="1"))
    assert "exclusive" in msg


@pytest.mark.parametrize("replicas", [-1, True, 1.5, "2"])
def test_bad_replicas(replicas):
    assert refused(spec, replicas=replicas).startswith("replicas")


def test_zero_replicas_allowed():
    assert spec(replicas=0).replicas == 0


@pytest.mark.parametrize("port", [0, 65536, "8080", True])
def test_bad_port(port):
    assert refused(spec, port=port).startswith("port")


def test_rolling_defaults_and_recreate():
    s = spec()
    assert (s.surge, s.unavailable) == ("25%", 0)
    assert spec(strategy="recreate").strategy == "recreate"
    assert "only applies to the rolling" in refused(spec, strategy="recreate", max_surge=1)
    assert "both zero" in refused(spec, max_surge=0)
    assert "both zero" in refused(spec, max_surge="0%", max_unavailable=0)
    assert spec(max_surge=0, max_unavailable=1).unavailable == 1
    assert "percentage" in refused(spec, max_surge="150%")
    assert "percentage" in refused(spec, max_surge="25 %")
    assert "did you mean 'recreate'" in refused(spec, strategy="recreat")


# ---------------------------------------------------------------------------------------------------------
# env, args, probes, volumes, scheduling


def test_env_kept_in_order_and_immutable():
    s = spec(env={"B": "2", "A": "1"})
    assert list(s.env.items()) == [("B", "2"), ("A", "1")]
    with pytest.raises(TypeError):
        s.env["C"] = "3"  # type: ignore[index]


def test_spec_does_not_alias_the_callers_dict():
    env = {"A": "1"}
    s = spec(env=env)
    env["A"] = "changed"
    assert s.env["A"] == "1"


@pytest.mark.parametrize("env, why", [
    ({"1A": "x"}, "env name '1A'"), ({"A B": "x"}, "env name 'A B'"),
    ({"THREADS": 4}, "quote it in YAML"), ({"A": None}, "must be a string"),
])
def test_bad_env(env, why):
    assert why in refused(spec, env=env)


def test_parse_env():
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    assert "NAME=VALUE" in refused(parse_env, ["A"])
    assert "given twice" in refused(parse_env, ["A=1", "A=2"])
    assert "list of strings" in refused(parse_env, "A=1")


def test_args_and_command_are_lists_of_strings():
    s = spec(args=["--workers", "2"], command=["python", "-m", "serve"])
    assert s.args == ("--workers", "2") and s.command == ("python", "-m", "serve")
    assert "list of strings" in refused(spec, args="--workers 2")
    assert "args[1]" in refused(spec, args=["--workers", 2])


def test_probe_defaults_follow_the_open_inference_protocol():
    s = spec()
    assert s.readiness == Probe(READY_PATH) and s.liveness == Probe(LIVE_PATH)
    assert READY_PATH == "/v2/health/ready" and LIVE_PATH == "/v2/health/live"


def test_probe_forms():
    assert Probe.from_value("/healthz", READY_PATH, "readiness") == Probe("/healthz")
    assert Probe.from_value(None, READY_PATH, "readiness") is None
    p = Probe.from_value({"port": 9000, "period": 10}, LIVE_PATH, "liveness")
    assert p == Probe(LIVE_PATH, 9000, period=10)
    assert "did you mean 'period'" in refused(Probe.from_value, {"perod": 1}, READY_PATH, "readiness")


@pytest.mark.parametrize("kw, why", [
    ({"path": "healthz"}, "start with '/'"), ({"port": 0}, "probe port"), ({"period": 0}, "probe period"),
    ({"failure_threshold": 0}, "failure_threshold"), ({"initial_delay": -1}, "initial_delay"),
])
def test_bad_probes(kw, why):
    assert why in refused(Probe, **kw)


def test_pvc():
    assert parse_pvc("models:/mnt/m") == ("models", "/mnt/m")
    assert parse_pvc("models") == ("models", None)
    assert "pvc claim name" in refused(parse_pvc, "Models:/m")
    assert "absolute" in refused(parse_pvc, "models:mnt")
    assert "absolute" in refused(parse_pvc, "models:/a/../b")
    assert "model_pvc" in refused(spec, model_pvc="bad_claim")
    assert "model_path" in refused(spec, model_path="relative")


def test_tolerations_in_every_form():
    assert Toleration.parse("nvidia.com/gpu:NoSchedule") == Toleration("nvidia.com/gpu", "Exists",
                                                                         effect="NoSchedule")
    assert Toleration.parse("pool=gpu:NoExecute") == Toleration("pool", "Equal", "gpu", "NoExecute")
    assert Toleration.parse("dedicated") == Toleration("dedicated", "Exists")
    t = Toleration.from_value({"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
                               "tolerationSeconds": 30})
    assert t.to_manifest() == {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
                               "tolerationSeconds": 30}
    assert spec(tolerations=[{"key": "k", "operator": "Exists"}]).tolerations == (Toleration("k", "Exists"),)


@pytest.mark.parametrize("value, why", [
    ("k=v:NoSchedul", "did you mean 'NoSchedule'"), ({"key": "k", "operator": "In"}, "operator"),
    ({"key": "k", "operator": "Exists", "value": "v"}, "leave value empty"),
    ({"operator": "Equal", "value": "v"}, "without a key"),
    ({"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}, "NoExecute"),
    ({"key": "k", "efect": "NoSchedule"}, "did you mean 'effect'"), (":NoSchedule", "key=value:Effect"),
    (3, "mapping"),
])
def test_bad_tolerations(value, why):
    assert why in refused(Toleration.from_value, value)


def test_tolerations_must_be_a_list():
    assert "must be a list" in refused(spec, tolerations="k:NoSchedule")


def test_pull_secrets_and_service_account():
    s = spec(image_pull_secrets=["regcred"], service_account="model-reader")
    assert s.image_pull_secrets == ("regcred",) and s.service_account == "model-reader"
    assert "image_pull_secrets" in refused(spec, image_pull_secrets=["Reg_Cred"])
    assert "service_account" in refused(spec, service_account="Model")


def test_namespace_is_a_dns_label():
    assert spec(namespace="ml-team").namespace == "ml-team"
    assert "DNS-1123 label" in refused(spec, namespace="ml.team")


# ---------------------------------------------------------------------------------------------------------
# labels, annotations, version


def test_user_labels_and_part_of_accepted():
    s = spec(labels={"team": "risk", L.APP_PART_OF: "scoring", "example.com/cost-centre": "42"})
    assert s.labels[L.APP_PART_OF] == "scoring"


@pytest.mark.parametrize("key", sorted(L.RESERVED_LABELS))
def test_labels_we_set_ourselves_refused_with_the_reason(key):
    msg = refused(spec, labels={key: "x"})
    assert key in msg and "set by jupyter-mldeploy itself" in msg


@pytest.mark.parametrize("labels, why", [
    ({"mldeploy.io/track": "canary"}, "reserves"), ({"bad key": "x"}, "qualified name"),
    ({"Example.com/x": "y"}, "qualified name"), ({"team": "has space"}, "label value"),
    ({"team": "x" * 64}, "label value"), ({"team": True}, "quote it in YAML"),
])
def test_bad_labels(labels, why):
    assert why in refused(spec, labels=labels)


def test_annotations_accept_any_string_value_but_not_our_prefix():
    s = spec(annotations={"example.com/note": "any text: even spaces\nand lines"})
    assert "and lines" in s.annotations["example.com/note"]
    assert "reserves" in refused(spec, annotations={L.WEIGHT: "10"})
    assert "262144" in refused(spec, annotations={"big": "x" * 300_000})


def test_version_defaults_to_the_tag_and_can_be_set():
    assert spec().version is None and spec().effective_version == "1.4"
    assert spec(version="2024-06-01").effective_version == "2024-06-01"
    assert "label value" in refused(spec, version="v 1")
    assert "version is empty" in refused(spec, version="")


def test_tag_that_is_not_a_label_value_needs_an_explicit_version():
    msg = refused(spec, image="ghcr.io/acme/churn:_v1")
    assert "set version explicitly" in msg
    assert spec(image="ghcr.io/acme/churn:_v1", version="v1").effective_version == "v1"


# ---------------------------------------------------------------------------------------------------------
# exposure, tracks, pod security


def test_exposure_rules():
    s = spec(expose="gateway", gateway="infra/public", host="churn.example.com")
    assert (s.expose, s.gateway, s.host) == ("gateway", "infra/public", "churn.example.com")
    assert spec(expose="ingress", host="*.example.com").host == "*.example.com"
    assert spec(expose="ingress").host is None
    assert "needs gateway" in refused(spec, expose="gateway")
    assert "only applies to an HTTPRoute" in refused(spec, expose="ingress", gateway="gw")
    assert "host only applies" in refused(spec, host="churn.example.com")
    assert "host name" in refused(spec, expose="ingress", host="Churn.Example.com")
    assert "gateway 'a/b/c' is not a Gateway" in refused(spec, expose="gateway", gateway="a/b/c")
    assert "did you mean 'ingress'" in refused(spec, expose="ingres")


def test_ingress_class_names_an_ingress_class_of_an_ingress_exposure():
    assert spec(expose="ingress").ingress_class is None  # unset: the cluster's default IngressClass
    assert spec(expose="ingress", ingress_class="nginx").ingress_class == "nginx"
    assert spec(expose="ingress", ingress_class="int.example.com").ingress_class == "int.example.com"
    assert refused(spec, expose="ingress", ingress_class="Nginx") == (
        "ingress_class 'Nginx' is not a valid name: use lower-case letters, digits, '-' and '.', starting "
        "and ending with a letter or digit, at most 253 characters (DNS-1123 subdomain).")
    assert "DNS-1123 subdomain" in refused(spec, expose="ingress", ingress_class="")
    assert "DNS-1123 subdomain" in refused(spec, expose="ingress", ingress_class="a" * 254)
    assert "must be a string" in refused(spec, expose="ingress", ingress_class=1)
    for kw in ({}, {"expose": "gateway", "gateway": "infra/public"}):
        assert refused(spec, ingress_class="nginx", **kw) == (
            "ingress_class is set but expose is not 'ingress': the IngressClass only applies to an Ingress.")
    data = {"name": "churn", "image": IMAGE, "expose": "ingress", "ingress_class": "nginx"}
    assert DeploySpec.from_dict(data).to_dict() == data


def test_tracks():
    assert [spec(track=t).object_name for t in L.TRACKS] == ["churn", "churn-canary", "churn-shadow",
                                                             "churn-preview"]
    assert "did you mean 'canary'" in refused(spec, track="canery")


def test_pod_security():
    assert spec(pod_security="restricted").pod_security == "restricted"
    assert "'restricted'" in refused(spec, pod_security="baseline")


# ---------------------------------------------------------------------------------------------------------
# immutability, replace, errors


def test_spec_is_frozen_hashable_and_equal_by_value():
    a = spec(env={"A": "1"}, labels={"team": "x"}, tolerations=["k:NoSchedule"])
    b = spec(env={"A": "1"}, labels={"team": "x"}, tolerations=["k:NoSchedule"])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]


def test_with_and_replace_validate_again():
    s = spec(resources=Resources(cpu="1", memory="1Gi"))
    assert s.with_(image="ghcr.io/acme/churn:1.5").effective_version == "1.5"
    assert s.with_(cpu="2").resources == Resources(cpu="2", memory="1Gi")
    assert "DNS-1035" in refused(s.with_, name="Bad")
    assert "DNS-1035" in refused(dataclasses.replace, s, name="Bad")
    assert "must not exceed" in refused(s.with_, cpu_limit="500m")
    assert "did you mean 'replicas'" in refused(s.with_, replica=2)


def test_spec_errors_are_value_errors_of_our_family():
    with pytest.raises(ValueError) as info:
        spec(name="Bad")
    assert isinstance(info.value, MLDeployError)


# ---------------------------------------------------------------------------------------------------------
# dict form


def test_from_dict_minimal():
    s = DeploySpec.from_dict({"name": "churn", "image": IMAGE})
    assert s == spec()


def test_from_dict_full():
    s = DeploySpec.from_dict({
        "name": "churn", "image": "ghcr.io/acme/churn", "allow_latest": True, "namespace": "ml",
        "cpu": 2, "memory": "4Gi", "cpu_limit": "4", "memory_limit": "8Gi", "gpu": 1, "gpu_type": "A100",
        "autoscale": "2:10:70", "port": 9000, "env": ["A=1"], "args": ["--x"], "readiness": "/healthz",
        "liveness": None, "pvc": "models:/models", "node_selector": {"pool": "gpu"},
        "tolerations": ["pool=gpu:NoSchedule"], "image_pull_secrets": ["regcred"], "service_account": "sa",
        "labels": {"team": "x"}, "annotations": {"note": "y"}, "expose": "ingress", "host": "c.example.com",
        "strategy": "rolling", "max_surge": 1, "max_unavailable": "10%", "track": "canary",
    })
    assert s.image.tag == "latest" and s.namespace == "ml"
    assert s.resources == Resources("2", "4Gi", "4", "8Gi", 1, gpu_type="A100")
    assert s.autoscale == Autoscale(2, 10, 70) and s.port == 9000 and dict(s.env) == {"A": "1"}
    assert s.readiness == Probe("/healthz") and s.liveness is None
    assert (s.model_pvc, s.model_path) == ("models", "/models")
    assert s.tolerations == (Toleration("pool", "Equal", "gpu", "NoSchedule"),)
    assert (s.max_surge, s.max_unavailable, s.track) == (1, "10%", "canary")


def test_from_dict_unknown_field_suggests_the_right_one():
    msg = refused(DeploySpec.from_dict, {"name": "churn", "image": IMAGE, "cpus": "2"})
    assert msg.startswith("unknown field 'cpus' in the spec; did you mean 'cpu'?")
    assert "allowed fields: " + ", ".join(SPEC_FIELDS) in msg


def test_from_dict_several_unknown_fields_all_named():
    msg = refused(DeploySpec.from_dict, {"name": "churn", "image": IMAGE, "cpus": "2", "zzz": 1})
    assert "'cpus'" in msg and "'zzz'" in msg


@pytest.mark.parametrize("data, why", [
    ({"image": IMAGE}, "no 'name'"), ({"name": "churn"}, "no 'image'"),
    ({"name": "churn", "image": [IMAGE]}, "image must be a string"),
    ({"name": ["churn"], "image": IMAGE}, "name must be a string"),
    ({"name": "churn", "image": IMAGE, "args": "--x"}, "args must be a list"),
    ({"name": "churn", "image": IMAGE, "env": "A=1"}, "env must be a list"),
    ({"name": "churn", "image": IMAGE, "labels": ["a"]}, "labels must be a mapping"),
    ({"name": "churn", "image": IMAGE, "version": 1.10}, "quote it in YAML"),
    ({"name": "churn", "image": IMAGE, "allow_latest": "yes"}, "true or false"),
    ({"name": "churn", "image": IMAGE, "autoscale": 3}, "MIN:MAX"),
    ({"name": "churn", "image": IMAGE, "readiness": 5}, "readiness must be"),
    ({"name": "churn", "image": IMAGE, "pvc": "m:/a", "model_path": "/b"}, "one place"),
    ({"name": "churn", "image": "nginx"}, "allow_latest"),
])
def test_from_dict_types_and_rules(data, why):
    assert why in refused(DeploySpec.from_dict, data)


def test_from_dict_refuses_non_mappings():
    assert "must be a mapping" in refused(DeploySpec.from_dict, ["name", "churn"])


def test_from_dict_null_means_default_except_for_probes():
    s = DeploySpec.from_dict({"name": "churn", "image": IMAGE, "cpu": None, "readiness": None})
    assert s.resources.cpu is None and s.readiness is None and s.liveness == Probe(LIVE_PATH)


ROUND_TRIP = [
    spec(),
    spec(image=f"ghcr.io/acme/churn@{DIGEST}"),
    spec(image=ImageRef.parse("nginx", allow_latest=True)),
    spec(readiness=None, liveness=Probe("/healthz", 9000, 5, 10, 6), model_path="/data"),
    spec(readiness=Probe("/healthz"), strategy="recreate", replicas=3, port=9000, track="shadow"),
    DeploySpec.from_dict({
        "name": "churn", "image": IMAGE, "namespace": "ml", "version": "v7", "cpu": "2", "memory": "4Gi",
        "cpu_limit": "4", "memory_limit": "8Gi", "gpu": 2, "gpu_type": "A100", "autoscale": "2:10:70",
        "max_surge": 1, "max_unavailable": "10%", "command": ["serve"], "args": ["--x", "1"],
        "env": {"B": "2", "A": "1"}, "pvc": "models:/m", "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "k", "operator": "Exists"}, "a=b:NoExecute"], "image_pull_secrets": ["r"],
        "service_account": "sa", "pod_security": "restricted", "labels": {"team": "x"},
        "annotations": {"n": "y"}, "expose": "gateway", "gateway": "infra/gw", "host": "c.example.com",
    }),
    spec(resources=Resources(gpu=1, gpu_resource="amd.com/gpu", gpu_type="MI300X")),
    spec(expose="ingress", host="c.example.com", ingress_class="nginx"),
]


@pytest.mark.parametrize("original", ROUND_TRIP)
def test_round_trip_to_dict_from_dict(original):
    data = original.to_dict()
    assert set(data) <= set(SPEC_FIELDS)
    assert DeploySpec.from_dict(data) == original
    assert DeploySpec.from_dict(data).to_dict() == data


def test_to_dict_leaves_defaults_out():
    assert spec().to_dict() == {"name": "churn", "image": IMAGE}
    assert spec(readiness=None).to_dict() == {"name": "churn", "image": IMAGE, "readiness": None}


@given(
    cpu=st.one_of(st.none(), st.sampled_from(["100m", "1", "2.5", "4"])),
    memory=st.one_of(st.none(), st.sampled_from(["256Mi", "1Gi", "1.5Gi"])),
    gpu=st.integers(0, 4),
    replicas=st.one_of(st.none(), st.integers(0, 20)),
    env=st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=10),
                        max_size=3),
    track=st.sampled_from(L.TRACKS),
    port=st.integers(1, 65535),
    readiness=st.one_of(st.none(), st.just("/healthz"), st.builds(Probe, st.just("/r"), st.none(),
                                                                  st.integers(0, 30))),
)
def test_round_trip_property(cpu, memory, gpu, replicas, env, track, port, readiness):
    original = spec(resources=Resources(cpu=cpu, memory=memory, gpu=gpu), replicas=replicas, env=env,
                    track=track, port=port, readiness=readiness)
    assert DeploySpec.from_dict(original.to_dict()) == original
