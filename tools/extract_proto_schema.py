"""Extract the Kubernetes protobuf schema from the Go type metadata inside kubectl.

Why: kubectl's typed commands POST `application/vnd.kubernetes.protobuf` bodies, and
there are no current `.proto` files or descriptors anywhere on the machine. What the
kubectl binary does carry is Go's reflect metadata for every API struct it marshals:
type names, package paths, field names, field types and the struct tags that
go-to-protobuf generated the wire format from (`protobuf:"bytes,3,rep,name=x"`).
That is all a decoder needs, so we read it out of the binary instead of shipping protos.

How: parse the ELF section headers; read the Go version from `.go.buildinfo`; locate
`runtime.firstmoduledata` (the `.go.module` section, or a scan of the data sections
for a word pointing at `.gopclntab`) to learn the base of the type region and the
`typelinks`/`itablinks` tables; walk the `abi.Type` graph from those roots (element,
key, field and pointer-to-this types) and keep every named struct of the API packages.
Layouts follow `internal/abi` for 64-bit little-endian Go 1.22+ (swiss maps), in a
static non-PIE executable, which is how kubectl is released.

Regenerate (after a kubectl upgrade), from the repository root:

    .venv/bin/python tools/extract_proto_schema.py [--kubectl PATH] [--out PATH]

Output (`nodeless/apiserver/resources/protobuf_schema.json`) maps
`"<package path>.<Type>"` to its fields in declaration order, each
`[json name ("-" = not in JSON), protobuf number (0 = not on the wire), flags, type]`;
flags has `o` (omitempty), `z` (omitzero), `i` (embedded, inlined into the parent's
JSON) and `r` (the tag says `rep`); the type is one of `string`, `bool`, `int32`,
`int64`, `uint32`, `uint64`, `float32`, `float64`, `bytes`, `*T`, `[]T`, `~[]T` (a
named slice: a message `{1: items}` unless the tag says `rep`), `map[K]V`, or a
struct's full name. `custom` lists the types with their own MarshalJSON,
which the decoder must convert by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
DEFAULT_OUT = ROOT / "nodeless" / "apiserver" / "resources" / "protobuf_schema.json"

PACKAGE_PREFIXES = ("k8s.io/api/",)
PACKAGES = (
    "k8s.io/apimachinery/pkg/apis/meta/v1",
    "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1",
    "k8s.io/apimachinery/pkg/util/intstr",
    "k8s.io/apimachinery/pkg/api/resource",
    "k8s.io/apimachinery/pkg/runtime",
)

# abi.Kind values we care about (internal/abi/type.go).
BOOL, INT, INT8, INT16, INT32, INT64 = 1, 2, 3, 4, 5, 6
UINT, UINT8, UINT16, UINT32, UINT64, UINTPTR = 7, 8, 9, 10, 11, 12
FLOAT32, FLOAT64 = 13, 14
ARRAY, CHAN, FUNC, INTERFACE, MAP, POINTER, SLICE, STRING, STRUCT = (
    17, 18, 19, 20, 21, 22, 23, 24, 25)
SCALARS = {
    BOOL: "bool", INT: "int64", INT8: "int32", INT16: "int32", INT32: "int32",
    INT64: "int64", UINT: "uint64", UINT8: "uint32", UINT16: "uint32", UINT32: "uint32",
    UINT64: "uint64", UINTPTR: "uint64", FLOAT32: "float32", FLOAT64: "float64",
    STRING: "string",
}

TFLAG_UNCOMMON, TFLAG_EXTRA_STAR, TFLAG_NAMED = 1, 2, 4
TYPE_SIZE = 48  # abi.Type on 64-bit
UNCOMMON_AFTER = {STRUCT: TYPE_SIZE + 8 + 24, POINTER: TYPE_SIZE + 8, SLICE: TYPE_SIZE + 8,
                  ARRAY: TYPE_SIZE + 24, CHAN: TYPE_SIZE + 16, FUNC: TYPE_SIZE + 8,
                  INTERFACE: TYPE_SIZE + 8 + 24, MAP: TYPE_SIZE + 72}


class ExtractError(Exception):
    """The binary is not laid out the way this extractor understands."""


class Elf:
    """Just enough ELF64 to map virtual addresses of a static Go binary to file bytes."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ExtractError("not a 64-bit little-endian ELF file")
        if struct.unpack_from("<H", data, 0x10)[0] != 2:  # ET_EXEC
            # A PIE's pointers in .rodata are relocations, not addresses; release
            # kubectl binaries are static executables.
            raise ExtractError("not a non-PIE executable: pointers would need relocating")
        self.data = data
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        entsize, count, strndx = struct.unpack_from("<HHH", data, 0x3A)
        headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * entsize)
                   for i in range(count)]
        names_at = headers[strndx][4]
        self.sections: dict[str, tuple[int, int, int]] = {}
        for name, kind, _flags, addr, offset, size in headers:
            end = data.index(b"\0", names_at + name)
            label = data[names_at + name:end].decode()
            if kind != 8:  # SHT_NOBITS has no file bytes
                self.sections[label] = (addr, offset, size)
        self._ranges = sorted(v for v in self.sections.values() if v[0])

    def section(self, name: str) -> tuple[int, int, int]:
        try:
            return self.sections[name]
        except KeyError:
            raise ExtractError(f"no {name} section (is this a Go binary?)") from None

    def offset(self, addr: int) -> int:
        for start, offset, size in self._ranges:
            if start <= addr < start + size:
                return offset + addr - start
        raise ExtractError(f"address {addr:#x} is outside every loaded section")

    def u64(self, addr: int) -> int:
        return struct.unpack_from("<Q", self.data, self.offset(addr))[0]

    def i32(self, addr: int) -> int:
        return struct.unpack_from("<i", self.data, self.offset(addr))[0]

    def u32(self, addr: int) -> int:
        return struct.unpack_from("<I", self.data, self.offset(addr))[0]

    def u16(self, addr: int) -> int:
        return struct.unpack_from("<H", self.data, self.offset(addr))[0]

    def byte(self, addr: int) -> int:
        return self.data[self.offset(addr)]


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def buildinfo(elf: Elf) -> tuple[str, str]:
    """The Go version and module info string from `.go.buildinfo` (inline format, 1.18+)."""
    _, offset, size = elf.section(".go.buildinfo")
    blob = elf.data[offset:offset + size]
    if not blob.startswith(b"\xff Go buildinf:") or not blob[15] & 2:
        raise ExtractError("unsupported .go.buildinfo header (Go older than 1.18?)")
    version_len, pos = _uvarint(blob, 32)
    version = blob[pos:pos + version_len].decode()
    info_len, pos = _uvarint(blob, pos + version_len)
    info = blob[pos:pos + info_len]
    return version, info[16:-16].decode(errors="replace") if len(info) > 32 else ""


