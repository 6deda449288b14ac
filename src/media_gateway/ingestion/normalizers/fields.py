"""Coercion of raw feed values into canonical ones.

Raw feeds are untrusted JSON: every helper accepts `Any`, returns a typed value or None for "absent",
and raises ValueError for a value that is present but malformed, so the record is rejected with a reason
instead of being stored half-understood."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from media_gateway.catalog.schemas import CastMember

_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_QUALITY = {
    "sd": "SD",
    "480p": "SD",
    "hd": "HD",
    "720p": "HD",
    "1080p": "HD",
    "fhd": "HD",
    "uhd": "4K",
    "4k": "4K",
    "2160p": "4K",
}
_IMDB = re.compile(r"^tt\d{7,10}$")
_EIDR = re.compile(r"^10\.5240/(?:[0-9A-F]{4}-){5}[0-9A-Z]$")


def text(value: Any) -> str | None:
    """A non-blank string, stripped; anything else is absent."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def ident(value: Any) -> str | None:
    """An identifier that feeds send either as a number or as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return text(value)


def mapping(value: Any) -> Mapping[str, Any]:
    """A nested object, or an empty one when the feed left it out."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


def items(value: Any) -> list[Any]:
    """A nested array, or an empty one when the feed left it out."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"expected an array, got {type(value).__name__}")
    return value


def strings(values: Any) -> list[str]:
    """The non-blank strings of an array, order kept."""
    return [s for s in (text(v) for v in items(values)) if s is not None]


def split(value: Any, sep: str) -> list[str]:
    """A delimiter-joined string as its parts."""
    joined = text(value)
    if joined is None:
        return []
    return [p.strip() for p in joined.split(sep) if p.strip()]


def integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float):
        return round(value)
    return int(value)


def number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return float(value)


def rescale(value: Any, scale: float) -> float | None:
    """A rating out of `scale` as a rating out of 10."""
    raw = number(value)
    return None if raw is None else round(raw * 10.0 / scale, 2)


def iso_date(value: Any) -> date | None:
    """`2009-12-10`, or an ISO 8601 timestamp whose UTC date is taken."""
    raw = text(value)
    if raw is None:
        return None
    if len(raw) == 10:
        return date.fromisoformat(raw)
    stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return stamp.astimezone(UTC).date() if stamp.tzinfo else stamp.date()


def us_date(value: Any) -> date | None:
    """`12/10/2009` (month first)."""
    raw = text(value)
    return None if raw is None else datetime.strptime(raw, "%m/%d/%Y").date()


def rfc2822_date(value: Any) -> date | None:
    """`Thu, 10 Dec 2009 00:00:00 GMT`, as RSS feeds write dates."""
    raw = text(value)
    return None if raw is None else parsedate_to_datetime(raw).astimezone(UTC).date()


def epoch_date(value: Any, *, millis: bool = False) -> date | None:
    """A Unix timestamp in seconds (or milliseconds), as a UTC date."""
    stamp = integer(value)
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp / 1000 if millis else stamp, UTC).date()


def iso_duration_minutes(value: Any) -> int | None:
    """`PT2H42M` as minutes."""
    raw = text(value)
    if raw is None:
        return None
    match = _ISO_DURATION.match(raw)
    if match is None:
        raise ValueError(f"not an ISO 8601 duration: {raw!r}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return round(days * 1440 + hours * 60 + minutes + seconds / 60)


def clock_minutes(value: Any) -> int | None:
    """`2:42:00` (or `162:00`) as minutes."""
    raw = text(value)
    if raw is None:
        return None
    parts = [int(p) for p in raw.split(":")]
    if not 2 <= len(parts) <= 3:
        raise ValueError(f"not a clock duration: {raw!r}")
    hours, minutes, seconds = [0, *parts] if len(parts) == 2 else parts
    return round(hours * 60 + minutes + seconds / 60)


def seconds_to_minutes(value: Any, *, per_second: int = 1) -> int | None:
    """A duration in seconds (or in 1/`per_second` units of a second) as minutes."""
    raw = integer(value)
    return None if raw is None else round(raw / per_second / 60)


def decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected an amount, got a boolean")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def minor_units(value: Any, exponent: int = 2) -> Decimal | None:
    """An amount in cents (or another minor unit) as a decimal amount."""
    raw = integer(value)
    return None if raw is None else Decimal(raw).scaleb(-exponent)


def formatted_price(value: Any) -> Decimal | None:
    """A price as a storefront shows it: `$3.99`, `£4.49`, `3,99 €`, `CA$5.99`."""
    raw = text(value)
    if raw is None:
        return None
    digits = re.sub(r"[^\d.,]", "", raw)
    if not digits:
        raise ValueError(f"no amount in {raw!r}")
    # A comma followed by exactly two digits at the end is a decimal comma (`3,99 €`).
    if re.search(r",\d{2}$", digits):
        digits = digits.replace(".", "").replace(",", ".")
    else:
        digits = digits.replace(",", "")
    return decimal(digits)


def quality(value: Any) -> str | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        return _QUALITY[raw.casefold()]
    except KeyError:
        raise ValueError(f"unknown video quality {raw!r}") from None


def code(value: Any) -> str | None:
    """A country or currency code in any case, upper-cased; the offer schema checks its shape."""
    raw = text(value)
    return None if raw is None else raw.upper()


def imdb_id(value: Any) -> str | None:
    """An IMDb title id; a malformed one is ignored rather than risk a wrong merge."""
    raw = text(value)
    return raw if raw is not None and _IMDB.match(raw) else None


def tmdb_id(value: Any) -> str | None:
    """A TMDB id, also in the aggregator's `movie/123` form; a malformed one is ignored."""
    raw = ident(value)
    if raw is None:
        return None
    raw = raw.rsplit("/", 1)[-1]
    return raw if raw.isdigit() else None


def eidr_id(value: Any) -> str | None:
    raw = text(value)
    return raw if raw is not None and _EIDR.match(raw.upper()) else None


def cast_list(
    entries: Iterable[Any], *, name: str, character: str | None, order: str | None
) -> list[CastMember]:
    """Cast from objects (or plain name strings), in billing order: by `order` when given, else as listed."""
    members: list[tuple[int, CastMember]] = []
    for position, entry in enumerate(entries):
        if isinstance(entry, str):
            who, role, billing = text(entry), None, None
        else:
            fields = mapping(entry)
            who = text(fields.get(name))
            role = text(fields.get(character)) if character else None
            billing = integer(fields.get(order)) if order else None
        if who is not None:
            members.append((position if billing is None else billing, CastMember(name=who, character=role)))
    members.sort(key=lambda pair: pair[0])
    return [member.model_copy(update={"order": i}) for i, (_, member) in enumerate(members)]


def regional(value: Any) -> dict[str, str]:
    """A `{country: text}` object (certifications) with codes upper-cased and blanks dropped."""
    return {
        code_: entry for key, raw in mapping(value).items() if (code_ := code(key)) and (entry := text(raw))
    }


def names(entries: Any, key: str) -> list[str]:
    """The `key` text of each object in an array, order kept, blanks dropped."""
    return [name for entry in items(entries) if (name := text(mapping(entry).get(key)))]


def rating_list(entries: Any, *, region_key: str, value_key: str) -> dict[str, str]:
    """Certifications from an array of `{region_key: "US", value_key: "PG-13"}` objects."""
    return {
        code_: value
        for entry in map(mapping, items(entries))
        if (code_ := code(entry.get(region_key))) and (value := text(entry.get(value_key)))
    }
