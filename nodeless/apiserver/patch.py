"""The three PATCH bodies kubectl sends, applied the way kube-apiserver applies them.

kubectl never sends a whole object to change one: `label`, `annotate` and `scale` send a
JSON merge patch (RFC 7386), `apply`, `edit` and `set image` a strategic merge patch, and
`patch --type json` an RFC 6902 JSON patch. Clients tell these apart only by the result
and by the error they get back, so both follow kube-apiserver (its patch handler,
`k8s.io/apimachinery/pkg/util/strategicpatch` and evanphx/json-patch v4) rather than the
RFCs where the two differ; each such place says so.

Everything here takes the stored object as a dict, never changes it, and returns a new
one. Errors are the typed `APIError`s of `nodeless.apiserver.errors` with kube's code and
message; the HTTP layer turns them into a `Status`.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, ParamSpec, TypeVar

import jsonpatch
import jsonpointer

from nodeless.apiserver import errors
from nodeless.apiserver.resources.schema import definitions, resolve

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH_YAML = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

# kube-apiserver refuses bigger JSON patches with 413 before applying any operation.
MAX_JSON_PATCH_OPERATIONS = 10000

Schema = Mapping[str, Any]
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _depth_limited(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Bodies nested deeper than Python's stack fail with Go's 400, not a crash."""

    @functools.wraps(func)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except RecursionError:
            raise errors.BadRequest("exceeded max depth") from None

    return guarded


def check_media_type(content_type: str, schema_name: str | None) -> str:
    """The patch's media type, or 415 for one this type does not accept (server-side
    apply among them), checked before anything is read so the answer never depends on
    whether the object exists."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in (APPLY_PATCH_YAML, APPLY_PATCH_CBOR):
        raise errors.UnsupportedMediaType(
            f"server-side apply ({media_type}) is not supported yet; use client-side "
            "`kubectl apply` (without --server-side), which sends a strategic merge patch "
            "(a JSON merge patch for custom resources)")
    accepted = _accepted_media_types(schema_name)
    if media_type not in accepted:
        raise _unsupported(accepted)
    return media_type


def apply_patch(content_type: str, doc: dict[str, Any], body: bytes,
                schema_name: str | None) -> dict[str, Any]:
    """Apply a PATCH request body of `content_type` to `doc`.

    `schema_name` names the built-in type's definition (e.g. `io.k8s.api.apps.v1.Deployment`)
    whose patch strategies drive a strategic merge patch; None means a custom resource,
    which, as in kube, accepts only JSON and merge patches.
    """
    media_type = check_media_type(content_type, schema_name)
    if media_type == JSON_PATCH:
        return apply_json_patch(doc, _decode(body, "error decoding patch: "))
    if media_type == MERGE_PATCH:
        return apply_merge_patch(doc, _decode(body, "error decoding patch: "))
    return apply_strategic_merge_patch(doc, _decode(body, ""), schema_name)


def _accepted_media_types(schema_name: str | None) -> tuple[str, ...]:
    if schema_name is None:
        return (JSON_PATCH, MERGE_PATCH)
    return (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


def _unsupported(accepted: tuple[str, ...]) -> errors.UnsupportedMediaType:
    # kube's negotiation error; it lists what this resource accepts so the client can retry.
    return errors.UnsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted))


# ---------------------------------------------------------------------------------------
# JSON bodies, decoded with Go's error messages


def _decode(body: bytes, prefix: str) -> Any:
    """Parse a JSON body; syntax errors read like Go's encoding/json, which clients see."""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise errors.BadRequest(prefix + _go_syntax_error(exc)) from None
    except _NotJSON as exc:
        raise errors.BadRequest(
            f"{prefix}invalid character {_go_char(exc.args[0][0])} looking for beginning "
            "of value") from None
    except RecursionError:
        raise errors.BadRequest(prefix + "exceeded max depth") from None


class _NotJSON(ValueError):
    """NaN and Infinity, which Python's json accepts and JSON (and Go) do not."""


