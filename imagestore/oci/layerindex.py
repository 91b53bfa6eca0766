"""The index of a layer: every entry of its tar, recorded while the tar streams by once.

``TarIndexer`` is a push parser: it is fed the uncompressed bytes of a layer in whatever
pieces the caller has (the diff_id verifier's thread at pull and load, the gzip writer at
import and commit) and reads the tar headers itself, hashing each regular file's content
(sha256) as it passes, so no second read of the blob is ever needed. Whiteouts
(``.wh.NAME``) and opaque directories (``.wh..wh..opq``) are recorded as removals, as the
OCI image spec's layer changesets define them
(https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts).

A few small files the package readers need (dpkg's status, apk's installed database, rpm's
database, Python ``METADATA``, Node ``package.json``, ``/etc/os-release``) are kept whole in
the index too, within a cap, so packages are read from the index, never from the tar again.

Headers are parsed as Python's tarfile parses them (ustar with its prefix, GNU long names,
PAX records, base-256 numbers), with the same bounds as ``tarsafe`` (metadata headers of at
most 1 MiB, names of at most 4096 bytes). A stream that is not a tar (a config in a load
archive, a malformed layer) ends the indexing with ``failed`` set, never an exception out of
``feed``: indexing never makes an arrival fail.

The stored form (``encode``/``decode``) is one zstd stream: a JSON line with the entries as
arrays, then each kept file as a JSON line naming it and its length, followed by its bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import zstandard

from .errors import CorruptArchive, UnsafeArchive
from .tarsafe import MAX_METADATA_HEADER, clean_member_name

FORMAT_VERSION = 1
BLOCK = 512
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

# Entry types as the index names them.
FILE, DIR, SYMLINK, HARDLINK, CHAR, BLOCKDEV, FIFO, WHITEOUT, OPAQUE = (
    "file", "dir", "symlink", "hardlink", "char", "block", "fifo", "whiteout", "opaque")
_TYPES = {b"0": FILE, b"\0": FILE, b"7": FILE, b"S": FILE, b"1": HARDLINK, b"2": SYMLINK, b"3": CHAR,
          b"4": BLOCKDEV, b"5": DIR, b"6": FIFO}
# tarfile reads data after these headers (regular files, sparse files, unknown types).
_DATA_TYPES = {b"0", b"\0", b"7", b"S"}
_KNOWN_TYPES = {b"0", b"\0", b"7", b"S", b"1", b"2", b"3", b"4", b"5", b"6"}
_GNU_TYPES = {b"L", b"K", b"S"}

# Files kept whole in the index (their content, up to the cap), for the package readers.
MAX_KEPT_FILE = 64 << 20
MAX_KEPT_TOTAL = 256 << 20
_KEPT = re.compile(
    r"^(?:var/lib/dpkg/status|var/lib/dpkg/status\.d/[^/]+|lib/apk/db/installed|etc/os-release|usr/lib/os-release"
    r"|(?:usr/lib/sysimage|var/lib)/rpm/(?:rpmdb\.sqlite|Packages|Packages\.db)"
    r"|(?:.*/)?[^/]+\.dist-info/METADATA|(?:.*/)?node_modules/(?:@[^/]+/)?[^/]+/package\.json)$"
)


def keeps(path: str) -> bool:
    """Whether a file at ``path`` (relative, no leading slash) is kept whole in the index."""
    return bool(_KEPT.match(path))


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a layer. ``path`` is relative to the root (``etc/passwd``); for a
    whiteout it is the path removed, for an opaque marker the directory made opaque."""

    path: str
    type: str
    size: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    link: str = ""
    digest: str = ""  # sha256:... of a regular file's content ("" for a sparse file)

    def as_row(self) -> list[Any]:
        return [self.path, self.type, self.size, self.mode, self.uid, self.gid, self.mtime, self.link, self.digest]


