"""Names and labels as apimachinery checks them, with its exact messages.

One copy of util/validation (`IsDNS1123Label`, `IsDNS1123Subdomain`, `IsDNS1035Label`,
`RegexError`) and api/validate/content (`IsLabelKey`, `IsLabelValue`), for every caller:
object validation, label selectors and webhook configurations all word a bad name as
kube does, so they must not drift apart. Also Go's `%q`, with which those messages (and
the field errors around them) quote a value.

It imports nothing of ours, so any module can use it without an import cycle.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """strconv.Quote: Go's `%q` of a string."""
    out = ['"']
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_string_slice(values: Iterable[object] | None, type_name: str = "[]string") -> str:
    """%#v of a []string; nil prints as `[]string(nil)`."""
    if values is None:
        return f"{type_name}(nil)"
    return type_name + "{" + ", ".join(go_quote(str(v)) for v in values) + "}"


def regex_error(msg: str, regex: str, *examples: str) -> str:
    """RegexError: the message with examples and the regex used, down to its double
    space before each 'or'."""
    if not examples:
        return f"{msg} (regex used for validation is '{regex}')"
    shown = " or ".join(f"'{ex}', " for ex in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{regex}')"


def byte_len(value: str) -> int:
    """Go's len() of a string: its UTF-8 bytes, which is what every limit here counts."""
    return len(value.encode())


# util/validation says "characters"; api/validate/content (label keys/values) "bytes".
def max_len_chars(n: int) -> str:
    return f"must be no more than {n} characters"


def _max_len_bytes(n: int) -> str:
    return f"must be no more than {n} bytes"


def _remembered(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """`check`, remembering its answers for the last few thousand values: the same label
    keys, values and names come by on every write. Each call gets a list of its own."""
    answers = functools.lru_cache(maxsize=4096)(lambda value: tuple(check(value)))

    @functools.wraps(check)
    def remembered(value: str) -> list[str]:
        if type(value) is not str:
            return check(value)
        return list(answers(value))

    return remembered


_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _LABEL_KEY + ")?"

_dns1123_label_re = re.compile(_DNS1123_LABEL + r"\Z")
_dns1123_subdomain_re = re.compile(_DNS1123_SUBDOMAIN + r"\Z")
_dns1035_label_re = re.compile(_DNS1035_LABEL + r"\Z")
_label_key_re = re.compile(_LABEL_KEY + r"\Z")
_label_value_re = re.compile(_LABEL_VALUE + r"\Z")

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character")
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
                  "and end with an alphanumeric character")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character")


@_remembered
def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if byte_len(value) > 63:
        errs.append(max_len_chars(63))
    if not _dns1123_label_re.match(value):
        if _dns1123_subdomain_re.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str, *, content: bool = False) -> list[str]:
    """IsDNS1123Subdomain; `content` words the length limit as api/validate/content does
    (the prefix of a label key)."""
    return (_dns1123_subdomain_content if content else _dns1123_subdomain)(value)


@_remembered
def _dns1123_subdomain_content(value: str) -> list[str]:
    return _check_dns1123_subdomain(value, content=True)


@_remembered
def _dns1123_subdomain(value: str) -> list[str]:
    return _check_dns1123_subdomain(value, content=False)


def _check_dns1123_subdomain(value: str, *, content: bool) -> list[str]:
    errs = []
    if byte_len(value) > 253:
        errs.append(_max_len_bytes(253) if content else max_len_chars(253))
    if not _dns1123_subdomain_re.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN, "example.com"))
    return errs


@_remembered
def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if byte_len(value) > 63:
        errs.append(max_len_chars(63))
    if not _dns1035_label_re.match(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL, "my-name", "abc-123"))
    return errs


@_remembered
def is_qualified_name(value: str) -> list[str]:
    """IsLabelKey (IsQualifiedName): an optional DNS subdomain prefix, '/', and a name."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix, content=True))
    else:
        return ["a valid label key " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY, "MyName",
                                                   "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif byte_len(name) > 63:
        errs.append("name part " + _max_len_bytes(63))
    if not _label_key_re.match(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY, "MyName", "my.name",
                                               "123-abc"))
    return errs


@_remembered
def is_label_value(value: str) -> list[str]:
    """IsValidLabelValue."""
    errs = []
    if byte_len(value) > 63:
        errs.append(_max_len_bytes(63))
    if not _label_value_re.match(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errs
