"""Static bearer tokens, in kube-apiserver's `--token-auth-file` format.

Keeping upstream's format (`token,user,uid,"group1,group2"`) means an operator can
read, edit or reuse the file exactly as with kube-apiserver, and our components
(controllers, scheduler, agents) authenticate with their own token and user name
rather than sharing the admin's.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from nodeless.apiserver.pki import file_lock, write_atomic

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.csv"
ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)


@dataclass(frozen=True)
class UserInfo:
    """Who a token authenticates as; what authorization and audit see."""

    username: str
    uid: str
    groups: tuple[str, ...] = ()


def tokens_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKENS_FILE


def load_tokens(path: Path) -> dict[str, UserInfo]:
    """Token -> user. Malformed lines raise, as kube-apiserver refuses to start on them."""
    return {token: user for token, user in _read(path)}


def ensure_tokens(data_dir: Path) -> str:
    """The admin token, created (with the file) on first start."""
    return add_token(data_dir, ADMIN_USER, list(ADMIN_GROUPS))


def add_token(data_dir: Path, user: str, groups: list[str]) -> str:
    """The token of `user`, created if the user has none; components call this at every
    start, so it returns the existing token (updating its groups) instead of adding more."""
    if not user or any(c in user for c in "\r\n"):
        raise ValueError(f"invalid user name {user!r}")
    path = tokens_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(f".{path.name}.lock")):
        rows = _read(path) if path.exists() else []
        for i, (token, info) in enumerate(rows):
            if info.username == user:
                if info.groups != tuple(groups):
                    rows[i] = (token, UserInfo(user, info.uid, tuple(groups)))
                    _write(path, rows)
                return token
        token = secrets.token_urlsafe(32)
        rows.append((token, UserInfo(user, str(uuid.uuid4()), tuple(groups))))
        _write(path, rows)
        return token


def _read(path: Path) -> list[tuple[str, UserInfo]]:
    rows: list[tuple[str, UserInfo]] = []
    seen: set[str] = set()
    text = path.read_text(encoding="utf-8-sig")
    for lineno, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        fields = [f.strip() for f in record]
        if not fields or not any(fields) or fields[0].startswith("#"):
            continue
        if len(fields) < 3 or not fields[0] or not fields[1]:
            raise ValueError(f'{path}:{lineno}: want token,user,uid[,"groups"]')
        token, user, uid = fields[:3]
        groups = tuple(g.strip() for f in fields[3:] for g in f.split(",") if g.strip())
        if token in seen:
            log.warning("%s:%d: duplicate token; the later line wins", path, lineno)
            rows = [r for r in rows if r[0] != token]
        seen.add(token)
        rows.append((token, UserInfo(user, uid, groups)))
    return rows


def _write(path: Path, rows: list[tuple[str, UserInfo]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for token, info in rows:
        fields = [token, info.username, info.uid]
        if info.groups:
            fields.append(",".join(info.groups))
        writer.writerow(fields)
    write_atomic(path, buf.getvalue().encode(), 0o600)
