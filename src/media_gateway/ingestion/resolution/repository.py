"""Every SQL statement of entity resolution (tables `catalog.entity_mappings` and, read-only,
`catalog.content`).

Upsert rule for a mapping (id_type, external_id): it moves to another entity, or changes its method,
only when the new confidence is strictly higher than the stored one. Writing the same mapping again
with equal or lower confidence changes nothing (no new row version, no `updated_at` bump), so a
re-ingest is free and a weaker match can never steal an id an id-based match established.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Text, any_, bindparam, func, literal, literal_column, select, tuple_, union
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.catalog.models import content, entity_mappings
from media_gateway.ingestion.resolution.scoring import STRONG_ID_TYPES

IdPair = tuple[str, str]

_m = entity_mappings
_c = content


@dataclass(frozen=True, slots=True)
class MappingRow:
    id_type: str
    external_id: str
    entity_id: uuid.UUID
    confidence: float
    method: str
    entity_kind: str


@dataclass(frozen=True, slots=True)
class CandidateRow:
    entity_id: uuid.UUID
    kind: str
    title: str
    original_title: str | None
    year: int | None
    runtime_minutes: int | None
    directors: tuple[str, ...]
    top_cast: tuple[str, ...]
    strong_ids: tuple[IdPair, ...]


@dataclass(frozen=True, slots=True)
class MappingWrite:
    id_type: str
    external_id: str
    entity_id: uuid.UUID
    confidence: float
    method: str


# One statement text for any number of ids (unnest of two arrays), so asyncpg prepares it once.
_pairs = (
    func.unnest(bindparam("types", type_=ARRAY(Text)), bindparam("values", type_=ARRAY(Text)))
    .table_valued("id_type", "external_id")
    .render_derived(name="wanted")
)

_LOOKUP = (
    select(_m.c.id_type, _m.c.external_id, _m.c.entity_id, _m.c.confidence, _m.c.method, _c.c.kind)
    .select_from(_pairs)
    .join(_m, (_m.c.id_type == _pairs.c.id_type) & (_m.c.external_id == _pairs.c.external_id))
    .join(_c, _c.c.id == _m.c.entity_id)
)


async def lookup_mappings(conn: AsyncConnection, ids: Sequence[IdPair]) -> list[MappingRow]:
    """The stored mappings of these (id_type, external_id) pairs, with their entity's kind."""
    if not ids:
        return []
    result = await conn.execute(_LOOKUP, {"types": [t for t, _ in ids], "values": [v for _, v in ids]})
    return [MappingRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in result]


_KINDS = select(_c.c.id, _c.c.kind).where(_c.c.id == any_(bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))))


