"""Reading the deployment files as Compose would: YAML with merge keys, `${VAR}` interpolation from
.env, and the MG_* variables mapped onto the settings tree."""

from __future__ import annotations

import base64
import re
import secrets
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from media_gateway.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_DEV = ROOT / "docker-compose.dev.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DEV_SETUP = ROOT / "scripts" / "dev-setup.sh"
SCHEMA = Path(__file__).with_name("compose_spec") / "compose-spec.json"

INFRA = frozenset({"postgres", "redis", "migrate"})

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; `$$` is a literal `$`.
_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def variables(path: Path) -> dict[str, set[str]]:
    """Each variable the file interpolates, with the operators it is used with ('' for none)."""
    found: dict[str, set[str]] = {}
    for match in _INTERPOLATION.finditer(path.read_text()):
        if match["name"]:
            found.setdefault(match["name"], set()).add(match["op"] or "")
    return found


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        current = env.get(name)
        missing = current is None or (op.startswith(":") and current == "")
        if op.endswith("?") and missing:
            raise KeyError(f"{name}: {arg}")
        if op.endswith("-") and missing:
            return arg
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines; a value in single or double quotes is taken without them."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=value: {line!r}"
        values[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return values


def dotenv_with_secrets() -> dict[str, str]:
    """.env.example with its empty secrets filled in the way scripts/dev-setup.sh fills them."""
    values = read_env_file(ENV_EXAMPLE)
    for key, value in values.items():
        if value == "":
            values[key] = secrets.token_hex(32)
    values["MG_AUTH__KEY_ENCRYPTION_KEY"] = (
        base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    )
    return values


def app_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose["services"].items() if name not in INFRA}


def served_names(spec: Mapping[str, Any]) -> list[str]:
    """The service names a compose service's `media-gateway serve NAME...` command runs."""
    command = spec["command"]
    assert command[:2] == ["media-gateway", "serve"], command
    return [arg for arg in command[2:] if not arg.startswith("-")]


def dockerfile_env() -> dict[str, str]:
    """The ENV of the image's final stage (the `KEY=value` forms, continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ").rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def setting_path(variable: str) -> list[str] | None:
    """The field path an MG_* variable sets in `Settings`, or None when pydantic-settings would
    ignore it (it ignores unknown variables silently)."""
    assert variable.startswith("MG_"), variable
    parts = variable[3:].lower().split("__")
    model: type[BaseModel] = Settings
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        # A leaf: only a dict-valued field takes further segments (as its keys).
        if depth < len(parts) - 1 and not (
            annotation is not None and getattr(annotation, "__origin__", None) is dict
        ):
            return None
        return parts[: depth + 1]
    return None
