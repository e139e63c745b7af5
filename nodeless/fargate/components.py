"""The Fargate components as `nodeless up` and `nodeless fargate run` start them.

    fargate-setup     CRDs (waits until Established), the VPC's Subnet objects, fp-default
    fargate-profiles  the profile controller (CREATING -> ACTIVE, DELETING -> gone)
    fargate-webhook   the admission webhook (`nodeless.fargate.admission`)
    eks-api           the EKS-compatible API (`nodeless.fargate.eksapi`)

They start in that order, each a client of the Kubernetes API only, with credentials of
their own (`prepare_local` makes them for `nodeless up`: a token for the user
`system:nodeless:fargate` and a kubeconfig in DATA_DIR/fargate/), never the admin's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from nodeless.apiserver import pki as pki_mod
from nodeless.apiserver.pki import write_atomic
from nodeless.apiserver.tokens import add_token
from nodeless.cli.kubeconfig import build_kubeconfig
from nodeless.cli.supervisor import Component
from nodeless.fargate import crds
from nodeless.fargate import vpc as vpc_mod
from nodeless.fargate.admission import webhook_component
from nodeless.fargate.eksapi import EksApiComponent
from nodeless.fargate.names import API_VERSION, PROFILE_FINALIZER
from nodeless.fargate.profiles.controller import ProfileController
from nodeless.fargate.resources import FargateProfile, Subnet
from nodeless.fargate.scheduler.component import scheduler_component
from nodeless.fargate.settings import FargateSettings
from nodeless.kube import async_client

log = logging.getLogger(__name__)

USER = "system:nodeless:fargate"
GROUPS = ["system:nodeless"]
FIELD_MANAGER = "nodeless-fargate"
DEFAULT_PROFILE = "fp-default"
DEFAULT_PROFILE_NAMESPACES = ("default", "kube-system")
VPC_LABEL = "fargate.nodeless.io/vpc-id"
"""On the Subnet objects setup publishes: which ones it owns (and may prune)."""


# ------------------------------------------------------------------ local credentials


def prepare_local(data_dir: Path, server_url: str, *, cluster: str, region: str,
                  **overrides: Any) -> FargateSettings:
    """Settings for the components inside `nodeless up`: their own token and kubeconfig
    (DATA_DIR/fargate/kubeconfig), the VPC of DATA_DIR/vpc.yaml (the default written there
    on first start), and TLS for the webhook and the EKS API issued by the cluster CA."""
    own = data_dir / "fargate"
    own.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = pki_mod.PKI.at(data_dir)
    token = add_token(data_dir, USER, GROUPS)
    kubeconfig = own / "kubeconfig"
    config = build_kubeconfig(server_url, pki.ca_pem(), token, cluster=cluster, user=USER)
    write_atomic(kubeconfig, yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
    sans = ["127.0.0.1", "localhost", "::1"]
    webhook_cert, webhook_key = pki_mod.ensure_leaf(pki, own / "webhook", "fargate-webhook", sans)
    eks_cert, eks_key = pki_mod.ensure_leaf(pki, own / "eks", "eks-api", sans)
    settings = FargateSettings(
        kubeconfig=kubeconfig,
        vpc=vpc_mod.load_vpc(data_dir / "vpc.yaml", cluster, region),
        cluster=cluster,
        region=region,
        state_dir=data_dir,
        webhook_cert=webhook_cert,
        webhook_key=webhook_key,
        webhook_ca=pki.ca_cert,
        eks_cert=eks_cert,
        eks_key=eks_key,
    )
    return dataclasses.replace(settings, **overrides)


# ------------------------------------------------------------------ setup


def default_profile(settings: FargateSettings) -> dict[str, Any]:
    """`fp-default`, as `eksctl create cluster --fargate` makes it: the namespaces default
    and kube-system, every private subnet, the default pod execution role."""
    return {
        "apiVersion": API_VERSION, "kind": "FargateProfile",
        "metadata": {"name": DEFAULT_PROFILE, "finalizers": [PROFILE_FINALIZER]},
        "spec": {
            "clusterName": settings.cluster,
            "podExecutionRoleArn": settings.default_role_arn,
            "subnets": [s.id for s in settings.vpc.private_subnets()],
            "selectors": [{"namespace": ns} for ns in DEFAULT_PROFILE_NAMESPACES],
            "tags": {},
        },
    }


def default_profile_marker(state_dir: Path) -> Path:
    """Exists once fp-default was made in this state dir (so it is made only once)."""
    return state_dir / "fargate" / "default-profile-created"


@dataclass
class SetupComponent:
    """Installs what the other Fargate components need, then stays (a component that
    returns counts as failed). Every step is idempotent, so restarts are harmless."""

    settings: FargateSettings
    install_crds: bool = True
    """False where the CRDs come from `deploy/crds.yaml` and the service account may not
    write CRDs: then setup only waits until they are served."""
    name: str = field(default="fargate-setup")

    async def run(self, ready: Callable[[], None]) -> None:
        client = async_client(self.settings.kubeconfig, field_manager=FIELD_MANAGER)
        try:
            await _retrying("installing the CRDs", lambda: self._crds(client))
            await _retrying("publishing the VPC's subnets", lambda: publish_subnets(
                client, self.settings.vpc))
            ready()
            # After ready, not before: on a restart the profile webhook registered last
            # time (failurePolicy Fail) answers only once its component, started after
            # this one, is up again; blocking here would wait for it forever.
            if self.settings.default_profile:
                await _retrying("creating fp-default", lambda: self._default_profile(client))
            await asyncio.Event().wait()
        finally:
            await client.close()

    async def _crds(self, client: AsyncClient) -> None:
        if self.install_crds:
            await install_crds(client)
        else:
            async for _ in client.list(FargateProfile, chunk_size=1):
                break  # served: the CRD is there and established

    async def _default_profile(self, client: AsyncClient) -> None:
        """Created once per state dir: a user who deletes fp-default keeps it deleted
        across restarts (the marker says it was made); `--no-default-profile` never makes it."""
        marker = default_profile_marker(self.settings.state_dir)
        if marker.exists():
            return
        try:
            await client.create(FargateProfile(default_profile(self.settings)))
            log.info("created the default Fargate profile %s", DEFAULT_PROFILE)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("fp-default was created; delete this file to have it made again\n")


async def install_crds(client: AsyncClient, timeout: float = 30.0) -> None:
    """Create or update nodeless's CRDs, delete the retired ones (`crds.RETIRED_CRDS`),
    and wait until the API server establishes the current ones."""
    for name in crds.RETIRED_CRDS:
        await _delete(client, CustomResourceDefinition, name, "no longer used")
    for crd in crds.all_crds():
        name = crd["metadata"]["name"]
        try:
            await client.create(codecs.from_dict(crd))
            log.info("installed CRD %s", name)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
            current = await client.get(CustomResourceDefinition, name)
            if _crd_spec_differs(current.to_dict()["spec"], crd["spec"]):
                updated = dict(crd, metadata={**crd["metadata"], "resourceVersion":
                                              current.metadata.resourceVersion})
                await client.replace(codecs.from_dict(updated))
                log.info("updated CRD %s", name)
    deadline = asyncio.get_running_loop().time() + timeout
    for crd in crds.all_crds():
        name = crd["metadata"]["name"]
        while not _established((await client.get(CustomResourceDefinition, name)).to_dict()):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"CRD {name} was not Established within {timeout:.0f}s")
            await asyncio.sleep(0.05)


def _crd_spec_differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Compare only what we set: the server adds defaults (conversion, preserveUnknown)."""
    def shape(spec: dict[str, Any]) -> Any:
        return (spec.get("group"), spec.get("scope"), spec.get("names", {}).get("kind"),
                spec.get("names", {}).get("shortNames"), [
                    (v.get("name"), v.get("schema"), v.get("additionalPrinterColumns"),
                     v.get("subresources")) for v in spec.get("versions") or []])
    return bool(shape(current) != shape(wanted))


