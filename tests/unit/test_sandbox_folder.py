"""The sandbox's state folder: marked, private from the first byte, and removed only as far as `up` made it.

Pure file-system tests (no cluster); the same promises against a real `up` are in
tests/integration/test_sandbox.py.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from jupyter_mldeploy.sandbox.control_plane import Sandbox
from jupyter_mldeploy.sandbox.errors import SandboxError
from jupyter_mldeploy.sandbox.folder import MARKER, StateFolder, private_dir, write_private


@pytest.fixture
def no_umask():
    """umask 0: whatever is private is so by its own mode, not by the user's umask."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_claim_makes_the_folder_private_and_writes_the_marker_first(tmp_path, no_umask):
    box = StateFolder(tmp_path / "a" / "box")
    box.claim()
    assert mode(box.path) == 0o700
    assert os.listdir(box.path) == [MARKER] and mode(box.marker) == 0o600
    assert box.is_marked() and box.check() is True


def test_write_private_is_0600_from_the_start_and_replaces_a_link(tmp_path, no_umask):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "kubeconfig"
    link.symlink_to(victim)
    write_private(link, "token: s3cret\n")
    assert victim.read_text() == "keep me"  # the link was replaced, never followed
    assert not link.is_symlink() and mode(link) == 0o600 and link.read_text() == "token: s3cret\n"
    assert sorted(os.listdir(tmp_path)) == ["kubeconfig", "victim"]  # no temporary file left


def test_private_dir_under_a_harsh_umask_is_still_usable(tmp_path):
    old = os.umask(0o277)  # mkdir alone would give 0500: not even writable by us
    try:
        folder = private_dir(tmp_path / "x" / "y")
        write_private(folder / "f", "x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "x") == 0o700 and mode(folder) == 0o700 and mode(folder / "f") == 0o600


def test_an_unmarked_folder_with_files_is_refused_and_kept(tmp_path):
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "train.py").write_text("print('mine')\n")
    (project / "logs").mkdir()  # even names the sandbox uses are not taken as its own
    for action in (Sandbox(project).down, StateFolder(project).claim, StateFolder(project).remove):
        with pytest.raises(SandboxError) as e:
            action() if action.__name__ != "down" else action(progress=lambda _m: None)
        text = str(e.value)
        assert "is not a sandbox folder" in text and "nothing in it was stopped or deleted" in text
        assert "\n" not in text
    assert sorted(os.listdir(project)) == ["logs", "train.py"]
    assert (project / "train.py").read_text() == "print('mine')\n"


def test_an_empty_existing_folder_is_claimed_and_kept_by_down(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir(mode=0o755)
    box = StateFolder(folder)
    box.claim()
    assert mode(folder) == 0o700
    box.write("state.json", "{}")
    assert box.remove() == []
    assert folder.is_dir() and os.listdir(folder) == []  # `up` did not make the folder: it stays


def test_remove_takes_only_what_up_recorded(tmp_path):
    box = StateFolder(tmp_path / "box")
    box.claim()
    (box.mkdir("pki") / "ca.key").write_text("k")
    box.write("kubeconfig", "x")
    (box.path / "notes.txt").write_text("the user's")
    left = box.remove()
    assert left == ["notes.txt"] and os.listdir(box.path) == ["notes.txt"]
    # The marker went with the rest: the folder is now the user's, and `up` refuses it.
    with pytest.raises(SandboxError, match="is not a sandbox folder"):
        box.claim()
    # Without anything of the user's, the folder `up` made goes too.
    os.unlink(box.path / "notes.txt")
    os.rmdir(box.path)
    box.claim()
    box.mkdir("logs")
    assert box.remove() == [] and not box.path.exists()


def test_remove_never_follows_a_link_inside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    box = StateFolder(tmp_path / "box")
    box.claim()
    (box.mkdir("logs") / "escape").symlink_to(outside)
    box.own("etcd")
    (box.path / "etcd").symlink_to(outside)  # a recorded name replaced by a link
    box.remove()
    assert (outside / "precious").read_text() == "x"


def test_up_never_adopts_an_entry_it_did_not_make(tmp_path):
    box = StateFolder(tmp_path / "box")
    box.claim()
    (box.path / "pod-logs").mkdir()
    with pytest.raises(SandboxError, match="was not made by the sandbox"):
        box.mkdir("pod-logs")
    assert box.remove() == ["pod-logs"]


def test_a_marker_naming_a_path_outside_is_refused_and_nothing_removed(tmp_path):
    box = StateFolder(tmp_path / "box")
    box.claim()
    box.write("kubeconfig", "x")
    record = json.loads(box.marker.read_text())
    record["entries"].append("../outside")
    box.marker.write_text(json.dumps(record))
    (tmp_path / "outside").write_text("x")
    with pytest.raises(SandboxError, match="is not a plain name; nothing was removed"):
        box.remove()
    assert (tmp_path / "outside").exists() and (box.path / "kubeconfig").exists()


def test_a_forged_marker_is_not_a_sandbox(tmp_path):
    folder = tmp_path / "box"
    folder.mkdir()
    (folder / MARKER).write_text("hello")
    (folder / "data.csv").write_text("1,2\n")
    with pytest.raises(SandboxError, match="is not a sandbox marker that `up` wrote"):
        Sandbox(folder).down(progress=lambda _m: None)
    assert sorted(os.listdir(folder)) == [MARKER, "data.csv"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder away")
def test_a_folder_of_another_user_is_refused(tmp_path):
    box = StateFolder(tmp_path / "box")
    box.claim()
    os.chown(box.path, 4242, 4242)
    with pytest.raises(SandboxError, match=r"belongs to another user \(uid 4242\)"):
        box.remove()
    assert box.marker.exists()


def test_status_of_an_unmarked_folder_with_a_state_is_not_up(tmp_path):
    # A state.json in someone's folder is not read: its PIDs are never signalled, its token never sent.
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"server": "https://127.0.0.1:1", "admin_token": "t",
                                                    "processes": {"etcd": {"pid": 1, "start": "1"}}}))
    assert Sandbox(folder).status()["up"] is False and Sandbox(folder).status()["processes"] == {}


def test_the_lock_beside_the_folder_never_follows_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / ".box.lock").symlink_to(victim)
    with pytest.raises(SandboxError, match="a link is never followed"), Sandbox(tmp_path / "box")._locked():
        pass
    assert victim.read_text() == "keep me"


def test_down_of_a_missing_folder_says_so(tmp_path):
    said = []
    assert Sandbox(tmp_path / "never").down(progress=said.append) is False
    assert said == ["The sandbox is not up; nothing to stop."]
    assert not (tmp_path / "never").exists()
