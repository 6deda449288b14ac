"""The unprivileged account PostgreSQL runs as when we are root, and what that account may reach."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from media_gateway.core.embedded.process import EmbeddedServerError, _RunAs
from media_gateway.core.settings import Settings


def _run_as(settings: Settings) -> _RunAs:
    name = settings.embedded.postgres_user
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL cannot run as root and should run as user '{name}', which does not "
            f"exist; set MG_EMBEDDED__POSTGRES_USER to an existing unprivileged user"
        ) from None
    if entry.pw_uid == 0:
        raise EmbeddedServerError(
            f"MG_EMBEDDED__POSTGRES_USER='{name}' is root; PostgreSQL refuses to run as root"
        )
    groups = tuple(os.getgrouplist(name, entry.pw_gid))
    return _RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid, groups=groups)


def _chown_tree(root: Path, who: _RunAs) -> None:
    os.chown(root, who.uid, who.gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), who.uid, who.gid, follow_symlinks=False)


def _may(st: os.stat_result, who: _RunAs, bit_usr: int, bit_grp: int, bit_oth: int) -> bool:
    # POSIX checks exactly one class (owner, else group, else other), never the union.
    if st.st_uid == who.uid:
        return bool(st.st_mode & bit_usr)
    if st.st_gid in who.groups:
        return bool(st.st_mode & bit_grp)
    return bool(st.st_mode & bit_oth)


def _first_blocked_dir(path: Path, who: _RunAs) -> Path | None:
    """The first directory from / down to `path` (inclusive) that `who` cannot enter."""
    resolved = path.resolve()
    for directory in (*reversed(resolved.parents), resolved):
        st = directory.stat()
        if not _may(st, who, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return directory
    return None


def _describe(path: Path) -> str:
    st = path.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return f"{path} (mode {stat.filemode(st.st_mode)}, owner {owner})"
