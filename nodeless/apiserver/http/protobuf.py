"""Kubernetes protobuf request bodies in, the JSON objects a JSON client would send out.

kubectl's typed commands (`create deployment`, `expose`, `autoscale`, ...) POST
`application/vnd.kubernetes.protobuf` and client-go never falls back to JSON, while we
store JSON. The wire format is simple: the magic `k8s\\0`, then a `runtime.Unknown`
(1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType)
whose `raw` is the object as go-to-protobuf lays it out from the Go structs. The field
numbers, JSON names and Go types come from `resources/protobuf_schema.json`, which
`tools/extract_proto_schema.py` reads out of kubectl's own reflect metadata.

The result follows what Go does on the real server — protobuf into the Go struct, then
encoding/json — so it equals the client's `--dry-run=client -o json` output: absent
non-pointer fields are zero values (omitted only under `omitempty`), nested structs are
always objects, nil slices/maps/pointers without `omitempty` are `null`, and the few
types with their own MarshalJSON (Time, Quantity, IntOrString, ...) are converted by hand.
"""

from __future__ import annotations

import base64
import datetime
import functools
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nodeless.apiserver import errors

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "resources" / "protobuf_schema.json"
MAX_DEPTH = 100  # deeper than any real object; bounds recursion on hostile input

_META = "k8s.io/apimachinery/pkg/apis/meta/v1"
_RUNTIME = "k8s.io/apimachinery/pkg/runtime"
_TYPE_META = f"{_META}.TypeMeta"
_GO_ZERO_TIME = -62135596800  # time.Time{}.Unix(): what a zero Time may arrive as
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class _Malformed(Exception):
    """Raised deep in the reader; turned into one BadRequest at the entry point."""


# --- the wire: a reader over one bytes object, no copies until a value is taken ----------

def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes")


Chunk = tuple[int, Any]  # (wire type, int value | (start, end) of a length-delimited field)


def _fields(buf: bytes, start: int, end: int) -> dict[int, list[Chunk]]:
    """Every field of one message, by number, in wire order."""
    found: dict[int, list[Chunk]] = {}
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        value: Any
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
        elif wire == _BYTES:
            length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise _Malformed(f"field {number} runs past the end of its message")
            value = (pos, pos + length)
            pos += length
        elif wire == _FIXED64:
            if pos + 8 > end:
                raise _Malformed("truncated fixed64")
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == _FIXED32:
            if pos + 4 > end:
                raise _Malformed("truncated fixed32")
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise _Malformed(f"unsupported wire type {wire} for field {number}")
        found.setdefault(number, []).append((wire, value))
    return found


def _span(chunk: Chunk, what: str) -> tuple[int, int]:
    if chunk[0] != _BYTES:
        raise _Malformed(f"{what}: expected a length-delimited field, got wire type {chunk[0]}")
    span: tuple[int, int] = chunk[1]
    return span


def _text(buf: bytes, chunk: Chunk, what: str) -> str:
    start, end = _span(chunk, what)
    # Go strings carry any bytes; encoding/json writes invalid UTF-8 as U+FFFD.
    return buf[start:end].decode("utf-8", "replace")


# --- the schema ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Type:
    """A parsed type expression from the schema (see tools/extract_proto_schema.py)."""

    kind: str  # scalar name, "bytes", "ptr", "slice", "map", "struct"
    name: str = ""  # struct name, or scalar name
    elem: _Type | None = None
    key: _Type | None = None
    named: bool = False  # a named slice: a message {1: repeated items} unless inline-rep


_SCALARS = {"string", "bool", "int32", "int64", "uint32", "uint64", "float32", "float64"}


@functools.cache
def _parse_type(expr: str) -> _Type:
    if expr in _SCALARS:
        return _Type(expr, expr)
    if expr == "bytes":
        return _Type("bytes")
    if expr.startswith("*"):
        return _Type("ptr", elem=_parse_type(expr[1:]))
    if expr.startswith("[]"):
        return _Type("slice", elem=_parse_type(expr[2:]))
    if expr.startswith("~[]"):
        return _Type("slice", elem=_parse_type(expr[3:]), named=True)
    if expr.startswith("map["):
        key, _, value = expr[4:].partition("]")
        return _Type("map", key=_parse_type(key), elem=_parse_type(value))
    return _Type("struct", expr)


