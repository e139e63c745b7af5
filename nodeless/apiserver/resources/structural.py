"""One schema walker for every object the API server decodes.

kube-apiserver decodes a built-in object into a Go struct: fields the struct lacks are
dropped (and reported, or refused under `fieldValidation=Strict`), a value of the
wrong JSON type fails the request with a 400 naming the Go field. A custom resource
goes through its structural schema instead: unknown fields are pruned the same way,
nulls of non-nullable fields are dropped, `default`s are filled in, and the schema's
value rules (enum, required, bounds, pattern, lengths) give a 422 with field paths.

Both walk a `Node` tree compiled once per schema (per definition name for built-ins,
per openAPIV3Schema object for custom resources), so checking a pod is a tight loop
over its fields. Field paths are spelled as kube spells them in messages:
`spec.containers[0].foo`, no leading dot.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from nodeless.apiserver import errors
from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources import schema

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


# --- compiled schema -------------------------------------------------------------------------

class Node:
    """A schema reduced to what checking needs; children are Nodes too."""

    __slots__ = (
        "types", "nullable", "props", "additional", "items", "preserve", "embedded",
        "struct", "go_type", "schema", "required", "defaults", "has_rules",
    )

    def __init__(self) -> None:
        self.types: frozenset[str] = frozenset()
        """Allowed JSON types ("integer" is also accepted where "number" is); empty: any."""
        self.nullable = False
        self.props: dict[str, Node] | None = None
        self.additional: Node | None = None
        self.items: Node | None = None
        self.preserve = False
        self.embedded = False
        self.struct = ""
        """Go struct name of a built-in definition (`PodSpec`), for decoding messages."""
        self.go_type = ""
        """Go type the field decodes into (`int32`, `[]v1.Container`), for messages."""
        self.schema: dict[str, Any] = {}
        self.required: tuple[str, ...] = ()
        self.defaults: tuple[tuple[str, Any], ...] = ()
        self.has_rules = False


_RULE_KEYS = frozenset((
    "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems",
    "maxItems", "minProperties", "maxProperties", "uniqueItems",
))


def _schema_types(s: dict[str, Any]) -> tuple[frozenset[str], bool]:
    t = s.get("type")
    nullable = bool(s.get("nullable"))
    if isinstance(t, list):
        nullable = nullable or "null" in t
        types = frozenset(t) - {"null"}
    elif isinstance(t, str):
        types = frozenset((t,))
    else:
        types = frozenset()
    if not types and s.get("oneOf"):
        for alternative in s["oneOf"]:
            sub, sub_null = _schema_types(alternative)
            types |= sub
            nullable = nullable or sub_null
    if s.get("x-kubernetes-int-or-string"):
        types = frozenset(("integer", "string"))
    return types, nullable


def _go_package(name: str) -> str:
    package, _, kind = name.rpartition(".")
    return f"{package.rsplit('.', 1)[-1]}.{kind}"


class _Compiler:
    """Builds Nodes; built-in definitions are shared so recursive types terminate."""

    def __init__(self) -> None:
        self.by_name: dict[str, Node] = {}
        self.lock = threading.RLock()

    def definition(self, name: str) -> Node:
        node = self.by_name.get(name)
        if node is not None:
            return node
        with self.lock:
            node = self.by_name.get(name)
            if node is None:
                node = Node()
                self.by_name[name] = node  # before filling it: definitions recurse
                self._fill(node, schema.definitions()[name], name)
            return node

    def inline(self, s: dict[str, Any]) -> Node:
        ref = s.get("$ref")
        if isinstance(ref, str) and ref.startswith(schema.REF_PREFIX):
            return self.definition(ref[len(schema.REF_PREFIX):])
        node = Node()
        self._fill(node, s, None)
        return node

    def _fill(self, node: Node, s: dict[str, Any], name: str | None) -> None:
        node.schema = s
        node.types, node.nullable = _schema_types(s)
        node.preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
        node.embedded = bool(s.get("x-kubernetes-embedded-resource"))
        node.has_rules = any(k in s for k in _RULE_KEYS)
        if name is not None:
            node.struct = name.rsplit(".", 1)[-1]
        props = s.get("properties")
        if isinstance(props, dict):
            node.props = {k: self.inline(v) for k, v in props.items()}
            node.defaults = tuple(
                (k, v["default"]) for k, v in props.items() if isinstance(v, dict) and
                "default" in v
            )
            if not node.types:
                node.types = frozenset(("object",))
        extra = s.get("additionalProperties")
        if isinstance(extra, dict):
            node.additional = self.inline(extra)
        elif extra is True:
            node.preserve = True
        if isinstance(s.get("items"), dict):
            node.items = self.inline(s["items"])
        node.required = tuple(s.get("required", ()))
        if node.types == {"object"} and node.props is None and node.additional is None:
            node.preserve = True  # RawExtension, Patch, free-form objects
        node.go_type = self._go_type(node, s, name)

    def _go_type(self, node: Node, s: dict[str, Any], name: str | None) -> str:
        if name == _INT_OR_STRING:
            return "intstr.IntOrString"
        if name == _QUANTITY:
            return "resource.Quantity"
        if name is not None and node.props is not None:
            return _go_package(name)
        if name == _RAW_EXTENSION:
            return "runtime.RawExtension"
        if "array" in node.types:
            return "[]" + (node.items.go_type if node.items else "interface {}")
        if node.additional is not None:
            return "map[string]" + node.additional.go_type
        if "integer" in node.types and len(node.types) == 1:
            return {"int32": "int32", "int64": "int64"}.get(s.get("format", ""), "int")
        if node.types == {"number"}:
            return "float64"
        if node.types == {"boolean"}:
            return "bool"
        if node.types == {"string"}:
            return "[]uint8" if s.get("format") == "byte" else "string"
        return "map[string]interface {}" if node.types == {"object"} else "interface {}"


_COMPILER = _Compiler()
_CRD_NODES: dict[int, tuple[dict[str, Any], Node]] = {}
_CRD_LOCK = threading.Lock()


def _crd_root(crd_schema: dict[str, Any]) -> Node:
    """The compiled node of a CRD schema, cached on the identity of the schema dict."""
    entry = _CRD_NODES.get(id(crd_schema))
    if entry is not None and entry[0] is crd_schema:
        return entry[1]
    node = _COMPILER.inline(crd_schema)
    with _CRD_LOCK:
        if len(_CRD_NODES) > 512:
            _CRD_NODES.clear()
        _CRD_NODES[id(crd_schema)] = (crd_schema, node)
    return node


def builtin_node(schema_ref: str) -> Node:
    return _COMPILER.definition(schema_ref)


# --- values ------------------------------------------------------------------------------

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string",
               list: "array", dict: "object", type(None): "null"}
"""The JSON type of each exact Python type decoding yields: one lookup for the walk that
asks it of every field of every write."""


def _json_type(value: Any) -> str:
    found = _JSON_TYPES.get(type(value))
    if found is not None:
        return found
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_ok(value: Any, types: frozenset[str]) -> bool:
    kind = _json_type(value)
    if kind in types:
        return True
    if kind == "integer":
        return "number" in types
    if kind == "number":
        return "integer" in types and float(value).is_integer()
    return False


_GO_VALUE = {"boolean": "bool", "integer": "number", "number": "number", "string": "string",
             "array": "array", "object": "object"}


_MAP_KEY = "\x00"
"""Marks a path segment that is a map key: kept in field paths, not in Go field names."""


def _join(path: list[str]) -> str:
    out = ""
    for segment in path:
        if segment.startswith("["):
            out += segment
        else:
            segment = segment.removeprefix(_MAP_KEY)
            out = f"{out}.{segment}" if out else segment
    return out


# --- pruning and decoding (check) ----------------------------------------------------------

@dataclass
class CheckResult:
    """What decoding found besides hard errors: the fields it dropped."""

    unknown_fields: list[str] = field(default_factory=list)
    """Paths of dropped fields as kube names them: `spec.foo`, `spec.containers[0].x`."""
    kind: str = ""
    version: str = ""

    @property
    def warnings(self) -> list[str]:
        return [f'unknown field "{p}"' for p in self.unknown_fields]


class _DecodeError(Exception):
    def __init__(self, value: Any, node: Node, path: list[str], struct: str,
                 struct_path: list[str]) -> None:
        kind = _GO_VALUE.get(_json_type(value), "value")
        if kind == "number" and isinstance(value, float) and "integer" in node.types:
            kind = f"number {value!r}"
        fields = ".".join(s for s in struct_path if s[:1] not in ("[", _MAP_KEY))
        super().__init__(
            f"json: cannot unmarshal {kind} into Go struct field {struct}.{fields} "
            f"of type {node.go_type or 'interface {}'}"
        )
        self.path = _join(path)


class _Walker:
    """One check: walks the object, prunes in place, stops at the first type error."""

    __slots__ = ("unknown", "drop_nulls", "crd")

    def __init__(self, *, drop_nulls: bool, crd: bool) -> None:
        self.unknown: list[str] = []
        self.drop_nulls = drop_nulls
        self.crd = crd

    def walk(self, value: Any, node: Node, path: list[str], struct: str) -> None:
        if node.types and not _type_ok(value, node.types):
            if self.crd:
                return  # validation reports it with the schema's wording
            raise _DecodeError(value, node, path, struct, path)
        if isinstance(value, dict):
            if node.props is not None:
                self._object(value, node, path)
            elif node.additional is not None:
                for key, child in value.items():
                    if child is None:
                        continue
                    path.append(_MAP_KEY + key)
                    self.walk(child, node.additional, path, struct)
                    path.pop()
            elif node.embedded:
                self._embedded_meta(value, path)
        elif isinstance(value, list) and node.items is not None:
            for index, child in enumerate(value):
                if child is None:
                    continue
                path.append(f"[{index}]")
                self.walk(child, node.items, path, struct)
                path.pop()

    def _object(self, value: dict[str, Any], node: Node, path: list[str]) -> None:
        props = node.props
        assert props is not None
        struct = node.struct
        dropped = None
        for key, child in value.items():
            sub = props.get(key)
            if sub is None:
                if node.preserve or (node.embedded and key in ("apiVersion", "kind")):
                    continue
                if node.embedded and key == "metadata":
                    continue
                path.append(key)
                self.unknown.append(_join(path))
                path.pop()
                dropped = dropped or []
                dropped.append(key)
                continue
            if child is None:
                if self.drop_nulls or not sub.nullable:
                    dropped = dropped or []
                    dropped.append(key)
                continue
            if (sub.props is None and sub.items is None and sub.additional is None
                    and not sub.embedded):
                if sub.types and not _type_ok(child, sub.types):
                    if self.crd:
                        continue
                    path.append(key)
                    raise _DecodeError(child, sub, path, struct or "", path)
                continue
            path.append(key)
            self.walk(child, sub, path, struct)
            path.pop()
        if dropped:
            for key in dropped:
                del value[key]
        if node.embedded and isinstance(value.get("metadata"), dict):
            self._embedded_meta(value, path)

    def _embedded_meta(self, value: dict[str, Any], path: list[str]) -> None:
        meta = value.get("metadata")
        if isinstance(meta, dict):
            path.append("metadata")
            self.walk(meta, builtin_node(OBJECT_META), path, "ObjectMeta")
            path.pop()


def _api_version_kind(obj: dict[str, Any], node: Node | None) -> tuple[str, str]:
    if node is not None:
        gvks = node.schema.get("x-kubernetes-group-version-kind") or ()
        if len(gvks) == 1:
            return gvks[0]["kind"], gvks[0]["version"]
    api_version = obj.get("apiVersion")
    version = api_version.rpartition("/")[2] if isinstance(api_version, str) else ""
    kind = obj.get("kind")
    return (kind if isinstance(kind, str) else ""), version


def check(
    obj: dict[str, Any], *, schema_ref: str | None = None,
    crd_schema: dict[str, Any] | None = None,
) -> CheckResult:
    """Prune unknown fields of `obj` in place and report them; 400 on a type error.

    Built-in types (by `schema_ref`) decode as kube's Go structs would; custom
    resources (by `crd_schema`) are pruned by their structural schema, their
    `metadata` to ObjectMeta's fields. Value rules of custom resources are checked
    later by `validate_crd`, after `apply_crd_defaults`.
    """
    if crd_schema is not None:
        root = _crd_root(crd_schema)
        walker = _Walker(drop_nulls=False, crd=True)
        result = CheckResult(walker.unknown, *_api_version_kind(obj, None))
        meta = obj.get("metadata")
        path: list[str] = []
        try:
            if isinstance(meta, dict):
                # metadata decodes into ObjectMeta as for any built-in type
                meta_walker = _Walker(drop_nulls=True, crd=False)
                meta_walker.unknown = walker.unknown
                path.append("metadata")
                meta_walker.walk(meta, builtin_node(OBJECT_META), path, "ObjectMeta")
                path.pop()
            rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            if root.props is not None or root.preserve:
                _prune_root(walker, obj, rest, root)
        except _DecodeError as exc:
            raise errors.BadRequest(_cannot_handle(result, str(exc))) from None
        return result
    if schema_ref is None:
        return CheckResult()
    node = builtin_node(schema_ref)
    kind, version = _api_version_kind(obj, node)
    walker = _Walker(drop_nulls=True, crd=False)
    result = CheckResult(walker.unknown, kind, version)
    try:
        walker.walk(obj, node, [], node.struct)
    except _DecodeError as exc:
        raise errors.BadRequest(_cannot_handle(result, str(exc))) from None
    return result


def _prune_root(walker: _Walker, obj: dict[str, Any], rest: dict[str, Any], root: Node) -> None:
    """Walk a custom resource's own fields; apiVersion, kind and metadata always stay."""
    walker.walk(rest, root, [], "")
    for key in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
        if key not in rest:
            del obj[key]


