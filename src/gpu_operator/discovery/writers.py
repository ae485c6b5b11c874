"""The NFD local feature file writer: ``key=value`` lines, sorted, written atomically (temp
file in the same directory, fsync, rename, fsync of the directory; mode 0644) so NFD's worker
never reads a partial file; ``-`` or an empty path writes to stdout.

Beyond upstream, the file is *not* deleted when the process exits (upstream deletes it, so a
node's labels vanish while the pod restarts — gpu-feature-discovery PR #899).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from gpu_operator.errors import ConfigError

FILE_MODE = 0o644


def render(labels: Mapping[str, str]) -> str:
    """The file's text: one ``key=value`` line per label, sorted by key."""
    return "".join(f"{key}={labels[key]}\n" for key in sorted(labels))


def write_atomically(path: Path, text: str, mode: int = FILE_MODE) -> bool:
    """Replace ``path`` with ``text`` in one rename; ``False`` (and no write) when the file
    already holds exactly ``text``."""
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise ConfigError(f"{path}: cannot write the feature file: {error.strerror}") from error
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the feature file: {error.strerror}") from error
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


class FeatureFileWriter:
    """Writes each label set to the NFD feature file, or to ``stream`` for ``-`` / ``""``."""

    def __init__(self, output_file: str, stream: TextIO | None = None):
        self.output_file = output_file
        self._stream = stream

    @property
    def to_stdout(self) -> bool:
        return self.output_file in ("", "-")

    def write(self, labels: Mapping[str, str]) -> bool:
        """Publish ``labels``; returns whether anything was written."""
        text = render(labels)
        if self.to_stdout:
            stream = self._stream or sys.stdout
            stream.write(text)
            stream.flush()
            return True
        return write_atomically(Path(self.output_file), text)

    def describe(self) -> str:
        return "stdout" if self.to_stdout else self.output_file