@dataclass
class LayerIndex:
    entries: list[Entry]
    files: dict[str, bytes] = field(default_factory=dict)  # kept file contents, by path

    @property
    def removals(self) -> list[Entry]:
        return [e for e in self.entries if e.type in (WHITEOUT, OPAQUE)]


class _Failed(Exception):
    pass


def _nts(data: bytes) -> bytes:
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def _number(field_: bytes) -> int:
    """A numeric header field: octal text, or GNU's base-256 (first byte 0x80 or 0xff)."""
    if field_[:1] in (b"\x80", b"\xff"):
        n = 0
        for byte in field_[1:]:
            n = (n << 8) | byte
        if field_[0] == 0xFF:
            n -= 256 ** (len(field_) - 1)
        return n
    text = _nts(field_).strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _Failed("invalid number in a tar header") from None


def _checksum_ok(block: bytes) -> bool:
    """The header checksum, unsigned or (as some old tars wrote it) signed, as tarfile accepts."""
    try:
        stored = int(_nts(block[148:156]).strip(b" \0") or b"0", 8)
    except ValueError:
        return False
    unsigned = 256 + sum(block[:148]) + sum(block[156:])
    if stored == unsigned:
        return True
    high = sum(1 for b in block[:148] if b > 127) + sum(1 for b in block[156:] if b > 127)
    return stored == unsigned - 256 * high


