"""Edits of nested configuration documents as plain data, applied and reverted in place.

A runtime's change is a list of ``Edit`` s (a key path and a value, or ``Append`` to an array).
They apply to a ``tomlkit`` document (the user's comments, order and indentation kept; new
tables take their siblings' indentation) or to a JSON object alike, and revert against the
original document: each key goes back to its old value or away, and tables that only the edits
created are pruned.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, Item, Table, Whitespace

Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Append:
    """Add ``value`` to the array at the path (created if absent) unless it is there."""

    value: Any


@dataclass(frozen=True)
class Edit:
    path: Path_
    value: Any

    def describe(self) -> str:
        shown = f"+= {self.value.value!r}" if isinstance(self.value, Append) else repr(self.value)
        return f"{'.'.join(self.path)} = {shown}"


_MISSING = object()


def get(doc: Any, path: Path_) -> Any:
    """The value at ``path``, or ``None``."""
    node = doc
    for key in path:
        if not isinstance(node, MutableMapping) or key not in node:
            return None
        node = node[key]
    return node


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def _body(table: Any) -> list[tuple[Any, Any]]:
    container = table.value if isinstance(table, Table) else table
    return list(container.body) if isinstance(container, Container) else []


def _spaces(indent: str) -> str:
    return indent.rsplit("\n", 1)[-1]


def _item_indent(table: Any) -> str | None:
    """The indentation of ``table``'s own key/value lines, if it has any."""
    for key, item in _body(table):
        if key is not None and not isinstance(item, Table | AoT):
            return _spaces(item.trivia.indent)
    return None


def _step(doc: Any) -> str:
    """How much deeper a table's lines are than its header, in this file (``""``: flat)."""
    stack = [doc]
    while stack:
        table = stack.pop()
        for _key, item in _body(table):
            if isinstance(item, Table):
                own = _item_indent(item)
                if own is not None:
                    header = _spaces(item.trivia.indent)
                    return own[len(header) :] if own.startswith(header) else ""
                stack.append(item)
    return ""


def _ends_blank(item: Any) -> bool:
    """Whether ``item`` (a body entry) ends with an empty line."""
    if isinstance(item, Whitespace):
        return item.s.endswith("\n\n") or item.s == "\n"
    if isinstance(item, Table):
        body = _body(item)
        return bool(body) and _ends_blank(body[-1][1])
    return False


def _previous(parent: Any, table: Any) -> Any:
    before = None
    for _key, item in _body(parent):
        if item is table:
            return before
        before = item
    return before


def _last_table(table: Table) -> Table:
    tables = [item for key, item in _body(table) if key is not None and isinstance(item, Table)]
    return _last_table(tables[-1]) if tables else table


def _take_trailing_comments(source: Table) -> list[Any]:
    """Comments at the end of the table before ours introduce the next table of the file:
    take them off (to put them after ours)."""
    body = source.value.body
    moved: list[tuple[Any, Any]] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], Comment | Whitespace):
        moved.insert(0, body.pop())
    if not any(isinstance(item, Comment) for _, item in moved):
        body.extend(moved)
        return []
    while moved and isinstance(moved[0][1], Whitespace):
        body.append(moved.pop(0))
    return [item for _, item in moved]


def _layout(table: Table, header: str, step: str, *, blank_before: bool = True) -> None:
    """Give a table we created (and its children) the file's indentation, explicitly."""
    table.trivia.indent = ("\n" if blank_before else "") + header
    for key, item in _body(table):
        if key is None:
            continue
        if isinstance(item, Table):
            _layout(item, header + step, step)
        elif not isinstance(item, AoT):
            item.trivia.indent = header + step


def _ensure_table(doc: Any, path: Path_, is_toml: bool, created: list[tuple[Any, Any]]) -> Any:
    node = doc
    for key in path:
        if key not in node:
            node[key] = tomlkit.table() if is_toml else {}
            if is_toml and not any(node is table for _, table in created):
                created.append((node, node[key]))
        node = node[key]
        if not isinstance(node, MutableMapping):
            raise TypeError(f"{'.'.join(path)}: {key} is not a table")
    return node