@dataclass(frozen=True, slots=True)
class _Field:
    json: str
    number: int
    omitempty: bool
    omitzero: bool
    inline: bool
    repeated: bool
    type: _Type


@dataclass(frozen=True, slots=True)
class _Struct:
    name: str
    fields: tuple[_Field, ...]
    own_keys: frozenset[str]  # JSON names at this depth: they hide inlined ones


class _Schema:
    """The extracted schema, compiled per struct on first use."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw_types: dict[str, list[list[Any]]] = raw["types"]
        self.source: dict[str, str] = raw.get("source", {})
        self.custom: frozenset[str] = frozenset(raw.get("custom", ()))
        self._compiled: dict[str, _Struct] = {}
        self.packages: dict[tuple[str, str], str] = {}
        for name in self.raw_types:
            package = name.rpartition(".")[0]
            parts = package.split("/")
            if package.startswith("k8s.io/api/") and len(parts) == 4:
                self.packages[(parts[2], parts[3])] = package

    def struct(self, name: str) -> _Struct:
        compiled = self._compiled.get(name)
        if compiled is None:
            fields = tuple(
                _Field(json_name, number, "o" in flags, "z" in flags, "i" in flags,
                       "r" in flags, _parse_type(expr))
                for json_name, number, flags, expr in self.raw_types.get(name, ()))
            own = frozenset(f.json for f in fields if not f.inline)
            compiled = self._compiled[name] = _Struct(name, fields, own)
        return compiled

    def is_kind(self, name: str) -> bool:
        """A top-level object (it embeds TypeMeta), not a part such as `Container`."""
        return any(f[2] == "i" and f[3] == _TYPE_META for f in self.raw_types.get(name, ()))


@functools.lru_cache(maxsize=1)
def schema() -> _Schema:
    return _Schema(orjson.loads(SCHEMA_PATH.read_bytes()))


# --- group/version/kind to Go type ------------------------------------------------------

_SPECIAL_GROUPS = {
    "meta.k8s.io": _META,
    "internal.apiserver.k8s.io": "k8s.io/api/apiserverinternal",
    "apiextensions.k8s.io": "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions",
}
# Option and status kinds every group version carries (metav1.AddToGroupVersion);
# client-go sends them with the target's apiVersion (or plain `v1`).
_META_KINDS = frozenset({
    "DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "GetOptions",
    "ListOptions", "Status", "WatchEvent", "Table", "PartialObjectMetadata",
    "PartialObjectMetadataList",
})


def go_type(api_version: str, kind: str) -> str | None:
    """The Go type behind a group/version/kind, e.g. `apps/v1` Deployment ->
    `k8s.io/api/apps/v1.Deployment`; None when we cannot decode it."""
    group, _, version = api_version.rpartition("/")
    s = schema()
    candidates = []
    if group in _SPECIAL_GROUPS:
        base = _SPECIAL_GROUPS[group]
        candidates.append(base if base == _META else f"{base}/{version}")
    elif group == "":
        candidates.append(s.packages.get(("core", version), ""))
    elif "." not in group or group.endswith(".k8s.io"):
        # Built-in groups are one label (apps, batch) or `<dir>[.more].k8s.io`.
        candidates.append(s.packages.get((group.split(".")[0], version), ""))
    if kind in _META_KINDS:
        candidates.append(_META)
    for package in candidates:
        name = f"{package}.{kind}"
        if package and s.is_kind(name):
            return name
    return None


# --- decoding ------------------------------------------------------------------------------

def decode_protobuf_body(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object in a Kubernetes protobuf request body.

    Malformed input is a 400; a kind we have no schema for is a 415, as kube answers
    protobuf for custom resources."""
    if not body.startswith(MAGIC):
        raise errors.BadRequest(
            "the request body is not Kubernetes protobuf: it must start with the "
            "4-byte prefix 'k8s\\x00'")
    buf = bytes(body)
    try:
        envelope = _fields(buf, len(MAGIC), len(buf))
        api_version = kind = ""
        if 1 in envelope:
            start, end = _span(envelope[1][-1], "typeMeta")
            meta = _fields(buf, start, end)
            api_version = _text(buf, meta[1][-1], "apiVersion") if 1 in meta else ""
            kind = _text(buf, meta[2][-1], "kind") if 2 in meta else ""
        encoding = _text(buf, envelope[3][-1], "contentEncoding") if 3 in envelope else ""
        raw = _span(envelope[2][-1], "raw") if 2 in envelope else (0, 0)
    except _Malformed as exc:
        raise errors.BadRequest(f"malformed protobuf envelope: {exc}") from None
    if not kind or not api_version:
        raise errors.BadRequest("Object 'Kind' or 'apiVersion' is missing in the protobuf "
                                "envelope")
    if encoding:
        raise errors.UnsupportedMediaType(
            f"protobuf content encoding {encoding!r} is not supported")
    name = go_type(api_version, kind)
    if name is None:
        raise errors.UnsupportedMediaType(
            f"no protobuf schema for {kind} in {api_version}; send "
            "application/json instead")
    try:
        obj = _Decoder(buf, schema()).struct(name, raw[0], raw[1], 0)
    except _Malformed as exc:
        raise errors.BadRequest(f"malformed protobuf {kind} ({api_version}): {exc}") from None
    except RecursionError:
        raise errors.BadRequest(f"protobuf {kind} is nested too deeply") from None
    # TypeMeta is not on the wire (no protobuf tag): the envelope carries it.
    return {"apiVersion": api_version, "kind": kind, **obj}