@dataclass
class Module:
    """What we need from runtime.moduledata: the type base and the root type tables."""

    types: int
    roots: list[int]


def moduledata(elf: Elf) -> Module:
    """Find firstmoduledata by its typelinks slice, which points at `.typelink`."""
    typelink_addr, typelink_off, typelink_size = elf.section(".typelink")
    itab_addr, itab_off, itab_size = elf.sections.get(".itablink", (0, 0, 0))
    rodata_addr, _, rodata_size = elf.section(".rodata")
    pclntab_addr = elf.section(".gopclntab")[0]
    candidates = [s for s in (".go.module", ".noptrdata", ".data") if s in elf.sections]
    for name in candidates:
        _, offset, size = elf.sections[name]
        words = struct.unpack_from(f"<{size // 8}Q", elf.data, offset)
        for i, word in enumerate(words):
            if word != pclntab_addr:
                continue  # moduledata starts with pcHeader -> .gopclntab
            window = words[i:i + 80]
            try:
                at = next(j for j in range(len(window) - 2)
                          if window[j] == typelink_addr and window[j + 1] == window[j + 2])
            except StopIteration:
                continue
            count = window[at + 1]
            if count * 4 > typelink_size:
                continue
            # `types` is the first word after the section bounds that is the start of
            # .rodata (where the linker puts runtime.types), followed by `etypes`.
            types = next((window[j] for j in range(at) if window[j] == rodata_addr
                          and rodata_addr < window[j + 1] <= rodata_addr + rodata_size),
                         None)
            if types is None:
                continue
            offsets = struct.unpack_from(f"<{count}i", elf.data, typelink_off)
            roots = [types + o for o in offsets]
            if itab_addr:
                itabs = struct.unpack_from(f"<{itab_size // 8}Q", elf.data, itab_off)
                roots += [elf.u64(itab + 8) for itab in itabs if itab]  # itab._type
            return Module(types, roots)
    raise ExtractError("runtime.firstmoduledata not found")


