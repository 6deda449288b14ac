"""Directories private to one process under a shared root (`<root>/<host>-<pid>-<random>`), for state
each process rebuilds at start (discovery's keyword index, vector replicas): processes sharing a data
dir (pre-forked workers, containers on one volume) never touch each other's files. What a process that
died without cleaning up left behind is removed by the next one of the same host to claim a directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

# Names of the directories claimed by this process and not yet released.
_CLAIMED: set[str] = set()


def _abandoned(name: str, host: str) -> bool:
    try:
        owner, pid_text, _ = name.rsplit("-", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if owner != host:
        # Another host's process (a container on a shared volume) may be alive.
        return False
    if pid == os.getpid():
        # A restarted container hands out the same pids again.
        return name not in _CLAIMED
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim_private_dir(root: Path) -> Path:
    """A fresh, empty directory under `root` for this process alone; blocking (call it in a thread)."""
    host = socket.gethostname()
    if root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and _abandoned(child.name, host):
                shutil.rmtree(child, ignore_errors=True)
    path = root / f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    _CLAIMED.add(path.name)
    return path


def release_private_dir(path: Path) -> None:
    """Delete a directory `claim_private_dir` gave; blocking."""
    shutil.rmtree(path, ignore_errors=True)
    _CLAIMED.discard(path.name)
