"""The FargateProfile controller against a real API server (CRDs and Subnets installed
by the setup code `nodeless up` runs): states, health issues, deletion of a profile's
pods, events, restarts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status
from lightkube.resources.core_v1 import Event, Namespace, Pod
from lightkube.types import PatchType

from nodeless.fargate.names import PROFILE_ANNOTATION, PROFILE_FINALIZER
from nodeless.fargate.profiles.controller import ProfileController
from nodeless.fargate.resources import FargateProfile, Subnet
from nodeless.fargate.settings import FargateSettings
from nodeless.fargate.vpc import VPC, SubnetSpec, default_vpc, subnet_object
from nodeless.kube import async_client
from nodeless.workqueue import WorkQueue
from tests.fixtures.apiserver import RunningAPIServer
from tests.fixtures.fargate import fargate_apiserver

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROLE = "arn:aws:iam::123456789012:role/pods"
VPC_DEF = default_vpc("test", "us-east-1")
PRIVATE = [s.id for s in VPC_DEF.private_subnets()]
PUBLIC = next(s.id for s in VPC_DEF.subnets if not s.private)
OTHER_VPC = VPC("vpc-0other", "10.1.0.0/16", (SubnetSpec("subnet-0elsewhere", "10.1.0.0/24",
                                                          "us-east-1a"),))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    async def other_vpc_subnet(client: AsyncClient) -> None:
        # A subnet of another VPC, not published by setup (so not pruned by it).
        await client.create(Subnet(subnet_object(OTHER_VPC, OTHER_VPC.subnets[0])
                                   | {"metadata": {"name": "subnet-0elsewhere"}}))

    with fargate_apiserver(tmp_path_factory.mktemp("controller"), vpc=VPC_DEF,
                           setup=other_vpc_subnet) as running:
        yield running


@pytest.fixture
def settings(server: RunningAPIServer, tmp_path: Path) -> FargateSettings:
    return FargateSettings(kubeconfig=server.kubeconfig, vpc=VPC_DEF, cluster="test",
                           account_id="123456789012", state_dir=tmp_path)


@pytest.fixture
async def client(server: RunningAPIServer) -> AsyncIterator[AsyncClient]:
    c = async_client(server.kubeconfig)
    yield c
    # Leave no profile behind for the next test (their finalizers need a controller).
    async for p in c.list(FargateProfile):
        with contextlib.suppress(ApiError):
            await c.patch(FargateProfile, p["metadata"]["name"],
                          {"metadata": {"finalizers": None}}, patch_type=PatchType.MERGE)
            await c.delete(FargateProfile, p["metadata"]["name"])
    await c.close()


@contextlib.asynccontextmanager
async def controller(client: AsyncClient, settings: FargateSettings,
                     **kwargs: Any) -> AsyncIterator[ProfileController]:
    ctl = ProfileController(client, settings, **kwargs)
    ready = asyncio.Event()
    task = asyncio.create_task(ctl.run(ready.set))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield ctl
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def profile(name: str, *, subnets: list[str] | None = None,
            namespaces: tuple[str, ...] = ("apps",)) -> FargateProfile:
    return FargateProfile({
        "apiVersion": "fargate.nodeless.io/v1", "kind": "FargateProfile",
        "metadata": {"name": name},
        "spec": {"podExecutionRoleArn": ROLE, "subnets": PRIVATE if subnets is None else subnets,
                 "selectors": [{"namespace": ns} for ns in namespaces]}})


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def state(client: AsyncClient, name: str) -> str | None:
    try:
        p = await client.get(FargateProfile, name)
    except ApiError as exc:
        if exc.status.code == 404:
            return "GONE"
        raise
    return (p.get("status") or {}).get("status")


async def reasons(client: AsyncClient, name: str) -> list[str]:
    return [e.reason or "" async for e in client.list(Event, namespace="default")
            if e.involvedObject.name == name and e.involvedObject.kind == "FargateProfile"]


async def test_creating_then_active(client: AsyncClient, settings: FargateSettings) -> None:
    async with controller(client, settings, activation_delay=0.6):
        created = await client.create(profile("web"))
        uid = created.metadata.uid
        await until(lambda: _is(client, "web", "CREATING"))
        p = (await client.get(FargateProfile, "web")).to_dict()
        assert p["status"]["fargateProfileArn"] == (
            f"arn:aws:eks:us-east-1:123456789012:fargateprofile/test/web/{uid}")
        assert p["status"]["createdAt"] and p["status"]["observedGeneration"] == 1
        assert p["status"]["health"] == {"issues": []}
        assert PROFILE_FINALIZER in p["metadata"]["finalizers"]
        await until(lambda: _is(client, "web", "ACTIVE"))
    assert await reasons(client, "web") == ["Creating", "Active"]


async def test_profile_without_subnets_is_active(client: AsyncClient,
                                                 settings: FargateSettings) -> None:
    """An empty subnet list means every private subnet, as EKS fills it in."""
    async with controller(client, settings):
        await client.create(profile("all-private", subnets=[]))
        await until(lambda: _is(client, "all-private", "ACTIVE"))


@pytest.mark.parametrize(("subnet", "code", "words"), [
    (PUBLIC, "Ec2SubnetInvalidConfiguration", "is a public subnet"),
    ("subnet-0doesnotexist00", "Ec2SubnetNotFound", "does not exist"),
    ("subnet-0elsewhere", "Ec2SubnetInvalidConfiguration", "not the cluster's VPC"),
])
async def test_bad_subnet_fails_creation(client: AsyncClient, settings: FargateSettings,
                                         subnet: str, code: str, words: str) -> None:
    name = f"bad-{code.lower()}-{len(words)}"
    async with controller(client, settings):
        await client.create(profile(name, subnets=[PRIVATE[0], subnet]))
        await until(lambda: _is(client, name, "CREATE_FAILED"))
    issues = (await client.get(FargateProfile, name))["status"]["health"]["issues"]
    assert len(issues) == 1
    assert issues[0]["code"] == code and issues[0]["resourceIds"] == [subnet]
    assert subnet in issues[0]["message"] and words in issues[0]["message"]
    assert await reasons(client, name) == ["Creating", "CreateFailed"]


async def test_deletion_deletes_the_profiles_pods(client: AsyncClient,
                                                  settings: FargateSettings) -> None:
    for ns in ("apps", "jobs"):
        with contextlib.suppress(ApiError):
            await client.create(Namespace(metadata={"name": ns}))
    pods = {("apps", "a1"): "doomed", ("jobs", "j1"): "doomed", ("apps", "k1"): "kept",
            ("apps", "plain"): None}
    for (ns, name), owner in pods.items():
        await client.create(_pod(name, ns, owner))
    # One of them is bound to a node and so terminates gracefully: DELETING lasts until
    # its grace is over (nobody runs it here, so it is force-deleted after that).
    await client.create(_pod("bound", "apps", "doomed", node="fargate-ip-10-0-0-9"))
    async with controller(client, settings, force_delete_after=0.3):
        await client.create(profile("doomed", namespaces=("apps", "jobs")))
        await client.create(profile("kept", namespaces=("apps",)))
        await until(lambda: _is(client, "kept", "ACTIVE"))
        await until(lambda: _is(client, "doomed", "ACTIVE"))
        await client.delete(FargateProfile, "doomed")
        await until(lambda: _is(client, "doomed", "DELETING"))
        await until(lambda: _is(client, "doomed", "GONE"))
        left = {(p.metadata.namespace, p.metadata.name)
                async for p in client.list(Pod, namespace="*")}
        assert ("apps", "k1") in left and ("apps", "plain") in left
        assert not left & {("apps", "a1"), ("jobs", "j1"), ("apps", "bound")}
        assert await state(client, "kept") == "ACTIVE"
    assert await reasons(client, "doomed") == ["Creating", "Active", "Deleting", "Deleted"]
    for ns, name in (("apps", "k1"), ("apps", "plain")):
        await client.delete(Pod, name, namespace=ns)


async def test_pods_that_cannot_be_deleted_fail_deletion(client: AsyncClient,
                                                         settings: FargateSettings) -> None:
    with contextlib.suppress(ApiError):
        await client.create(Namespace(metadata={"name": "apps"}))
    await client.create(_pod("stuck", "apps", "sticky"))
    refuse = True
    real_delete = client.delete

    async def delete(res: Any, name: str, **kwargs: Any) -> Any:
        if res is Pod and refuse:
            raise _api_error(403, "Forbidden", 'pods "stuck" is forbidden: not today')
        return await real_delete(res, name, **kwargs)

    async with controller(client, settings):
        await client.create(profile("sticky"))
        await until(lambda: _is(client, "sticky", "ACTIVE"))
        client.delete = delete  # type: ignore[method-assign]
        await real_delete(FargateProfile, "sticky")
        await until(lambda: _is(client, "sticky", "DELETE_FAILED"))
        p = await client.get(FargateProfile, "sticky")
        issue = p["status"]["health"]["issues"][0]
        assert issue["code"] == "PodDeletionFailed"
        assert "apps/stuck" in issue["message"] and "not today" in issue["message"]
        refuse = False  # the cause is fixed: the retry finishes the job
        await until(lambda: _is(client, "sticky", "GONE"), timeout=15)
    client.delete = real_delete  # type: ignore[method-assign]
    assert "DeleteFailed" in await reasons(client, "sticky")


async def test_restart_safety(client: AsyncClient, settings: FargateSettings) -> None:
    """What happened while no controller ran is picked up at start; running the same
    steps twice (two controllers at once) makes no second transition."""
    with contextlib.suppress(ApiError):
        await client.create(Namespace(metadata={"name": "apps"}))
    async with controller(client, settings):
        await client.create(profile("first"))
        await until(lambda: _is(client, "first", "ACTIVE"))
    await client.create(_pod("p1", "apps", "first"))
    await client.delete(FargateProfile, "first")  # while no controller runs
    await client.create(profile("second"))
    assert await state(client, "first") is not None
    async with controller(client, settings), controller(client, settings):
        await until(lambda: _is(client, "first", "GONE"))
        await until(lambda: _is(client, "second", "ACTIVE"))
        await asyncio.sleep(0.3)
    assert await reasons(client, "second") == ["Creating", "Active"]
    assert await reasons(client, "first") == ["Creating", "Active", "Deleting", "Deleted"]
    with pytest.raises(ApiError):
        await client.get(Pod, "p1", namespace="apps")


# ---------------------------------------------------------------------- helpers


async def _is(client: AsyncClient, name: str, wanted: str) -> bool:
    return await state(client, name) == wanted


def _pod(name: str, namespace: str, profile_name: str | None, node: str | None = None) -> Pod:
    annotations = {PROFILE_ANNOTATION: profile_name} if profile_name else {}
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}],
                            "terminationGracePeriodSeconds": 1}
    if node:
        spec["nodeName"] = node
    return Pod.from_dict({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": name, "namespace": namespace,
                                       "annotations": annotations},
                          "spec": spec})


def _api_error(code: int, reason: str, message: str) -> ApiError:
    import httpx

    response = httpx.Response(code, json={"kind": "Status", "apiVersion": "v1", "code": code,
                                          "reason": reason, "message": message},
                              request=httpx.Request("DELETE", "https://x"))
    error = ApiError(response=response)
    error.status = Status(code=code, reason=reason, message=message)
    return error


async def test_work_queue_runs_a_key_once_at_a_time() -> None:
    queue = WorkQueue(base_delay=0.01, max_delay=0.04)
    queue.add("a")
    queue.add("a")  # deduplicated while waiting
    queue.add("b")
    assert len(queue) == 2
    assert await queue.get() == "a"
    queue.add("a")  # dirty while processing: not handed out twice at once
    assert await queue.get() == "b"
    assert len(queue) == 0
    queue.done("a")  # now it runs again
    assert await asyncio.wait_for(queue.get(), 1) == "a"
    queue.done("a")
    queue.done("b")
    delays = [queue.retry("c") for _ in range(5)]
    assert delays[0] < delays[2] and max(delays) <= 0.04 * 1.2
    assert await asyncio.wait_for(queue.get(), 1) == "c"
    queue.close()
