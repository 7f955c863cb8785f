"""The magics' parsing layer: every mistake is ONE UsageError sentence, and nothing reaches a cluster.

Pure tests of jupyter_mldeploy.magics.args, the same inputs through the magics in a real
InteractiveShell whose kubeconfig does not exist (so a request could not even be attempted: the
connection is never made when parsing fails), hypothesis fuzzing of both, and the text view.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from refusals import one_sentence, usage_error
from shells import fresh_shell

from jupyter_mldeploy.magics import args
from jupyter_mldeploy.magics.display import MLDeployFailed, Overview, TextProgress
from jupyter_mldeploy.spec import SPEC_FIELDS
from jupyter_mldeploy.status import RolloutStatus

IMAGE = "ghcr.io/acme/churn:1.4"
# No example database: the tree is shared and nothing may be written into it.
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def deploy(line: str, cell: str | None = None, **ns) -> args.DeployRequest:
    return args.parse_deploy(line, cell, ns)


def usage(line: str, cell: str | None = None, **ns) -> str:
    return usage_error(args.parse_deploy, line, cell, ns)


# ---------------------------------------------------------------------------------------------------
# the line


def test_full_line_becomes_the_spec_and_the_options():
    r = deploy(f"churn --image {IMAGE} --cpu 2 --memory 4Gi --cpu-limit 4 --memory-limit 8Gi --gpu 1 "
               "--gpu-type NVIDIA-A100-SXM4-80GB --port 9000 --env A=1 B=x=y --env C=3 --pvc models:/mnt/m "
               "--label team=ml --pull-secret regcred --expose ingress --host churn.example "
               "--strategy recreate --readiness /ready --liveness none --namespace ml --context dev "
               "--timeout 10m --atomic")
    s = r.spec
    assert (s.name, str(s.image), s.resources.cpu, s.resources.memory, s.resources.gpu) == (
        "churn", IMAGE, "2", "4Gi", 1)
    assert (s.resources.cpu_limit, s.resources.memory_limit, s.resources.gpu_type) == (
        "4", "8Gi", "NVIDIA-A100-SXM4-80GB")
    assert dict(s.env) == {"A": "1", "B": "x=y", "C": "3"} and s.port == 9000
    assert (s.model_pvc, s.model_path, dict(s.labels)) == ("models", "/mnt/m", {"team": "ml"})
    assert s.image_pull_secrets == ("regcred",) and (s.expose, s.host, s.strategy) == (
        "ingress", "churn.example", "recreate")
    assert s.readiness.path == "/ready" and s.liveness is None
    # the namespace is an option of the call, not baked into the spec (the config may supply it)
    assert s.namespace is None and r.namespace == "ml" and r.context == "dev"
    assert (r.wait, r.timeout, r.atomic) == (True, 600.0, True)
    assert (r.dry_run, r.output, r.panel) == (None, None, False)


@pytest.mark.parametrize(("line", "expected"), [
    (f"churn --image {IMAGE} --autoscale 2:10:70 --cpu 500m", {"autoscale": "2:10:70"}),
    (f"churn --image {IMAGE} --replicas 3", {"replicas": 3}),
    (f"churn --image {IMAGE} --expose gateway --gateway infra/public", {"gateway": "infra/public"}),
    ("churn --image acme/churn --allow-latest", {"image": "acme/churn:latest"}),
])
def test_each_flag_maps_to_its_spec_field(line, expected):
    got = deploy(line).spec.to_dict()
    assert {k: got[k] for k in expected} == expected


def test_options_of_the_call():
    r = deploy(f"churn --image {IMAGE} --no-wait --dry-run server -o yaml --timeout 90s")
    assert (r.wait, r.dry_run, r.output, r.timeout) == (False, "server", "yaml", 90.0)
    assert deploy(f"churn --image {IMAGE} --dry-run").dry_run == "client"
    assert deploy(f"churn --image {IMAGE} --wait").wait is True


@pytest.mark.parametrize(("line", "words"), [
    # the list: unknown flag, a quantity with words, a bad image, half a GPU, bad names
    (f"churn --image {IMAGE} --cpus 2", "has no option --cpus (did you mean --cpu?)"),
    (f"churn --image {IMAGE} --cpu 2 cores", "unexpected value 'cores': quote a value"),
    (f"churn --image {IMAGE} --cpu '2 cores'", "cpu '2 cores' is not a Kubernetes quantity"),
    (f"churn --image {IMAGE} --memory 4GB", "did you mean 4G or 4Gi?"),
    ("churn --image Ghcr.io/Acme/Churn:1.4", "invalid repository 'Acme/Churn'"),
    ("churn --image ghcr.io/acme/churn", "has no tag or digest"),
    (f"churn --image {IMAGE} --gpu 0.5", "--gpu '0.5' is not a whole number (a GPU cannot be split"),
    (f"Churn --image {IMAGE}", "name 'Churn' is not a valid name"),
    (f"{'a' * 60} --image {IMAGE}", "is 60 characters, but at most 55 are allowed"),
    # argparse's own complaints, reworded
    (f"churn --image {IMAGE} --ima x", "did you mean --image?"),
    (f"churn --image {IMAGE} --cpu", "%deploy: --cpu needs a value."),
    (f"churn --image {IMAGE} --dry-run nope", "--dry-run 'nope' is not one of 'client', 'server'"),
    (f"churn --image {IMAGE} --wait=yes", "takes no value"),
    (f"churn --image '{IMAGE}", "no closing quotation"),
    # missing pieces and contradictions
    ("churn", "needs --image REF"),
    (f"--image {IMAGE}", "needs a model name first"),
    (f"churn --image {IMAGE} -o yaml", "needs --dry-run"),
    (f"churn --image {IMAGE} --atomic --no-wait", "--atomic puts back the previous release"),
    (f"churn --image {IMAGE} --replicas 2 --autoscale 1:3 --cpu 1", "replicas and autoscale are exclusive"),
    (f"churn --image {IMAGE} --replicas two", "--replicas 'two' is not a whole number"),
    (f"churn --image {IMAGE} --env A", "env 'A' is not valid: write NAME=VALUE"),
    (f"churn --image {IMAGE} --env A=1 A=2", "env 'A' is given twice"),
    (f"churn --image {IMAGE} --label app.kubernetes.io/name=x", "is set by jupyter-mldeploy itself"),
    (f"churn --image {IMAGE} --namespace Prod", "namespace 'Prod' is not a valid name"),
    (f"churn --image {IMAGE} --timeout soon", "--timeout 'soon' is not a duration"),
    (f"churn --image {IMAGE} --timeout 0", "more than zero seconds"),
    (f"churn --image {IMAGE} --host churn.example", "host is set but expose is not"),
    (f"churn --image {IMAGE} --context ''", "--context is empty"),
    (f"churn --image {IMAGE} --panel --dry-run", "--panel opens the deploy panel"),
])
def test_bad_line_is_one_usage_error_sentence(line, words):
    assert words in usage(line)


@pytest.mark.parametrize("strategy", ["rolling", "recreate"])
def test_plain_strategies_are_the_specs_own(strategy):
    r = deploy(f"churn --image {IMAGE} --strategy {strategy}")
    assert r.spec.strategy == strategy and r.rollout is None


def test_every_strategy_the_traffic_layer_knows_is_offered_by_the_magic():
    from jupyter_mldeploy.traffic import STRATEGIES

    assert args.AVAILABLE_STRATEGIES is STRATEGIES  # one list, not a copy kept equal
    for strategy in STRATEGIES:  # each one parses, none is refused as "not available yet"
        r = deploy(f"churn --image {IMAGE} --strategy {strategy}")
        assert (r.rollout or r.spec.strategy) == strategy
    assert usage(f"churn --image {IMAGE} --strategy canery") == (
        "--strategy 'canery' is not one of rolling, recreate, canary, blue-green, shadow "
        "(did you mean canary?).")


def test_the_router_list_is_the_traffic_layers_one():
    from jupyter_mldeploy.config import ROUTERS as SETTING
    from jupyter_mldeploy.traffic import ROUTERS

    # one list: what %config MLDeploy.router accepts, the --router flag offers, in the same order
    assert args.ROLLOUT_ROUTERS == SETTING == ("auto", *ROUTERS)
    routed = {deploy(f"churn --image {IMAGE} --strategy canary --router {r}").router for r in ROUTERS}
    assert routed == set(ROUTERS)


def test_a_duration_flag_reads_what_the_python_api_reads():
    from jupyter_mldeploy.rollout import parse_every

    # --timeout, --every and --since share config.parse_seconds, which takes ms like rollout.steps
    assert deploy(f"churn --image {IMAGE} --timeout 500ms").timeout == parse_every("500ms") == 0.5
    assert args.parse_steps("churn 10,100 --every 1500ms").every == parse_every("1500ms") == 1.5
    assert args.parse_shadow("churn --live --since 250ms").since == 0.25


@pytest.mark.parametrize(("line", "expected"), [
    ("--strategy canary --weight 10", {"rollout": "canary", "weight": 10, "mirror": None, "router": None}),
    ("--strategy canary", {"rollout": "canary", "weight": None}),
    ("--strategy canary --weight 0 --router replicas", {"weight": 0, "router": "replicas"}),
    ("--strategy shadow --mirror 50 --router istio", {"rollout": "shadow", "mirror": 50, "router": "istio"}),
    ("--strategy shadow --gateway infra/public", {"gateway": "infra/public", "router": None}),
    ("--strategy blue-green --no-wait --timeout 2m",
     {"rollout": "blue-green", "wait": False, "timeout": 120.0}),
    ("--strategy canary --weight 5 --router gateway --gateway public",
     {"router": "gateway", "gateway": "public"}),
])
def test_rollout_strategies_become_a_rollout_request(line, expected):
    r = deploy(f"churn --image {IMAGE} {line}")
    assert {k: getattr(r, k) for k in expected} == expected
    # the candidate is a plain spec: the strategy and the rollout's Gateway are not the spec's
    assert r.spec.strategy == "rolling" and r.spec.gateway is None and r.spec.name == "churn"


def test_ingress_class_on_the_line_and_in_the_body():
    r = deploy(f"churn --image {IMAGE} --expose ingress --host c.example --ingress-class nginx")
    assert (r.spec.expose, r.spec.host, r.spec.ingress_class) == ("ingress", "c.example", "nginx")
    assert deploy(f"churn --image {IMAGE} --expose ingress").spec.ingress_class is None
    body = f"image: {IMAGE}\nexpose: ingress\ningress_class: nginx\n"
    assert deploy("churn", body).spec.ingress_class == "nginx"
    assert deploy("churn --ingress-class nginx", body).spec.ingress_class == "nginx"
    assert usage("churn --ingress-class traefik", body) == (
        "ingress_class is given both on the %%deploy line (--ingress-class) and in the body; give it in one "
        "place.")
    assert "DNS-1123 subdomain" in usage(f"churn --image {IMAGE} --expose ingress --ingress-class Nginx")
    assert "expose is not 'ingress'" in usage(f"churn --image {IMAGE} --ingress-class nginx")
    assert "--ingress-class NAME" in args.deploy.__doc__


def test_a_gateway_exposure_keeps_its_gateway_in_the_spec():
    r = deploy(f"churn --image {IMAGE} --strategy canary --expose gateway --gateway infra/public "
               f"--host c.example")
    assert r.spec.gateway == "infra/public" and r.gateway is None


def test_the_body_may_name_a_rollout_strategy():
    r = deploy("churn --weight 20", f"image: {IMAGE}\nstrategy: canary\n")
    assert (r.rollout, r.weight, r.spec.strategy) == ("canary", 20, "rolling")
    assert "give it in one place" in usage("churn --strategy shadow", f"image: {IMAGE}\nstrategy: canary\n")


@pytest.mark.parametrize(("line", "words"), [
    ("--strategy shadow --weight 10", "--weight is the share of requests a canary answers, so it needs "
                                      "--strategy canary"),
    ("--strategy blue-green --weight 100", "--weight is the share of requests a canary answers"),
    ("--weight 10", "--weight is the share of requests a canary answers"),
    ("--strategy canary --mirror 50", "--mirror is the percent of requests copied to a shadow, so it needs "
                                      "--strategy shadow."),
    ("--strategy canary --weight 150", "--weight '150' is not a whole percent from 0 to 100."),
    ("--strategy canary --weight ten", "--weight 'ten' is not a whole percent from 0 to 100."),
    ("--strategy shadow --mirror -5", "--mirror '-5' is not a whole percent from 0 to 100."),
    ("--router istio", "--router chooses the traffic layer of a rollout, so it needs --strategy canary, "
                       "blue-green or shadow."),
    ("--strategy canary --router traefik", "--router 'traefik' is not one of 'auto', 'gateway', 'istio'"),
    ("--min-scale 0", "--min-scale size a Knative revision, so they need --router knative"),
    ("--strategy canary --router istio --concurrency 5", "--concurrency size a Knative revision"),
    ("--router knative --min-scale two", "--min-scale 'two' is not a whole number."),
    ("--router knative --min-scale 3 --max-scale 2", "min-scale 3 is more than max-scale 2"),
    ("--router knative --max-scale 0", "max-scale must be a whole number of at least 1, got 0."),
    ("--router knative --atomic", "--atomic does not apply with --router knative"),
    ("--router knative --dry-run server", "--dry-run server does not apply with --router knative"),
    ("--strategy shadow --router replicas", "shadow traffic needs a router that can mirror requests; without "
                                            "one (router 'replicas')"),
    ("--strategy shadow --router nginx --mirror 50", "ingress-nginx mirrors every request or none"),
    ("--strategy shadow --atomic", "--atomic applies to plain deploys, not to a shadow rollout"),
    ("--strategy blue-green --panel", "--panel applies to plain deploys, not to a blue-green rollout"),
    ("--strategy canary --gateway 'infra/Public'", "--gateway 'infra/Public' is not a Gateway: write "
                                                   "namespace/name (or name, in the model's namespace)"),
    ("--strategy canary --gateway a/b/c", "--gateway 'a/b/c' is not a Gateway"),
    ("--strategy canari", "--strategy 'canari' is not one of rolling, recreate, canary, blue-green, shadow "
                          "(did you mean canary?)."),
])
def test_bad_rollout_lines_are_one_sentence(line, words):
    assert words in usage(f"churn --image {IMAGE} {line}")


def test_a_rollout_carries_only_the_fields_given_and_may_be_a_dry_run():
    # The candidate is the stable spec with these changed (rollout.start): nothing else may be sent,
    # or the stable's env, resources and probes would be reset to defaults.
    r = deploy(f"churn --image {IMAGE} --strategy canary --weight 10 --router istio --env LOG=debug")
    assert r.changes == {"name": "churn", "image": IMAGE, "env": {"LOG": "debug"}}
    r = deploy(f"churn --image {IMAGE} --strategy canary --dry-run --show-values")
    assert (r.rollout, r.dry_run, r.show_values, r.changes) == ("canary", "client", True,
                                                                {"name": "churn", "image": IMAGE})
    assert deploy(f"churn --image {IMAGE}").changes is None  # a plain deploy sends the whole spec


def test_env_secret_is_a_reference_checked_before_any_request():
    r = deploy(f"churn --image {IMAGE} --env-secret DB_PASSWORD=db-creds:password TOKEN=api:token")
    assert dict(r.spec.env_from_secret) == {"DB_PASSWORD": "db-creds:password", "TOKEN": "api:token"}
    assert usage(f"churn --image {IMAGE} --env-secret DB_PASSWORD=db-creds") == (
        "env-secret 'DB_PASSWORD' 'db-creds' is not a Secret reference: write SECRET:KEY, the name of a "
        "Secret in the model's namespace and the key in it, such as db-creds:password.")
    assert "Secret name" in usage(f"churn --image {IMAGE} --env-secret DB=Bad_Name:password")
    assert "not a valid Secret key" in usage(f"churn --image {IMAGE} --env-secret DB=db-creds:pass/word")
    assert "env name '1DB' is not valid" in usage(f"churn --image {IMAGE} --env-secret 1DB=db:k")
    assert usage(f"churn --image {IMAGE} --env DB=x --env-secret DB=db:k") == (
        "env 'DB' is given both as a value (env) and from a Secret (env_from_secret); give it in one place.")
    assert "needs --dry-run" in usage(f"churn --image {IMAGE} --show-values")


def test_misspelt_strategy_gets_a_suggestion():
    assert "did you mean rolling?" in usage(f"churn --image {IMAGE} --strategy rollin")


def test_panel_needs_no_image():
    r = deploy("--panel")
    assert r.panel and r.spec is None and r.name is None
    r = deploy(f"churn --image {IMAGE} --panel")
    assert r.panel and r.spec.name == "churn"


# ---------------------------------------------------------------------------------------------------
# {var} substitution


def test_line_variables_are_substituted_without_evaluating_anything():
    class Model:
        image = IMAGE

    r = deploy("churn --image {model.image} --env 'NOTE={note}' 'RAW={{note}}' --replicas {n}",
               model=Model(), note="two words", n=2)
    assert str(r.spec.image) == IMAGE and r.spec.replicas == 2
    assert dict(r.spec.env) == {"NOTE": "two words", "RAW": "{note}"}
    # an expression is not a variable name: it is left as it is (and here fails as an image)
    assert "__import__" in usage("churn --image {__import__('os').getcwd()}")


@pytest.mark.parametrize(("line", "words"), [
    ("churn --image {missing}",
     "{missing} in the %deploy line: there is no variable 'missing' in the notebook."),
    ("churn --image {cfg.nope}", "{cfg.nope} in the %deploy line: cfg has no attribute 'nope'."),
])
def test_missing_variable_is_one_sentence(line, words):
    assert usage(line, cfg={"image": IMAGE}) == words


def test_a_failing_property_is_one_sentence():
    class Broken:
        @property
        def image(self):
            raise RuntimeError("no\nimage here")

    assert usage("churn --image {b.image}", b=Broken()) == (
        "{b.image} in the %deploy line: reading b.image failed: no image here.")


# ---------------------------------------------------------------------------------------------------
# %%deploy bodies


BODY = """\
image: ghcr.io/acme/churn:{version}
cpu: {cpu}
replicas: {replicas}
env: {env}
labels:
  team: "{team}"