async def entity_kinds(conn: AsyncConnection, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Which of these entities exist (id -> kind): a cached mapping may outlive its entity."""
    if not ids:
        return {}
    result = await conn.execute(_KINDS, {"ids": list(ids)})
    return {r[0]: r[1] for r in result}


_strong_ids = (
    select(func.array_agg(_m.c.id_type + literal_column("':'") + _m.c.external_id))
    # Not an IN list: an expanding parameter would re-render the statement text on every call.
    .where(_m.c.entity_id == _c.c.id, _m.c.id_type == any_(literal(list(STRONG_ID_TYPES), ARRAY(Text))))
    .scalar_subquery()
)
_CANDIDATE_COLUMNS = (
    _c.c.id,
    _c.c.kind,
    _c.c.title,
    _c.c.original_title,
    _c.c.year,
    _c.c.runtime_minutes,
    _c.c.directors,
    # Only the top-billed names matter for scoring; no need to ship the whole cast jsonb.
    func.jsonb_path_query_array(_c.c["cast"], literal_column("'$[0 to 4].name'::jsonpath")),
    _strong_ids,
)


def _blocking_statement(with_year: bool) -> Select[Any]:
    same_kind = _c.c.kind == bindparam("kind")
    anchor = bindparam("anchor", type_=Text)
    exact = select(_c.c.id).where(
        same_kind, _c.c.title_normalized == any_(bindparam("keys", type_=ARRAY(Text)))
    )
    up = select(_c.c.id).where(same_kind, _c.c.title_normalized >= anchor)
    down = select(_c.c.id).where(same_kind, _c.c.title_normalized < anchor)
    if with_year:
        near = _c.c.year.between(bindparam("year_lo"), bindparam("year_hi"))
        exact = exact.where(near | _c.c.year.is_(None))
        up, down = up.where(near), down.where(near)
    branches = union(
        exact.limit(bindparam("cap")),
        up.order_by(_c.c.title_normalized).limit(bindparam("window")),
        down.order_by(_c.c.title_normalized.desc()).limit(bindparam("window")),
    ).subquery()
    return select(*_CANDIDATE_COLUMNS).where(_c.c.id.in_(select(branches.c.id)))


# Built once: constructing and cache-keying this statement per call cost more than running it.
_BLOCK_WITH_YEAR = _blocking_statement(with_year=True)
_BLOCK_ANY_YEAR = _blocking_statement(with_year=False)


async def find_candidates(
    conn: AsyncConnection,
    *,
    kind: str,
    keys: Sequence[str],
    anchor: str,
    year: int | None,
    window: int = 8,
    cap: int = 50,
) -> list[CandidateRow]:
    """Blocking, in one statement, on the index (title_normalized, year), as a union of:

    - exact: `title_normalized` is one of `keys`, year within +-1 or unknown;
    - the `window` nearest titles above and below `anchor` in index order with a year within +-1:
      a typo past the first letters keeps a title next to its original in sort order, and the
      window bounds the cost whatever the catalog size (a sorted-neighbourhood block).

    With no year on the record every year is a candidate (scoring then decides on other fields).
    """
    params: dict[str, Any] = {
        "kind": kind,
        "keys": list(keys),
        "anchor": anchor,
        "window": window,
        "cap": cap,
    }
    if year is not None:
        params |= {"year_lo": year - 1, "year_hi": year + 1}
    stmt = _BLOCK_WITH_YEAR if year is not None else _BLOCK_ANY_YEAR
    rows = await conn.execute(stmt, params)
    out = []
    for r in rows:
        strong = tuple((t, v) for t, _, v in (s.partition(":") for s in (r[8] or ())))
        out.append(
            CandidateRow(
                entity_id=r[0],
                kind=r[1],
                title=r[2],
                original_title=r[3],
                year=r[4],
                runtime_minutes=r[5],
                directors=tuple(r[6] or ()),
                top_cast=tuple(n for n in (r[7] or ()) if isinstance(n, str)),
                strong_ids=strong,
            )
        )
    return out


async def upsert_mappings(conn: AsyncConnection, mappings: Sequence[MappingWrite]) -> list[MappingWrite]:
    """Insert or strengthen mappings (see the module doc for the rule); returns the rows written."""
    unique: dict[IdPair, MappingWrite] = {}
    for m in mappings:
        key = (m.id_type, m.external_id)
        # One INSERT cannot touch a row twice; keep the strongest claim per id.
        if key not in unique or m.confidence > unique[key].confidence:
            unique[key] = m
    if not unique:
        return []
    # One statement shape for any number of rows (executemany): a multi-row VALUES would be
    # compiled afresh for every distinct row count.
    base = insert(_m)
    stmt = base.on_conflict_do_update(
        index_elements=[_m.c.id_type, _m.c.external_id],
        set_={
            "entity_id": base.excluded.entity_id,
            "confidence": base.excluded.confidence,
            "method": base.excluded.method,
            "updated_at": func.now(),
        },
        where=base.excluded.confidence > _m.c.confidence,
    ).returning(_m.c.id_type, _m.c.external_id, _m.c.entity_id, _m.c.confidence, _m.c.method)
    rows = [
        {
            "id_type": m.id_type,
            "external_id": m.external_id,
            "entity_id": m.entity_id,
            "confidence": m.confidence,
            "method": m.method,
        }
        for m in unique.values()
    ]
    return [MappingWrite(r[0], r[1], r[2], r[3], r[4]) for r in await conn.execute(stmt, rows)]


async def iter_all_mappings(
    conn: AsyncConnection, page_size: int = 5000
) -> AsyncIterator[list[tuple[str, str, uuid.UUID, str]]]:
    """Every mapping with its entity's kind, a page at a time, by keyset on the primary key: each
    page is one short indexed query, so warming a large table holds no long-lived cursor."""
    after: IdPair | None = None
    while True:
        stmt = (
            select(_m.c.id_type, _m.c.external_id, _m.c.entity_id, _c.c.kind)
            .join(_c, _c.c.id == _m.c.entity_id)
            .order_by(_m.c.id_type, _m.c.external_id)
        )
        if after is not None:
            stmt = stmt.where(tuple_(_m.c.id_type, _m.c.external_id) > tuple_(*after))
        page = [(r[0], r[1], r[2], r[3]) for r in await conn.execute(stmt.limit(page_size))]
        if not page:
            return
        yield page
        if len(page) < page_size:
            return
        after = (page[-1][0], page[-1][1])


async def list_mappings(
    conn: AsyncConnection,
    *,
    entity_id: uuid.UUID | None = None,
    id_type: str | None = None,
    external_id: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Mappings of an entity, or the mapping of one external id (the admin API reads these)."""
    stmt = select(
        _m.c.id_type, _m.c.external_id, _m.c.entity_id, _m.c.confidence, _m.c.method, _m.c.updated_at
    )
    if entity_id is not None:
        stmt = stmt.where(_m.c.entity_id == entity_id)
    if id_type is not None:
        stmt = stmt.where(_m.c.id_type == id_type)
    if external_id is not None:
        stmt = stmt.where(_m.c.external_id == external_id)
    stmt = stmt.order_by(_m.c.id_type, _m.c.external_id).limit(limit)
    return [dict(r._mapping) for r in await conn.execute(stmt)]
