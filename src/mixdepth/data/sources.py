"""Where a dataset's files come from: a directory or a tar archive, read the same way.

A source lists relative POSIX file names and opens them as binary file objects whose `name`
is a readable location (`/data/x.tar:train/0001.png`) for error messages. Tar archives are
read in place, without unpacking; an archive whose members all sit under one top-level
folder is treated as that folder. Sources can be pickled into DataLoader workers: each
process opens its own file handle.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from mixdepth.errors import FileFormatError, MixdepthError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_tar_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(TAR_SUFFIXES)


class Source:
    """Read-only access to the files of one dataset root."""

    root: str

    def names(self) -> list[str]:
        """All file names, relative POSIX paths, sorted."""
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        return name in self._name_set()

    def open(self, name: str) -> BinaryIO:
        """A binary file object for `name` (seekable); FileFormatError if it is missing."""
        raise NotImplementedError

    def open_stream(self, name: str) -> BinaryIO:
        """A seekable binary stream for large files (read lazily, not copied into memory);
        its `name` is not necessarily `location(name)`."""
        return self.open(name)

    def location(self, name: str) -> str:
        """Human-readable location of `name` for messages."""
        raise NotImplementedError

    def local_path(self, name: str) -> str | None:
        """A path on the local file system if the file has one (directories), else None."""
        return None

    def _name_set(self) -> set[str]:
        if getattr(self, "_names_cache", None) is None:
            self._names_cache = set(self.names())
        return self._names_cache


class DirectorySource(Source):
    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        if not Path(root).is_dir():
            raise MixdepthError(f"{root}: dataset root is not a directory or tar archive")
        self._names: list[str] | None = None
        self._names_cache = None

    def names(self) -> list[str]:
        if self._names is None:
            found = []
            for folder, _, files in os.walk(self.root, followlinks=True):
                rel = os.path.relpath(folder, self.root)
                prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
                found.extend(prefix + f for f in files)
            self._names = sorted(found)
        return self._names

    def exists(self, name: str) -> bool:
        if self._names is None:
            return os.path.isfile(os.path.join(self.root, name))
        return super().exists(name)

    def open(self, name: str) -> BinaryIO:
        path = os.path.join(self.root, name)
        try:
            with open(path, "rb") as f:
                buffer = io.BytesIO(f.read())
        except FileNotFoundError:
            raise FileFormatError(path, "file not found") from None
        buffer.name = path
        return buffer

    def open_stream(self, name: str) -> BinaryIO:
        path = os.path.join(self.root, name)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise FileFormatError(path, "file not found") from None

    def location(self, name: str) -> str:
        return os.path.join(self.root, name)

    def local_path(self, name: str) -> str | None:
        return os.path.join(self.root, name)


class TarSource(Source):
    """Members of a tar archive (plain or compressed), read without unpacking."""

    def __init__(self, path: str | os.PathLike):
        self.root = str(path)
        try:
            with tarfile.open(self.root) as tar:
                members = [m for m in tar.getmembers() if m.isfile()]
        except (tarfile.TarError, OSError) as err:
            raise FileFormatError(self.root, f"cannot read tar archive ({err})") from None
        names = [m.name[2:] if m.name.startswith("./") else m.name for m in members]
        tops = {n.split("/", 1)[0] for n in names}
        self.prefix = ""
        if len(tops) == 1 and all("/" in n for n in names):
            self.prefix = next(iter(tops)) + "/"
        self._members = {n[len(self.prefix) :]: m for n, m in zip(names, members, strict=True)}
        self._names = sorted(self._members)
        self._names_cache = None
        self._tar = None
        self._pid = None

    def names(self) -> list[str]:
        return self._names

    def _archive(self) -> tarfile.TarFile:
        if self._tar is None or self._pid != os.getpid():
            self._tar = tarfile.open(self.root)
            self._pid = os.getpid()
        return self._tar

    def open(self, name: str) -> BinaryIO:
        member = self._members.get(name)
        if member is None:
            raise FileFormatError(self.location(name), "file not found in archive")
        extracted = self._archive().extractfile(member)
        buffer = io.BytesIO(extracted.read())
        buffer.name = self.location(name)
        return buffer

    def open_stream(self, name: str) -> BinaryIO:
        member = self._members.get(name)
        if member is None:
            raise FileFormatError(self.location(name), "file not found in archive")
        return self._archive().extractfile(member)

    def location(self, name: str) -> str:
        return f"{self.root}:{self.prefix}{name}"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_tar"] = None
        return state


def open_source(root: str | os.PathLike | Source) -> Source:
    """A Source for a directory or a tar archive path (or a Source, returned as is)."""
    if isinstance(root, Source):
        return root
    if is_tar_path(root) and Path(root).is_file():
        return TarSource(root)
    if not Path(root).exists():
        raise MixdepthError(f"{root}: dataset root does not exist")
    return DirectorySource(root)