node_selector: {selector}
# {not_a_variable} in a comment is never looked up
"""


def test_body_variables_keep_their_types():
    r = deploy("churn --no-wait --namespace ml", BODY, version="1.5", cpu="500m", replicas=3,
               env={"MODEL": "churn", "THREADS": "4"}, team="ml", selector={"disk": "ssd"})
    s = r.spec
    assert str(s.image) == "ghcr.io/acme/churn:1.5" and s.replicas == 3 and s.resources.cpu == "500m"
    assert dict(s.env) == {"MODEL": "churn", "THREADS": "4"}
    assert dict(s.labels) == {"team": "ml"} and dict(s.node_selector) == {"disk": "ssd"}
    assert r.namespace == "ml" and r.wait is False
    # a whole-value variable keeps its type, so the spec's own rules judge it
    assert usage("churn", BODY, version="1.5", cpu="1", replicas="3", env={}, team="ml", selector={}) == (
        "replicas must be a whole number, got the string '3'.")


def test_body_value_cannot_change_the_yaml_structure():
    # a value full of YAML syntax stays one string value; it does not add fields
    r = deploy("churn", "image: ghcr.io/acme/churn:1.4\nenv:\n  NOTE: {note}\n",
               note="x\ncpu: 99\n- [a: {b}]")
    assert r.spec.resources.cpu is None
    assert r.spec.env["NOTE"] == "x\ncpu: 99\n- [a: {b}]"


def test_body_variable_edge_cases():
    loop: list = ["a"]
    loop.append(loop)
    assert usage("churn", f"image: {IMAGE}\nargs: {{loop}}", loop=loop) == (
        "A variable in the %%deploy body refers to itself; give a plain value.")
    # a key is always text, so a mapping variable used as a key is just an unknown field name
    assert "unknown field \"{'a': 1}\" in the spec" in usage("churn", f"{{d}}: 1\nimage: {IMAGE}", d={"a": 1})
    r = deploy("churn", f"image: {IMAGE}\nargs: {{argv}}\ncommand: [python, '{{{{literal}}}}']",
               argv=("--port", "9000"))
    assert r.spec.args == ("--port", "9000") and r.spec.command == ("python", "{literal}")


def test_body_can_name_the_model_and_line_flags_apply_too():
    r = deploy("--dry-run --cpu 2", "name: churn\nimage: ghcr.io/acme/churn:1.4\nmemory: 1Gi\n")
    assert r.spec.name == "churn" and r.spec.resources.cpu == "2" and r.dry_run == "client"
    # the same value in both places is not a contradiction
    assert deploy("churn --cpu 2", "image: ghcr.io/acme/churn:1.4\ncpu: 2\n").spec.resources.cpu == "2"


def test_body_namespace_is_used_when_the_line_has_none():
    r = deploy("churn", "image: ghcr.io/acme/churn:1.4\nnamespace: team-a\n")
    assert r.namespace == "team-a" and r.spec.namespace == "team-a"


@pytest.mark.parametrize(("line", "body", "words"), [
    ("churn", "image: [", "The %%deploy body is not valid YAML: expected the node content, but found "
                          "'<stream end>' (line 1, column 9)."),
    ("churn", "image: a\n  b: c", "not valid YAML: mapping values are not allowed here (line 2"),
    ("churn", "- a\n- b", "must be a YAML mapping of fields such as image and cpu, got a list."),
    ("churn", "just words", "must be a YAML mapping of fields such as image and cpu, got a single value."),
    ("churn", f"image: {IMAGE}\nimgae: x", "unknown field 'imgae' in the spec; did you mean 'image'?"),
    ("churn", f"image: {IMAGE}\nreplicas: two", "replicas must be a whole number, got the string 'two'."),
    ("churn", f"image: {IMAGE}\ngpu: 0.5", "gpu must be a whole number of GPUs"),
    ("churn", "image: {nope}", "{nope} in the %%deploy body: there is no variable 'nope' in the notebook."),
    ("churn --cpu 2", f"image: {IMAGE}\ncpu: 4", "cpu is given both on the %%deploy line (--cpu) and in the "
                                                "body; give it in one place."),
    ("churn", f"name: other\nimage: {IMAGE}", "The %%deploy line names 'churn' but the body names 'other'"),
    ("churn -n a", f"image: {IMAGE}\nnamespace: b", "--namespace a contradicts the body's namespace 'b'"),
    ("", f"image: {IMAGE}", "%%deploy needs a model name, on the line (%%deploy churn) or in the body"),
    ("churn", "", "%deploy needs --image REF"),
])
def test_bad_body_is_one_usage_error_sentence(line, body, words):
    assert words in usage(line, body)


# ---------------------------------------------------------------------------------------------------
# the other magics


@pytest.mark.parametrize(("magic", "line", "expected"), [
    ("undeploy", "churn -n ml", {"name": "churn", "namespace": "ml"}),
    ("rollout", "churn --watch --timeout 30 --events", {"watch": True, "timeout": 30.0, "events": True}),
    ("rollback", "churn --to 2 --no-wait --context dev", {"revision": 2, "wait": False, "context": "dev"}),
    ("rollback", "churn", {"revision": None, "wait": True}),
    ("promote", "churn --timeout 5m -n ml", {"name": "churn", "timeout": 300.0, "namespace": "ml"}),
    ("release", "churn", {"name": "churn", "timeout": None}),
    ("mldeploy", "-A", {"all_namespaces": True, "name": None}),
    ("mldeploy", "", {"all_namespaces": False, "namespace": None}),
])
def test_target_lines(magic, line, expected):
    r = args.parse_target(magic, line, {})
    assert {k: getattr(r, k) for k in expected} == expected


@pytest.mark.parametrize(("magic", "line", "words"), [
    ("undeploy", "", "%undeploy needs a model name first, such as %undeploy churn."),
    ("undeploy", "Churn", "'Churn' is not a valid name"),
    ("undeploy", "churn --force", "%undeploy has no option --force"),
    ("rollback", "churn --to two", "--to 'two' is not a whole number."),
    ("rollback", "churn --to 0", "--to 0 is not a revision"),
    ("rollout", "churn extra", "%rollout got an unexpected value 'extra'"),
    ("mldeploy", "-A -n ml", "-A lists every namespace"),
    ("promote", "", "%promote needs a model name first, such as %promote churn."),
    ("promote", "churn --wait", "%promote has no option --wait"),
    ("release", "churn --timeout never", "--timeout 'never' is not a duration"),
])
def test_bad_target_lines(magic, line, words):
    with pytest.raises(UsageError) as e:
        args.parse_target(magic, line, {})
    assert words in one_sentence(e.value)


@pytest.mark.parametrize(("line", "expected"), [
    ("churn 30", {"name": "churn", "weight": 30}),
    ("churn 30%", {"weight": 30}),
    ("churn 0 -n ml --context dev", {"weight": 0, "namespace": "ml", "context": "dev"}),
    ("churn", {"weight": None}),
    ("churn {w}", {"weight": 45}),
])
def test_canary_lines(line, expected):
    r = args.parse_canary(line, {"w": 45})
    assert {k: getattr(r, k) for k in expected} == expected


@pytest.mark.parametrize(("line", "expected"), [
    ("churn 100", {"name": "churn", "weight": 100}),
    ("churn 5% -n ml", {"weight": 5, "namespace": "ml"}),
    ("churn", {"weight": None}),
    ("churn {w}", {"weight": 45}),
])
def test_mirror_lines(line, expected):
    r = args.parse_mirror(line, {"w": 45})
    assert {k: getattr(r, k) for k in expected} == expected


@pytest.mark.parametrize(("line", "expected"), [
    ("churn 10,25,50,100", {"schedule": (10, 25, 50, 100), "every": 300.0, "once": False}),
    ("churn 50,100 --every 5s", {"schedule": (50, 100), "every": 5.0}),
    ("churn 10%,20% --once --timeout 90", {"schedule": (10, 20), "once": True, "timeout": 90.0}),
    ("churn 100", {"schedule": (100,)}),
])
def test_steps_lines(line, expected):
    r = args.parse_steps(line, {})
    assert {k: getattr(r, k) for k in expected} == expected


def test_shadow_lines_take_the_variable_itself():
    rows = [[1.0, 2.0], [3.0, 4.0]]

    class Split:
        test = rows

    r = args.parse_shadow("churn --data X --primary-url http://127.0.0.1:8081 --shadow-url "
                          "http://127.0.0.1:8082 --mode numeric --tolerance 0.01 --model iris --timeout 3",
                          {"X": rows})
    assert r.data is rows and r.data_name == "X"
    assert (r.primary_url, r.shadow_url) == ("http://127.0.0.1:8081", "http://127.0.0.1:8082")
    assert (r.mode, r.tolerance, r.model, r.timeout) == ("numeric", 0.01, "iris", 3.0)
    r = args.parse_shadow("churn --data split.test -n ml", {"split": Split()})
    assert r.data is rows and r.primary_url is None and (r.mode, r.tolerance) == ("auto", 1e-6)
    assert r.namespace == "ml"
    assert not r.live and r.since is None


@pytest.mark.parametrize(("line", "expected"), [
    ("churn --live", {"live": True, "since": None, "data": None, "data_name": None, "timeout": None}),
    ("churn --live --since 5m", {"since": 300.0, "mode": "auto", "tolerance": 1e-6}),
    ("churn --since 90 --live --mode numeric --tolerance 0.01 -n ml --timeout 5",
     {"since": 90.0, "mode": "numeric", "tolerance": 0.01, "namespace": "ml", "timeout": 5.0}),
])
def test_shadow_live_lines_send_nothing(line, expected):
    r = args.parse_shadow(line, {})
    assert {k: getattr(r, k) for k in expected} == expected
    assert r.live and (r.primary_url, r.shadow_url, r.model) == (None, None, None)


@pytest.mark.parametrize(("magic", "line", "words"), [
    ("canary", "", "%canary needs a model name first, such as %canary churn."),
    ("canary", "churn 101", "%canary's weight '101' is not a whole percent from 0 to 100."),
    ("canary", "churn 10.5", "is not a whole percent"),
    ("canary", "churn 10 20", "%canary got an unexpected value '20'"),
    ("mirror", "", "%mirror needs a model name first, such as %mirror churn."),
    ("mirror", "churn 150", "%mirror's percent '150' is not a whole percent from 0 to 100."),
    ("mirror", "churn 10 --name ml", "%mirror has no option --name"),
    ("steps", "churn", "%steps needs the weights to go through, such as %steps churn 10,25,50,100."),
    ("steps", "churn 10,x,100", "%steps '10,x,100' is not a list of whole percents"),
    ("steps", "churn 50,25,100", "%steps '50,25,100' must rise from 1 to at most 100, each weight once"),
    ("steps", "churn 0,50", "must rise from 1 to at most 100"),
    ("steps", "churn 50,150", "must rise from 1 to at most 100"),
    ("steps", "churn 10,10,100", "each weight once"),
    ("steps", "churn 10,100 --every soon", "--every 'soon' is not a duration"),
    ("steps", "churn 10,100 --every 5m --once",
     "--once takes one step and returns, so --every does not apply"),
    ("shadow", "churn", "%shadow needs --data VAR, the notebook variable holding the rows to send, such as "
                        "%shadow churn --data X_test, or --live to compare the requests the router "
                        "mirrored."),
    ("shadow", "churn --data X --live", "--live compares the requests the router already mirrored and --data "
                                        "sends rows now; give one of them."),
    ("shadow", "churn --live --primary-url http://a:1 --shadow-url http://b:2",
     "--primary-url applies to the rows --data sends; --live reads the stable and shadow pods' logs through "
     "the API server, so drop --primary-url."),
    ("shadow", "churn --live --shadow-url http://b:2", "so drop --shadow-url."),
    ("shadow", "churn --live --model iris", "so drop --model."),
    ("shadow", "churn --data X --since 5m", "--since chooses which log lines --live reads, so it needs "
                                            "--live (--data sends its rows now)."),
    ("shadow", "churn --since 5m", "so it needs --live"),
    ("shadow", "churn --live --since soon", "--since 'soon' is not a duration: write seconds such as 600"),
    ("shadow", "churn --live --since 0", "--since must be more than zero seconds"),
    ("shadow", "churn --live=yes", "%shadow: --live takes no value, got 'yes'."),
    ("shadow", "churn --live --tolerance x", "--tolerance 'x' is not a number"),
    ("shadow", "churn --data nope", "--data nope: there is no variable 'nope' in the notebook."),
    ("shadow", "churn --data X.nope", "X has no attribute 'nope'"),
    ("shadow", "churn --data {X}",
     "is not a variable name: give the name of the notebook variable holding the rows (without braces)"),
    ("shadow", "churn --data X --primary-url http://a:1", "--primary-url and --shadow-url go together"),
    ("shadow", "churn --data X --primary-url a:1 --shadow-url http://b:2", "--primary-url 'a:1' is not an "
                                                                           "http:// or https:// URL"),
    ("shadow", "churn --data X --mode fuzzy", "--mode 'fuzzy' is not one of 'auto', 'exact', 'numeric'"),
    ("shadow", "churn --data X --tolerance small", "--tolerance 'small' is not a number, such as 0.01."),
    ("shadow", "churn --data X --tolerance=-1", "--tolerance '-1' must be a finite number of 0 or more."),
    ("shadow", "churn --data X --tolerance nan", "must be a finite number of 0 or more"),
    ("shadow", "churn --data X --model 'a b'", "--model 'a b' is not a model name"),
])
def test_bad_rollout_magic_lines(magic, line, words):
    parse = {"canary": args.parse_canary, "mirror": args.parse_mirror, "steps": args.parse_steps,
             "shadow": args.parse_shadow}[magic]
    with pytest.raises(UsageError) as e:
        parse(line, {"X": [[1, 2]]})
    assert words in one_sentence(e.value)


@pytest.mark.parametrize("stub", [args.deploy, args.undeploy, args.rollout, args.rollback, args.mldeploy,
                                  args.canary, args.mirror, args.promote, args.release, args.steps,
                                  args.shadow])
def test_help_is_generated_from_the_arguments_with_examples(stub):
    doc = stub.__doc__
    assert f"%{stub.__name__} [" in doc or f"%{stub.__name__} NAME" in doc  # the usage line
    assert "Examples::" in doc and f"%{stub.__name__}" in doc.split("Examples::")[1]
    for action in stub.parser._actions:
        for option in action.option_strings:
            assert option in doc


# ---------------------------------------------------------------------------------------------------
# fuzzing the pure layer: only UsageError may come out


_FLAGS = sorted({o for a in args.deploy.parser._actions for o in a.option_strings})
_VALUES = ["2", "500m", "4Gi", "2 cores", "0.5", "-1", "0", IMAGE, "Churn", "a" * 70, "K=V", "=", "a:b",
           "none", "{x}", "{missing}", "{d.a}", "{{x}}", "'", '"', "server", "yaml", "rolling", "canary",
           "1:3", "3:1", "gateway", "ns/gw", "/path", "models:/mnt", "churn", "1e400", "9" * 30, "\\", "--",
           "-"]
_tokens = st.lists(st.one_of(st.sampled_from(_FLAGS), st.sampled_from(_VALUES), st.text(max_size=12)),
                   max_size=14)
NS = {"x": "1", "n": 3, "d": {"a": "b"}, "obj": object(), "f": 1.5}


def _line(tokens: list[str], quote: bool) -> str:
    return " ".join(shlex.quote(t) if quote else t for t in tokens)


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=15), st.sampled_from(_VALUES))
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
_bodies = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(SPEC_FIELDS), st.text(max_size=8)), _value, max_size=8).map(
        lambda d: yaml.safe_dump(d, default_flow_style=None)),
    st.text(max_size=200),
    st.lists(st.sampled_from(["image: {x}", f"image: {IMAGE}", "cpu: {f}", "env: {d}", "replicas: {n}",
                              "name: churn", "labels: {obj}", "- a", "key: [", "gpu: 1", "  nested: 1",
                              "tolerations: [{key: a, operator: Exists}]", "autoscale: {min: 1}", "a: *b",
                              "? [a]\n: b", "port: 99999", "readiness: {path: x}",
                              "!!python/name:os.system"]),
             max_size=8).map("\n".join),
)


@FUZZ
@given(_tokens, st.booleans())
def test_fuzz_line_only_usage_errors(tokens, quote):
    try:
        args.parse_deploy(_line(tokens, quote), None, NS)
    except UsageError as e:
        one_sentence(e)


@FUZZ
@given(_tokens, _bodies)
def test_fuzz_body_only_usage_errors(tokens, body):
    try:
        args.parse_deploy(_line(tokens, True), body, NS)
    except UsageError as e:
        one_sentence(e)


@FUZZ
@given(st.sampled_from(["undeploy", "rollout", "rollback", "mldeploy", "promote", "release"]), _tokens,
       st.booleans())
def test_fuzz_target_lines_only_usage_errors(magic, tokens, quote):
    try:
        args.parse_target(magic, _line(tokens, quote), NS)
    except UsageError as e:
        one_sentence(e)


_ROLLOUT_TOKENS = st.lists(st.one_of(
    st.sampled_from(["churn", "30", "101", "10,25,50,100", "50,10", "--every", "5s", "--once", "--data",
                     "x", "d", "d.a", "{x}", "--primary-url", "--shadow-url", "http://127.0.0.1:1", "--mode",
                     "topk", "--tolerance", "0.1", "-1", "--model", "--timeout", "-n", "ml", "%", ",",
                     "nan", "--live", "--since", "10m", "0", "1e400"]),
    st.text(max_size=10)), max_size=10)


@FUZZ
@given(st.sampled_from(["canary", "mirror", "steps", "shadow"]), _ROLLOUT_TOKENS, st.booleans())
def test_fuzz_rollout_magic_lines_only_usage_errors(magic, tokens, quote):
    parse = {"canary": args.parse_canary, "mirror": args.parse_mirror, "steps": args.parse_steps,
             "shadow": args.parse_shadow}[magic]
    try:
        parse(_line(tokens, quote), NS)
    except UsageError as e:
        one_sentence(e)


# ---------------------------------------------------------------------------------------------------
# through the magics, in a real InteractiveShell with no cluster


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """IPython with the extension loaded and a kubeconfig that does not exist."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    for var in ("MLDEPLOY_NAMESPACE", "MLDEPLOY_CONTEXT", "MLDEPLOY_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no pyproject.toml above tmp_path's own folder is ours to read
    with fresh_shell(via_extension=False, kubeconfig=str(tmp_path / "no-such-kubeconfig"),
                     interactive="no") as ip:
        yield _spied(ip, monkeypatch)


