"""Magic input built to hurt: a YAML alias bomb in %%deploy, a {var} whose value looks like an option,
and a number on a cluster object that someone edited by hand. Each ends in ONE sentence, quickly, and
nothing is built or sent (the style of test_magic_args.py)."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from jupyter_mldeploy import cluster_values
from jupyter_mldeploy.errors import MLDeployError
from jupyter_mldeploy.magics import args

IMAGE = "ghcr.io/acme/churn:1.4"


def one_sentence(err: BaseException) -> str:
    text = str(err)
    assert text and "\n" not in text and "Traceback" not in text, text
    assert text.endswith((".", "?")), text
    return text


def usage(parse, *a, **kw) -> str:
    with pytest.raises(UsageError) as e:
        parse(*a, **kw)
    return one_sentence(e.value)


# --- YAML anchors and aliases ----------------------------------------------------------------------

BOMB = "\n".join([f"image: {IMAGE}", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                 + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]"
                    for p, c in zip("abcdefgh", "bcdefghi", strict=True)])


def test_a_yaml_alias_bomb_is_refused_before_it_expands():
    # Nine levels of nine: 387 million strings if expanded; refused at the first anchor instead.
    text = usage(args.parse_deploy, "churn", BOMB, {})
    assert text == ("The %%deploy body uses a YAML anchor &a (line 2): write the value out instead; "
                    "anchors and aliases are refused, so a few lines cannot expand into a huge spec.")


@pytest.mark.parametrize(("body", "what"), [
    (f"image: {IMAGE}\ncpu: &c 2\nmemory: 4Gi\n", "anchor &c (line 2)"),
    (f"image: {IMAGE}\nbase: &b {{cpu: 1}}\n<<: *b\n", "anchor &b (line 2)"),
    (f"image: {IMAGE}\nenv: *undefined\n", "alias *undefined (line 2)"),
    (f"image: {IMAGE}\nlabels: {{team: &t ml}}\n", "anchor &t (line 2)"),
])
def test_any_anchor_or_alias_is_one_sentence(body, what):
    assert f"uses a YAML {what}" in usage(args.parse_deploy, "churn", body, {})


def test_a_body_without_aliases_still_parses_and_ampersands_in_strings_are_values():
    r = args.parse_deploy("churn", f"image: {IMAGE}\ncpu: 2\nenv:\n  A: '*x'\n  B: 'r&d'\n", {})
    assert r.spec.resources.cpu == "2" and dict(r.spec.env) == {"A": "*x", "B": "r&d"}


# --- {var} values that look like options -----------------------------------------------------------


def test_a_var_value_starting_with_a_dash_stays_the_options_value():
    text = usage(args.parse_deploy, "churn --image {img}", None, {"img": "--gpu"})
    assert text.startswith("image '--gpu' has an invalid repository")  # a value, judged as an image
    text = usage(args.parse_deploy, "churn --image {img} --cpu {c}", None, {"img": IMAGE, "c": "-2"})
    assert text == "cpu '-2' is negative: resource quantities must be zero or more."


def test_a_var_value_that_is_an_option_name_never_sets_that_option():
    text = usage(args.parse_deploy, f"churn --image {IMAGE} {{extra}}", None, {"extra": "--atomic"})
    assert text == ("%deploy got an unexpected value '--atomic' from a {variable}: a variable's value is "
                    "never read as an option; see %deploy? for the options.")
    # Without the variable the same flag is an option, as typed.
    assert args.parse_deploy(f"churn --image {IMAGE} --atomic", None, {}).atomic


def test_a_var_as_the_model_name_cannot_become_an_option():
    text = usage(args.parse_deploy, "{name} --image x:1", None, {"name": "--help"})
    assert "'--help'" in text and "name" in text


def test_a_var_inside_a_token_and_in_other_magics():
    r = args.parse_deploy("churn --image {img} --env A={v}", None, {"img": IMAGE, "v": "-1"})
    assert dict(r.spec.env) == {"A": "-1"}
    assert "'-5'" in usage(args.parse_canary, "churn {w}", {"w": "-5"})
    assert "'-x' is not a valid name" in usage(args.parse_target, "undeploy", "{n}", {"n": "-x"})
    assert "'--live'" in usage(args.parse_shadow, "churn {flag}", {"flag": "--live"})


# --- numbers read back from the cluster ------------------------------------------------------------


@pytest.mark.parametrize("text", ["fifty", "", "5O", "1e2", "20%", "Ⅻ", "٣", "2.5", None])
def test_a_whole_number_annotation_that_is_not_one_is_one_sentence(text):
    with pytest.raises(MLDeployError) as e:
        cluster_values.whole_number(text, key="mldeploy.io/weight", where="HTTPRoute churn in namespace ml")
    msg = one_sentence(e.value)
    assert msg.startswith(f"The annotation mldeploy.io/weight on HTTPRoute churn in namespace ml is "
                          f"{str(text)!r}, not a whole number")


def test_a_list_of_steps_is_judged_whole():
    assert cluster_values.whole_numbers("10, 50,100", key="k", where="w") == (10, 50, 100)
    assert cluster_values.whole_numbers("", key="k", where="w") == ()
    with pytest.raises(MLDeployError) as e:
        cluster_values.whole_numbers("10,x,100", key="mldeploy.io/steps", where="w")
    assert "is '10,x,100', not a comma-separated list of whole numbers" in one_sentence(e.value)


def test_whole_numbers_and_numbers_that_are_fine():
    assert cluster_values.whole_number(" 20 ", key="k", where="w") == 20
    assert cluster_values.whole_number("-1", key="k", where="w") == -1
    assert cluster_values.number("12.5", key="k", where="w") == 12.5
    for bad in ("nan", "inf", "x"):
        with pytest.raises(MLDeployError, match="not a (finite )?number"):
            cluster_values.number(bad, key="k", where="w")
    long = cluster_values.ClusterValueError
    with pytest.raises(long) as e:
        cluster_values.whole_number("x" * 10_000, key="k", where="w")
    assert len(str(e.value)) < 300
