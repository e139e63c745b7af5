"""Label and field selectors with kube's grammar, matching rules and error messages.

Clients send selectors as strings (`?labelSelector=`, `?fieldSelector=`) and embed them
as `metav1.LabelSelector` objects (webhooks, controllers); both forms end up as the same
`LabelSelector`. Errors read exactly as kube-apiserver's, since kubectl shows them as is.
Field selectors are checked per kind against the fields kube lets you select on, with
kube's per-kind wording of the refusal (it is not uniform upstream either).

Label keys and values are checked by `resources.names`, the checks object validation
uses; the field errors of a selector inside an object are `validation.validate_label_selector`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nodeless.apiserver.errors import BadRequest
from nodeless.apiserver.resources.names import (
    go_quote,
    go_string_slice,
    is_label_value,
    is_qualified_name,
)


def _invalid_text(path: str, value: str, detail: str) -> str:
    """A field.Invalid error as Go prints it (a nil path prints as <nil>)."""
    return f"{path or '<nil>'}: Invalid value: {go_quote(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """utilerrors.Aggregate's Error(): one message alone, several in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# ---- label selectors ---------------------------------------------------------------

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One term of a label selector: key, operator, values (sorted, as kube keeps them)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except (KeyError, ValueError, IndexError):
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{values}"


