"""The model store: versioned bundles per model name with a champion pointer.

Layout under the store root (``mlops.store``, default ``<data.dir>/models``)::

    <name>/versions/v0001/     a bundle (format 2, manifest) + version.json (how it was made,
    <name>/versions/v0002/     its gate figures and verdict)
    <name>/champion.json       {"version": "v0002", "history": ["v0001"], "updated": ...}

``champion.json`` is replaced atomically (written to a temporary file, flushed, renamed), so a
reader sees the old or the new champion, never half of one. ``history`` lists the champions
before it, newest last: a rollback makes the last of them the champion again. Giving the model's
directory (``<store>/<name>``) where a bundle is expected (``--model``) means its champion.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aitrader.errors import ConfigError

if TYPE_CHECKING:
    from aitrader.models.registry import ModelBundle

CHAMPION = "champion.json"
VERSIONS = "versions"
META = "version.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^v(\d{4,})$")


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename (a reader never sees a partial file)."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_champion(path: Path) -> Path:
    """``path`` itself, or its champion's bundle directory when ``path`` is a store entry."""
    pointer = path / CHAMPION
    if not pointer.is_file():
        return path
    store = ModelStore(path.parent)
    champion = store.champion(path.name)
    if champion is None:
        raise ConfigError(f"{path}: the model has no champion; promote a version first")
    return champion.path


@dataclass(frozen=True)
class Version:
    """One stored bundle: its name, id, directory and ``version.json``."""

    name: str
    id: str
    path: Path
    meta: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.meta.get("metrics") or {})


class ModelStore:
    """Versioned bundles under ``root`` (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()

    def _dir(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ConfigError(
                f"model name {name!r}: letters, digits, '_', '.', '-' (at most 64), "
                "starting with a letter or digit"
            )
        return self.root / name

    def names(self) -> list[str]:
        """Every model name that has versions."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / VERSIONS).is_dir())

    def versions(self, name: str) -> list[Version]:
        """The stored versions of ``name``, oldest first."""
        folder = self._dir(name) / VERSIONS
        if not folder.is_dir():
            return []
        ids = sorted(
            (p.name for p in folder.iterdir() if _VERSION.match(p.name)),
            key=lambda v: int(v[1:]),
        )
        return [self._version(name, v) for v in ids]

    def _version(self, name: str, version: str) -> Version:
        path = self._dir(name) / VERSIONS / version
        try:
            meta = json.loads((path / META).read_text())
        except FileNotFoundError:
            meta = {}
        except ValueError as exc:
            raise ConfigError(f"{path / META}: unreadable ({exc})") from None
        return Version(name, version, path, meta)

    def version(self, name: str, version: str) -> Version:
        """A stored version (ConfigError listing the stored ones otherwise)."""
        if _VERSION.match(version) and (self._dir(name) / VERSIONS / version).is_dir():
            return self._version(name, version)
        known = ", ".join(v.id for v in self.versions(name)) or "none"
        raise ConfigError(f"model {name!r} has no version {version!r} (stored: {known})")

    def _claim(self, name: str) -> Path:
        folder = self._dir(name) / VERSIONS
        folder.mkdir(parents=True, exist_ok=True)
        number = max((int(v.id[1:]) for v in self.versions(name)), default=0) + 1
        while True:
            path = folder / f"v{number:04d}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                number += 1

    def add(self, name: str, bundle: ModelBundle, meta: dict[str, Any]) -> Version:
        """Save ``bundle`` as the next version of ``name`` with ``meta`` (not promoted)."""
        from aitrader.models.registry import save_bundle

        path = self._claim(name)
        save_bundle(bundle, path)
        return self._write_meta(name, path, meta)

    def add_directory(self, name: str, source: Path, meta: dict[str, Any]) -> Version:
        """Copy the bundle in ``source`` (its manifest checked) in as the next version; its
        bundle's figures (if any) become the version's."""
        from aitrader.models.bundle_files import read_files

        try:
            figures = json.loads(read_files(source)["bundle.json"]).get("metrics") or {}
        except (ValueError, AttributeError):
            figures = {}
        path = self._claim(name)
        shutil.copytree(source, path, dirs_exist_ok=True)
        return self._write_meta(name, path, {"source": str(source), "metrics": figures} | meta)

    def _write_meta(self, name: str, path: Path, meta: dict[str, Any]) -> Version:
        document = {"created": now_text()} | meta
        text = json.dumps(document, indent=2, sort_keys=True, allow_nan=True, default=str)
        write_atomic(path / META, (text + "\n").encode())
        return self._version(name, path.name)

    def update_meta(self, version: Version, **changes: Any) -> Version:
        return self._write_meta(version.name, version.path, version.meta | changes)

    def pointer(self, name: str) -> dict[str, Any]:
        """The champion document (empty: no champion yet)."""
        path = self._dir(name) / CHAMPION
        try:
            document: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ConfigError(f"{path}: unreadable champion pointer ({exc})") from None
        return document

    def champion(self, name: str) -> Version | None:
        version = self.pointer(name).get("version")
        return None if version is None else self.version(name, str(version))

    def _point(self, name: str, version: str, history: list[str]) -> None:
        document = {"version": version, "history": history, "updated": now_text()}
        write_atomic(self._dir(name) / CHAMPION, (json.dumps(document, indent=2) + "\n").encode())

    def promote(self, name: str, version: str) -> str | None:
        """Make ``version`` the champion; returns the champion it replaces (None: none)."""
        self.version(name, version)
        pointer = self.pointer(name)
        old = pointer.get("version")
        if old == version:
            raise ConfigError(f"{name} {version} is already the champion")
        history = list(pointer.get("history", [])) + ([str(old)] if old else [])
        self._point(name, version, history)
        return None if old is None else str(old)

    def rollback(self, name: str) -> tuple[str, str]:
        """Make the previous champion the champion again; ``(replaced, restored)``."""
        pointer = self.pointer(name)
        history = list(pointer.get("history", []))
        if not history:
            raise ConfigError(f"model {name!r} has no previous champion to roll back to")
        restored = str(history.pop())
        self.version(name, restored)
        self._point(name, restored, history)
        return str(pointer["version"]), restored
