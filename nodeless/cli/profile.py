"""`nodeless profile create|list|describe|delete`: Fargate profiles from the shell.

A thin client of nodeless's EKS-compatible API through boto3, configured only by the
data dir's AWS files (DATA_DIR/aws/{credentials,config}), never by the caller's AWS
environment: an AWS_PROFILE or AWS_ACCESS_KEY_ID exported for real AWS must not send
these requests there. So what it does is exactly what `aws eks ...` does against nodeless.

Mounted in `nodeless.cli.main` as `app.add_typer(profile_app, name="profile")`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nodeless.fargate.eksapi.credentials import eks_client
from nodeless.fargate.settings import FargateSettings

DEFAULT_DATA_DIR = Path("~/.local/share/nodeless")
"""The same default as `nodeless up` (nodeless.cli.main, not imported: it mounts us)."""
DEFAULT_ROLE_ARN = str(next(f.default for f in dataclasses.fields(FargateSettings)
                            if f.name == "default_role_arn"))

profile_app = typer.Typer(
    name="profile",
    help="Fargate profiles: which pods run on Fargate (through the EKS-compatible API).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="NODELESS_DATA_DIR", show_default=False,
    help="State of the nodeless instance (default ~/.local/share/nodeless).")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", show_default=False,
    help="Cluster name (default: the one nodeless up runs).")]


class Failed(Exception):
    """What the user must read, printed as is; exit code 1."""


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(1)


def _client(data_dir: Path | None) -> tuple[Any, Path]:
    directory = (data_dir or DEFAULT_DATA_DIR).expanduser()
    try:
        return eks_client(directory), directory
    except FileNotFoundError as exc:
        raise Failed(str(exc)) from exc


def _cluster(client: Any, directory: Path, cluster: str | None) -> str:
    if cluster:
        return cluster
    try:
        named = json.loads((directory / "endpoints.json").read_text()).get("cluster")
    except (OSError, ValueError):
        named = None
    if named:
        return str(named)
    clusters = client.list_clusters().get("clusters") or []
    if not clusters:
        raise Failed("the EKS API knows no cluster")
    return str(clusters[0])


def _call(action: Any) -> Any:
    """Run an AWS call, turning AWS's refusals into their message and a non-zero exit."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        return action()
    except Failed as exc:
        raise _fail(str(exc)) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise _fail(f"{error.get('Message') or exc} ({error.get('Code', '?')})") from None
    except EndpointConnectionError as exc:
        raise _fail(f"cannot reach the EKS API at {exc.kwargs.get('endpoint_url')}: is "
                    "nodeless running? (`nodeless status`)") from None
    except BotoCoreError as exc:
        raise _fail(str(exc)) from None


def _labels(text: str) -> dict[str, str]:
    labels = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--labels")
        labels[key.strip()] = value.strip()
    return labels


