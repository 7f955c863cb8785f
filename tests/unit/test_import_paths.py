"""Names that moved in the restructure (issue 14) are still importable from where they were, and they are
the same objects as in their new homes."""

from __future__ import annotations

import importlib

import pytest

import jupyter_mldeploy.diagnosis as diagnosis
import jupyter_mldeploy.kube.diagnose as old_diagnose
from jupyter_mldeploy import shadow


def test_kube_diagnose_re_exports_the_diagnosis_package():
    assert set(old_diagnose.__all__) == set(diagnosis.__all__)
    for name in diagnosis.__all__:
        assert getattr(old_diagnose, name) is getattr(diagnosis, name), name


def test_cluster_value_error_is_the_one_in_errors():
    from jupyter_mldeploy import cluster_values, errors

    assert cluster_values.ClusterValueError is errors.ClusterValueError


# Every name a test, a bench, a widget or a magic imports from `jupyter_mldeploy.shadow`.
SHADOW_NAMES = ["ShadowReport", "ShadowSummary", "choose_mode", "compare", "compare_values", "live",
                "live_from_pods", "MAX_DEPTH", "MAX_LINE_CHARS", "HTML_ROW_LIMIT", "TEXT_ROW_LIMIT", "MODES",
                "SHADOW_SUFFIX", "SERVICE_PORT", "TAIL_LINES", "LIMIT_BYTES", "PROXY_CATCH_UP"]


@pytest.mark.parametrize("name", SHADOW_NAMES)
def test_shadow_names_are_importable_from_the_package(name):
    assert name in shadow.__all__
    assert getattr(importlib.import_module("jupyter_mldeploy.shadow"), name) is getattr(shadow, name)


def test_shadow_functions_are_the_functions_not_their_modules():
    # `live` and `compare` are functions; the modules holding them have other names (logjoin, replay).
    assert callable(shadow.live) and callable(shadow.compare) and callable(shadow.live_from_pods)
    assert shadow.live.__module__ == "jupyter_mldeploy.shadow.logjoin"
    assert shadow.compare.__module__ == "jupyter_mldeploy.shadow.replay"


def test_no_module_of_the_split_packages_is_over_500_lines():
    from pathlib import Path

    for package in (shadow, diagnosis):
        for path in Path(package.__file__).parent.glob("*.py"):
            lines = len(path.read_text().splitlines())
            assert lines <= 500, f"{path.name} has {lines} lines"


def test_the_magics_text_views_find_the_classes_they_name():
    """IPython's for_type_by_name matches a class's __module__: a class moved into a submodule must still
    name its public home, or %deploy shows a dataclass repr instead of the handle's text."""
    from jupyter_mldeploy.magics import _PLAIN_TEXT

    for module, name in _PLAIN_TEXT:
        cls = getattr(importlib.import_module(module), name)
        assert (cls.__module__, cls.__name__) == (module, name)
