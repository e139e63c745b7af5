"""Kubernetes protobuf request bodies, checked against the real kubectl 1.37.

The oracle: for each typed command kubectl sends a protobuf body to a small recording
server; the same command with `--dry-run=client -o json` prints, via Go's
encoding/json, the very object it would have sent. Decoding the captured body must
give exactly that JSON: the decoder follows encoding/json (zero values unless
`omitempty`, `{}` for nested structs, `null` creationTimestamp omitted by `omitzero`),
so the comparison is plain equality, with no fields excused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeless.apiserver import errors
from nodeless.apiserver.http import protobuf
from nodeless.apiserver.http.discovery import add_discovery_routes
from nodeless.apiserver.http.protobuf import decode_protobuf_body
from nodeless.apiserver.resources.registry import Registry, ResourceType

on_server_loop = pytest.mark.asyncio(loop_scope="session")  # the loop `api` lives on

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")
PROTOBUF = "application/vnd.kubernetes.protobuf"


# --- a server that records what kubectl sends -------------------------------------------

@dataclass
class Sent:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class RecordingServer:
    """Discovery from the real module; resources are echoed back and kept for GETs."""

    kubeconfig: Path
    cache: Path
    sent: list[Sent] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def kubectl(self, *args: str, check: bool = True) -> str:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache),
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(self.cache.parent)},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        if check:
            assert proc.returncode == 0, err.decode()
        return out.decode()

    async def create(self, *args: str, sends: str = PROTOBUF) -> dict[str, Any]:
        """Run a typed command; the decoded body must equal its client dry-run JSON."""
        before = len(self.sent)
        await self.kubectl(*args)
        writes = [s for s in self.sent[before:] if s.method in ("POST", "PUT")]
        assert len(writes) == 1, writes
        assert writes[0].content_type == sends
        body = writes[0].body
        decoded = decode_protobuf_body(body) if sends == PROTOBUF else orjson.loads(body)
        split = args.index("--") if "--" in args else len(args)
        printed = await self.kubectl(*args[:split], "--dry-run=client", "-o", "json",
                                     *args[split:])
        assert decoded == orjson.loads(printed)
        return decoded

    def status(self, exc: errors.APIError) -> web.Response:
        return web.Response(status=exc.code, body=orjson.dumps(exc.status()),
                            content_type="application/json")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        content_type = (request.content_type or "").lower()
        self.sent.append(Sent(request.method, request.path, content_type, body))
        if request.method == "GET":
            found = self.objects.get(request.path)
            if found is None:
                return self.status(errors.NotFound(f"{request.path} not found"))
            return web.json_response(found)
        try:
            obj = decode_protobuf_body(body) if content_type == PROTOBUF else orjson.loads(body)
        except errors.APIError as exc:
            return self.status(exc)
        obj = answer(obj)
        name = obj.get("metadata", {}).get("name", "")
        path = request.path if request.method == "PUT" else f"{request.path}/{name}"
        self.objects[path.removesuffix("/approval")] = obj
        return web.Response(status=201 if request.method == "POST" else 200,
                            body=orjson.dumps(obj), content_type="application/json")


def answer(obj: dict[str, Any]) -> dict[str, Any]:
    """What a server adds to the few kinds kubectl reads a result from."""
    if obj.get("kind") == "TokenRequest":
        return {**obj, "status": {"token": "t0ken", "expirationTimestamp":
                                  "2030-01-01T00:00:00Z"}}
    if obj.get("kind") == "SelfSubjectAccessReview":
        return {**obj, "status": {"allowed": True}}
    return obj


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RecordingServer]:
    tmp = tmp_path_factory.mktemp("protobuf")
    app = web.Application()
    registry = Registry()
    if registry.get("certificates.k8s.io", "v1", "certificatesigningrequests") is None:
        registry.add(ResourceType(  # not served by nodeless (yet); kubectl needs discovery
            group="certificates.k8s.io", version="v1", kind="CertificateSigningRequest",
            plural="certificatesigningrequests", singular="certificatesigningrequest",
            namespaced=False, verbs=("create", "get", "list", "update"),
            subresources=("approval", "status")))
    add_discovery_routes(app, registry)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: t\n  cluster: {{server: '{url}'}}\n"
        "users:\n- name: u\n  user: {token: test}\n"
        "contexts:\n- name: t\n  context: {cluster: t, user: u, namespace: default}\n"
        "current-context: t\n")
    server = RecordingServer(tmp / "kubeconfig", tmp / "cache")
    for method in ("GET", "POST", "PUT"):
        app.router.add_route(method, "/{path:(api|apis)/.+}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


# --- kubectl's typed commands ---------------------------------------------------------------

@on_server_loop
async def test_create_namespace(api: RecordingServer) -> None:
    ns = await api.create("create", "namespace", "pb-ns")
    assert ns == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pb-ns"},
                  "spec": {}, "status": {}}


@on_server_loop
async def test_create_configmap_with_binary_file(api: RecordingServer, tmp_path: Path) -> None:
    blob = bytes(range(256))
    (tmp_path / "blob.bin").write_bytes(blob)
    (tmp_path / "note.txt").write_text("héllo\n")
    cm = await api.create("create", "configmap", "pb-cm", "--from-literal=a=b",
                          f"--from-file={tmp_path / 'blob.bin'}",
                          f"--from-file={tmp_path / 'note.txt'}")
    assert cm["data"] == {"a": "b", "note.txt": "héllo\n"}
    assert base64.b64decode(cm["binaryData"]["blob.bin"]) == blob


@on_server_loop
async def test_create_secrets(api: RecordingServer, tmp_path: Path) -> None:
    generic = await api.create("create", "secret", "generic", "pb-s", "--from-literal=k=v",
                               "--type=example.com/x")
    assert generic["data"] == {"k": base64.b64encode(b"v").decode()}
    assert generic["type"] == "example.com/x"
    registry = await api.create("create", "secret", "docker-registry", "pb-dr",
                                "--docker-username=u", "--docker-password=p",
                                "--docker-server=r.example.com")
    assert registry["type"] == "kubernetes.io/dockerconfigjson"
    cert, key = _self_signed(tmp_path)
    tls = await api.create("create", "secret", "tls", "pb-tls", f"--cert={cert}",
                           f"--key={key}")
    assert base64.b64decode(tls["data"]["tls.crt"]) == cert.read_bytes()


@on_server_loop
async def test_create_deployment(api: RecordingServer) -> None:
    deploy = await api.create("create", "deployment", "pb-d", "--image=nginx",
                              "--replicas=3", "--port=80")
    assert deploy["spec"]["replicas"] == 3
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "nginx", "image": "nginx", "resources": {},
                         "ports": [{"containerPort": 80}]}
    assert "creationTimestamp" not in deploy["metadata"]  # omitzero in 1.37
    assert deploy["status"] == {} and deploy["spec"]["strategy"] == {}


@on_server_loop
async def test_create_services(api: RecordingServer) -> None:
    nodeport = await api.create("create", "service", "nodeport", "pb-np", "--tcp=80:8080",
                                "--node-port=30080")
    assert nodeport["spec"]["ports"] == [{"name": "80-8080", "protocol": "TCP", "port": 80,
                                          "targetPort": 8080, "nodePort": 30080}]
    await api.create("create", "service", "clusterip", "pb-cip", "--clusterip=None")
    await api.create("create", "service", "loadbalancer", "pb-lb", "--tcp=443:https")
    named = api.objects["/api/v1/namespaces/default/services/pb-lb"]
    assert named["spec"]["ports"][0]["targetPort"] == "https"  # IntOrString as a string
    await api.create("create", "service", "externalname", "pb-en",
                     "--external-name=db.example.com")


@on_server_loop
async def test_create_job_and_cronjob(api: RecordingServer) -> None:
    job = await api.create("create", "job", "pb-j", "--image=busybox", "--", "echo", "hi")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    cron = await api.create("create", "cronjob", "pb-cj", "--image=busybox",
                            "--schedule=*/5 * * * *", "--restart=OnFailure", "--", "date")
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    # --from reads the cronjob back (JSON) and sends a Job with an ownerReference
    from_cron = await api.create("create", "job", "pb-jc", "--from=cronjob/pb-cj")
    owner = from_cron["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "CronJob" and owner["controller"] is True


@on_server_loop
async def test_create_rbac(api: RecordingServer) -> None:
    role = await api.create("create", "role", "pb-r", "--verb=get,list",
                            "--resource=pods,deployments.apps", "--resource-name=a")
    assert role["rules"][0]["verbs"] == ["get", "list"]
    await api.create("create", "clusterrole", "pb-cr", "--verb=get",
                     "--non-resource-url=/logs/*")
    await api.create("create", "clusterrole", "pb-agg",
                     "--aggregation-rule=rbac.example.com/aggregate=true")
    binding = await api.create("create", "rolebinding", "pb-rb", "--role=pb-r", "--user=u",
                               "--group=g", "--serviceaccount=default:sa")
    assert [s["kind"] for s in binding["subjects"]] == ["User", "Group", "ServiceAccount"]
    await api.create("create", "clusterrolebinding", "pb-crb", "--clusterrole=pb-cr",
                     "--user=u")


@on_server_loop
async def test_create_quota_priorityclass_pdb_ingress(api: RecordingServer) -> None:
    quota = await api.create("create", "quota", "pb-q", "--hard=cpu=1500m,memory=1G,pods=2",
                             "--scopes=BestEffort")
    assert quota["spec"]["hard"] == {"cpu": "1500m", "memory": "1G", "pods": "2"}
    pc = await api.create("create", "priorityclass", "pb-pc", "--value=1000",
                          "--description=hi", "--preemption-policy=Never")
    assert pc["value"] == 1000 and pc["preemptionPolicy"] == "Never"
    pdb = await api.create("create", "poddisruptionbudget", "pb-pdb", "--selector=app=x",
                           "--min-available=50%")
    assert pdb["spec"]["minAvailable"] == "50%"
    await api.create("create", "poddisruptionbudget", "pb-pdb2", "--selector=app=x",
                     "--max-unavailable=1")
    ing = await api.create("create", "ingress", "pb-ing", "--class=nginx",
                           "--rule=foo.com/bar*=svc1:8080,tls=secret1",
                           "--annotation=a=b", "--default-backend=svc2:http")
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "Prefix"


@on_server_loop
async def test_expose_and_autoscale(api: RecordingServer) -> None:
    await api.create("create", "deployment", "pb-web", "--image=nginx", "--port=80")
    # expose builds the Service from the unstructured Deployment: it sends JSON
    svc = await api.create("expose", "deployment", "pb-web", "--port=8080",
                           "--target-port=80", "--type=NodePort", sends="application/json")
    assert svc["spec"]["selector"] == {"app": "pb-web"}
    hpa = await api.create("autoscale", "deployment", "pb-web", "--min=2", "--max=5",
                           "--cpu=80%")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 5


@on_server_loop
async def test_create_serviceaccount_and_token(api: RecordingServer) -> None:
    await api.create("create", "serviceaccount", "pb-sa")
    before = len(api.sent)
    out = await api.kubectl("create", "token", "pb-sa", "--duration=10m",
                            "--audience=a1", "--audience=a2")
    assert out.strip() == "t0ken"
    sent = [s for s in api.sent[before:] if s.method == "POST"]
    assert sent[0].path == "/api/v1/namespaces/default/serviceaccounts/pb-sa/token"
    request = decode_protobuf_body(sent[0].body)
    assert request["kind"] == "TokenRequest"
    assert request["spec"] == {"audiences": ["a1", "a2"], "expirationSeconds": 600,
                               "boundObjectRef": None}
    # a zero metav1.Time without omitzero is null, as encoding/json writes it
    assert request["status"] == {"token": "", "expirationTimestamp": None}


@on_server_loop
async def test_certificate_approve_sends_a_time(api: RecordingServer) -> None:
    """PUT .../approval carries a condition whose lastUpdateTime is a real metav1.Time."""
    csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": {"name": "pb-csr"},
           "spec": {"request": base64.b64encode(b"pem").decode(),
                    "signerName": "example.com/x", "usages": ["client auth"]}}
    api.objects["/apis/certificates.k8s.io/v1/certificatesigningrequests/pb-csr"] = csr
    before = len(api.sent)
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    await api.kubectl("certificate", "approve", "pb-csr")
    put = [s for s in api.sent[before:] if s.method == "PUT"][0]
    assert put.content_type == PROTOBUF
    approved = decode_protobuf_body(put.body)
    assert approved["spec"]["request"] == csr["spec"]["request"]
    condition = approved["status"]["conditions"][0]
    assert condition["type"] == "Approved" and condition["status"] == "True"
    stamp = datetime.datetime.fromisoformat(condition["lastUpdateTime"])
    assert condition["lastUpdateTime"].endswith("Z")
    assert started <= stamp <= started + datetime.timedelta(seconds=60)
    assert condition["lastTransitionTime"] is None


@on_server_loop
async def test_auth_can_i(api: RecordingServer) -> None:
    before = len(api.sent)
    out = await api.kubectl("auth", "can-i", "create", "deployments.apps", "-n", "ns1")
    assert out.strip() == "yes"
    review = decode_protobuf_body([s for s in api.sent[before:] if s.method == "POST"][0].body)
    assert review["spec"]["resourceAttributes"] == {
        "namespace": "ns1", "verb": "create", "group": "apps", "resource": "deployments"}


# --- the wire, by hand ---------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _tag(number, 2) + _varint(len(data)) + data


def _vi(number: int, value: int) -> bytes:
    return _tag(number, 0) + _varint(value)


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    body = protobuf.MAGIC + _ld(1, _ld(1, api_version) + _ld(2, kind)) + _ld(2, raw)
    return body + (_ld(3, encoding) if encoding else b"")


def test_times_counts_and_zero_values() -> None:
    created = _vi(1, 1704164645) + _vi(2, 500_000_000)  # 2024-01-02T03:04:05.5Z
    meta = _ld(1, "e") + _ld(8, created) + _ld(9, _vi(1, 1704164645))
    event = (_ld(1, meta) + _ld(10, _vi(1, 86400) + _vi(2, 123_456_789))  # MicroTime
             + _vi(8, 2) + _ld(7, b"") + _ld(3, "Warn"))
    assert decode_protobuf_body(envelope("v1", "Event", event)) == {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e", "creationTimestamp": "2024-01-02T03:04:05Z",
                     "deletionTimestamp": "2024-01-02T03:04:05Z"},
        "involvedObject": {}, "reason": "Warn", "source": {},
        "firstTimestamp": None, "lastTimestamp": None,  # structs: omitempty keeps null
        "count": 2, "eventTime": "1970-01-02T00:00:00.123456Z",
        "reportingComponent": "", "reportingInstance": "",  # no omitempty: zero values
    }


def test_negative_ints_intorstring_quantity_and_packed() -> None:
    minus_five = _vi(4, -5)  # int64 as a 10-byte varint
    probe = _ld(1, _ld(3, _ld(1, _vi(1, 1) + _ld(3, "http")))) + _vi(6, 3)
    container = (_ld(1, "c") + _ld(8, _ld(1, _ld(1, "cpu") + _ld(2, _ld(1, "250m"))))
                 + _ld(11, probe) + _ld(15, minus_five))
    groups = _ld(4, _varint(1) + _varint(2)) + _vi(4, 3)  # packed, then unpacked
    spec = _ld(2, container) + _vi(4, -1) + _ld(14, groups)
    decoded = decode_protobuf_body(envelope("v1", "Pod", _ld(2, spec)))
    assert decoded["spec"]["terminationGracePeriodSeconds"] == -1
    assert decoded["spec"]["securityContext"] == {"supplementalGroups": [1, 2, 3]}
    assert decoded["spec"]["containers"] == [{
        "name": "c", "resources": {"limits": {"cpu": "250m"}},
        "readinessProbe": {"tcpSocket": {"port": "http"}, "failureThreshold": 3},
        "securityContext": {"runAsUser": -5},
    }]
    assert decoded["status"] == {}


def test_named_slice_map_values_and_repeated_messages_merge() -> None:
    extra = _ld(1, "scopes") + _ld(2, _ld(1, "a") + _ld(1, "b"))  # ExtraValue{items}
    raw = _ld(2, _ld(3, "alice") + _ld(5, extra)) + _ld(2, _ld(4, "g1"))  # spec twice
    decoded = decode_protobuf_body(envelope("authorization.k8s.io/v1",
                                            "SubjectAccessReview", raw))
    assert decoded["spec"] == {"user": "alice", "groups": ["g1"],
                               "extra": {"scopes": ["a", "b"]}}


def test_meta_kinds_under_any_group() -> None:
    opts = _ld(2, _ld(1, "uid-1")) + _ld(4, "Foreground") + _ld(5, "All")
    for api_version in ("v1", "apps/v1", "meta.k8s.io/v1"):
        decoded = decode_protobuf_body(envelope(api_version, "DeleteOptions", opts))
        assert decoded == {"apiVersion": api_version, "kind": "DeleteOptions",
                           "preconditions": {"uid": "uid-1"},
                           "propagationPolicy": "Foreground", "dryRun": ["All"]}
    eviction = _ld(1, _ld(1, "p") + _ld(3, "ns")) + _ld(2, _vi(1, 0))
    decoded = decode_protobuf_body(envelope("policy/v1", "Eviction", eviction))
    assert decoded["deleteOptions"] == {"gracePeriodSeconds": 0}  # a set pointer stays


def test_raw_extension_and_duration() -> None:
    raw = _ld(1, _ld(1, "x")) + _ld(2, _ld(1, b'{"a": [1, 2]}')) + _vi(3, 7)
    decoded = decode_protobuf_body(envelope("apps/v1", "ControllerRevision", raw))
    assert decoded["data"] == {"a": [1, 2]} and decoded["revision"] == 7
    assert protobuf.go_duration(90 * 10**9) == "1m30s"
    assert protobuf.go_duration(3_600_000_000_001) == "1h0m0.000000001s"
    assert protobuf.go_duration(1500) == "1.5µs"
    assert protobuf.go_duration(-2_500_000) == "-2.5ms"


def test_deep_nesting_is_bad_request() -> None:
    """CompositePodGroupTemplate contains itself; depth is bounded, not the stack."""
    template = _ld(1, "t")
    for _ in range(300):
        template = _ld(1, "t") + _ld(9, template)
    raw = _ld(2, _ld(3, template))
    with pytest.raises(errors.BadRequest, match="nest"):
        decode_protobuf_body(envelope("scheduling.k8s.io/v1beta1", "Workload", raw))


@pytest.mark.parametrize("body", [
    b"", b"{}", b"k8s", b"k8s\x00\x0a", b"k8s\x00\x0a\x05ab",
    envelope("v1", "", b""), b"k8s\x00" + _ld(2, b"\x0a\x01"),
    envelope("v1", "ConfigMap", b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
    envelope("v1", "ConfigMap", _vi(1, 3)),  # metadata as a varint
    envelope("v1", "ConfigMap", _tag(1, 3)),  # group wire type
    envelope("v1", "ConfigMap", _ld(2, _vi(1, 1))),  # map key as a varint
    envelope("apps/v1", "ControllerRevision", _ld(2, _ld(1, b"not json"))),
    envelope("v1", "Service", _ld(2, _ld(1, _ld(4, _vi(1, 9))))),  # IntOrString type 9
    envelope("v1", "Event", _ld(8, _ld(8, _vi(1, 1 << 62)))),  # year out of range
])
def test_malformed_is_bad_request(body: bytes) -> None:
    with pytest.raises(errors.BadRequest):
        decode_protobuf_body(body)


@pytest.mark.parametrize(("api_version", "kind"), [
    ("stable.example.com/v1", "CronTab"), ("v1", "NoSuchKind"), ("apps/v9", "Deployment"),
    ("apps.example.com/v1", "Deployment"), ("v1", "Container"), ("v1", "TypeMeta"),
])
def test_unknown_kind_is_unsupported(api_version: str, kind: str) -> None:
    with pytest.raises(errors.UnsupportedMediaType):
        decode_protobuf_body(envelope(api_version, kind, b""))


def test_content_encoding_is_unsupported() -> None:
    with pytest.raises(errors.UnsupportedMediaType):
        decode_protobuf_body(envelope("v1", "ConfigMap", b"", encoding="gzip"))


_DEPLOYMENT = envelope("apps/v1", "Deployment", _ld(1, _ld(1, "d")) + _ld(2, _vi(1, 3) + _ld(
    3, _ld(1, _ld(11, _ld(1, "app") + _ld(2, "d"))) + _ld(2, _ld(2, _ld(1, "c") + _ld(
        2, "nginx") + _ld(6, _vi(3, 80)))))))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzzed_bodies_never_crash(data: st.DataObject) -> None:
    body = bytearray(_DEPLOYMENT)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(4, len(body) - 1))
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            body[at] = data.draw(st.integers(0, 255))
        elif choice == 1:
            del body[at]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        result = decode_protobuf_body(bytes(body))
    except (errors.BadRequest, errors.UnsupportedMediaType):
        return
    orjson.dumps(result)  # whatever decodes is JSON-serialisable


@given(st.binary(max_size=64))
def test_random_raw_never_crashes(raw: bytes) -> None:
    for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Pod")):
        with contextlib.suppress(errors.BadRequest, errors.UnsupportedMediaType):
            orjson.dumps(decode_protobuf_body(envelope(api_version, kind, raw)))


# --- the schema ----------------------------------------------------------------------------

def test_every_custom_marshaller_is_handled() -> None:
    assert protobuf.schema().custom, "the extractor found no MarshalJSON types?"
    assert protobuf.unhandled_custom_types() == set()


def test_committed_schema_matches_installed_kubectl() -> None:
    """The JSON is generated data: regenerate it with tools/extract_proto_schema.py."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import extract_proto_schema
    finally:
        sys.path.remove(str(ROOT / "tools"))
    fresh = extract_proto_schema.extract(Path(KUBECTL))
    committed = orjson.loads(protobuf.SCHEMA_PATH.read_bytes())
    assert fresh["source"] == committed["source"], "kubectl changed: regenerate the schema"
    assert fresh == committed


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pb")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path