class _Decoder:
    """One request's decode: the buffer plus the schema, walked recursively."""

    def __init__(self, buf: bytes, s: _Schema) -> None:
        self.buf = buf
        self.schema = s

    def struct(self, name: str, start: int, end: int, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Malformed(f"nesting deeper than {MAX_DEPTH}")
        custom = _CUSTOM.get(name)
        if custom is not None:
            return custom(self, start, end)
        spec = self.schema.struct(name)
        found = _fields(self.buf, start, end) if end > start else {}
        out: dict[str, Any] = {}
        for f in spec.fields:
            chunks = found.get(f.number) if f.number else None
            if f.inline:
                span = self._joined(chunks, f.json) if chunks else (0, 0)
                inner = self.struct(f.type.name, span[0], span[1], depth + 1)
                for key, value in inner.items():
                    if key not in spec.own_keys and key not in out:
                        out[key] = value
                continue
            if f.json == "-":
                continue
            if chunks:
                value = self.value(f, chunks, depth)
                if f.omitempty and _empty(f.type, value):
                    continue
            elif f.type.kind == "struct":
                value = self.struct(f.type.name, 0, 0, depth + 1)
            elif f.omitempty:
                continue
            else:
                value = _zero(f.type)
            if f.omitzero and self.is_zero(f.type, value, depth):
                continue
            out[f.json] = value
        return out

    def is_zero(self, t: _Type, value: Any, depth: int) -> bool:
        """encoding/json's omitzero: the Go zero value (or IsZero(), which for the one
        user, metav1.Time, agrees: the zero time is what marshals as null)."""
        if t.kind == "struct":
            return bool(value == self.struct(t.name, 0, 0, depth + 1))
        return value is None or value == _zero(t)

    def _joined(self, chunks: list[Chunk], what: str) -> tuple[int, int]:
        """A message field sent more than once is merged, as if concatenated."""
        if len(chunks) == 1:
            return _span(chunks[0], what)
        spans = [_span(c, what) for c in chunks]
        start = len(self.buf)
        self.buf += b"".join(self.buf[s:e] for s, e in spans)
        return start, len(self.buf)

    def value(self, f: _Field, chunks: list[Chunk], depth: int) -> Any:
        t = f.type
        if t.kind == "ptr":
            assert t.elem is not None
            return self.single(t.elem, chunks, f.json, depth)
        if t.kind == "slice":
            assert t.elem is not None
            if t.named and not f.repeated:
                return self.items(t, self._joined(chunks, f.json), depth)
            return self.repeated(t.elem, chunks, f.json, depth)
        if t.kind == "map":
            return self.map(t, chunks, f.json, depth)
        return self.single(t, chunks, f.json, depth)

    def single(self, t: _Type, chunks: list[Chunk], what: str, depth: int) -> Any:
        if t.kind == "struct":
            span = self._joined(chunks, what)
            return self.struct(t.name, span[0], span[1], depth + 1)
        if t.kind == "slice":  # only as a map value: always the wrapped message
            return self.items(t, self._joined(chunks, what), depth)
        return self.scalar(t, chunks[-1], what)

    def items(self, t: _Type, span: tuple[int, int], depth: int) -> list[Any] | None:
        """A named slice's message: `{1: repeated items}`."""
        assert t.elem is not None
        inner = _fields(self.buf, span[0], span[1])
        return self.repeated(t.elem, inner[1], "items", depth) if 1 in inner else None

    def repeated(self, t: _Type, chunks: list[Chunk], what: str, depth: int) -> list[Any]:
        if t.kind == "struct":
            return [self.struct(t.name, *_span(c, what), depth + 1) for c in chunks]
        if t.kind in ("string", "bytes"):
            return [self.scalar(t, c, what) for c in chunks]
        if t.kind in ("ptr", "slice", "map"):
            raise _Malformed(f"{what}: unsupported repeated {t.kind}")
        values = []
        for chunk in chunks:
            if chunk[0] == _BYTES:  # packed
                values += [self.scalar(t, c, what) for c in self._packed(t, chunk)]
            else:
                values.append(self.scalar(t, chunk, what))
        return values

    def _packed(self, t: _Type, chunk: Chunk) -> list[Chunk]:
        start, end = chunk[1]
        size = {"float64": 8, "float32": 4}.get(t.kind)
        if size is None:
            out = []
            while start < end:
                value, start = _varint(self.buf, start, end)
                out.append((_VARINT, value))
            return out
        if (end - start) % size:
            raise _Malformed("packed fixed-width field of a ragged length")
        wire = _FIXED64 if size == 8 else _FIXED32
        return [(wire, self.buf[i:i + size]) for i in range(start, end, size)]

    def map(self, t: _Type, chunks: list[Chunk], what: str, depth: int) -> dict[str, Any]:
        assert t.key is not None and t.elem is not None
        out: dict[str, Any] = {}
        for chunk in chunks:
            entry = _fields(self.buf, *_span(chunk, what))
            key = self.scalar(t.key, entry[1][-1], what) if 1 in entry else _zero(t.key)
            if 2 in entry:
                value = self.single(t.elem, entry[2], what, depth)
            elif t.elem.kind == "struct":
                value = self.struct(t.elem.name, 0, 0, depth + 1)
            else:
                value = _zero(t.elem) if t.elem.kind in _SCALARS else None
            out[key if isinstance(key, str) else _json_key(key)] = value
        return out

    def scalar(self, t: _Type, chunk: Chunk, what: str) -> Any:
        wire, value = chunk
        kind = t.kind
        if kind == "string":
            return _text(self.buf, chunk, what)
        if kind == "bytes":
            start, end = _span(chunk, what)
            return base64.b64encode(self.buf[start:end]).decode()
        if kind in ("float64", "float32"):
            want = _FIXED64 if kind == "float64" else _FIXED32
            if wire != want:
                raise _Malformed(f"{what}: expected a {kind}, got wire type {wire}")
            number = struct.unpack("<d" if kind == "float64" else "<f", value)[0]
            if not math.isfinite(number):
                raise _Malformed(f"{what}: {number} is not representable in JSON")
            return int(number) if number.is_integer() and abs(number) < 1e21 else number
        if wire != _VARINT:
            raise _Malformed(f"{what}: expected a varint, got wire type {wire}")
        if kind == "bool":
            return value != 0
        if kind == "int32":
            value &= 0xFFFFFFFF
            return value - (1 << 32) if value >= 1 << 31 else value
        if kind == "int64":
            value &= 0xFFFFFFFFFFFFFFFF
            return value - (1 << 64) if value >= 1 << 63 else value
        if kind == "uint32":
            return value & 0xFFFFFFFF
        return value & 0xFFFFFFFFFFFFFFFF


def _empty(t: _Type, value: Any) -> bool:
    """encoding/json's omitempty: false, 0, "", and empty slices, maps and nil pointers."""
    if t.kind == "ptr":
        return value is None
    if t.kind == "struct":
        return False  # omitempty never omits a struct, even a custom-marshalled one
    return value is None or value in (False, 0, "") or value == [] or value == {}


def _zero(t: _Type) -> Any:
    if t.kind == "string":
        return ""
    if t.kind == "bool":
        return False
    if t.kind in _SCALARS:
        return 0
    return None  # nil []byte, slice, map and pointer all encode as null


def _json_key(key: Any) -> str:
    return "true" if key is True else "false" if key is False else str(key)


# --- the types with their own MarshalJSON --------------------------------------------------

def _timestamp(d: _Decoder, start: int, end: int, fmt: str) -> str | None:
    """metav1.Time/MicroTime: Timestamp{1: seconds, 2: nanos}; empty is the zero time."""
    if start == end:
        return None
    found = _fields(d.buf, start, end)
    seconds = nanos = 0
    if 1 in found:
        seconds = d.scalar(_Type("int64", "int64"), found[1][-1], "seconds")
    if 2 in found:
        nanos = d.scalar(_Type("int32", "int32"), found[2][-1], "nanos")
    seconds += nanos // 1_000_000_000
    nanos %= 1_000_000_000
    if seconds == _GO_ZERO_TIME and nanos == 0:
        return None  # time.Time{}: IsZero, so MarshalJSON writes null
    try:
        moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(
            seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise _Malformed(f"timestamp {seconds}s is outside years 1-9999") from None
    text = moment.replace(microsecond=0).isoformat()  # RFC 3339 in UTC, 4-digit year
    if fmt == "micro":
        text += f".{nanos // 1000:06d}"
    return text + "Z"


def _duration(d: _Decoder, start: int, end: int) -> str:
    found = _fields(d.buf, start, end) if end > start else {}
    nanos = d.scalar(_Type("int64", "int64"), found[1][-1], "duration") if 1 in found else 0
    return go_duration(nanos)


def go_duration(nanos: int) -> str:
    """time.Duration.String(): `1h2m3.5s`, `1.5ms`, `0s`."""
    if nanos == 0:
        return "0s"
    sign, u = ("-", -nanos) if nanos < 0 else ("", nanos)

    def frac(value: int, digits: int) -> str:
        whole, part = divmod(value, 10 ** digits)
        tail = f"{part:0{digits}d}".rstrip("0")
        return f"{whole}.{tail}" if tail else str(whole)

    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{frac(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{frac(u, 6)}ms"
    seconds, part = divmod(u, 1_000_000_000)
    minutes, seconds = divmod(seconds, 60)
    text = frac(seconds * 1_000_000_000 + part, 9) + "s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _quantity(d: _Decoder, start: int, end: int) -> str:
    """resource.Quantity is `{1: string}` holding its canonical form already."""
    found = _fields(d.buf, start, end) if end > start else {}
    text = _text(d.buf, found[1][-1], "quantity") if 1 in found else ""
    return text or "0"


def _int_or_string(d: _Decoder, start: int, end: int) -> int | str:
    found = _fields(d.buf, start, end) if end > start else {}
    kind = d.scalar(_Type("int64", "int64"), found[1][-1], "type") if 1 in found else 0
    if kind == 0:
        return d.scalar(_Type("int32", "int32"), found[2][-1], "intVal") if 2 in found else 0
    if kind == 1:
        return _text(d.buf, found[3][-1], "strVal") if 3 in found else ""
    raise _Malformed(f"impossible IntOrString.Type {kind}")


def _raw_json(number: int) -> Callable[[_Decoder, int, int], Any]:
    """RawExtension, FieldsV1, Unknown: field `number` holds JSON, written verbatim."""

    def decode(d: _Decoder, start: int, end: int) -> Any:
        found = _fields(d.buf, start, end) if end > start else {}
        if number not in found:
            return None
        s, e = _span(found[number][-1], "raw")
        try:
            return orjson.loads(d.buf[s:e])
        except orjson.JSONDecodeError:
            raise _Malformed("an embedded raw object is not JSON") from None

    return decode


_CUSTOM: dict[str, Callable[[_Decoder, int, int], Any]] = {
    f"{_META}.Time": lambda d, s, e: _timestamp(d, s, e, "seconds"),
    f"{_META}.MicroTime": lambda d, s, e: _timestamp(d, s, e, "micro"),
    f"{_META}.Duration": _duration,
    f"{_META}.FieldsV1": _raw_json(1),
    f"{_RUNTIME}.RawExtension": _raw_json(1),
    f"{_RUNTIME}.Unknown": _raw_json(2),
    "k8s.io/apimachinery/pkg/api/resource.Quantity": _quantity,
    "k8s.io/apimachinery/pkg/util/intstr.IntOrString": _int_or_string,
}


def unhandled_custom_types() -> set[str]:
    """Types with their own MarshalJSON that this module does not convert (should be none)."""
    return set(schema().custom) - set(_CUSTOM)
