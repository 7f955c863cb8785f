"""The error family: every error is declared in errors.py, exported from the package, and carries only
attributes its constructor declares."""

from __future__ import annotations

import inspect

import pytest

import jupyter_mldeploy
from jupyter_mldeploy import errors


def _declared_errors() -> dict[str, type]:
    return {name: obj for name, obj in vars(errors).items()
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__}


def test_every_declared_error_is_exported_from_the_package():
    declared = _declared_errors()
    assert {"WaitTimeout", "PreflightFailed", "NoRollout", "RolloutFailed"} <= set(declared)
    assert set(errors.__all__) == set(declared)
    for name, cls in declared.items():
        assert name in jupyter_mldeploy.__all__, name
        assert getattr(jupyter_mldeploy, name) is cls
        assert issubclass(cls, errors.MLDeployError), name
        assert cls.__doc__ and cls.__doc__.strip(), f"{name} has no docstring"


def test_old_import_paths_name_the_same_classes():
    from jupyter_mldeploy import api, follow

    assert follow.WaitTimeout is api.WaitTimeout is errors.WaitTimeout
    assert api.PreflightFailed is errors.PreflightFailed


@pytest.mark.parametrize("cls, kwargs", [
    (errors.RolloutFailed, {"diagnosis": "d", "status": "s", "deployment": "h"}),
    (errors.WaitTimeout, {"status": "s", "deployment": "h"}),
    (errors.ClusterError, {"obj": "Service/churn", "status": 409, "reason": "Conflict"}),
    (errors.RolloutInterrupted, {"phase": "route"}),
])
def test_attributes_are_declared_by_the_constructor(cls, kwargs):
    e = cls("It went wrong.", **kwargs)
    assert str(e) == "It went wrong."
    assert {k: getattr(e, k) for k in kwargs} == kwargs
    # Each attribute has a class-level annotation, so a reader (and a type checker) sees it declared.
    hints = {k for klass in cls.__mro__ for k in getattr(klass, "__annotations__", {})}
    assert set(kwargs) <= hints, set(kwargs) - hints


def test_optional_attributes_default_to_none_not_missing():
    for e in (errors.RolloutFailed("x"), errors.WaitTimeout("x")):
        assert e.status is None and e.deployment is None
    assert errors.RolloutFailed("x").diagnosis is None


def test_wait_timeout_keeps_its_positional_status():
    assert errors.WaitTimeout("x", "last").status == "last"