def _parse_pax(data: bytes) -> dict[str, str]:
    """PAX extended header records (``LEN key=value\\n``), as tarfile reads them."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        space = data.find(b" ", pos)
        if space < 0:
            raise _Failed("invalid PAX header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise _Failed("invalid PAX header") from None
        if length <= 0 or pos + length > len(data):
            raise _Failed("invalid PAX header")
        record = data[space + 1:pos + length - 1]
        key, sep, value = record.partition(b"=")
        if not sep:
            raise _Failed("invalid PAX header")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarIndexer:
    """Fed the bytes of an uncompressed tar in order; ``result()`` gives its LayerIndex."""

    def __init__(self) -> None:
        self.failed: str | None = None
        self.ended = False  # the end-of-archive marker was seen
        self.entries: list[Entry] = []
        self.files: dict[str, bytes] = {}
        self._kept_total = 0
        self._header = bytearray()  # a header block being gathered
        self._data_left = 0  # content bytes of the current entry still to come
        self._pad_left = 0  # padding after them
        self._meta: bytearray | None = None  # content of a PAX or GNU long-name header
        self._meta_kind = b""
        self._pax: dict[str, str] = {}
        self._global_pax: dict[str, str] = {}
        self._long_name: str | None = None
        self._long_link: str | None = None
        self._hasher: Any = None
        self._kept: bytearray | None = None
        self._pending: dict[str, Any] | None = None  # the regular file whose content is streaming

    def feed(self, data: bytes | memoryview) -> None:
        if self.failed is not None or self.ended:
            return
        try:
            self._feed(memoryview(data))
        except (_Failed, UnsafeArchive, CorruptArchive) as exc:
            self._fail(str(exc))

    def _fail(self, reason: str) -> None:
        self.failed = reason or "not a tar archive"
        self.entries, self.files = [], {}
        self._hasher = self._kept = self._meta = None

    def _feed(self, view: memoryview) -> None:
        pos, n = 0, len(view)
        while pos < n and not self.ended:
            if self._data_left:
                take = min(self._data_left, n - pos)
                piece = view[pos:pos + take]
                if self._meta is not None:
                    self._meta += piece
                else:
                    if self._hasher is not None:
                        self._hasher.update(piece)
                    if self._kept is not None:
                        self._kept += piece
                self._data_left -= take
                pos += take
                if not self._data_left:
                    self._content_done()
                continue
            if self._pad_left:
                take = min(self._pad_left, n - pos)
                self._pad_left -= take
                pos += take
                continue
            take = min(BLOCK - len(self._header), n - pos)
            self._header += view[pos:pos + take]
            pos += take
            if len(self._header) == BLOCK:
                block = bytes(self._header)
                self._header.clear()
                self._on_header(block)

    def _on_header(self, block: bytes) -> None:
        if not block.strip(b"\0"):
            self.ended = True  # the end-of-archive marker (its second block is not needed)
            return
        if not _checksum_ok(block):
            raise _Failed("invalid tar header checksum")
        kind = block[156:157]
        size = _number(block[124:136])
        if size < 0:
            raise UnsafeArchive("a tar entry has a negative size")
        if kind in (b"x", b"g", b"X", b"L", b"K"):
            if size > MAX_METADATA_HEADER:
                raise UnsafeArchive(f"tar metadata header claims {size} bytes (limit {MAX_METADATA_HEADER})")
            self._meta, self._meta_kind = bytearray(), kind
            self._start_content(size)
            return
        pax = {**self._global_pax, **self._pax}
        self._pax = {}
        name = _nts(block[0:100]).decode("utf-8", "surrogateescape")
        magic = block[257:265]
        prefix = _nts(block[345:500]).decode("utf-8", "surrogateescape")
        if prefix and kind not in _GNU_TYPES and magic == b"ustar\x0000":
            name = f"{prefix}/{name}"
        link = _nts(block[157:257]).decode("utf-8", "surrogateescape")
        if self._long_name is not None:
            name, self._long_name = self._long_name, None
        if self._long_link is not None:
            link, self._long_link = self._long_link, None
        name = pax.get("path", name)
        link = pax.get("linkpath", link)
        if kind == b"\0" and name.endswith("/"):
            kind = b"5"  # tarfile: an old-style regular entry named with a slash is a directory
        if kind not in _KNOWN_TYPES:
            raise UnsafeArchive(f"tar entry {name!r} has unsupported type {kind!r}")
        mode = _number(block[100:108]) & 0o7777
        uid = int(pax["uid"]) if "uid" in pax and pax["uid"].isdigit() else _number(block[108:116])
        gid = int(pax["gid"]) if "gid" in pax and pax["gid"].isdigit() else _number(block[116:124])
        mtime = _pax_time(pax.get("mtime")) if "mtime" in pax else _number(block[136:148])
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise _Failed("invalid size in a PAX header") from None
        sparse = kind == b"S" or any(k.startswith("GNU.sparse.") for k in pax)
        apparent = size
        if sparse:
            name = pax.get("GNU.sparse.name", name)
            real = pax.get("GNU.sparse.realsize") or pax.get("GNU.sparse.size")
            if real is not None and real.isdigit():
                apparent = int(real)
            elif kind == b"S":
                apparent = _number(block[483:495])
                if block[482]:  # the old GNU format's extended sparse map follows in blocks
                    raise _Failed("GNU sparse files with extended maps are not indexed")
        path = clean_member_name(name)
        data_size = size if kind in _DATA_TYPES else 0
        entry_type = _TYPES[kind]
        base = posixpath.basename(path)
        if base.startswith(WHITEOUT_PREFIX):
            parent = posixpath.dirname(path)
            if base == OPAQUE_MARKER:
                self.entries.append(Entry(parent or ".", OPAQUE, mtime=mtime))
            elif not base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):  # .wh..wh.* is aufs metadata
                removed = base[len(WHITEOUT_PREFIX):]
                if removed in ("", ".", ".."):
                    raise UnsafeArchive(f"whiteout {path!r} names no entry")
                self.entries.append(Entry(posixpath.join(parent, removed), WHITEOUT, mtime=mtime))
            self._start_content(data_size)
            return
        if entry_type == HARDLINK:
            link = clean_member_name(link)
        fields: dict[str, Any] = {
            "path": path, "type": entry_type, "size": apparent if entry_type == FILE else 0, "mode": mode,
            "uid": uid, "gid": gid, "mtime": mtime, "link": link if entry_type in (SYMLINK, HARDLINK) else ""}
        if entry_type == FILE and not sparse:
            self._pending = fields
            self._hasher = hashlib.sha256()
            if keeps(path) and size <= MAX_KEPT_FILE and self._kept_total + size <= MAX_KEPT_TOTAL:
                self._kept = bytearray()
            self._start_content(data_size)
            return
        self.entries.append(Entry(**fields))
        self._start_content(data_size)

    def _start_content(self, size: int) -> None:
        self._data_left = size
        self._pad_left = -size % BLOCK
        if not size:
            self._content_done()

    def _content_done(self) -> None:
        if self._meta is not None:
            meta, kind = bytes(self._meta), self._meta_kind
            self._meta = None
            if kind in (b"x", b"X"):
                self._pax = _parse_pax(meta)
            elif kind == b"g":
                self._global_pax.update(_parse_pax(meta))
            elif kind == b"L":
                self._long_name = _nts(meta).decode("utf-8", "surrogateescape")
            else:
                self._long_link = _nts(meta).decode("utf-8", "surrogateescape")
            return
        if self._pending is not None:
            fields, self._pending = self._pending, None
            self.entries.append(Entry(**fields, digest="sha256:" + self._hasher.hexdigest()))
            self._hasher = None
            if self._kept is not None:
                self.files[fields["path"]] = bytes(self._kept)
                self._kept_total += len(self._kept)
                self._kept = None

    def result(self) -> LayerIndex:
        """The index, once the whole tar has been fed. CorruptArchive if it could not be made."""
        if self.failed is not None:
            raise CorruptArchive(f"the layer could not be indexed: {self.failed}")
        if not self.ended:
            raise CorruptArchive("the layer could not be indexed: the tar ends before its end-of-archive marker")
        return LayerIndex(self.entries, self.files)


def _pax_time(text: str | None) -> int:
    try:
        return int(float(text or 0))
    except ValueError:
        return 0


def index_tar(stream: IO[bytes] | Any, chunk_size: int = 1 << 20) -> LayerIndex:
    """The index of an uncompressed tar read from ``stream`` (the backfill's one read)."""
    indexer = TarIndexer()
    while not indexer.ended and indexer.failed is None and (chunk := stream.read(chunk_size)):
        indexer.feed(chunk)
    return indexer.result()


def encode(index: LayerIndex, out: IO[bytes], level: int = 3) -> None:
    """Write ``index`` to ``out`` in its stored form (zstd)."""
    with zstandard.ZstdCompressor(level=level).stream_writer(out, closefd=False) as writer:
        header = {"version": FORMAT_VERSION, "entries": [e.as_row() for e in index.entries],
                  "files": len(index.files)}
        writer.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
        for path, content in index.files.items():
            writer.write(json.dumps({"path": path, "size": len(content)}).encode() + b"\n")
            writer.write(content)


MAX_INDEX_LINE = 1 << 30


def decode(source: IO[bytes], *, with_files: bool = True) -> LayerIndex:
    """Read an index in its stored form. CorruptArchive if it is not one."""
    try:
        reader = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(source, closefd=False))  # type: ignore[arg-type]
        line = reader.readline(MAX_INDEX_LINE)
        header = json.loads(line)
        if not isinstance(header, dict) or header.get("version") != FORMAT_VERSION:
            raise CorruptArchive("not a layer index of this version")
        entries = [Entry(*row) for row in header["entries"]]
        files: dict[str, bytes] = {}
        if with_files:
            for _ in range(int(header.get("files") or 0)):
                meta = json.loads(reader.readline(1 << 16))
                size = int(meta["size"])
                content = reader.read(size)
                if len(content) != size:
                    raise CorruptArchive("the layer index ends early")
                files[str(meta["path"])] = content
        return LayerIndex(entries, files)
    except (zstandard.ZstdError, ValueError, KeyError, TypeError) as exc:
        raise CorruptArchive(f"not a valid layer index: {exc}") from None


def iter_paths(index: LayerIndex) -> Iterator[str]:
    return (e.path for e in index.entries)
