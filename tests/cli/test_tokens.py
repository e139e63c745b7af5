"""The tokens file is kube-apiserver's --token-auth-file, both ways."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nodeless.apiserver.tokens import (
    UserInfo,
    add_token,
    ensure_tokens,
    load_tokens,
    tokens_path,
)


def test_ensure_creates_admin_once(tmp_path: Path) -> None:
    token = ensure_tokens(tmp_path)
    path = tokens_path(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_tokens(tmp_path) == token
    users = load_tokens(path)
    assert list(users) == [token]
    admin = users[token]
    assert admin.username == "admin" and admin.groups == ("system:masters",) and admin.uid


def test_round_trip_with_groups(tmp_path: Path) -> None:
    admin = ensure_tokens(tmp_path)
    sched = add_token(tmp_path, "system:fargate-scheduler", ["nodeless:controllers", "g2"])
    agent = add_token(tmp_path, "system:node:host-1", ["system:nodes"])
    assert len({admin, sched, agent}) == 3
    assert add_token(tmp_path, "system:node:host-1", ["system:nodes"]) == agent
    text = tokens_path(tmp_path).read_text()
    assert f"{sched},system:fargate-scheduler," in text
    assert '"nodeless:controllers,g2"' in text  # the upstream quoting of several groups
    users = load_tokens(tokens_path(tmp_path))
    assert users[sched].groups == ("nodeless:controllers", "g2")
    assert users[agent] == UserInfo("system:node:host-1", users[agent].uid, ("system:nodes",))


def test_add_token_updates_groups(tmp_path: Path) -> None:
    token = add_token(tmp_path, "bob", ["a"])
    assert add_token(tmp_path, "bob", ["a", "b"]) == token
    assert load_tokens(tokens_path(tmp_path))[token].groups == ("a", "b")


def test_reads_hand_written_upstream_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('# comment\n\nt1,alice,1001\nt2,bob,1002,"dev,ops"\nt3, carol ,1003,single\n')
    users = load_tokens(path)
    assert users["t1"] == UserInfo("alice", "1001", ())
    assert users["t2"].groups == ("dev", "ops")
    assert users["t3"] == UserInfo("carol", "1003", ("single",))


def test_malformed_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("t1,alice\n")
    with pytest.raises(ValueError, match="tokens.csv:1"):
        load_tokens(path)