def _reject_constant(name: str) -> NoReturn:
    raise _NotJSON(name)


def _go_syntax_error(exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(exc.doc) or exc.msg.startswith("Unterminated"):
        return "unexpected end of JSON input"
    char = _go_char(exc.doc[exc.pos])
    context = {
        "Expecting value": "looking for beginning of value",
        "Expecting property name enclosed in double quotes":
            "looking for beginning of object key string",
        "Expecting ':' delimiter": "after object key",
        "Expecting ',' delimiter": "after object key:value pair",
        "Extra data": "after top-level value",
        "Invalid control character at": "in string literal",
    }.get(exc.msg, "looking for beginning of value")
    return f"invalid character {char} {context}"


def _go_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + json.dumps(char, ensure_ascii=False)[1:-1] + "'"


def _json_kind(value: Any) -> str:
    """The JSON kind Go's decoder names when a value has the wrong type."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


# ---------------------------------------------------------------------------------------
# RFC 6902 JSON patch


@_depth_limited
def apply_json_patch(doc: dict[str, Any], patch_body: Any) -> dict[str, Any]:
    """Apply an RFC 6902 patch with the `jsonpatch` library, one operation at a time so a
    failure names the operation.

    Like kube (evanphx/json-patch v4), `replace` of a missing object member adds it, and
    `null` is an empty patch. A malformed body is 400; an operation that does not apply
    is 422 with kube's terse message and the reason in `details.causes`.
    """
    operations = _decode_operations(patch_body)
    result: Any = copy.deepcopy(doc)
    for operation in operations:
        result = _apply_operation(result, operation)
    if not isinstance(result, dict):  # only a root-level operation could do this
        raise _not_applicable("the patched document is not a JSON object")
    return result


def _decode_operations(patch_body: Any) -> list[dict[str, Any]]:
    # Shapes and messages of kube's strict decode into []jsonPatchOp, which runs first.
    if patch_body is None:
        return []
    if not isinstance(patch_body, list):
        raise errors.BadRequest(
            f"error decoding patch: json: cannot unmarshal {_json_kind(patch_body)} into Go "
            "value of type []handlers.jsonPatchOp")
    for operation in patch_body:
        if operation is None:
            continue
        if not isinstance(operation, dict):
            raise errors.BadRequest(
                f"error decoding patch: json: cannot unmarshal {_json_kind(operation)} into "
                "Go value of type handlers.jsonPatchOp")
        for member in ("op", "path", "from"):
            value = operation.get(member)
            if value is not None and not isinstance(value, str):
                raise errors.BadRequest(
                    f"error decoding patch: json: cannot unmarshal {_json_kind(value)} into "
                    f"Go struct field jsonPatchOp.{member} of type string")
    if len(patch_body) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.RequestEntityTooLarge(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(patch_body)}")
    return [op if op is not None else {} for op in patch_body]


_OPERATIONS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def _apply_operation(doc: Any, operation: dict[str, Any]) -> Any:
    kind = operation.get("op")
    if kind not in _OPERATIONS:
        raise _not_applicable(f"Unexpected kind: {kind if kind is not None else 'unknown'}")
    path = operation.get("path")
    if path is None:
        raise _not_applicable(f"{kind} operation failed to decode path: missing value")
    if kind in ("move", "copy") and operation.get("from") is None:
        raise _not_applicable(
            f"{kind} operation failed to decode from: operation, missing from field: "
            "missing value")
    parent, key = _parent(doc, path)
    if isinstance(parent, dict) and key not in parent:
        # evanphx v4 reads a missing member as null: replace adds it, test null passes.
        if kind == "replace":
            operation = {**operation, "op": "add"}
        elif kind == "test" and "value" in operation and operation["value"] is None:
            return doc
    try:
        return jsonpatch.JsonPatch([operation]).apply(doc, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise _not_applicable(_operation_failure(doc, operation, kind, str(exc))) from None


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    """The container `path` points into and the last reference token, or (None, "")."""
    if not path.startswith("/"):
        return None, ""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]
    node = doc
    if not isinstance(node, (dict, list)):
        return None, ""  # an earlier operation replaced the whole document by a scalar
    for token in tokens[:-1]:
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None, ""
        if not isinstance(node, (dict, list)):
            return None, ""
    return node, tokens[-1]


def _operation_failure(doc: Any, operation: dict[str, Any], kind: str, fallback: str) -> str:
    """What went wrong, phrased as evanphx/json-patch v4 phrases it."""
    path = operation["path"]
    if kind in ("move", "copy"):
        source = operation["from"]
        parent, key = _parent(doc, source)
        if parent is None:
            return f"{kind} operation does not apply: doc is missing from path: {source}: " \
                "missing value"
        if not _member_exists(parent, key):
            return f"error in {kind} for path: '{key}': Unable to remove nonexistent key: " \
                f"{key}: missing value"
        return fallback
    parent, key = _parent(doc, path)
    if kind == "test":
        if parent is None:
            return f"test operation does not apply: is missing path: {path}: missing value"
        return f"testing value {path} failed: test failed"
    if parent is None:
        quoted = f'"{path}"' if kind in ("add", "remove") else path
        return f"{kind} operation does not apply: doc is missing path: {quoted}: missing value"
    if isinstance(parent, list):
        return f"error in {kind} for path: '{path}': Unable to access invalid index: " \
            f"{key}: invalid index referenced"
    if kind == "remove" and key not in parent:
        return f"error in remove for path: '{path}': Unable to remove nonexistent key: " \
            f"{key}: missing value"
    return fallback


def _member_exists(parent: Any, key: str) -> bool:
    if isinstance(parent, dict):
        return key in parent
    return key.isdigit() and int(key) < len(parent)


def _not_applicable(detail: str) -> errors.APIError:
    # kube answers a patch that does not apply with this bare 422 and no cause; the cause
    # is ours, so `kubectl` prints what actually failed.
    return errors.APIError(
        "the server rejected our request due to an error in our request",
        code=422, reason="Invalid",
        details={"causes": [{"reason": "FieldValueInvalid", "message": detail,
                             "field": "patch"}]})


# ---------------------------------------------------------------------------------------
# RFC 7386 JSON merge patch


@_depth_limited
def apply_merge_patch(doc: dict[str, Any], patch_body: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch: objects merge, null deletes, anything else replaces.

    As in kube (evanphx/json-patch v4), nulls are dropped from values that are added
    rather than merged, including objects inside added arrays, and the body must be an
    object (400 otherwise).
    """
    if patch_body is None:
        raise errors.BadRequest("Invalid JSON Patch")
    if not isinstance(patch_body, dict):
        raise errors.BadRequest(
            f"error decoding patch: json: cannot unmarshal {_json_kind(patch_body)} into Go "
            "value of type map[string]interface {}")
    return _merge_objects(copy.deepcopy(doc), patch_body)


def _merge_objects(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        current = target.get(key)
        if value is None:
            target.pop(key, None)
        elif isinstance(current, dict) and isinstance(value, dict):
            target[key] = _merge_objects(current, value)
        elif isinstance(current, dict):
            target[key] = copy.deepcopy(value)
        else:
            target[key] = _without_nulls(value)
    return target


def _without_nulls(value: Any) -> Any:
    """A copy with null members removed from every object, however deep."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------
# Kubernetes strategic merge patch

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_FROM = "$deleteFromPrimitiveList"

_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ORDER = "invalid patch format of setElementOrder list"


@_depth_limited
def apply_strategic_merge_patch(doc: dict[str, Any], patch_body: Any,
                                schema_name: str | None) -> dict[str, Any]:
    """Apply a strategic merge patch, the schema's patch strategies and merge keys deciding
    whether a list is merged by key or replaced and whether a map is merged or replaced.

    Follows apimachinery's `StrategicMergeMapPatch` as kube-apiserver calls it, including
    its errors: 400 for malformed directives, 422 for lists of lists and where kube
    returns an untyped 500 (e.g. a missing merge key: bad input is never a 500 here). A
    directive kube cannot consume (say `$patch: delete` in a list without merge key) is
    left in its result and refused by the strict decoding kubectl asks for; here that is
    the same 422. `schema_name` None (a custom resource) is refused with 415 as in kube.
    """
    if schema_name is None:
        raise _unsupported(_accepted_media_types(None))
    schema = definitions().get(schema_name)
    if schema is None:
        raise errors.InternalError(f"no schema {schema_name!r} for strategic merge patch")
    if patch_body is None:
        return copy.deepcopy(doc)
    if not isinstance(patch_body, dict):
        raise errors.BadRequest(
            f"json: cannot unmarshal {_json_kind(patch_body)} into Go value of type "
            "map[string]interface {}")
    result = _merge_map(copy.deepcopy(doc), copy.deepcopy(patch_body), schema)
    _refuse_stray_directives(doc, result, patch_body)
    return result


@dataclass(frozen=True)
class _Field:
    """How to patch one field: its strategy, its merge key, and the schema to recurse
    with (the value's for a map, the element's for a list)."""

    strategy: str = ""  # "merge", "replace" or "" (maps merge, lists are replaced)
    merge_key: str = ""
    schema: Schema | None = None


_UNKNOWN = _Field()


def _field(schema: Schema | None, key: str, *, of_list: bool) -> _Field:
    """The patch metadata of `key` in an object of `schema`.

    Unknown fields have none: their maps merge and their lists are replaced (kube fails
    with "unable to find api field" there, but its input never has unknown fields).
    """
    if schema is None:
        return _UNKNOWN
    prop = (schema.get("properties") or {}).get(key)
    if prop is None:
        extra = schema.get("additionalProperties")
        prop = extra if isinstance(extra, dict) else None
    if prop is None:
        return _UNKNOWN
    strategies = [s for s in str(prop.get("x-kubernetes-patch-strategy", "")).split(",")
                  if s and s != "retainKeys"]
    target = prop.get("items") if of_list else prop
    return _Field(
        strategy=strategies[0] if strategies else "",
        merge_key=str(prop.get("x-kubernetes-patch-merge-key", "")),
        schema=resolve(target) if isinstance(target, dict) else None,
    )


def _merge_map(original: dict[str, Any], patch: dict[str, Any],
               schema: Schema | None) -> dict[str, Any]:
    """Merge `patch` into `original` (both owned by the caller and changed in place)."""
    if _DIRECTIVE in patch:
        return _map_directive(patch)
    _retain_keys(original, patch)
    _merge_ordered_lists(original, patch, schema)
    for key, value in list(patch.items()):
        deletions = key.startswith(_DELETE_FROM)
        if deletions:
            key = _directive_target(key, _DELETE_FROM, _BAD_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or type(original[key]) is not type(value):
            if not deletions:
                _set_cleaned(original, key, value, drop_nulls=True)
            continue
        if isinstance(value, dict):
            field = _field(schema, key, of_list=False)
            original[key] = value if field.strategy == "replace" else _merge_map(
                original[key], value, field.schema)
        elif isinstance(value, list):
            field = _field(schema, key, of_list=True)
            original[key] = _merge_list_field(original[key], value, field, deletions)
        else:
            original[key] = value
    return original


def _map_directive(patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch[_DIRECTIVE]
    if directive == "replace":
        del patch[_DIRECTIVE]
        return patch
    if directive == "delete":
        return {}
    # Including "merge": kube documents it but only accepts replace and delete here.
    _fail(f"unknown patch type: {_gofmt(directive)} in map: {_gofmt(patch)}")


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: clear what the list omits; the patch may only set listed keys."""
    if _RETAIN_KEYS not in patch:
        return
    listed = patch.pop(_RETAIN_KEYS)
    if not isinstance(listed, list):
        raise errors.BadRequest(_BAD_RETAIN_KEYS)
    keep = {k for k in listed if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM, _SET_ORDER)):
            continue
        if key not in keep:
            raise errors.BadRequest(_BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in keep]:
        del original[key]


def _merge_ordered_lists(original: dict[str, Any], patch: dict[str, Any],
                         schema: Schema | None) -> None:
    """Merge each list that has a `$setElementOrder/<field>` and put it in that order
    (patch items by the directive, server-only items where they were)."""
    for directive in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(directive)
        if not isinstance(order, list):
            _fail(_bad_arg_type("[]interface {}", order))
        key = _directive_target(directive, _SET_ORDER, _BAD_SET_ORDER)
        in_original, in_patch = key in original, key in patch
        if not (in_original or in_patch):
            continue
        current = _list_or_fail(original.get(key)) if in_original else []
        change = _list_or_fail(patch.get(key)) if in_patch else []
        field = _field(schema, key, of_list=True)
        _check_order(change, order, field.merge_key)
        if in_original and in_patch:
            # Merging may write through `current`; the order below reads it as kube does.
            merged = _merge_list_field(current, change, field, False)
        else:
            merged = current if in_original else _cleaned(change, drop_nulls=False)
        kind = _element_kind(current, change)
        ordered, rest = _partition(merged, order, field.merge_key)
        original[key] = _arrange(ordered, rest, order, current, field.merge_key, kind)
        patch.pop(key, None)


def _list_or_fail(value: Any) -> list[Any]:
    if not isinstance(value, list):
        _fail(_bad_arg_type("[]interface {}", value))
    return value


def _check_order(change: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list must follow `$setElementOrder` (deletions and directives aside)."""
    if not order or not change:
        return
    if merge_key:
        for item in change:
            if not isinstance(item, dict):
                _fail(_bad_arg_type("map[string]interface {}", item))
        items = [i for i in change if i.get(_DIRECTIVE) != "delete"]
    else:
        items = change
    p = s = 0
    while p < len(items) and s < len(order):
        if isinstance(items[p], dict) and _DIRECTIVE in items[p]:
            p += 1
            continue
        if _key_equal(items[p], order[s], merge_key):
            p += 1
        s += 1
    if p < len(items):
        _fail(f"the order in patch list:\n{_gofmt(change)}\n doesn't match {_SET_ORDER} "
              f"list:\n{_gofmt(order)}")


def _key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            _fail(_bad_arg_type("map[string]interface {}", item))
        if merge_key not in item:
            _fail(_no_merge_key(item, merge_key))
    return _same(left[merge_key], right[merge_key])


def _merge_list_field(current: list[Any], change: list[Any], field: _Field,
                      deletions: bool) -> list[Any]:
    # Deletion lists apply whatever the strategy; other lists merge only if told to.
    if field.strategy == "merge" or deletions:
        return _merge_list(current, change, field, deletions)
    return change


def _merge_list(current: list[Any], change: list[Any], field: _Field,
                deletions: bool) -> list[Any]:
    if not current and not change:
        return current
    kind = _element_kind(current, change)
    if kind == "map":
        if not field.merge_key:
            _fail("cannot merge lists without merge key for struct")
        return _merge_map_list(current, change, field)
    if deletions:
        return [v for v in current if not any(_same(v, d) for d in change)]
    merged = _unique(current + change)
    ordered, rest = _partition(merged, change, "")
    return _arrange(ordered, rest, change, current, "", kind)


def _merge_map_list(shared: list[Any], change: list[Any], field: _Field) -> list[Any]:
    """Merge a list of maps by key; `$patch` elements delete items or replace the list.

    `shared` plays the live list's Go backing array: kube's deletions shift items left
    through it and its appends write into the freed slots, and `$setElementOrder` later
    reads it to place new items among server-only ones. So it is updated the same way
    here, keeping its length.
    """
    key = field.merge_key
    size = len(shared)
    plain = []
    replace = False
    for item in change:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if key not in item:
                _fail(_no_merge_key(item, key))
            while (index := _find(shared[:size], key, item[key])) >= 0:
                shared[index:size - 1] = shared[index + 1:size]
                size -= 1
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            _fail("merging lists cannot yet be specified in the patch")
        else:
            _fail(f"unknown patch type: {_gofmt(directive)} in map: {_gofmt(item)}")
    if replace:
        ordered, rest = _partition(plain, [], key)
        return _arrange(ordered, rest, [], plain, key, "map")
    live = shared[:size]
    merged = list(live)
    for item in plain:
        if key not in item:
            _fail(_no_merge_key(item, key))
        index = _find(merged, key, item[key])
        if index >= 0:
            merged[index] = _merge_map(merged[index], item, field.schema)
            continue
        if len(merged) < len(shared):
            shared[len(merged)] = item
        # kube keeps the nulls of a new element and its typed decoding drops them.
        merged.append(_without_nulls(item))
    ordered, rest = _partition(merged, plain, key)
    return _arrange(ordered, rest, plain, live, key, "map")


def _find(items: list[Any], key: str, value: Any) -> int:
    for index, item in enumerate(items):
        if key in item and _same(item[key], value):
            return index
    return -1


def _partition(items: list[Any], by: list[Any], merge_key: str
               ) -> tuple[list[Any], list[Any]]:
    """Split `items` into those present in `by` (by merge key) and the rest."""
    inside: list[Any] = []
    outside: list[Any] = []
    for item in items:
        if merge_key:
            if not isinstance(item, dict):
                _fail(_bad_arg_type("map[string]interface {}", item))
            if merge_key not in item:
                _fail(_no_merge_key(item, merge_key))
            found = False
            for other in by:
                if not isinstance(other, dict):
                    _fail(f"value for key {by.index(other)} is not a map")
                if merge_key in other and _same(other[merge_key], item[merge_key]):
                    found = True
                    break
        else:
            found = any(_same(item, other) for other in by)
        (inside if found else outside).append(item)
    return inside, outside


def _arrange(from_patch: list[Any], server_only: list[Any], patch_order: list[Any],
             server_order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """Patch items in patch order, server-only items in server order, interleaved so
    each keeps its place relative to the server's list; items new to the server come
    before the server item they meet."""
    from_patch = _sort_by(from_patch, patch_order, merge_key, kind)
    server_only = _sort_by(server_only, server_order, merge_key, kind)
    merged: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(from_patch):
        if j >= len(from_patch):
            merged.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            merged.append(from_patch[j])
            j += 1
        else:
            left = _position(server_order, server_only[i], merge_key, kind)
            right = _position(server_order, from_patch[j], merge_key, kind)
            if 0 <= left < right:
                merged.append(server_only[i])
                i += 1
            else:
                merged.append(from_patch[j])
                j += 1
    return merged


def _sort_by(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    deleted: list[Any] = []
    if kind == "map":
        for item in [*items, *order]:
            if not isinstance(item, dict):
                _fail(_bad_arg_type("map[string]interface {}", item))
            if merge_key not in item:
                _fail(_no_merge_key(item, merge_key))
        deleted = [i for i in items if i.get(_DIRECTIVE) == "delete"]
        items = [i for i in items if i.get(_DIRECTIVE) != "delete"]
    # Items the order does not know go first, as kube's comparator tends to put them.
    return sorted(items, key=lambda item: _position(order, item, merge_key, kind)) + deleted


def _position(order: list[Any], item: Any, merge_key: str, kind: str) -> int:
    def value(x: Any) -> Any:
        if kind != "map":
            return x
        return x.get(merge_key) if isinstance(x, dict) else None

    wanted = value(item)
    for index, candidate in enumerate(order):
        if _same(value(candidate), wanted):
            return index
    return -1


def _element_kind(*lists: list[Any]) -> str:
    """"map" or "scalar"; every element must have one type, and none may be a list."""
    first: type | None = None
    for items in lists:
        for item in items:
            if first is None:
                first = type(item)
                if first is list:
                    raise _not_applicable("lists of lists are not supported")
            elif type(item) is not first:
                _fail("list element types are not identical: "
                      + _gofmt([list(items) for items in lists]))
    if first is None:
        _fail("no elements in any of the given slices")
    return "map" if first is dict else "scalar"


def _directive_target(key: str, prefix: str, problem: str) -> str:
    head, sep, field = key.partition("/")
    if not sep or head != prefix:
        raise errors.BadRequest(problem)
    return field


def _set_cleaned(original: dict[str, Any], key: str, value: Any, *, drop_nulls: bool
                 ) -> None:
    """Take a patch value the original lacks: its nulls and `$patch` maps removed."""
    cleaned, keep = _clean(value, drop_nulls)
    if keep:
        original[key] = cleaned
    else:
        original.pop(key, None)


def _cleaned(value: list[Any], *, drop_nulls: bool) -> list[Any]:
    cleaned, _ = _clean(value, drop_nulls)
    return list(cleaned)


def _clean(value: Any, drop_nulls: bool) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if value.get(_DIRECTIVE) is not None or (not drop_nulls and _DIRECTIVE in value):
            return None, False
        out = {}
        for k, v in value.items():
            if v is None and drop_nulls:
                continue
            cleaned, keep = _clean(v, drop_nulls)
            if keep:
                out[k] = cleaned
        return out, True
    if isinstance(value, list):
        items = (_clean(v, drop_nulls) for v in value)
        return [v for v, keep in items if keep], True
    return value, True


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not any(_same(item, seen) for seen in out):
            out.append(item)
    return out


def _same(left: Any, right: Any) -> bool:
    """Go's interface equality: equal values of the same JSON type (1 is not true)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, (dict, list)):
        return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)
    return bool(left == right)


def _refuse_stray_directives(doc: dict[str, Any], result: dict[str, Any],
                             patch_body: dict[str, Any]) -> None:
    """kube copies replaced values verbatim, so a directive inside one (e.g. `$patch:
    delete` in a list without merge key) reaches its strict decoding: refused as there."""
    before = set(_stray_directives(doc, ""))
    stray = [p for p in _stray_directives(result, "") if p not in before]
    if stray:
        detail = "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in stray)
        raise errors.Invalid("", "", [errors.invalid("patch", _gofmt(patch_body), detail)])


def _stray_directives(value: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            if key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith((_SET_ORDER, _DELETE_FROM)):
                found.append(here)
            else:
                found.extend(_stray_directives(item, here))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_stray_directives(item, f"{path}[{index}]"))
    return found


def _fail(message: str) -> NoReturn:
    # kube answers these untyped (a 500); they are the client's mistake, so nodeless
    # says so with 422 and the same message.
    raise errors.APIError(message, code=422, reason="Invalid")


def _no_merge_key(item: Any, merge_key: str) -> str:
    return f"map: {_gofmt(item)} does not contain declared merge key: {merge_key}"


def _bad_arg_type(expected: str, actual: Any) -> str:
    return f"expected a {expected}, but received a {_gotype(actual)}"


_GO_TYPES: dict[type, str] = {
    dict: "map[string]interface {}", list: "[]interface {}", str: "string",
    bool: "bool", int: "int64", float: "float64",
}


def _gotype(value: Any) -> str:
    return "%!s(<nil>)" if value is None else _GO_TYPES.get(type(value), type(value).__name__)


def _gofmt(value: Any) -> str:
    """`value` as Go's %v prints decoded JSON, the way kube's messages show it."""
    formatters: dict[type, Callable[[Any], str]] = {
        dict: lambda v: "map[" + " ".join(
            f"{k}:{_gofmt(v[k])}" for k in sorted(v)) + "]",
        list: lambda v: "[" + " ".join(_gofmt(i) for i in v) + "]",
        bool: lambda v: "true" if v else "false",
        float: lambda v: str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v),
    }
    if value is None:
        return "<nil>"
    return formatters.get(type(value), str)(value)
