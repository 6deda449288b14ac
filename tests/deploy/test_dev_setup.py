"""scripts/dev-setup.sh, run against a stand-in `docker` that records what it is asked to do (no Docker
engine here): the .env it writes, and the order of build, migrate and up."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.compose_files import DEV_SETUP, ENV_EXAMPLE, read_env_file

SECRETS = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "MG_ADMIN_TOKEN",
    "MG_AUTH__KEY_ENCRYPTION_KEY",
    "MG_AUTH__SERVICES_CLIENT_SECRET",
)

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$DOCKER_CALLS"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what the script reads, with a `docker` on PATH that only logs its arguments."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(DEV_SETUP, tmp_path / "scripts" / DEV_SETUP.name)
    shutil.copy(ENV_EXAMPLE, tmp_path / ENV_EXAMPLE.name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def _run(checkout: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = checkout / "docker-calls"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{checkout / 'bin'}:{os.environ['PATH']}", "DOCKER_CALLS": str(calls)}
    result = subprocess.run(
        ["bash", str(checkout / "scripts" / DEV_SETUP.name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_first_run_writes_env_with_fresh_secrets_then_builds_migrates_and_starts(checkout: Path) -> None:
    result, calls = _run(checkout, "--no-demo")
    assert result.returncode == 0, result.stderr

    env_file = checkout / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written, example = read_env_file(env_file), read_env_file(ENV_EXAMPLE)
    assert set(written) == set(example)
    for key in SECRETS:
        assert example[key] == "", key
        assert len(written[key]) >= 43, key
        assert written[key] not in result.stdout + result.stderr, f"{key} was printed"
    for key in set(example) - set(SECRETS):
        assert written[key] == example[key], key
    assert len(base64.urlsafe_b64decode(written["MG_AUTH__KEY_ENCRYPTION_KEY"] + "=")) == 32

    compose = [
        call.removeprefix("compose -f docker-compose.yml ") for call in calls if call.startswith("compose -f")
    ]
    assert compose == ["build", "run --rm migrate", "up -d", "ps"]

    # A second run keeps .env (and so every secret the volumes were initialised with).
    before = env_file.read_text()
    result, _ = _run(checkout, "--no-demo")
    assert result.returncode == 0, result.stderr
    assert env_file.read_text() == before
    assert "keeping the existing .env" in result.stdout


def test_secrets_differ_between_checkouts(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    _run(checkout, "--no-demo")
    other = tmp_path_factory.mktemp("other")
    shutil.copytree(checkout / "scripts", other / "scripts")
    shutil.copytree(checkout / "bin", other / "bin")
    shutil.copy(ENV_EXAMPLE, other / ENV_EXAMPLE.name)
    _run(other, "--no-demo")
    first, second = read_env_file(checkout / ".env"), read_env_file(other / ".env")
    assert all(first[key] != second[key] for key in SECRETS)


def test_dev_flag_adds_the_override_and_demo_is_loaded_through_the_ingestion_container(
    checkout: Path,
) -> None:
    result, calls = _run(checkout, "--dev")
    assert result.returncode == 0, result.stderr
    prefix = "compose -f docker-compose.yml -f docker-compose.dev.yml "
    steps = [call.removeprefix(prefix).split(" -c ")[0] for call in calls if call.startswith(prefix)]
    assert steps[:3] == ["build", "run --rm migrate", "up -d"]
    # Each of the three is probed in its own container, and the demo is started from ingestion's.
    for service in ("discovery", "sona", "ingestion"):
        assert f"exec -T {service} python" in steps
    assert [step for step in steps if step.startswith("exec")][-1] == "exec -T ingestion python"
    assert "/api/v1/admin/ingest" in "\n".join(calls)
    assert "/api/v1/admin/ingest" in "\n".join(calls)


def test_unknown_arguments_are_refused(checkout: Path) -> None:
    result, calls = _run(checkout, "--prod")
    assert result.returncode == 2
    assert "unknown argument --prod" in result.stderr
    assert calls == []
    assert not (checkout / ".env").exists()