def _established(crd: dict[str, Any]) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


async def publish_subnets(client: AsyncClient, vpc: vpc_mod.VPC) -> None:
    """Make the Subnet objects say what DATA_DIR/vpc.yaml says: create, update, and delete
    the ones setup published earlier that the file no longer has."""
    wanted = {s.id: vpc_mod.subnet_object(vpc, s) for s in vpc.subnets}
    existing = {s["metadata"]["name"]: s.to_dict() async for s in client.list(Subnet)}
    for name, obj in wanted.items():
        current = existing.get(name)
        if current is None:
            await client.create(Subnet(obj))
        elif current.get("spec") != obj["spec"] or \
                (current["metadata"].get("labels") or {}) != obj["metadata"]["labels"]:
            obj = {**obj, "metadata": {**obj["metadata"],
                                       "resourceVersion": current["metadata"]["resourceVersion"]}}
            await client.replace(Subnet(obj))
    for name, current in existing.items():
        if name not in wanted and VPC_LABEL in (current["metadata"].get("labels") or {}):
            await _delete(client, Subnet, name, "no longer in the VPC definition")


async def _delete(client: AsyncClient, resource: Any, name: str, why: str) -> None:
    """Delete a cluster-scoped object setup made and no longer wants; gone already is
    fine."""
    try:
        await client.delete(resource, name)
        log.info("deleted %s %s: %s", resource.__name__, name, why)
    except ApiError as exc:
        if exc.status.code != 404:
            raise


async def _retrying(what: str, step: Callable[[], Awaitable[None]], *,
                    max_delay: float = 10.0) -> None:
    """Run `step` until it succeeds: the API may still be starting (a Deployment's pod
    can come up before the CRDs are applied). Each failure is logged once per try."""
    delay = 0.1
    while True:
        try:
            await step()
            return
        except (ApiError, httpx.HTTPError, OSError, TimeoutError) as exc:
            detail = (f"{exc.status.code} {exc.status.message}" if isinstance(exc, ApiError)
                      else f"{type(exc).__name__}: {exc}")
            log.warning("%s failed (%s); trying again in %.1fs", what, detail, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)


# ------------------------------------------------------------------ controller


@dataclass
class ProfileControllerComponent:
    """The FargateProfile controller (nodeless/fargate/profiles/controller.py)."""

    settings: FargateSettings
    activation_delay: float = 0.0
    name: str = field(default="fargate-profiles")

    async def run(self, ready: Callable[[], None]) -> None:
        client = async_client(self.settings.kubeconfig, field_manager=FIELD_MANAGER)
        try:
            await ProfileController(client, self.settings,
                                    activation_delay=self.activation_delay).run(ready)
        finally:
            await client.close()


# ------------------------------------------------------------------ wiring


def fargate_components(settings: FargateSettings, *, install_crds: bool = True,
                       activation_delay: float = 0.0) -> list[Component]:
    """Setup, webhook, controller, scheduler, EKS API, in start order (each a client of
    the ones before it); the EKS API only when `settings.eks_port` is set. The webhook
    comes before the profile controller: a profile turns ACTIVE only once the pods it
    matches are mutated (a pod created in between would go to the default scheduler)."""
    components: list[Component] = [
        SetupComponent(settings, install_crds=install_crds),
        webhook_component(settings),
        ProfileControllerComponent(settings, activation_delay=activation_delay),
        scheduler_component(settings),
    ]
    if settings.eks_port is not None:
        components.append(EksApiComponent(settings))
    return components
