"""%deploy flags added for a newcomer's first steps: --create-namespace, the startup probe, exposure
(TLS, cert-manager, Ingress-only annotations, Service type). Pure: parsing, spec rules and rendering;
the API server's verdict on the same objects is in tests/integration.
"""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from jupyter_mldeploy.magics import args

IMAGE = "ghcr.io/acme/churn:1.4"


def deploy(line: str, cell: str | None = None) -> args.DeployRequest:
    return args.parse_deploy(line, cell, {})


def usage(line: str, cell: str | None = None) -> str:
    with pytest.raises(UsageError) as e:
        args.parse_deploy(line, cell, {})
    text = str(e.value)
    assert text and "\n" not in text and text.endswith((".", "?")), text
    return text


# -- --create-namespace ------------------------------------------------------------------------------


def test_create_namespace_is_off_unless_asked():
    assert deploy(f"churn --image {IMAGE}").create_namespace is False
    assert deploy(f"churn --image {IMAGE} --namespace ml --create-namespace").create_namespace is True


@pytest.mark.parametrize(("line", "words"), [
    (f"churn --image {IMAGE} --strategy canary --create-namespace",
     "--create-namespace is for a first deploy: a canary rollout starts beside the deployed stable model"),
    (f"churn --image {IMAGE} --strategy shadow --mirror 5 --create-namespace", "drop --create-namespace."),
    (f"churn --image {IMAGE} --panel --create-namespace",
     "drop --dry-run, -o, --atomic and --create-namespace"),
    (f"churn --image {IMAGE} --create-namespaces", "has no option --create-namespaces (did you mean "
                                                   "--create-namespace?)"),
])
def test_create_namespace_refusals_are_one_sentence(line, words):
    assert words in usage(line)


def test_create_namespace_is_in_the_help():
    assert "--create-namespace" in args.deploy.__doc__ and "Helm" in args.deploy.__doc__