def new_requirement(key: str, operator: str, values: Iterable[str]) -> LabelRequirement:
    """labels.NewRequirement: validate and build; `BadRequest` with kube's text if wrong."""
    vals = list(values)
    errs = []
    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(_invalid_text("key", key, "; ".join(key_errs)))
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append("values: Invalid value: []string{}: for 'in', 'notin' operators, "
                        "values set can't be empty")
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(f"values: Invalid value: {go_string_slice(vals)}: exact-match "
                        "compatibility requires one single value")
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(f"values: Invalid value: {go_string_slice(vals)}: values set must be "
                        "empty for exists and does not exist")
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(f"values: Invalid value: {go_string_slice(vals)}: for 'Gt', 'Lt' "
                        "operators, exactly one value is required")
        for i, v in enumerate(vals):
            if not re.fullmatch(r"[+-]?\d+", v):
                errs.append(_invalid_text(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the "
                                          "value must be an integer"))
    else:
        supported = ", ".join(go_quote(o) for o in (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST))
        errs.append(f"operator: Unsupported value: {go_quote(operator)}: supported values: "
                    f"{supported}")
    for i, v in enumerate(vals):
        value_errs = is_label_value(v)
        if value_errs:
            errs.append(_invalid_text(f"values[{i}][{key}]", v, "; ".join(value_errs)))
    if errs:
        raise BadRequest(_aggregate(errs))
    return LabelRequirement(key, operator, tuple(vals))


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector; all requirements must match (AND)."""

    requirements: tuple[LabelRequirement, ...] = ()
    nothing: bool = False
    """True for kube's Nothing(): a nil metav1.LabelSelector selects no object."""

    @property
    def empty(self) -> bool:
        """True when the selector restricts nothing (kube's Empty())."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The one value `key` must have to match, if the selector pins it."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """The string grammar of `?labelSelector=` and `kubectl -l`."""
        reqs = _LabelParser(text).parse()
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @classmethod
    def from_set(cls, labels: Mapping[str, str]) -> LabelSelector:
        """Exactly these labels (a Service's or ReplicationController's selector map)."""
        return cls(tuple(LabelRequirement(k, EQUALS, (v,)) for k, v in sorted(labels.items())))

    @classmethod
    def from_dict(cls, selector: Mapping[str, Any] | None) -> LabelSelector:
        """A metav1.LabelSelector: None selects nothing, {} selects everything."""
        if selector is None:
            return cls(nothing=True)
        match_labels = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or []
        reqs = [new_requirement(k, EQUALS, [str(v)]) for k, v in match_labels.items()]
        ops = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
        for expr in expressions:
            op = expr.get("operator", "")
            if op not in ops:
                raise BadRequest(f"{go_quote(str(op))} is not a valid label selector operator")
            values = [str(v) for v in expr.get("values") or []]
            reqs.append(new_requirement(expr.get("key", ""), ops[op], values))
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))


# The lexer and parser follow apimachinery's labels.Parse token by token, so that every
# odd input is accepted or refused as kube does, with kube's message.
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_TOKENS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
           "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN}
_SPECIAL = frozenset("=!(),><")
_SPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in _SPACE:
            pos += 1
        if pos >= n or s[pos] == "\x00":
            items.append((_EOS, ""))
            return items
        if s[pos] in _SPECIAL:
            buf, last = "", None
            while pos < n and s[pos] in _SPECIAL:
                buf += s[pos]
                if buf in _TOKENS:
                    last = (_TOKENS[buf], buf)
                    pos += 1
                elif last is not None:
                    break
                else:
                    pos += 1
            items.append(last or (_ERROR, f"error expected: keyword found '{buf}'"))
        else:
            start = pos
            while pos < n and s[pos] not in _SPECIAL and s[pos] not in _SPACE \
                    and s[pos] != "\x00":
                pos += 1
            word = s[start:pos]
            items.append((_TOKENS.get(word, _ID), word))


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _look(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        return (_ID, lit) if values and tok in (_IN, _NOTIN) else (tok, lit)

    def _take(self, values: bool = True) -> tuple[int, str]:
        item = self._look(values)
        self.pos += 1
        return item

    def parse(self) -> list[LabelRequirement]:
        reqs: list[LabelRequirement] = []
        while True:
            tok, lit = self._look()
            if tok in (_ID, _NOT):
                try:
                    reqs.append(self._requirement())
                except _ParseError as e:
                    raise BadRequest(f"unable to parse requirement: {e}") from None
                except BadRequest as e:
                    raise BadRequest(f"unable to parse requirement: {e.message}") from None
                tok, lit = self._take()
                if tok == _EOS:
                    return reqs
                if tok == _COMMA:
                    tok2, lit2 = self._look()
                    if tok2 not in (_ID, _NOT):
                        raise BadRequest(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise BadRequest(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return reqs
            else:
                raise BadRequest(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> LabelRequirement:
        operator = ""
        tok, lit = self._take()
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, lit = self._take()
        if tok != _ID:
            raise _ParseError(f"found '{lit}', expected: identifier")
        key_errs = is_qualified_name(lit)
        if key_errs:
            raise _ParseError(_invalid_text("", lit, "; ".join(key_errs)))
        key = lit
        if self._look()[0] in (_EOS, _COMMA):
            return new_requirement(key, operator or EXISTS, [])
        if operator == DOES_NOT_EXIST:
            return new_requirement(key, operator, [])
        tok, lit = self._take(values=False)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
               _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}
        if tok not in ops:
            raise _ParseError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        operator = ops[tok]
        values = self._set_values() if operator in (IN, NOT_IN) else self._exact_value()
        return new_requirement(key, operator, sorted(values))

    def _set_values(self) -> set[str]:
        tok, lit = self._take()
        if tok != _OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self._look()
        if tok in (_ID, _COMMA):
            values = self._identifiers()
            if self._take()[0] != _CLOSE:
                raise _ParseError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self._take()
            return {""}
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def _identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._take()
            if tok == _ID:
                values.add(lit)
                tok2, lit2 = self._look()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                tok2 = self._look()[0]
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    values.add("")
            else:
                raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._look()[0] in (_EOS, _COMMA):
            return {""}
        tok, lit = self._take()
        if tok == _ID:
            return {lit}
        raise _ParseError(f"found '{lit}', expected: identifier")


class _ParseError(Exception):
    pass


# ---- field selectors ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """One term of a field selector; `operator` is "=" or "!=" ("==" is read as "=")."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) == (self.operator == "=")

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape `\\`, `,` and `=` in a value."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out, escaped = [], False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise BadRequest(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            # Go prints the rune with %v: its code point.
            raise BadRequest(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if escaped:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms, start, escaped = [], 0, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


# Which fields each built-in kind lets clients select on (its field label conversion
# function upstream), the renames that conversion applies, and how it words a refusal.
_NOT_SUPPORTED = "field label not supported: {label}"
_DEFAULT_REFUSAL = '"{label}" is not a known field selector: only "metadata.name", ' \
                   '"metadata.namespace"'
_META = ("metadata.name", "metadata.namespace")
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
_FIELD_LABELS: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("", "Pod"): (frozenset({
        *_META, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
        "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
        "status.podIPs", "status.nominatedNodeName", "spec.host"}), _NOT_SUPPORTED),
    ("", "Node"): (frozenset({"metadata.name", "spec.unschedulable"}), _NOT_SUPPORTED),
    ("", "ReplicationController"): (frozenset({*_META, "status.replicas"}), _NOT_SUPPORTED),
    ("", "Event"): (frozenset({
        *_META, *(f"involvedObject.{f}" for f in _INVOLVED), "reason", "reportingComponent",
        "source", "type"}), _NOT_SUPPORTED),
    ("", "Namespace"): (frozenset({"metadata.name", "status.phase"}), _NOT_SUPPORTED),
    ("", "Secret"): (frozenset({*_META, "type"}), _NOT_SUPPORTED),
    ("", "Service"): (frozenset({*_META, "spec.clusterIP", "spec.type"}), _NOT_SUPPORTED),
    ("events.k8s.io", "Event"): (frozenset({
        *_META, *(f"regarding.{f}" for f in _INVOLVED), "reason", "reportingController",
        "source", "type"}), _NOT_SUPPORTED),
    ("batch", "Job"): (frozenset({*_META, "status.successful"}),
                       'field label "{label}" not supported for batchv1.Job'),
    # Upstream documents status.replicas for ReplicaSets but (kubernetes#135136) never
    # registered it for apps/v1; we honour the documentation.
    ("apps", "ReplicaSet"): (frozenset({*_META, "status.replicas"}), _NOT_SUPPORTED),
}
_RENAMES = {("", "Pod"): {"spec.host": "spec.nodeName"}}


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector; all requirements must match (AND)."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """A field the object lacks counts as the empty string, as in kube."""
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """The grammar alone (`a=b,c!=d`, `==` as `=`, `\\` escapes in values)."""
        reqs = []
        for term in sorted(_split_terms(text)):
            if not term:
                continue
            for i in range(len(term)):
                op = next((o for o in ("!=", "==", "=") if term.startswith(o, i)), None)
                if op is not None:
                    value = _unescape_field_value(term[i + len(op):])
                    reqs.append(FieldRequirement(term[:i], "!=" if op == "!=" else "=", value))
                    break
            else:
                raise BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")
        return cls(tuple(reqs))

    def check(
        self, kind: str, group: str = "", *, custom: bool = False, namespaced: bool = True,
        selectable: Collection[str] = (),
    ) -> FieldSelector:
        """Refuse fields the kind cannot be selected on, as kube-apiserver does (400), and
        apply kube's renames. `custom` kinds accept metadata.name, metadata.namespace when
        namespaced, and their CRD's `selectable` fields (paths without the leading dot)."""
        if custom:
            allowed = frozenset({"metadata.name", *selectable,
                                 *(("metadata.namespace",) if namespaced else ())})
            refusal = _NOT_SUPPORTED
        else:
            allowed, refusal = _FIELD_LABELS.get((group, kind), (frozenset(_META),
                                                                 _DEFAULT_REFUSAL))
        renames = _RENAMES.get((group, kind), {})
        out = []
        for r in self.requirements:
            if r.field not in allowed:
                raise BadRequest(refusal.format(label=r.field))
            out.append(FieldRequirement(renames.get(r.field, r.field), r.operator, r.value))
        return FieldSelector(tuple(out))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _get(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def field_set(kind: str, obj: Mapping[str, Any], selectable: Iterable[str] = ()) -> dict[str, str]:
    """The selectable fields of `obj` with their values, as kube's ToSelectableFields gives
    them. `kind` "" means metadata only (custom resources, plus their CRD's `selectable`
    field paths). Event objects yield both core and events.k8s.io spellings."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _text(meta.get("name"))}
    if meta.get("namespace"):
        fields["metadata.namespace"] = _text(meta["namespace"])
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    for path in selectable:
        fields[path.lstrip(".")] = _text(_get(obj, path.lstrip(".")))
    if kind == "Pod":
        pod_ips = status.get("podIPs") or []
        pod_ip = (pod_ips[0] or {}).get("ip") if pod_ips else status.get("podIP")
        fields.update({
            "spec.nodeName": _text(spec.get("nodeName")),
            "spec.restartPolicy": _text(spec.get("restartPolicy")),
            "spec.schedulerName": _text(spec.get("schedulerName")),
            "spec.serviceAccountName": _text(spec.get("serviceAccountName")),
            "spec.hostNetwork": _text(bool(spec.get("hostNetwork"))),
            "status.phase": _text(status.get("phase")),
            "status.podIP": _text(pod_ip),
            "status.nominatedNodeName": _text(status.get("nominatedNodeName")),
        })
    elif kind == "Event":
        events_v1 = group == "events.k8s.io"
        ref = obj.get("regarding" if events_v1 else "involvedObject") or {}
        controller = obj.get("reportingController" if events_v1 else "reportingComponent")
        source = (obj.get("deprecatedSource" if events_v1 else "source") or {}).get("component")
        for f in _INVOLVED:
            fields[f"involvedObject.{f}"] = fields[f"regarding.{f}"] = _text(ref.get(f))
        fields["reportingComponent"] = fields["reportingController"] = _text(controller)
        fields["reason"] = _text(obj.get("reason"))
        fields["source"] = _text(source or controller)
        fields["type"] = _text(obj.get("type"))
    elif kind == "Node":
        fields["spec.unschedulable"] = _text(bool(spec.get("unschedulable")))
    elif kind == "Secret":
        fields["type"] = _text(obj.get("type"))
    elif kind == "Namespace":
        fields["status.phase"] = _text(status.get("phase"))
    elif kind == "Service":
        fields["spec.clusterIP"] = _text(spec.get("clusterIP"))
        fields["spec.type"] = _text(spec.get("type"))
    elif kind == "Job":
        fields["status.successful"] = _text(int(status.get("succeeded") or 0))
    elif kind in ("ReplicaSet", "ReplicationController"):
        fields["status.replicas"] = _text(int(status.get("replicas") or 0))
    return fields


# ---- entry points for the HTTP layer ---------------------------------------------------


def parse_label_selector(text: str) -> LabelSelector:
    """`?labelSelector=`: `BadRequest` with kube's message when malformed."""
    return LabelSelector.parse(text)


def parse_field_selector(
    text: str, kind: str | None = None, group: str = "", *, custom: bool = False,
    namespaced: bool = True, selectable: Collection[str] = (),
) -> FieldSelector:
    """`?fieldSelector=`; given the resource's kind, also refuses fields that kind cannot
    be selected on, as kube-apiserver does before it lists or watches anything."""
    selector = FieldSelector.parse(text)
    if kind is None:
        return selector
    return selector.check(kind, group, custom=custom, namespaced=namespaced,
                          selectable=selectable)


def label_selector_string(selector: Mapping[str, Any] | None) -> str:
    """A metav1.LabelSelector in string form (a Scale's status.selector, kubectl's view)."""
    return str(LabelSelector.from_dict(selector or {}))