def _cannot_handle(result: CheckResult, detail: str) -> str:
    kind = result.kind or "object"
    return f'{kind} in version "{result.version}" cannot be handled as a {kind}: {detail}'


def report(
    result: CheckResult, field_validation: str, warnings: list[str], *, kind: str = "",
    name: str = "",
) -> None:
    """Apply the request's fieldValidation directive to what `check` dropped.

    Warn (the default) adds `unknown field "spec.foo"` warnings, Strict refuses the
    request with kube's strict decoding error, Ignore says nothing.
    """
    directive = field_validation or "Warn"
    if directive not in FIELD_VALIDATION:
        raise errors.BadRequest(
            f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{directive}"')
    if not result.unknown_fields or directive == "Ignore":
        return
    if directive == "Warn":
        warnings.extend(result.warnings)
        return
    if not result.kind:
        result.kind = kind.split(".", 1)[0]
    raise errors.BadRequest(
        _cannot_handle(result, "strict decoding error: " + ", ".join(result.warnings)))


# --- custom resources: defaults and validation -------------------------------------------------

def apply_crd_defaults(obj: dict[str, Any], crd_schema: dict[str, Any] | None) -> None:
    """kube's structural defaulting: missing (or null, non-nullable) fields get `default`."""
    if crd_schema is None:
        return
    root = _crd_root(crd_schema)
    if root.props is None:
        return
    _default(obj, root, top=True)


def _default(value: Any, node: Node, top: bool = False) -> None:
    if isinstance(value, dict):
        if node.props is not None:
            for key, default in node.defaults:
                if key not in value or (value[key] is None and not node.props[key].nullable):
                    value[key] = copy.deepcopy(default)
            for key, child in value.items():
                if top and key == "metadata":
                    continue
                sub = node.props.get(key)
                if sub is not None and isinstance(child, dict | list):
                    _default(child, sub)
        elif node.additional is not None:
            for child in value.values():
                if isinstance(child, dict | list):
                    _default(child, node.additional)
    elif isinstance(value, list) and node.items is not None:
        for child in value:
            if isinstance(child, dict | list):
                _default(child, node.items)


_PATTERNS: dict[str, re.Pattern[str] | None] = {}


def _pattern(source: str) -> re.Pattern[str] | None:
    if source not in _PATTERNS:
        try:
            _PATTERNS[source] = re.compile(source)
        except re.error:
            _PATTERNS[source] = None  # an RE2 construct Python lacks: do not guess
    return _PATTERNS[source]


def validate_crd(obj: dict[str, Any], crd_schema: dict[str, Any] | None) -> list[FieldError]:
    """The openAPIV3Schema's value rules, as field errors (the caller raises 422 Invalid)."""
    if crd_schema is None:
        return []
    root = _crd_root(crd_schema)
    errs: list[FieldError] = []
    if root.props is not None:
        for key in root.required:
            if key not in obj and key not in ("apiVersion", "kind", "metadata"):
                errs.append(errors.required(key))
        for key, child in obj.items():
            sub = root.props.get(key)
            if sub is None or key in ("apiVersion", "kind", "metadata"):
                continue
            _validate(child, sub, [key], errs)
    return errs


def _validate(value: Any, node: Node, path: list[str], errs: list[FieldError]) -> None:
    if value is None:
        if not node.nullable and node.types:
            where = _join(path)
            errs.append(errors.invalid(
                where, "null", f'{where} in body must be of type {_type_name(node)}: "null"'))
        return
    if node.types and not _type_ok(value, node.types):
        where = _join(path)
        actual = _json_type(value)
        errs.append(errors.invalid(
            where, actual, f'{where} in body must be of type {_type_name(node)}: "{actual}"'))
        return
    if node.has_rules:
        _rules(value, node, path, errs)
    if isinstance(value, dict):
        if node.props is not None:
            for key in node.required:
                if key not in value:
                    errs.append(errors.required(_join([*path, key])))
            for key, child in value.items():
                sub = node.props.get(key)
                if sub is not None:
                    path.append(key)
                    _validate(child, sub, path, errs)
                    path.pop()
        elif node.additional is not None:
            for key, child in value.items():
                path.append(key)
                _validate(child, node.additional, path, errs)
                path.pop()
    elif isinstance(value, list) and node.items is not None:
        for index, child in enumerate(value):
            path.append(f"[{index}]")
            _validate(child, node.items, path, errs)
            path.pop()


def _type_name(node: Node) -> str:
    return "/".join(sorted(node.types))


def _rules(value: Any, node: Node, path: list[str], errs: list[FieldError]) -> None:
    s = node.schema
    where = _join(path)
    enum = s.get("enum")
    if enum is not None and value not in enum:
        errs.append(errors.unsupported(where, value, [
            e if isinstance(e, str) else repr(e) for e in enum]))
    if isinstance(value, int | float) and not isinstance(value, bool):
        maximum, minimum = s.get("maximum"), s.get("minimum")
        if maximum is not None:
            if s.get("exclusiveMaximum") and value >= maximum:
                errs.append(errors.invalid(
                    where, value, f"{where} in body should be less than {maximum}"))
            elif value > maximum:
                errs.append(errors.invalid(
                    where, value, f"{where} in body should be less than or equal to {maximum}"))
        if minimum is not None:
            if s.get("exclusiveMinimum") and value <= minimum:
                errs.append(errors.invalid(
                    where, value, f"{where} in body should be greater than {minimum}"))
            elif value < minimum:
                errs.append(errors.invalid(
                    where, value,
                    f"{where} in body should be greater than or equal to {minimum}"))
    elif isinstance(value, str):
        max_length, min_length = s.get("maxLength"), s.get("minLength")
        if max_length is not None and len(value) > max_length:
            errs.append(FieldError(where, "Too long",
                                   f"may not be more than {max_length} bytes"))
        if min_length is not None and len(value) < min_length:
            errs.append(errors.invalid(
                where, value, f"{where} in body should be at least {min_length} chars long"))
        pattern = s.get("pattern")
        if pattern is not None:
            compiled = _pattern(pattern)
            if compiled is not None and not compiled.search(value):
                errs.append(errors.invalid(
                    where, value, f"{where} in body should match '{pattern}'"))
    elif isinstance(value, list):
        errs.extend(_count_errors(where, len(value), s.get("maxItems"), s.get("minItems"),
                                  "items"))
        if s.get("uniqueItems"):
            seen: list[Any] = []
            for item in value:
                if item in seen:
                    errs.append(FieldError(where, "Duplicate value", "", item))
                    break
                seen.append(item)
    elif isinstance(value, dict):
        errs.extend(_count_errors(where, len(value), s.get("maxProperties"),
                                  s.get("minProperties"), "properties"))


def _count_errors(
    where: str, count: int, maximum: int | None, minimum: int | None, noun: str
) -> list[FieldError]:
    """maxItems/minItems of an array, maxProperties/minProperties of an object."""
    errs: list[FieldError] = []
    if maximum is not None and count > maximum:
        errs.append(FieldError(where, "Too many", f"{count}: must have at most {maximum} items"))
    if minimum is not None and count < minimum:
        errs.append(errors.invalid(
            where, count, f"{where} in body should have at least {minimum} {noun}"))
    return errs