def _list_option(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@profile_app.command()
def create(
    name: Annotated[str, typer.Argument(help="Profile name.")],
    namespace: Annotated[list[str], typer.Option(
        "--namespace", "-n",
        help="A selector's namespace (* and ? allowed); repeat for up to 5 selectors.")],
    labels: Annotated[list[str] | None, typer.Option(
        "--labels", "-l",
        help="k=v,... for the selector of the --namespace at the same position.")] = None,
    subnets: Annotated[list[str] | None, typer.Option(
        "--subnets", help="Private subnet ids, comma-separated or repeated "
                          "(default: every private subnet).")] = None,
    role_arn: Annotated[str, typer.Option(
        "--role-arn", help="Pod execution role ARN.")] = DEFAULT_ROLE_ARN,
    tags: Annotated[str | None, typer.Option("--tags", help="k=v,... tags.")] = None,
    cluster: ClusterOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a Fargate profile (it starts CREATING; `describe` shows when it is ACTIVE)."""
    label_sets = labels or []
    if len(label_sets) > len(namespace):
        raise _fail(f"{len(label_sets)} --labels for {len(namespace)} --namespace: each "
                    "--labels belongs to the --namespace at the same position")
    selectors: list[dict[str, Any]] = []
    for i, ns in enumerate(namespace):
        selector: dict[str, Any] = {"namespace": ns}
        if i < len(label_sets) and _labels(label_sets[i]):
            selector["labels"] = _labels(label_sets[i])
        selectors.append(selector)
    request: dict[str, Any] = {"fargateProfileName": name, "podExecutionRoleArn": role_arn,
                               "selectors": selectors}
    if _list_option(subnets):
        request["subnets"] = _list_option(subnets)
    if tags:
        request["tags"] = _labels(tags)

    def run() -> dict[str, Any]:
        client, directory = _client(data_dir)
        request["clusterName"] = _cluster(client, directory, cluster)
        return dict(client.create_fargate_profile(**request)["fargateProfile"])

    profile = _call(run)
    out.print(f"Fargate profile [bold]{escape(name)}[/] is {profile.get('status')}",
              highlight=False)
    out.print(_details(profile))


@profile_app.command("list")
def list_(cluster: ClusterOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the cluster's Fargate profiles with their state and selectors."""
    def run() -> list[dict[str, Any]]:
        client, directory = _client(data_dir)
        name = _cluster(client, directory, cluster)
        pages = client.get_paginator("list_fargate_profiles").paginate(clusterName=name)
        names = [n for page in pages for n in page.get("fargateProfileNames", [])]
        return [dict(client.describe_fargate_profile(
            clusterName=name, fargateProfileName=n)["fargateProfile"]) for n in names]

    profiles = _call(run)
    table = Table(title="Fargate profiles", title_justify="left")
    for column in ("NAME", "STATUS", "SELECTORS", "SUBNETS", "CREATED"):
        table.add_column(column)
    for p in profiles:
        table.add_row(escape(p.get("fargateProfileName", "")), _state(p.get("status", "")),
                      _selectors(p.get("selectors") or []),
                      "\n".join(p.get("subnets") or []), _when(p.get("createdAt")))
    out.print(table)


@profile_app.command()
def describe(name: Annotated[str, typer.Argument(help="Profile name.")],
             cluster: ClusterOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show one Fargate profile: state, role, subnets, selectors, tags, health issues."""
    def run() -> dict[str, Any]:
        client, directory = _client(data_dir)
        return dict(client.describe_fargate_profile(
            clusterName=_cluster(client, directory, cluster),
            fargateProfileName=name)["fargateProfile"])

    out.print(_details(_call(run)))


@profile_app.command()
def delete(
    name: Annotated[str, typer.Argument(help="Profile name.")],
    wait: Annotated[bool, typer.Option(
        "--wait", help="Return once the profile is gone (its pods deleted).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    cluster: ClusterOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete a Fargate profile; the pods scheduled through it are deleted with it."""
    def run() -> tuple[Any, str, dict[str, Any]]:
        client, directory = _client(data_dir)
        name_of_cluster = _cluster(client, directory, cluster)
        deleted = client.delete_fargate_profile(clusterName=name_of_cluster,
                                                fargateProfileName=name)["fargateProfile"]
        return client, name_of_cluster, dict(deleted)

    client, name_of_cluster, profile = _call(run)
    out.print(f"Fargate profile [bold]{escape(name)}[/] is {profile.get('status')}",
              highlight=False)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    with err.status(f"waiting for {name} to be deleted ..."):
        while True:
            gone = _call(lambda: _gone(client, name_of_cluster, name))
            if gone is True:
                break
            if gone == "DELETE_FAILED":
                raise _fail(f"deleting {name} failed (DELETE_FAILED); see `nodeless profile "
                            f"describe {name}`")
            if time.monotonic() > deadline:
                raise _fail(f"{name} was still {gone} after {timeout:.0f}s")
            time.sleep(0.5)
    out.print(f"Fargate profile [bold]{escape(name)}[/] deleted", highlight=False)


def _gone(client: Any, cluster: str, name: str) -> bool | str:
    """True once the profile is gone, else its state."""
    try:
        return str(client.describe_fargate_profile(
            clusterName=cluster, fargateProfileName=name)["fargateProfile"].get("status"))
    except client.exceptions.ResourceNotFoundException:
        return True


def _details(p: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=p.get("fargateProfileName"), title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("status", _state(p.get("status", "")))
    for key, value in (
        ("arn", p.get("fargateProfileArn", "")),
        ("cluster", p.get("clusterName", "")),
        ("pod execution role", p.get("podExecutionRoleArn", "")),
        ("subnets", "\n".join(p.get("subnets") or [])),
    ):
        table.add_row(key, escape(str(value)))
    table.add_row("selectors", _selectors(p.get("selectors") or []))
    tags = p.get("tags") or {}
    table.add_row("tags", escape(", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "-"))
    table.add_row("created", _when(p.get("createdAt")))
    issues = (p.get("health") or {}).get("issues") or []
    if issues:
        table.add_row("health", escape("\n".join(f"{i.get('code')}: {i.get('message')}"
                                                  for i in issues)))
    return table


def _selectors(selectors: list[dict[str, Any]]) -> str:
    lines = []
    for s in selectors:
        labels = s.get("labels") or {}
        text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        lines.append(f"{s.get('namespace')}" + (f" [{text}]" if text else ""))
    return escape("\n".join(lines))


def _state(status: str) -> str:
    color = {"ACTIVE": "green", "CREATING": "yellow", "DELETING": "yellow"}.get(status, "red")
    return f"[{color}]{status}[/]"


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")
