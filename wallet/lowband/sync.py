"""Delta sync: one page of changes after a cursor, and the envelope it travels in.

A syncing phone keeps ``next_cursor`` and asks ``?since=<it>`` next time; the answer holds the
rows changed since (``items``), the ids withdrawn since (``deleted``: tombstones), a new cursor,
and ``has_more`` when it should ask again right away. A request without ``since`` is a full
sync: the client must *replace* its local copy with what the pages bring (it is also what
a client does after a 400 ``invalid-cursor``).

Correctness rests on two properties of the table (see :mod:`wallet.lowband.counters`):

1. every insert, update and withdrawal stamps ``change_seq`` with
   :func:`~wallet.lowband.counters.next_change_seq` for the owner, in the writing transaction;
2. a withdrawal keeps the row as a tombstone (``deleted_at`` set, new ``change_seq``) instead
   of deleting it — hard-delete tombstones only when no client can still hold a cursor
   older than them (and answer such cursors with ``invalid-cursor``).

The query you pass must select one owner's rows (the one the counter is keyed on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import Select, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from wallet.lowband.cursor import Cursor, PageRequest

T = TypeVar("T")
R = TypeVar("R")


class Page(msgspec.Struct, Generic[T]):
    """The wire envelope of a delta-sync answer."""

    items: list[T]
    deleted: list[str]
    next_cursor: str
    has_more: bool


@dataclass(frozen=True, slots=True)
class Changes(Generic[R]):
    """One page as rows (ORM objects or Core rows); turn it into a :class:`Page` to answer."""

    items: list[R]
    deleted: list[str]
    next_cursor: str
    has_more: bool

    def page(self, convert: Callable[[R], T]) -> Page[T]:
        return Page(
            items=[convert(item) for item in self.items],
            deleted=self.deleted,
            next_cursor=self.next_cursor,
            has_more=self.has_more,
        )


def _reader(query: Select[Any]) -> bool:
    """True when the query selects one ORM entity (rows are model instances)."""
    descriptions = query.column_descriptions
    return (
        len(descriptions) == 1
        and descriptions[0].get("expr") is descriptions[0].get("entity") is not None
    )


def _value(row: Any, column: Any, entity: bool) -> Any:
    return getattr(row, column.key) if entity else row._mapping[column]


async def read_changes(
    session: AsyncSession,
    query: Select[Any],
    request: PageRequest,
    *,
    seq: ColumnElement[int] | Any,
    deleted_at: ColumnElement[Any] | Any,
    row_id: ColumnElement[Any] | Any,
) -> Changes[Any]:
    """The changes after ``request.after``, oldest first, at most ``request.limit`` of them.

    ``query`` is a ``select`` of one owner's rows — ``select(Record).where(Record.owner == o)``
    (rows come back as model instances) or a Core ``select(table)`` (rows as ``Row``);
    ``seq``, ``deleted_at`` and ``row_id`` are its columns. Live rows land in ``items``,
    tombstones in ``deleted`` (ids as strings). Costs one indexed range query; a first sync
    costs one ``max(change_seq)`` more (index ``(owner, change_seq)`` serves both).
    """
    after = request.after
    if after is None:
        top = query.order_by(None).limit(None).with_only_columns(func.max(seq))
        highest = (await session.execute(top)).scalar()
        after = Cursor(seq=0, floor=int(highest or 0))
    page_query = query.where(seq > after.seq).order_by(None).order_by(seq).limit(request.limit + 1)
    if after.floor > after.seq:
        page_query = page_query.where(or_(deleted_at.is_(None), seq > after.floor))
    entity = _reader(query)
    result = await session.execute(page_query)
    rows = list(result.scalars() if entity else result)
    has_more = len(rows) > request.limit
    rows = rows[: request.limit]
    items: list[Any] = []
    deleted: list[str] = []
    for row in rows:
        if _value(row, deleted_at, entity) is None:
            items.append(row)
        else:
            deleted.append(str(_value(row, row_id, entity)))
    last = int(_value(rows[-1], seq, entity)) if rows else after.seq
    floor = after.floor if after.floor > last else 0
    return Changes(
        items=items,
        deleted=deleted,
        next_cursor=request.cursor(Cursor(seq=last, floor=floor)),
        has_more=has_more,
    )