def _set(table: Any, key: str, value: Any, is_toml: bool, fresh: bool) -> None:
    existed = key in table
    table[key] = value
    if not is_toml or existed or fresh:
        return
    indent = _item_indent(table)
    if indent is None:
        header = _spaces(table.trivia.indent) if isinstance(table, Table) else ""
        indent = header
    container = table.value if isinstance(table, Table) else table
    item = container.item(key)
    if isinstance(item, Item):
        item.trivia.indent = indent


def apply(doc: Any, edits: Sequence[Edit], *, is_toml: bool) -> bool:
    """Apply ``edits`` in place; whether anything changed."""
    changed = False
    created: list[tuple[Any, Any]] = []
    step = _step(doc) if is_toml else ""
    for edit in edits:
        *parents, key = edit.path
        table = _ensure_table(doc, tuple(parents), is_toml, created)
        fresh = any(table is t or _within(t, table) for _, t in created)
        current = table.get(key, _MISSING)
        if isinstance(edit.value, Append):
            if current is _MISSING:
                array: Any = tomlkit.array() if is_toml else []
                array.append(edit.value.value)
                _set(table, key, array, is_toml, fresh)
                changed = True
            elif edit.value.value not in list(_plain(current)):
                current.append(edit.value.value)
                changed = True
        elif current is _MISSING or _plain(current) != edit.value:
            _set(table, key, edit.value, is_toml, fresh)
            changed = True
    for parent, table in created:
        header = _child_header_indent_excluding(parent, table)
        if header is None:
            own = _item_indent(parent) if parent is not doc else None
            header = own if own is not None else ""
        previous = _previous(parent, table)
        comments = (
            _take_trailing_comments(_last_table(previous)) if isinstance(previous, Table) else []
        )
        blank = previous is not None and not _ends_blank(previous)
        _layout(table, header, step, blank_before=blank)
        last = _last_table(table)
        last.add(tomlkit.nl())
        last.value.body.extend((None, item) for item in comments)
    return changed


def _within(outer: Any, inner: Any) -> bool:
    for _key, item in _body(outer):
        if item is inner or (isinstance(item, Table) and _within(item, inner)):
            return True
    return False


def _child_header_indent_excluding(parent: Any, new: Any) -> str | None:
    for key, item in _body(parent):
        if key is not None and isinstance(item, Table) and item is not new:
            return _spaces(item.trivia.indent)
    return None


def revert(doc: Any, original: Any, edits: Sequence[Edit]) -> bool:
    """Undo ``edits`` on ``doc`` using ``original`` (the document before any edit); whether
    anything changed. Values the user changed since are left alone where they no longer hold
    our value."""
    changed = False
    for edit in reversed(edits):
        *parents, key = edit.path
        table = get(doc, tuple(parents))
        if not isinstance(table, MutableMapping) or key not in table:
            continue
        before = get(original, edit.path)
        if isinstance(edit.value, Append):
            items = list(_plain(table[key]))
            if edit.value.value in items and (before is None or edit.value.value not in before):
                if before is None and items == [edit.value.value]:
                    del table[key]
                else:
                    table[key].remove(edit.value.value)
                changed = True
            continue
        if _plain(table[key]) != edit.value:
            continue
        if before is None:
            del table[key]
        else:
            table[key] = _plain(before)
        changed = True
        changed |= _prune(doc, original, tuple(parents))
    return changed


def _prune(doc: Any, original: Any, path: Path_) -> bool:
    """Remove now-empty tables along ``path`` that were not in ``original``."""
    changed = False
    while path:
        table = get(doc, path)
        if not isinstance(table, MutableMapping) or len(table) or get(original, path) is not None:
            break
        parent = get(doc, path[:-1]) if len(path) > 1 else doc
        del parent[path[-1]]
        changed = True
        path = path[:-1]
    return changed