def _spied(ip, monkeypatch):
    """The shell, recording every connect() the magics make (ip.connect_calls)."""
    import jupyter_mldeploy.kube.client as client

    calls = []
    real = client.connect

    def spy(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(client, "connect", spy)
    ip.connect_calls = calls
    return ip


def _magic(ip, magic: str, line: str, cell: str | None = None):
    if cell is None:
        return ip.run_line_magic(magic, line)
    return ip.run_cell_magic(magic, line, cell)


def _pure(magic: str, line: str, cell: str | None):
    if magic == "deploy":
        return args.parse_deploy(line, cell, NS)
    if magic in ("canary", "mirror", "steps"):
        return getattr(args, f"parse_{magic}")(line, NS)
    return args.parse_target(magic, line, NS)


def _check_magic(ip, magic: str, line: str, cell: str | None = None) -> None:
    """The magic says exactly what the pure parser says, and connects only if parsing passed."""
    ip.user_ns.update(NS)
    if cell == "":
        with pytest.raises(UsageError, match="cell body is empty"):  # IPython's own check, before ours
            _magic(ip, magic, line, cell)
        return
    try:
        pure = _pure(magic, line, cell)
    except UsageError as e:
        pure = e
    before = len(ip.connect_calls)
    try:
        result = _magic(ip, magic, line, cell)
    except UsageError as e:
        text = one_sentence(e)
        if isinstance(pure, UsageError):
            assert text == str(pure)
            assert len(ip.connect_calls) == before  # parsing failed: no connection was even made
        else:
            assert "Could not load a kube context from" in text
    else:
        if getattr(pure, "panel", False):  # the deploy panel opens anyway and says there is no cluster
            assert type(result).__name__ == "DeployPanel"
            return
        # only a client-side dry run with a known namespace succeeds without a cluster
        assert pure.dry_run == "client" and (pure.namespace or pure.spec.namespace)
        assert len(ip.connect_calls) == before


@pytest.mark.parametrize("line", [f"churn --image {IMAGE} --cpus 2", f"Churn --image {IMAGE}",
                                  f"churn --image {IMAGE} --gpu 0.5", f"churn --image {IMAGE} --cpu 2 cores",
                                  f"churn --image {IMAGE}"])
def test_magic_reports_the_parse_error_before_any_connection(shell, line):
    _check_magic(shell, "deploy", line)


def test_valid_line_fails_only_at_the_connection(shell):
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("deploy", f"churn --image {IMAGE}")
    assert "Could not load a kube context from" in one_sentence(e.value) and len(shell.connect_calls) == 1


def test_client_dry_run_with_a_namespace_needs_no_cluster(shell):
    dry = shell.run_line_magic("deploy", f"churn --image {IMAGE} --namespace ml --dry-run -o yaml")
    assert "kind: Deployment" in str(dry) and "namespace: ml" in str(dry)
    assert shell.connect_calls == []


@pytest.mark.parametrize(("magic", "line"), [
    ("deploy", f"churn --image {IMAGE} --strategy shadow --router replicas"),
    ("deploy", f"churn --image {IMAGE} --strategy canary --mirror 5"),
    ("canary", "churn 150"),
    ("mirror", "churn 50.5"),
    ("steps", "churn 50,10"),
    ("promote", "Churn"),
    ("release", ""),
])
def test_rollout_magics_report_the_parse_error_before_any_connection(shell, magic, line):
    _check_magic(shell, magic, line)


def test_shadow_magic_reports_the_parse_error_before_any_connection(shell):
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("shadow", "churn --data missing")
    assert one_sentence(e.value) == "--data missing: there is no variable 'missing' in the notebook."
    assert shell.connect_calls == []


@pytest.mark.parametrize("line", ["churn --live --data missing", "churn --live --since soon",
                                  "churn --live --primary-url http://a:1 --shadow-url http://b:2"])
def test_shadow_live_reports_the_parse_error_before_any_connection(shell, line):
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("shadow", line)
    with pytest.raises(UsageError) as pure:
        args.parse_shadow(line, {})
    assert one_sentence(e.value) == str(pure.value)
    assert shell.connect_calls == []


def test_shadow_live_line_fails_only_at_the_connection(shell):
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("shadow", "churn --live --since 10m")
    assert "Could not load a kube context from" in one_sentence(e.value) and len(shell.connect_calls) == 1


@FUZZ
@given(st.sampled_from(["deploy", "undeploy", "rollout", "rollback", "mldeploy", "canary", "mirror", "steps",
                        "promote", "release"]), _tokens, st.booleans())
def test_fuzz_magic_lines_only_usage_errors(shell, magic, tokens, quote):
    _check_magic(shell, magic, _line(tokens, quote))


@FUZZ
@given(_tokens, _bodies)
def test_fuzz_magic_bodies_only_usage_errors(shell, tokens, body):
    _check_magic(shell, "deploy", _line(tokens, True), body)


def test_headless_error_is_a_one_line_error_output_and_interactive_a_plain_usage_error(shell, capsys):
    result = shell.run_cell(f"%deploy Churn --image {IMAGE}")
    out = capsys.readouterr()
    assert isinstance(result.error_in_exec, MLDeployFailed)
    assert out.out.strip() == "MLDeployFailed: " + str(result.error_in_exec) and "Traceback" not in out.out
    shell.run_line_magic("config", "MLDeploy.interactive = 'yes'")
    result = shell.run_cell(f"%deploy Churn --image {IMAGE}")
    out = capsys.readouterr()
    assert type(result.error_in_exec) is UsageError
    assert out.err.strip().startswith("UsageError: name 'Churn'") and "Traceback" not in out.err + out.out


def test_bad_environment_setting_is_one_sentence_before_any_connection(shell, monkeypatch):
    monkeypatch.setenv("MLDEPLOY_TIMEOUT", "soon")
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("deploy", f"churn --image {IMAGE}")
    assert one_sentence(e.value) == ("MLDEPLOY_TIMEOUT 'soon' is not a duration: write seconds such as 600, "
                                     "or 90s, 10m, 1h.")
    assert shell.connect_calls == []


def test_panel_import_failure_is_one_sentence(shell, monkeypatch):
    monkeypatch.setitem(sys.modules, "jupyter_mldeploy.widgets", None)  # makes the import fail
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("deploy", "churn --panel")
    assert one_sentence(e.value).startswith("The deploy panel is not available (")


def test_load_ext_is_cheap_and_help_needs_no_cluster():
    code = textwrap.dedent("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "jupyter_mldeploy")
        assert "kubernetes" not in sys.modules, "load_ext imported kubernetes"
        doc = ip.find_line_magic("deploy").__doc__
        assert "--image REF" in doc and "Examples::" in doc
        try:
            ip.run_line_magic("deploy", "Churn --image ghcr.io/acme/churn:1.4")
        except Exception as e:
            print(type(e).__name__)
        assert "kubernetes" not in sys.modules, "a bad line imported kubernetes"
        assert "jupyter_mldeploy.api" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["MLDeployFailed", "ok"]


def test_reload_keeps_the_configuration(shell):
    shell.run_line_magic("config", "MLDeploy.namespace = 'ml'")
    shell.run_line_magic("reload_ext", "jupyter_mldeploy")
    assert shell.run_line_magic("config", "MLDeploy.namespace") == "ml"
    assert sum(isinstance(c, type(shell.configurables[-1])) for c in shell.configurables
               if type(c).__name__ == "MLDeploy") == 1


# ---------------------------------------------------------------------------------------------------
# the headless view


def _status(ready: int, desired: int = 2, complete: bool = False) -> RolloutStatus:
    return RolloutStatus("churn", "ml", desired=desired, updated=desired, ready=ready, available=ready,
                         complete=complete)


def test_text_progress_prints_changes_at_most_once_a_second_and_always_the_end():
    now = [0.0]
    lines: list[str] = []
    view = TextProgress(clock=lambda: now[0], write=lines.append)
    view(_status(0))
    view(_status(0))  # same line: nothing
    now[0] = 0.5
    view(_status(1))  # changed, but within the second: skipped
    now[0] = 1.2
    view(_status(1))  # a second later the change shows
    now[0] = 1.3
    view(_status(2, complete=True))
    view.finish(_status(2, complete=True))
    assert lines[0] == "churn  [----------] 0/2 ready"
    assert lines[1] == "churn  [#####-----] 1/2 ready"
    assert lines[2] == "churn  [##########] 2/2 ready  rolled out"
    assert lines[3].startswith("churn: 2/2 ready, rollout complete")
    assert len(lines) == 4


def test_overview_lists_the_offered_layers_and_what_the_others_need():
    view = Overview("dev", "https://k:6443", "ml", "%config", [], frozenset({"istio", "replicas"}))
    text = str(view)
    assert "Nothing deployed by jupyter-mldeploy here yet." in text
    assert "Traffic layers served: istio (Istio VirtualService), replicas (plain replica ratio" in text
    assert ("Not served: gateway (needs gateway.networking.k8s.io/v1), knative (needs "
            "serving.knative.dev/v1), nginx (needs an IngressClass named nginx).") in text
    assert "nginx (needs an IngressClass named nginx)" in view._repr_html_()


def test_node_selector_and_tolerations_on_the_line_reach_the_spec():
    req = args.parse_deploy("churn --image ghcr.io/acme/churn:1.4 --node-selector pool=gpu zone=a "
                       "--toleration nvidia.com/gpu:NoSchedule dedicated=ml:NoExecute")
    assert req.spec.node_selector == {"pool": "gpu", "zone": "a"}
    assert [(t.key, t.operator, t.value, t.effect) for t in req.spec.tolerations] == [
        ("nvidia.com/gpu", "Exists", None, "NoSchedule"), ("dedicated", "Equal", "ml", "NoExecute")]


@pytest.mark.parametrize("line, words", [
    ("--node-selector pool", "node selector"),
    ("--toleration dedicated=ml:Sometimes", "toleration effect"),
    ("--toleration =ml:NoSchedule", "key=value:Effect"),
])
def test_a_bad_placement_flag_is_one_sentence(line, words):
    with pytest.raises(UsageError, match=words):
        args.parse_deploy(f"churn --image ghcr.io/acme/churn:1.4 {line}")


def test_the_cell_body_and_the_line_may_not_both_give_tolerations():
    with pytest.raises(UsageError, match=r"tolerations is given both on the %%deploy line \(--toleration\)"):
        args.parse_deploy("churn --image ghcr.io/acme/churn:1.4 --toleration a:NoSchedule",
                     "tolerations:\n- b:NoSchedule\n")


def test_an_empty_placement_parameter_places_nothing_and_a_candidate_inherits():
    ns = {"node_selector": "", "toleration": ""}
    req = args.parse_deploy("churn --image ghcr.io/acme/churn:1.4 --node-selector {node_selector} "
                            "--toleration {toleration}", None, ns)
    assert req.spec.node_selector == {} and req.spec.tolerations == ()
    canary = args.parse_deploy("churn --image ghcr.io/acme/churn:1.5 --strategy canary --node-selector "
                               "{node_selector}", None, ns)
    assert "node_selector" not in canary.changes  # not given: the stable's node selector carries over
