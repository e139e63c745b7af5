"""The AWS CLI's INI files that make boto3 and `aws` talk to nodeless's EKS API.

`nodeless up` writes DATA_DIR/aws/credentials (an access key pair, made once and kept, so
scripts and other shells keep working across restarts) and DATA_DIR/aws/config (region,
CA bundle and the EKS endpoint, rewritten at every start because the port may change).
With `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` pointed there, `boto3.client("eks")`
and `aws eks ...` reach nodeless with no other setting.

The endpoint is set for the `eks` service only, through a `services` section (botocore
>= 1.31 and the AWS CLI v1 both read it), so other services in the same profile are not
redirected. The server accepts exactly the key pairs the credentials file holds.
"""

from __future__ import annotations

import configparser
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodeless.apiserver.pki import write_atomic

PROFILE = "default"
SERVICES_SECTION = "nodeless"
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def aws_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "aws"


def credentials_path(data_dir: Path) -> Path:
    return aws_dir(data_dir) / "credentials"


def config_path(data_dir: Path) -> Path:
    return aws_dir(data_dir) / "config"


@dataclass(frozen=True)
class AwsFiles:
    """What the two files say, for clients that must not depend on the caller's
    environment (the `nodeless profile` CLI): an AWS_ACCESS_KEY_ID or AWS_PROFILE left
    in a user's shell must not send nodeless's requests elsewhere, or theirs to us."""

    access_key_id: str
    secret_access_key: str
    region: str
    endpoint_url: str
    ca_bundle: Path | None


def ensure_aws_files(data_dir: Path, region: str, eks_url: str, *,
                     ca_bundle: Path | None = None) -> tuple[str, str]:
    """Write DATA_DIR/aws/{credentials,config} (0600) and return the default key pair.

    The key pair already in the credentials file is kept; the config file is written
    anew each time (it carries the endpoint URL, whose port may change between starts).
    `ca_bundle` is the CA that signed the EKS API's certificate (None for plain HTTP).
    """
    directory = aws_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pairs = read_credentials(credentials_path(data_dir), profiles=(PROFILE,))
    if pairs:
        key_id, secret = next(iter(pairs.items()))
    else:
        key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
        write_atomic(credentials_path(data_dir), (
            "# nodeless's EKS API accepts the key pairs of this file (SigV4, service eks).\n"
            f"[{PROFILE}]\n"
            f"aws_access_key_id = {key_id}\n"
            f"aws_secret_access_key = {secret}\n").encode(), 0o600)
    lines = [
        "# Written by nodeless at every start (edits are replaced): the EKS API of this",
        "# data dir. Use: export AWS_CONFIG_FILE=<this file> "
        "AWS_SHARED_CREDENTIALS_FILE=<the credentials file beside it>",
        f"[{PROFILE}]",
        f"region = {region}",
        "output = json",
    ]
    if ca_bundle is not None:
        lines.append(f"ca_bundle = {Path(ca_bundle).resolve()}")
    lines += [
        f"services = {SERVICES_SECTION}",
        "",
        f"[services {SERVICES_SECTION}]",
        "eks =",
        f"  endpoint_url = {eks_url}",
        "",
    ]
    write_atomic(config_path(data_dir), "\n".join(lines).encode(), 0o600)
    return key_id, secret


def read_credentials(path: Path, profiles: tuple[str, ...] | None = None) -> dict[str, str]:
    """access key id -> secret for every profile of `path` (or just `profiles`) that has
    both keys; empty when the file is missing or unreadable."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(Path(path).read_text())
    except (OSError, configparser.Error):
        return {}
    pairs = {}
    for section in parser.sections():
        if profiles is not None and section not in profiles:
            continue
        key_id = parser.get(section, "aws_access_key_id", fallback="").strip()
        secret = parser.get(section, "aws_secret_access_key", fallback="").strip()
        if key_id and secret:
            pairs[key_id] = secret
    return pairs


def load_aws_files(data_dir: Path) -> AwsFiles:
    """The default profile's keys, region, EKS endpoint and CA bundle; FileNotFoundError
    (naming the file) when nodeless has not written them yet."""
    cred_file, conf_file = credentials_path(data_dir), config_path(data_dir)
    pairs = read_credentials(cred_file, profiles=(PROFILE,))
    if not pairs:
        raise FileNotFoundError(f"no AWS credentials in {cred_file}: start `nodeless up` first")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(conf_file.read_text())
    except (OSError, configparser.Error) as exc:
        raise FileNotFoundError(f"cannot read {conf_file}: {exc}") from exc
    profile = parser[PROFILE] if parser.has_section(PROFILE) else {}
    section = f"services {profile.get('services', SERVICES_SECTION)}"
    nested = parser.get(section, "eks", fallback="") if parser.has_section(section) else ""
    endpoint = ""
    for line in nested.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "endpoint_url":
            endpoint = value.strip()
    if not endpoint:
        raise FileNotFoundError(f"{conf_file} names no EKS endpoint: start `nodeless up` first")
    key_id, secret = next(iter(pairs.items()))
    ca = profile.get("ca_bundle")
    return AwsFiles(key_id, secret, str(profile.get("region", "us-east-1")), endpoint,
                    Path(ca) if ca else None)


def eks_client(data_dir: Path, **overrides: Any) -> Any:
    """A boto3 `eks` client for the EKS API of `data_dir`, whatever the environment says:
    profile, files, keys, region, endpoint and CA are all set from the data dir's files
    (`overrides` replace any of boto3's client arguments)."""
    import boto3
    import botocore.session

    files = load_aws_files(data_dir)
    core = botocore.session.Session()
    core.set_config_variable("config_file", str(config_path(data_dir)))
    core.set_config_variable("credentials_file", str(credentials_path(data_dir)))
    core.set_config_variable("profile", PROFILE)
    arguments: dict[str, Any] = {
        "region_name": files.region, "endpoint_url": files.endpoint_url,
        "verify": str(files.ca_bundle) if files.ca_bundle else True,
        "aws_access_key_id": files.access_key_id,
        "aws_secret_access_key": files.secret_access_key,
        **overrides}
    return boto3.session.Session(botocore_session=core).client("eks", **arguments)
