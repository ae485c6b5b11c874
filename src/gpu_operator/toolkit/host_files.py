"""Host files we change, changed safely: atomic writes (temp file, fsync, rename, keeping the
mode), and a backup of each file's original bytes with the edits we made, so uninstall can
restore it byte for byte (or, if the user changed it since, revert only our keys)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.documents import Append, Edit


def write_atomically(path: Path, content: str | bytes, *, mode: int | None = None) -> None:
    """Write via a temp file in the same directory, fsync, rename; keep the old mode."""
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_text(path: Path) -> str | None:
    """The file's text, ``None`` when absent; undecodable bytes are a ``ConfigError``."""
    try:
        return path.read_bytes().decode()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from error


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _edit_to_json(edit: Edit) -> dict[str, Any]:
    if isinstance(edit.value, Append):
        return {"path": list(edit.path), "append": edit.value.value}
    return {"path": list(edit.path), "value": edit.value}


def _edit_from_json(data: dict[str, Any]) -> Edit:
    if "append" in data:
        return Edit(tuple(data["path"]), Append(data["append"]))
    return Edit(tuple(data["path"]), data["value"])


@dataclass(frozen=True)
class Backup:
    """What a file was before our first change, and what we last wrote into it."""

    path: Path
    original: bytes | None
    """``None``: the file did not exist (uninstall deletes it)."""
    mode: int | None
    written_digest: str
    edits: tuple[Edit, ...]


class BackupStore:
    """One JSON record per host file under ``directory``."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _record(self, path: Path) -> Path:
        slug = str(path).strip("/").replace("/", "__") or "root"
        return self.directory / f"{slug}.backup.json"

    def load(self, path: Path) -> Backup | None:
        record = self._record(path)
        try:
            data = json.loads(record.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError) as error:
            raise ConfigError(f"{record}: unreadable backup record: {error}") from error
        original = data["original"]
        return Backup(
            path=Path(data["path"]),
            original=None if original is None else base64.b64decode(original),
            mode=data.get("mode"),
            written_digest=data["written_digest"],
            edits=tuple(_edit_from_json(e) for e in data["edits"]),
        )

    def save(self, backup: Backup) -> None:
        data = {
            "path": str(backup.path),
            "original": None
            if backup.original is None
            else base64.b64encode(backup.original).decode(),
            "mode": backup.mode,
            "written_digest": backup.written_digest,
            "edits": [_edit_to_json(e) for e in backup.edits],
        }
        write_atomically(self._record(backup.path), json.dumps(data, indent=1) + "\n", mode=0o600)

    def drop(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._record(path).unlink()

    def all(self) -> list[Backup]:
        found = []
        for record in sorted(self.directory.glob("*.backup.json")):
            data = json.loads(record.read_text())
            backup = self.load(Path(data["path"]))
            if backup is not None:
                found.append(backup)
        return found


def original_of(path: Path) -> tuple[bytes | None, int | None]:
    try:
        return path.read_bytes(), path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None, None
