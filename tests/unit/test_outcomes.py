"""outcomes: the one wording of what a rollout operation did, shared by the magics and the CanarySlider."""

from __future__ import annotations

from dataclasses import replace

from jupyter_mldeploy import outcomes
from jupyter_mldeploy.errors import NoRollout
from jupyter_mldeploy.magics.display import LazyProgress, RolloutChange
from jupyter_mldeploy.rollout import Rollout

CANARY = Rollout("fraud", "ml", "canary", "istio", weight=30, stable_version="1.0", candidate_version="2.0")
BLUE_GREEN = Rollout("fraud", "ml", "blue-green", "gateway", stable_version="1.0", candidate_version="2.0")


def test_promoted_names_the_version_and_the_track_removed():
    change = outcomes.promoted(CANARY)
    assert change.kind == "promoted" and change.rollout is None and str(change) == change.sentence
    assert change.sentence == ("Promoted fraud: version 2.0 is now the stable model and answers every "
                               "request; fraud-canary was removed.")
    assert change._repr_html_() == f"<div>{change.sentence}</div>"


def test_a_knative_promotion_keeps_the_old_revision():
    assert outcomes.promoted(replace(CANARY, router="knative")).sentence == (
        "Promoted fraud: the revision of version 2.0 now answers every request; the old stable revision "
        "keeps no traffic (%rollback fraud goes back).")


def test_a_switch_keeps_the_rollout_and_says_how_to_go_on():
    after = replace(BLUE_GREEN, weight=100)
    change = outcomes.switched(BLUE_GREEN, after)
    assert change.kind == "switched" and change.rollout is after
    assert change.sentence == ("Switched fraud: all traffic now goes to fraud-preview (version 2.0); the old "
                               "stable model keeps running until %release fraud, and %rollback fraud "
                               "switches back.")
    assert str(change) == f"{change.sentence}\n{after}"


def test_rolled_back_says_which_stable_takes_the_traffic():
    assert outcomes.rolled_back(CANARY).sentence == (
        "Rolled back the canary rollout of fraud: all traffic is on the stable model (1.0) and fraud-canary "
        "was removed.")
    switched = replace(BLUE_GREEN, weight=100)
    assert outcomes.rolled_back(switched).sentence == (
        "Rolled back the blue-green rollout of fraud: all traffic is back on the old stable model (1.0) and "
        "fraud-preview was removed.")


def test_stepped_counts_the_steps_left_or_says_it_was_promoted():
    at = replace(CANARY, weight=25, step=1, steps=(10, 25, 50, 100))
    assert outcomes.stepped("fraud", "ml", "10%, 25%", at).sentence == (
        "The canary of fraud now answers 25% of requests (step 2 of 4; 2 to go).")
    assert outcomes.stepped("fraud", "ml", "10%, 100%", None).kind == "promoted"


def test_no_rollout_is_one_declared_error():
    e = outcomes.no_rollout("fraud", "ml")
    assert isinstance(e, NoRollout)
    assert str(e) == ("fraud has no rollout in progress in namespace ml: start one with %deploy fraud "
                      "--image ... --strategy canary (or blue-green, shadow).")


def test_the_magics_result_type_is_the_outcome():
    assert RolloutChange is outcomes.Change


class _View:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def __call__(self, status) -> None:
        self.seen.append(status)

    def finish(self, status) -> None:
        self.seen.append(("finish", status))

    def close(self) -> None:
        self.seen.append("close")


def test_a_lazy_view_opens_only_when_a_status_comes():
    opened: list[_View] = []

    def open_view() -> _View:
        opened.append(_View())
        return opened[-1]

    quiet = LazyProgress(open_view)
    quiet.finish(None)
    quiet.close()
    assert opened == []  # a blue-green switch: no status, no view
    busy = LazyProgress(open_view)
    busy("s1")
    busy("s2")
    busy.finish("s3")
    assert len(opened) == 1 and opened[0].seen == ["s1", "s2", ("finish", "s3")]
