"""Where a pod's network record lives, readable with nothing but `json` and `os`.

The CNI plugin reads these in a fresh interpreter for every sandbox, so every import here
is paid on each pod start: keep this module to the bare minimum (the typed view of a
record, Assignment, is in assignments.py for the agent's side).
"""

from __future__ import annotations

import json
import os


def record_path(pods_dir: str | os.PathLike[str], namespace: str, name: str) -> str:
    # Namespaces are DNS labels and pod names DNS subdomains: neither holds "_" or "/".
    return os.path.join(pods_dir, f"{namespace}_{name}.json")


def read_record(pods_dir: str | os.PathLike[str], namespace: str, name: str) -> dict | None:
    try:
        with open(record_path(pods_dir, namespace, name)) as file:
            return dict(json.load(file))
    except FileNotFoundError:
        return None
