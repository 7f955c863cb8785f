"""The demo's story (magics.story): the lines told for finished cells, from what the magics print."""

from __future__ import annotations

from jupyter_mldeploy.magics.story import Story, cell_text


def cell(*texts: str, duration: float | None = 2.04, result: str | None = None) -> dict:
    outputs = [{"output_type": "stream", "name": "stdout", "text": t} for t in texts]
    if result is not None:
        outputs.append({"output_type": "execute_result", "data": {"text/plain": result}, "metadata": {}})
    meta = {"papermill": {"duration": duration}} if duration is not None else {}
    return {"cell_type": "code", "outputs": outputs, "metadata": meta}


DEPLOY = ("Deploying iris (ghcr.io/acme/iris:1.0) to namespace demo, context sandbox\n"
          "iris  [#####-----] 1/2 ready  (1 starting)\n", "iris  [##########] 2/2 ready  rolled out\n"
          "iris: 2/2 ready, rollout complete\nNAME   READY\n")


def test_a_deploy_then_a_second_version_then_a_rollback_then_the_removal():
    story = Story()
    first = story.line(cell(*DEPLOY))
    assert first == "Deployed iris (ghcr.io/acme/iris:1.0) to namespace demo: 2/2 ready in 2.0 s."
    again = DEPLOY[0].replace("1.0", "1.1"), DEPLOY[1]
    second = story.line(cell(*again, duration=6.5))
    assert second == "Deployed a second version of iris (ghcr.io/acme/iris:1.1): 2/2 ready in 6.5 s."
    back = ("Rolling iris in namespace demo back to the previous revision\n"
            "iris: 2/2 ready, 2/2 updated, rollout complete\n")
    assert story.line(cell(back)) == "Rolled iris back to the previous revision: 2/2 ready in 2.0 s."
    removed = "Removed iris from namespace demo: deployment/iris, service/iris, configmap/iris.release.1."
    assert story.line(cell(result=removed)) == "Removed iris from namespace demo (3 objects)."


def test_cells_that_did_nothing_to_tell_say_nothing():
    story = Story()
    assert story.line(cell()) is None
    assert story.line(cell("print me\n", result="[Revision(...)]")) is None
    # a deploy that did not complete (a failure, or --no-wait) is not told as ready
    failed = DEPLOY[0] + "iris  [----------] 0/2 ready  (2 image pull failing)  FAILED\n"
    assert story.line(cell(failed)) is None
    assert story.deployed == {}
    # no duration recorded: the sentence simply has no time
    assert story.line(cell(*DEPLOY, duration=None)).endswith("2/2 ready.")


def test_cell_text_joins_streams_and_results_line_by_line():
    assert cell_text(cell("a", "b\n", result="c")) == "a\nb\nc\n"
