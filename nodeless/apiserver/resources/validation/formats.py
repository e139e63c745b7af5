"""The rest of apimachinery's string formats (names and labels are in `names`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import byte_len, max_len_chars, regex_error
from nodeless.apiserver.resources.validation.field import invalid

_CONFIG_KEY = "[-._a-zA-Z0-9]+"
_PERCENT = "[0-9]+%"
_HTTP_HEADER = "[-A-Za-z0-9]+"

_config_key_re = re.compile(_CONFIG_KEY + r"\Z")
_percent_re = re.compile(_PERCENT + r"\Z")
_http_header_re = re.compile(_HTTP_HEADER + r"\Z")
_port_name_charset_re = re.compile(r"[-a-z0-9]+\Z")
_port_name_letter_re = re.compile(r"[a-z]")


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errs = []
    if byte_len(value) > 253:
        errs.append(max_len_chars(253))
    if not _config_key_re.match(value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, "
                                "'-', '_' or '.'", _CONFIG_KEY, "key.name", "KEY_NAME",
                                "key-name"))
    return errs + _chdir_prefix(value)


def is_valid_port_num(port: Any) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if len(port) > 15:
        errs.append(max_len_chars(15))
    if not _port_name_charset_re.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _port_name_letter_re.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def is_relaxed_env_var_name(value: str) -> list[str]:
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    for ch in value:
        if ord(ch) > 127 or not ch.isprintable() or ch == "=":
            errs.append("a valid environment variable name must consist only of printable "
                        "ASCII characters other than '='")
            break
    return errs


def is_valid_ip(value: Any) -> bool:
    """net.ParseIP, sloppily: IPv4 components with leading zeros are accepted."""
    if not isinstance(value, str) or not value:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    parts = value.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)


_IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MESSAGE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _ip_errors(path: str, value: Any) -> list[FieldError]:
    return [] if is_valid_ip(value) else [invalid(path, value, _IP_MESSAGE)]


def _cidr_errors(path: str, value: Any) -> list[FieldError]:
    try:
        ipaddress.ip_network(str(value), strict=False)
        return []
    except ValueError:
        return [invalid(path, value, _CIDR_MESSAGE)]