@dataclass
class GoType:
    addr: int
    kind: int
    named: bool
    name: str  # package-qualified short name, e.g. "v1.Deployment"
    pkgpath: str = ""
    elem: int = 0
    key: int = 0
    ptr_to_this: int = 0
    fields: list[tuple[str, str, int, bool]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        short = self.name.rsplit(".", 1)[-1]
        return f"{self.pkgpath}.{short}" if self.pkgpath else self.name


class TypeReader:
    """Decodes `abi.Type` and friends at virtual addresses, memoised."""

    def __init__(self, elf: Elf, module: Module) -> None:
        self.elf = elf
        self.base = module.types
        self.cache: dict[int, GoType] = {}

    def name(self, addr: int) -> tuple[int, str, str]:
        """An `abi.Name`: flag bits, the name, and the tag (empty when absent)."""
        data = self.elf.data
        pos = self.elf.offset(addr)
        flags = data[pos]
        length, pos = _uvarint(data, pos + 1)
        text = data[pos:pos + length].decode()
        tag = ""
        if flags & 2:
            tag_len, pos = _uvarint(data, pos + length)
            tag = data[pos:pos + tag_len].decode()
        return flags, text, tag

    def read(self, addr: int) -> GoType:
        if addr in self.cache:
            return self.cache[addr]
        elf = self.elf
        pos = elf.offset(addr)
        tflag, kind = elf.data[pos + 20], elf.data[pos + 23] & 0x1F
        str_off, ptr_to_this = struct.unpack_from("<ii", elf.data, pos + 40)
        name = self.name(self.base + str_off)[1]
        if tflag & TFLAG_EXTRA_STAR:
            name = name[1:]
        t = GoType(addr, kind, bool(tflag & TFLAG_NAMED), name,
                   ptr_to_this=self.base + ptr_to_this if ptr_to_this > 0 else 0)
        if kind in (ARRAY, CHAN, POINTER, SLICE):
            t.elem = elf.u64(addr + TYPE_SIZE)
        elif kind == MAP:
            t.key, t.elem = elf.u64(addr + TYPE_SIZE), elf.u64(addr + TYPE_SIZE + 8)
        elif kind == STRUCT:
            fields_at, count = elf.u64(addr + TYPE_SIZE + 8), elf.u64(addr + TYPE_SIZE + 16)
            for i in range(count):
                entry = fields_at + 24 * i
                flags, fname, tag = self.name(elf.u64(entry))
                t.fields.append((fname, tag, elf.u64(entry + 8), bool(flags & 8)))
        if tflag & TFLAG_UNCOMMON and kind in UNCOMMON_AFTER:
            uncommon = addr + UNCOMMON_AFTER[kind]
            pkg_off = elf.i32(uncommon)
            if pkg_off:
                t.pkgpath = self.name(self.base + pkg_off)[1]
            mcount, moff = elf.u16(uncommon + 4), elf.u32(uncommon + 8)
            for i in range(mcount):
                t.methods.append(self.name(self.base + elf.i32(uncommon + moff + 16 * i))[1])
        self.cache[addr] = t
        return t

    def walk(self, roots: list[int]) -> dict[int, GoType]:
        """Every type reachable from `roots` through elem/key/field/pointer-to links."""
        stack = list(roots)
        while stack:
            addr = stack.pop()
            if not addr or addr in self.cache:
                continue
            t = self.read(addr)
            stack += [t.elem, t.key, t.ptr_to_this] + [f[2] for f in t.fields]
        return self.cache


_TAG = re.compile(r'([^\s:"]+):"((?:[^"\\]|\\.)*)"')


def tag_get(tag: str, key: str) -> str | None:
    """reflect.StructTag.Get, enough for the tags generators write."""
    for k, v in _TAG.findall(tag):
        if k == key:
            return json.loads(f'"{v}"')
    return None


def wanted(pkgpath: str) -> bool:
    return pkgpath.startswith(PACKAGE_PREFIXES) or pkgpath in PACKAGES


class Renderer:
    """Turns Go types into the compact schema notation described in the module doc."""

    def __init__(self, types: dict[int, GoType]) -> None:
        self.types = types
        self.structs: dict[str, GoType] = {}
        self.problems: list[str] = []

    def ref(self, addr: int, where: str) -> str:
        t = self.types[addr]
        if t.kind in SCALARS:
            return SCALARS[t.kind]
        if t.kind == STRUCT:
            if not t.named:
                self.problems.append(f"{where}: anonymous struct")
            self.structs.setdefault(t.full_name, t)
            return t.full_name
        if t.kind == POINTER:
            return "*" + self.ref(t.elem, where)
        if t.kind == SLICE:
            if self.types[t.elem].kind == UINT8:
                return "bytes"
            return ("~[]" if t.named else "[]") + self.ref(t.elem, where)
        if t.kind == MAP:
            return f"map[{self.ref(t.key, where)}]{self.ref(t.elem, where)}"
        self.problems.append(f"{where}: unsupported kind {t.kind} ({t.name})")
        return "?"

    def fields(self, t: GoType) -> list[list[object]]:
        result: list[list[object]] = []
        for name, tag, typ, embedded in t.fields:
            if not name[:1].isupper():
                continue  # unexported: invisible to encoding/json and to protobuf
            json_tag = tag_get(tag, "json")
            json_name, _, options = (json_tag or "").partition(",")
            proto = tag_get(tag, "protobuf")
            number, flags = 0, ""
            parts = (proto or "").split(",")
            if len(parts) >= 3 and parts[1].isdigit():  # `protobuf:"-"` is not on the wire
                number = int(parts[1])
                flags += "r" if "rep" in parts[2:] else ""
            if json_name == "-" and not options and not number:
                continue  # neither JSON nor protobuf; a `-` field on the wire is kept
            if "omitempty" in options.split(","):
                flags += "o"
            if "omitzero" in options.split(","):  # Go 1.24: omitted when zero / IsZero()
                flags += "z"
            inline = embedded and not json_name and self.types[typ].kind == STRUCT
            if inline:
                flags += "i"
            result.append([json_name or ("" if inline else name), number, flags,
                           self.ref(typ, f"{t.full_name}.{name}")])
        return result


def extract(kubectl: Path) -> dict[str, object]:
    data = kubectl.read_bytes()
    elf = Elf(data)
    go_version, modinfo = buildinfo(elf)
    match = re.match(r"go1\.(\d+)", go_version)
    if not match or int(match.group(1)) < 22:
        raise ExtractError(f"{go_version}: layouts assume Go 1.22+ (abi.Type, swiss maps)")
    module = moduledata(elf)
    reader = TypeReader(elf, module)
    types = reader.walk(module.roots)

    renderer = Renderer(types)
    chosen = {}
    for t in types.values():
        if t.kind == STRUCT and t.named and wanted(t.pkgpath):
            has_proto = any("protobuf:" in tag for _, tag, _, _ in t.fields)
            if has_proto or t.full_name.endswith((".Time", ".MicroTime", ".Quantity")):
                chosen[t.full_name] = t
    out: dict[str, list[list[object]]] = {}
    pending = sorted(chosen)
    renderer.structs.update(chosen)
    while pending:
        name = pending.pop()
        if name in out:
            continue
        t = renderer.structs[name]
        if not wanted(t.pkgpath):
            continue  # e.g. time.Time inside metav1.Time: its owner is decoded by hand
        out[name] = renderer.fields(t)
        pending += [n for n in renderer.structs if n not in out and n not in pending]

    custom = set()
    for t in types.values():
        target = types.get(t.elem) if t.kind == POINTER else t
        if target and target.kind == STRUCT and target.full_name in out \
                and "MarshalJSON" in t.methods:
            custom.add(target.full_name)
    main_module = re.search(r"^mod\t(\S+)\t(\S+)", modinfo, re.M)
    if renderer.problems:
        raise ExtractError("; ".join(sorted(set(renderer.problems))))
    return {
        "source": {
            "binary_sha256": hashlib.sha256(data).hexdigest(),
            "go": go_version,
            "module": " ".join(main_module.groups()) if main_module else "?",
        },
        "custom": sorted(custom),
        "types": {k: out[k] for k in sorted(out)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubectl", type=Path, default=DEFAULT_KUBECTL)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        schema = extract(args.kubectl)
    except (ExtractError, OSError) as exc:
        print(f"extract_proto_schema: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(schema, separators=(",", ":"))
    # One type per line: compact, yet a regeneration diffs readably.
    text = text.replace('],"k8s.io/', '],\n"k8s.io/').replace('"types":{', '"types":{\n')
    args.out.write_text(text + "\n")
    types = schema["types"]
    assert isinstance(types, dict)
    print(f"{args.out}: {len(types)} types, {len(text)} bytes, {schema['source']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
