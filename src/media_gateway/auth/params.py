"""OAuth request parameters: each may appear at most once (RFC 6749 §3.1, §3.2)."""

from __future__ import annotations

from collections.abc import Iterable


class Params(dict[str, str]):
    """Parameters by name; names sent more than once are listed in `duplicates`. Empty values count
    as absent (RFC 6749 §3.1)."""

    duplicates: list[str]

    @classmethod
    def of(cls, items: Iterable[tuple[str, object]]) -> Params:
        params = cls()
        params.duplicates = []
        for name, value in items:
            if not isinstance(value, str) or value == "":
                continue
            if name in params:
                params.duplicates.append(name)
            params[name] = value
        return params
