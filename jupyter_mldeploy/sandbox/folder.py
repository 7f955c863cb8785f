"""The sandbox's state folder: private from the start, marked as ours, and removed only as far as we made it.

`up` writes a marker file into the folder before anything else, and records in it every top-level
entry it creates; `down` removes exactly those entries, the marker, and the folder when `up` made
it. A folder without the marker (a project, a home folder, another user's folder) is refused with
one sentence and nothing in it is touched: `MLDEPLOY_SANDBOX_DIR=~/myproject ... down` deletes
nothing.

Every folder is made 0700 and every file is written 0600 from its first byte (os.open with the
mode, O_EXCL on a fresh temporary name, O_NOFOLLOW, then an atomic rename), so there is no moment
when a key or token is readable by another local user, whatever the umask.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import stat
from pathlib import Path

from .errors import SandboxError

MARKER = ".mldeploy-sandbox"
_KIND = "jupyter-mldeploy sandbox state folder"
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents inside the state folder) a folder only we can enter: 0700.

    An existing folder is accepted only when it is a real folder (not a link) owned by us; its mode
    is set to 0700 either way. The chmod after mkdir is because a umask such as 0277 takes bits
    from mkdir's mode too."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise SandboxError(f"{path} exists and is not a folder of yours; the sandbox does not "
                               f"write through it.") from None
    except FileNotFoundError:
        private_dir(path.parent)
        return private_dir(path)
    os.chmod(path, 0o700)  # a real folder of ours: made just now, or checked above with lstat
    return path


def write_private(path: Path, data: bytes | str) -> Path:
    """Write `path` as 0600 from its first byte: a fresh temporary name made with O_EXCL|O_NOFOLLOW
    in the same folder, then renamed over the target (a link at the target is replaced, never
    followed)."""
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, _FLAGS, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a umask of 0177 or more would have left it read-only or less
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def open_private_append(path: Path):
    """A log file opened for appending, 0600 from the start, never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


class StateFolder:
    """One sandbox's folder, and the record of what `up` made in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marker = path / MARKER

    # -- what is there ---------------------------------------------------------------------------

    def _record(self) -> dict | None:
        """The marker's record, None when there is no marker; refuses a marker that is not ours."""
        try:
            st = os.lstat(self.marker)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise SandboxError(f"{self.path} is a file, not a sandbox folder.") from None
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise SandboxError(f"{self.marker} is not a file of yours, so {self.path} is not treated as "
                               f"your sandbox; nothing was changed.")
        try:
            record = json.loads(Path(self.marker).read_text())
        except (OSError, ValueError):
            record = None
        if (not isinstance(record, dict) or record.get("kind") != _KIND
                or not isinstance(record.get("entries"), list)):
            raise SandboxError(f"{self.marker} is not a sandbox marker that `up` wrote; nothing in "
                               f"{self.path} was changed.")
        return record

    def is_marked(self) -> bool:
        """Is this a sandbox folder `up` made (checked, never guessed from its contents)?"""
        try:
            return self._record() is not None
        except SandboxError:
            return False

    def check(self) -> bool:
        """True when the folder is a sandbox folder of ours, False when it does not exist; otherwise
        one sentence saying why it is not touched. Writes nothing."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        except NotADirectoryError:
            raise SandboxError(f"{self.path} is inside a file, not a folder; choose another "
                               f"MLDEPLOY_SANDBOX_DIR.") from None
        if not stat.S_ISDIR(st.st_mode):
            raise SandboxError(f"{self.path} is a file, not a sandbox folder; nothing was changed.")
        if st.st_uid != os.geteuid() or os.lstat(self.path).st_uid != os.geteuid():
            raise SandboxError(f"{self.path} belongs to another user (uid {st.st_uid}); the sandbox "
                               f"neither uses nor removes it.")
        if self._record() is not None:
            return True
        if any(os.scandir(self.path)):
            raise SandboxError(
                f"{self.path} is not a sandbox folder (it has no {MARKER} marker, which `sandbox up` "
                f"writes into the folders it makes), so nothing in it was stopped or deleted; choose "
                f"another MLDEPLOY_SANDBOX_DIR, or an empty folder.")
        return False

    # -- up --------------------------------------------------------------------------------------

    def claim(self) -> None:
        """Make the folder ours before anything is written in it: created 0700 (or an existing empty
        folder of ours set to 0700), and the marker written first."""
        if self.check():
            os.chmod(self.path, 0o700)
            return
        made = not os.path.lexists(self.path)
        if made:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        private_dir(self.path)  # or an empty folder of ours (check() said so): it becomes private
        fd = os.open(self.marker, _FLAGS, 0o600)  # O_EXCL: two `up`s never both claim it
        os.close(fd)
        self._save({"kind": _KIND, "made_folder": made, "entries": []})

    def _save(self, record: dict) -> None:
        write_private(self.marker, json.dumps(record, indent=1) + "\n")

    def own(self, name: str) -> Path:
        """Record a top-level entry as made by `up` (before it is made), and return its path."""
        record = self._record()
        if record is None:
            raise SandboxError(f"{self.path} is not claimed as a sandbox folder.")
        if name not in record["entries"]:
            if os.path.lexists(self.path / _entry(name)):
                # Not made by `up`, so never to be removed by `down`: refuse rather than adopt it.
                raise SandboxError(f"{self.path / name} was not made by the sandbox; move it away "
                                   f"or choose another MLDEPLOY_SANDBOX_DIR.")
            record["entries"].append(name)
            self._save(record)
        return self.path / name

    def mkdir(self, name: str) -> Path:
        """A private (0700) folder of ours at the top of the state folder."""
        return private_dir(self.own(name))

    def write(self, name: str, data: bytes | str) -> Path:
        """A private (0600) file of ours at the top of the state folder."""
        return write_private(self.own(name), data)

    # -- down ------------------------------------------------------------------------------------

    def remove(self, keep_marker: bool = False) -> list[str]:
        """Remove what `up` recorded, then the marker and the folder when `up` made it (and nothing
        else is left in it). Returns what stays behind because `up` did not make it."""
        record = self._record() if self.check() else None
        if record is None:
            return []
        names = [_entry(n) for n in record["entries"]]  # all checked before anything goes
        for name in names:
            _remove(self.path / name)
            # and our temporary files of that name (write_private's), had a write been interrupted
            for tmp in self.path.glob(f".{glob.escape(name)}.*.tmp"):
                _remove(tmp)
        if keep_marker:
            self._save({**record, "entries": []})
            return []
        for tmp in self.path.glob(f".{MARKER}.*.tmp"):
            _remove(tmp)
        self.marker.unlink()
        left = sorted(e.name for e in os.scandir(self.path))
        if record.get("made_folder") and not left:
            os.rmdir(self.path)
        return left


def _entry(name: object) -> str:
    # Recorded names are single path components: the marker can never point outside the folder.
    if not isinstance(name, str) or name in ("", ".", "..", MARKER) or "/" in name or "\0" in name:
        raise SandboxError(f"The sandbox marker records an entry {name!r} that is not a plain name; "
                           f"nothing was removed.")
    return name


def _remove(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # fd-based on Linux: never follows a link inside
    else:
        os.unlink(path)  # a file, or a link (removed, not followed)
