"""Calling admission webhooks the way kube-apiserver does.

Webhook servers written for Kubernetes (controller-runtime, our own Fargate webhook) must
work against us unchanged, and users must read the same denials they would on EKS. So
this module follows kube-apiserver's generic webhook plugin: AdmissionReview v1 (v1beta1
for webhooks that only speak it) over HTTPS, rule / namespaceSelector / objectSelector
matching, failurePolicy, timeouts, JSONPatch mutation with one reinvocation round, and
kube's exact error texts. What we cannot do (CEL matchConditions, Equivalent matching
across API versions) is refused up front or documented where it matters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jsonpatch
import orjson

from nodeless.apiserver.errors import (
    APIError,
    FieldError,
    forbidden,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.names import go_quote, go_string_slice, is_dns1123_subdomain
from nodeless.apiserver.resources.validation import GoValue, validate_label_selector
from nodeless.apiserver.selectors import LabelSelector
from nodeless.apiserver.stamps import new_uid

log = logging.getLogger(__name__)

NamespaceLabels = Callable[[str], Awaitable[dict[str, str] | None]]
ServiceResolver = Callable[[str, str, int], Awaitable[tuple[str, int]]]

DEFAULT_TIMEOUT = 10
REVIEW_VERSIONS = ("v1", "v1beta1")
_OPTIONS_KINDS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                  "DELETE": "DeleteOptions"}


@dataclass
class AdmissionAttributes:
    """One request as admission sees it (kube's admission.Attributes)."""

    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    group: str
    version: str
    resource: str
    subresource: str
    kind_group: str
    kind_version: str
    kind: str
    namespace: str
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    user: dict[str, Any]  # {"username": ..., "uid": ..., "groups": [...], "extra": {...}}
    dry_run: bool = False
    options: dict[str, Any] | None = None  # CreateOptions / UpdateOptions / DeleteOptions


class WebhookError(APIError):
    """An admission failure as the client sees it, with the warnings webhooks returned
    before it (kube still sends those as Warning headers on the error response)."""

    def __init__(
        self, message: str, *, code: int, reason: str, details: dict[str, Any] | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        super().__init__(message, code=code, reason=reason, details=details)
        self.warnings = list(warnings)


class _CallError(Exception):
    """kube's ErrCallingWebhook: the webhook could not give an answer. Only these are
    subject to failurePolicy; a denial or a bad patch never is."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f"failed calling webhook {go_quote(webhook)}: {reason}")
        self.webhook = webhook


def _internal(message: str, warnings: Sequence[str]) -> WebhookError:
    """apierrors.NewInternalError, as kube turns a failed webhook call into a 500."""
    return WebhookError(f"Internal error occurred: {message}", code=500, reason="InternalError",
                        details={"causes": [{"message": message}]}, warnings=warnings)


def _denied(
    webhook: str, status: Mapping[str, Any] | None, warnings: Sequence[str],
) -> WebhookError:
    """webhookerrors.ToStatusErr: the webhook's own status, prefixed with who denied."""
    status = status or {}
    code = status.get("code") or 0
    code = code if isinstance(code, int) and code >= 400 else 400
    denied_by = f"admission webhook {go_quote(webhook)} denied the request"
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    return WebhookError(message, code=code, reason=str(status.get("reason") or ""),
                        details=status.get("details") or None, warnings=warnings)


# ---- compiled webhooks ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hook:
    """One webhook of a configuration, with kube's v1 defaults applied and selectors
    parsed once (configurations are read on every write; parsing them each time is waste)."""

    uid: str
    name: str
    rules: tuple[Mapping[str, Any], ...]
    ignore_failures: bool
    timeout: int
    namespace_selector: LabelSelector
    object_selector: LabelSelector
    selector_error: str
    side_effects: str | None
    reinvoke_if_needed: bool
    review_version: str | None
    url: str | None
    service: tuple[str, str, str, int] | None  # namespace, name, path, port
    ca_bundle: str
    match_conditions: bool
    rule_matches: dict[tuple[str, str, str, str, str, bool], bool] = dataclasses.field(
        default_factory=dict, compare=False)
    """Whether the rules match a request kind (operation, group, version, resource,
    subresource, namespaced): every write asks, and the answer depends on nothing else."""

    def rules_match(self, attrs: AdmissionAttributes) -> bool:
        key = (attrs.operation, attrs.group, attrs.version, attrs.resource,
               attrs.subresource, bool(attrs.namespace))
        found = self.rule_matches.get(key)
        if found is None:
            found = self.rule_matches[key] = any(rule_matches(r, attrs) for r in self.rules)
        return found


def _selector(spec: Mapping[str, Any] | None) -> LabelSelector:
    return LabelSelector.from_dict({} if spec is None else spec)


def _compile(config: Mapping[str, Any], mutating: bool) -> list[_Hook]:
    config_name = (config.get("metadata") or {}).get("name") or ""
    hooks = []
    for i, w in enumerate(config.get("webhooks") or []):
        error = ""
        try:
            ns_sel, obj_sel = _selector(w.get("namespaceSelector")), \
                _selector(w.get("objectSelector"))
        except APIError as e:
            ns_sel = obj_sel = LabelSelector.everything()
            error = e.message
        cc = w.get("clientConfig") or {}
        svc = cc.get("service")
        versions = w.get("admissionReviewVersions") or []
        hooks.append(_Hook(
            uid=f"{config_name}/{w.get('name', '')}/{i}",
            name=w.get("name") or "",
            rules=tuple(w.get("rules") or ()),
            ignore_failures=w.get("failurePolicy") == "Ignore",
            timeout=int(w.get("timeoutSeconds") or DEFAULT_TIMEOUT),
            namespace_selector=ns_sel,
            object_selector=obj_sel,
            selector_error=error,
            side_effects=w.get("sideEffects"),
            reinvoke_if_needed=mutating and w.get("reinvocationPolicy") == "IfNeeded",
            review_version=next((v for v in versions if v in REVIEW_VERSIONS), None),
            url=cc.get("url"),
            service=None if svc is None else (
                svc.get("namespace") or "", svc.get("name") or "", svc.get("path") or "",
                int(svc.get("port") or 443)),
            ca_bundle=cc.get("caBundle") or "",
            match_conditions=bool(w.get("matchConditions")),
        ))
    return hooks


# ---- matching ---------------------------------------------------------------------


def _any_of(items: Sequence[str] | None, value: str) -> bool:
    return any(item == "*" or item == value for item in items or ())


def rule_matches(rule: Mapping[str, Any], attrs: AdmissionAttributes) -> bool:
    """kube's rules.Matcher: scope, operation, group, version, resource/subresource."""
    is_namespace = (attrs.group, attrs.version, attrs.resource) == ("", "v1", "namespaces")
    scope = rule.get("scope") or "*"
    if scope == "Namespaced" and (is_namespace or not attrs.namespace):
        return False
    if scope == "Cluster" and not (is_namespace or not attrs.namespace):
        return False
    if scope not in ("*", "Namespaced", "Cluster"):
        return False
    if not _any_of(rule.get("operations"), attrs.operation):
        return False
    if not _any_of(rule.get("apiGroups"), attrs.group):
        return False
    if not _any_of(rule.get("apiVersions"), attrs.version):
        return False
    for entry in rule.get("resources") or ():
        res, _, sub = entry.partition("/")
        if (res == "*" or res == attrs.resource) and (sub == "*" or sub == attrs.subresource):
            return True
    return False


def _object_labels(obj: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    """An object's labels; None when it has no metadata (kube: accessor fails, no match)."""
    if not obj or not isinstance(obj.get("metadata"), Mapping):
        return None
    return obj["metadata"].get("labels") or {}


class _Namespaces:
    """The namespace's labels, fetched at most once per admission call."""

    def __init__(self, lookup: NamespaceLabels, attrs: AdmissionAttributes) -> None:
        self._lookup = lookup
        self._attrs = attrs
        self._labels: Mapping[str, str] | None = None

    async def labels(self) -> Mapping[str, str]:
        if self._labels is None:
            attrs = self._attrs
            if attrs.resource == "namespaces" and not attrs.subresource \
                    and attrs.operation in ("CREATE", "UPDATE"):
                # The namespace being written: its new labels, not the stored ones.
                self._labels = _object_labels(attrs.object) or {}
            else:
                name = attrs.namespace if attrs.resource != "namespaces" \
                    else (attrs.namespace or attrs.name)
                found = await self._lookup(name)
                if found is None:
                    raise WebhookError(f'namespaces "{name}" not found', code=404,
                                       reason="NotFound",
                                       details={"name": name, "kind": "namespaces"})
                self._labels = found
        return self._labels


async def _should_call(hook: _Hook, attrs: AdmissionAttributes, ns: _Namespaces) -> bool:
    """Rules first, then the selectors (kube's ShouldCallHook, whose selector errors count
    only for webhooks whose rules match)."""
    if not hook.rules_match(attrs):
        return False
    if hook.selector_error:
        raise _internal(hook.selector_error, ())
    if (not hook.namespace_selector.empty
            and (attrs.namespace or attrs.resource == "namespaces")
            and not hook.namespace_selector.matches(await ns.labels())):
        return False
    if not hook.object_selector.empty:
        new, old = _object_labels(attrs.object), _object_labels(attrs.old_object)
        if not ((new is not None and hook.object_selector.matches(new))
                or (old is not None and hook.object_selector.matches(old))):
            return False
    return True


# ---- the call -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Response:
    allowed: bool
    status: Mapping[str, Any] | None
    patch: bytes
    patch_type: str
    warnings: list[str]


def _review(uid: str, version: str, attrs: AdmissionAttributes) -> dict[str, Any]:
    user: dict[str, Any] = {k: attrs.user[k] for k in ("username", "uid", "groups", "extra")
                            if attrs.user.get(k)}
    options = attrs.options
    if options is not None and "kind" not in options and attrs.operation in _OPTIONS_KINDS:
        options = {"kind": _OPTIONS_KINDS[attrs.operation], "apiVersion": "meta.k8s.io/v1",
                   **options}
    kind = {"group": attrs.kind_group, "version": attrs.kind_version, "kind": attrs.kind}
    resource = {"group": attrs.group, "version": attrs.version, "resource": attrs.resource}
    request: dict[str, Any] = {
        "uid": uid, "kind": kind, "resource": resource,
        "requestKind": kind, "requestResource": resource,
    }
    if attrs.subresource:
        request["subResource"] = request["requestSubResource"] = attrs.subresource
    if attrs.name:
        request["name"] = attrs.name
    if attrs.namespace:
        request["namespace"] = attrs.namespace
    request.update({
        "operation": attrs.operation, "userInfo": user, "object": attrs.object,
        "oldObject": attrs.old_object, "dryRun": attrs.dry_run, "options": options,
    })
    return {"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{version}",
            "request": request}


def _gvk(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


class _BadAnswer(Exception):
    """A 2xx answer we cannot use; `decoding` tells client-go's failure (the body is no
    AdmissionReview) from VerifyAdmissionResponse's (it is one, but a wrong one)."""

    def __init__(self, text: str, *, decoding: bool = False) -> None:
        super().__init__(text)
        self.decoding = decoding


def _verify(uid: str, version: str, mutating: bool, body: bytes) -> _Response:
    """Decode and check a 2xx answer as client-go, then VerifyAdmissionResponse, do."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise _BadAnswer(f"couldn't get version/kind; json parse error: {e}",
                         decoding=True) from None
    if not isinstance(review, dict):
        raise _BadAnswer("couldn't get version/kind; json parse error: cannot unmarshal into "
                         "Go value of type struct", decoding=True)
    if not review.get("kind"):
        raise _BadAnswer(f"Object 'Kind' is missing in '{body.decode(errors='replace')}'",
                         decoding=True)
    response = review.get("response")
    if not isinstance(response, dict):
        raise _BadAnswer("webhook response was absent")
    expected = f"admission.k8s.io/{version}"
    patch_b64 = response.get("patch") or ""
    patch_type = response.get("patchType")
    if version == "v1":
        if response.get("uid") != uid:
            got_uid = go_quote(str(response.get("uid") or ""))
            raise _BadAnswer(f"expected response.uid={go_quote(uid)}, got {got_uid}")
        if review.get("apiVersion") != expected or review.get("kind") != "AdmissionReview":
            got = _gvk(str(review.get("apiVersion") or ""), str(review["kind"]))
            raise _BadAnswer(f"expected webhook response of "
                             f"{_gvk(expected, 'AdmissionReview')}, got {got}")
        if mutating:
            if patch_b64 and patch_type is None:
                raise _BadAnswer("webhook returned response.patch but not response.patchType")
            if not patch_b64 and patch_type is not None:
                raise _BadAnswer("webhook returned response.patchType but not response.patch")
            if patch_type is not None and not patch_type:
                raise _BadAnswer('webhook returned invalid response.patchType of ""')
        else:
            if patch_b64:
                raise _BadAnswer("validating webhook may not return response.patch")
            if patch_type is not None:
                raise _BadAnswer("validating webhook may not return response.patchType")
    elif mutating and patch_b64:
        patch_type = "JSONPatch"  # v1beta1 never checked it; kube pins it
    patch = b""
    if mutating and patch_b64:
        try:
            patch = base64.b64decode(patch_b64, validate=True)
        except (binascii.Error, ValueError, TypeError) as e:
            raise _BadAnswer(f"illegal base64 data in response.patch: {e}",
                             decoding=True) from None
    status = response.get("status")
    return _Response(
        allowed=bool(response.get("allowed")),
        status=status if isinstance(status, Mapping) else None,
        patch=patch,
        patch_type=str(patch_type or ""),
        warnings=[str(w) for w in response.get("warnings") or []],
    )


def _http_error(status: int, body: bytes) -> str:
    """What client-go says about a non-2xx answer: the Status message if the body is a
    Status, else its generic sentence for the code."""
    try:
        decoded = orjson.loads(body)
        if isinstance(decoded, dict) and decoded.get("kind") == "Status" \
                and decoded.get("message"):
            return str(decoded["message"])
    except orjson.JSONDecodeError:
        pass
    text = body.decode(errors="replace").strip()
    generic = {
        400: "the server rejected our request for an unknown reason",
        401: "the server has asked for the client to provide credentials",
        403: "forbidden",
        404: "the server could not find the requested resource",
        405: "the server does not allow this method on the requested resource",
        409: "the server reported a conflict",
        429: "the server has received too many requests and has asked us to try again later",
        503: "the server is currently unable to handle the request",
        504: "the server was unable to return a response in the time allotted, but may still "
             "be processing the request",
    }
    if status >= 500 and status not in generic:
        return f"an error on the server ({go_quote(text or 'unknown')}) has prevented the " \
               "request from succeeding"
    return generic.get(status,
                       f"the server responded with the status code {status} but did not "
                       "return more information")


def _transport_error(url: str, exc: BaseException, server_name: str) -> str:
    """A connection failure in Go's words, which is what people search for."""
    where = f'Post "{url}"'
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_err = exc.certificate_error
        code = getattr(cert_err, "verify_code", None)
        if code in (2, 18, 19, 20, 21):
            why = "x509: certificate signed by unknown authority"
        elif code == 62:
            why = f"x509: certificate is not valid for {server_name}"
        else:
            why = f"x509: {getattr(cert_err, 'verify_message', None) or cert_err}"
        return f"{where}: tls: failed to verify certificate: {why}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_err = exc.os_error
        if isinstance(os_err, ConnectionRefusedError):
            return f"{where}: dial tcp {exc.host}:{exc.port}: connect: connection refused"
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f"{where}: dial tcp: lookup {exc.host}: no such host"
        return f"{where}: dial tcp {exc.host}:{exc.port}: {os_err.strerror or os_err}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"{where}: remote error: tls: {exc}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{where}: EOF"
    return f"{where}: {exc}"


def _ssl_context(ca_bundle: str) -> ssl.SSLContext:
    """System CAs when no caBundle is given, else only the bundle (as kube does)."""
    if not ca_bundle:
        return ssl.create_default_context()
    pem = base64.b64decode(ca_bundle, validate=True).decode()
    return ssl.create_default_context(cadata=pem)


class WebhookDispatcher:
    """Runs the mutating and validating webhooks of the given configurations for one
    request. One aiohttp session (connection pool) per distinct caBundle, kept open."""

    def __init__(
        self, namespace_labels: NamespaceLabels, resolve_service: ServiceResolver | None = None,
    ) -> None:
        self._namespace_labels = namespace_labels
        self._resolve_service = resolve_service
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._compiled: dict[tuple[str, str, str, str, bool], list[_Hook]] = {}
        self._last: dict[bool, tuple[list[dict[str, Any]], list[_Hook]]] = {}
        """The hooks of the last configuration list seen, per kind: the chain passes the
        same list until a configuration changes."""

    def _hooks(self, configurations: list[dict[str, Any]], mutating: bool) -> list[_Hook]:
        """Webhooks in kube's order: configurations by name, then webhook order. A list
        passed again is taken to hold the same configurations (pass a new list after a
        change, as `WebhookConfigurations.of` does)."""
        last = self._last.get(mutating)
        if last is not None and last[0] is configurations:
            return last[1]
        out = self._compile_all(configurations, mutating)
        self._last[mutating] = (configurations, out)
        return out

    def _compile_all(self, configurations: list[dict[str, Any]], mutating: bool
                     ) -> list[_Hook]:
        out: list[_Hook] = []
        for config in sorted(configurations, key=lambda c: (c.get("metadata") or {})
                             .get("name") or ""):
            meta = config.get("metadata") or {}
            rv = meta.get("resourceVersion")
            if not rv:
                out.extend(_compile(config, mutating))
                continue
            key = (meta.get("name") or "", meta.get("uid") or "", rv,
                   str(meta.get("generation") or ""), mutating)
            hooks = self._compiled.get(key)
            if hooks is None:
                if len(self._compiled) > 512:
                    self._compiled.clear()
                hooks = self._compiled[key] = _compile(config, mutating)
            out.extend(hooks)
        return out

    def _session(self, ca_bundle: str) -> aiohttp.ClientSession:
        session = self._sessions.get(ca_bundle)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(ca_bundle), limit=256,
                                             ttl_dns_cache=30)
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": "kube-apiserver-admission",
                         "Content-Type": "application/json",
                         "Accept": "application/json, */*"},
            )
            self._sessions[ca_bundle] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def _call(self, hook: _Hook, attrs: AdmissionAttributes, mutating: bool) -> _Response:
        """POST one AdmissionReview and return the verified answer; `_CallError` when no
        usable answer came back, `WebhookError` when the request must not be sent."""
        if hook.match_conditions:
            raise _CallError(hook.name, "failed to evaluate match conditions: matchConditions "
                                        "(CEL) are not supported by this API server")
        if attrs.dry_run:
            if hook.side_effects is None:
                raise _CallError(hook.name, "Webhook SideEffects is nil")
            if hook.side_effects not in ("None", "NoneOnDryRun"):
                raise WebhookError(f"admission webhook {go_quote(hook.name)} does not support "
                                   "dry run", code=400, reason="BadRequest")
        if hook.review_version is None:
            raise _CallError(hook.name, "could not create admission objects: webhook does not "
                                        "accept known AdmissionReview versions (v1, v1beta1)")
        try:
            session = self._session(hook.ca_bundle)
        except (ValueError, ssl.SSLError, UnicodeDecodeError) as e:
            raise _CallError(hook.name, f"could not get REST client: unable to load root "
                                        f"certificates: {e}") from None
        uid = new_uid()
        body = orjson.dumps(_review(uid, hook.review_version, attrs))
        query = f"?timeout={hook.timeout}s"
        headers: dict[str, str] = {}
        server_hostname: str | None = None
        if hook.url:
            shown = target_url = hook.url + query
            server_name = urlsplit(hook.url).hostname or ""
        elif hook.service:
            namespace, name, path, port = hook.service
            server_hostname = f"{name}.{namespace}.svc"
            headers["Host"] = f"{server_hostname}:{port}"
            shown = f"https://{server_hostname}:{port}{path}{query}"
            server_name = server_hostname
            target_url = ""
        else:
            raise _CallError(hook.name, "could not get REST client: exactly one of url or "
                                        "service is required")
        try:
            async with asyncio.timeout(hook.timeout):
                if hook.service:
                    address, port = await self._resolve(*hook.service)
                    host = f"[{address}]" if ":" in address else address
                    target_url = f"https://{host}:{port}{hook.service[2]}{query}"
                async with session.post(target_url, data=body, headers=headers,
                                        server_hostname=server_hostname) as resp:
                    status, payload = resp.status, await resp.read()
        except TimeoutError:
            raise _CallError(hook.name, f'failed to call webhook: Post "{shown}": context '
                                        "deadline exceeded") from None
        except APIError as e:  # the service resolver refusing
            raise _CallError(hook.name, f'failed to call webhook: Post "{shown}": '
                                        f"{e.message}") from None
        except (aiohttp.ClientError, OSError, LookupError) as e:
            raise _CallError(hook.name, "failed to call webhook: "
                                        + _transport_error(shown, e, server_name)) from None
        if not 200 <= status <= 206:
            raise _CallError(hook.name, f"failed to call webhook: {_http_error(status, payload)}")
        try:
            return _verify(uid, hook.review_version, mutating, payload)
        except _BadAnswer as e:
            prefix = "failed to call webhook" if e.decoding else "received invalid webhook response"
            raise _CallError(hook.name, f"{prefix}: {e}") from None

    async def _resolve(self, namespace: str, name: str, path: str, port: int) -> tuple[str, int]:
        """Where a service's webhook listens; by default its cluster DNS name."""
        if self._resolve_service is None:
            return f"{name}.{namespace}.svc", port
        return await self._resolve_service(namespace, name, port)

    async def mutate(
        self, configurations: list[dict[str, Any]], attrs: AdmissionAttributes,
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """Run matching mutating webhooks in order, each on the previous one's result;
        then once more those with reinvocationPolicy IfNeeded that ran before a later
        change. Returns the object and the webhooks' warnings."""
        hooks = self._hooks(configurations, mutating=True)
        warnings: list[str] = []
        obj = attrs.object
        if not hooks:
            return obj, warnings
        namespaces = _Namespaces(self._namespace_labels, attrs)
        invoked_reinvocable: set[str] = set()
        reinvoke: set[str] = set()
        for round_ in (0, 1):
            if round_ == 1 and not reinvoke:
                break
            for hook in hooks:
                if round_ == 1 and hook.uid not in reinvoke:
                    continue
                current = attrs if obj is attrs.object else replace(attrs, object=obj)
                try:
                    if not await _should_call(hook, current, namespaces):
                        continue
                    changed, obj = await self._mutate_one(hook, current, warnings)
                except _CallError as e:
                    changed = False
                    if not hook.ignore_failures:
                        raise _internal(str(e), warnings) from None
                    log.warning("Failed calling webhook, failing open %s: %s", hook.name, e)
                except WebhookError as e:
                    e.warnings = warnings + e.warnings
                    raise
                if changed and invoked_reinvocable:
                    reinvoke |= invoked_reinvocable
                    invoked_reinvocable = set()
                if hook.reinvoke_if_needed:
                    invoked_reinvocable.add(hook.uid)
        return obj, warnings

    async def _mutate_one(
        self, hook: _Hook, attrs: AdmissionAttributes, warnings: list[str],
    ) -> tuple[bool, dict[str, Any] | None]:
        response = await self._call(hook, attrs, mutating=True)
        warnings.extend(response.warnings)
        if not response.allowed:
            raise _denied(hook.name, response.status, ())
        if not response.patch:
            return False, attrs.object
        try:
            operations = orjson.loads(response.patch)
            if not isinstance(operations, list):
                raise ValueError("json: cannot unmarshal object into Go value of type "
                                 "jsonpatch.Patch")
        except ValueError as e:
            raise _CallError(hook.name, f"received undecodable patch in webhook response: "
                                        f"{e}") from None
        if not operations:
            return False, attrs.object
        if attrs.object is None:
            raise _internal(f"admission webhook {go_quote(hook.name)} attempted to modify the "
                            "object, which is not supported for this operation", ())
        if response.patch_type != "JSONPatch":
            raise _CallError(hook.name, f"unsupported patch type {go_quote(response.patch_type)}")
        try:
            # A JSON round trip copies a decoded object several times faster than the
            # deepcopy `in_place=False` would make.
            patched = jsonpatch.JsonPatch(operations).apply(
                orjson.loads(orjson.dumps(attrs.object)), in_place=True)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError,
                TypeError, ValueError) as e:
            raise _internal(str(e), ()) from None
        if not isinstance(patched, dict):
            raise _internal("the patched object is not a JSON object", ())
        return patched != attrs.object, patched

    async def validate(
        self, configurations: list[dict[str, Any]], attrs: AdmissionAttributes,
    ) -> list[str]:
        """Run matching validating webhooks concurrently; the first refusal (in webhook
        order) wins, as kube returns one. Returns the webhooks' warnings."""
        hooks = self._hooks(configurations, mutating=False)
        if not hooks:
            return []
        hooks = [h for h in hooks if h.rules_match(attrs)]  # most writes stop here
        if not hooks:
            return []
        namespaces = _Namespaces(self._namespace_labels, attrs)
        relevant = [h for h in hooks if await _should_call(h, attrs, namespaces)]
        results: list[_Response | BaseException]
        if len(relevant) == 1:  # the common case: no task for a lone webhook
            try:
                results = [await self._call(relevant[0], attrs, mutating=False)]
            except (_CallError, WebhookError) as exc:
                results = [exc]
        else:
            results = await asyncio.gather(
                *(self._call(h, attrs, mutating=False) for h in relevant),
                return_exceptions=True)
        warnings: list[str] = []
        failure: WebhookError | None = None
        for hook, result in zip(relevant, results, strict=True):
            if isinstance(result, _Response):
                warnings.extend(result.warnings)
                if not result.allowed and failure is None:
                    failure = _denied(hook.name, result.status, ())
            elif isinstance(result, _CallError):
                if hook.ignore_failures:
                    log.warning("Failed calling webhook, failing open %s: %s", hook.name, result)
                elif failure is None:
                    failure = _internal(str(result), ())
            elif isinstance(result, WebhookError):
                failure = failure or result
            elif isinstance(result, BaseException):
                raise result
        if failure is not None:
            failure.warnings = warnings
            raise failure
        return warnings


# ---- configuration defaults and validation ------------------------------------------


def default_configuration(obj: dict[str, Any]) -> dict[str, Any]:
    """kube's v1 defaults for a Mutating/ValidatingWebhookConfiguration, so stored objects
    read back as they would from kube-apiserver."""
    mutating = obj.get("kind") == "MutatingWebhookConfiguration"
    out = dict(obj)
    hooks = []
    for w in obj.get("webhooks") or []:
        w = dict(w)
        w.setdefault("failurePolicy", "Fail")
        w.setdefault("matchPolicy", "Equivalent")
        if w.get("namespaceSelector") is None:
            w["namespaceSelector"] = {}
        if w.get("objectSelector") is None:
            w["objectSelector"] = {}
        w.setdefault("timeoutSeconds", DEFAULT_TIMEOUT)
        if mutating:
            w.setdefault("reinvocationPolicy", "Never")
        w["rules"] = [{**r, "scope": r.get("scope") or "*"} for r in w.get("rules") or []]
        cc = w.get("clientConfig")
        if isinstance(cc, dict) and isinstance(cc.get("service"), dict):
            w["clientConfig"] = {**cc, "service": {"port": 443, **cc["service"]}}
        hooks.append(w)
    if "webhooks" in obj:
        out["webhooks"] = hooks
    return out


def _go_list(items: Sequence[Any]) -> GoValue:
    """A list in a field error, as kube prints a []string."""
    return GoValue(go_string_slice(items))


def _validate_resources(resources: Sequence[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not resources:
        errs.append(required(path))
    wildcard_sub: set[str] = set()
    wildcard_res: set[str] = set()
    has_double = has_single = has_plain = False
    for i, entry in enumerate(resources):
        if not entry:
            errs.append(required(f"{path}[{i}]"))
            continue
        has_double |= entry == "*/*"
        has_single |= entry == "*"
        if "/" not in entry:
            has_plain = entry != "*"
            continue
        res, _, sub = entry.partition("/")
        if res in wildcard_sub:
            errs.append(invalid(f"{path}[{i}]", entry,
                                f"if '{res}/*' is present, must not specify {entry}"))
        if sub in wildcard_res:
            errs.append(invalid(f"{path}[{i}]", entry,
                                f"if '*/{sub}' is present, must not specify {entry}"))
        if sub == "*":
            wildcard_sub.add(res)
        if res == "*":
            wildcard_res.add(sub)
    if len(resources) > 1 and has_double:
        errs.append(invalid(path, _go_list(resources),
                            "if '*/*' is present, must not specify other resources"))
    if has_single and has_plain:
        errs.append(invalid(path, _go_list(resources),
                            "if '*' is present, must not specify other resources without "
                            "subresources"))
    return errs


def _validate_rule(rule: Mapping[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    operations = rule.get("operations") or []
    if not operations:
        errs.append(required(f"{path}.operations"))
    if len(operations) > 1 and "*" in operations:
        errs.append(invalid(f"{path}.operations", _go_list(operations),
                            "if '*' is present, must not specify other operations"))
    for i, op in enumerate(operations):
        if op not in ("*", "CONNECT", "CREATE", "DELETE", "UPDATE"):
            errs.append(unsupported(f"{path}.operations[{i}]", op,
                                    ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]))
    for field, what in (("apiGroups", "API groups"), ("apiVersions", "API versions")):
        items = rule.get(field)
        if not items:
            errs.append(required(f"{path}.{field}"))
        elif len(items) > 1 and "*" in items:
            errs.append(invalid(f"{path}.{field}", _go_list(items),
                                f"if '*' is present, must not specify other {what}"))
    for i, v in enumerate(rule.get("apiVersions") or []):
        if not v:
            errs.append(required(f"{path}.apiVersions[{i}]"))
    errs.extend(_validate_resources(rule.get("resources") or [], f"{path}.resources"))
    scope = rule.get("scope")
    if scope is not None and scope not in ("*", "Cluster", "Namespaced"):
        errs.append(unsupported(f"{path}.scope", scope, ["*", "Cluster", "Namespaced"]))
    return errs


def _validate_url(url: str, path: str) -> list[FieldError]:
    form = "; desired format: https://host[/path]"
    try:
        split = urlsplit(url)
        _ = split.port
    except ValueError as e:
        return [required(path, f"url must be a valid URL: {e}{form}")]
    errs = []
    if split.scheme != "https":
        errs.append(invalid(path, split.scheme, "'https' is the only allowed URL scheme" + form))
    host = split.netloc.rpartition("@")[2]
    if not host:
        errs.append(invalid(path, host, "host must be specified" + form))
    if "@" in split.netloc:
        errs.append(invalid(path, split.netloc.rpartition("@")[0],
                            "user information is not permitted in the URL"))
    if split.fragment:
        errs.append(invalid(path, split.fragment, "fragments are not permitted in the URL"))
    if split.query:
        errs.append(invalid(path, split.query, "query parameters are not permitted in the URL"))
    return errs


def _validate_service(svc: Mapping[str, Any], path: str) -> list[FieldError]:
    errs = []
    if not svc.get("name"):
        errs.append(required(f"{path}.name", "service name is required"))
    if not svc.get("namespace"):
        errs.append(required(f"{path}.namespace", "service namespace is required"))
    port = svc.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        errs.append(invalid(f"{path}.port", port,
                            "port is not valid: must be between 1 and 65535, inclusive"))
    url_path = svc.get("path")
    if url_path is None or url_path in ("", "/"):
        return errs
    if url_path == "//":
        return [*errs, invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        errs.append(invalid(f"{path}.path", url_path, "must start with a '/'"))
    steps = url_path[1:].removesuffix("/").split("/")
    for i, step in enumerate(steps):
        if not step:
            errs.append(invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        errs.extend(invalid(f"{path}.path", url_path, f"segment[{i}]: {m}")
                    for m in is_dns1123_subdomain(step))
    return errs


def _validate_review_versions(versions: Sequence[str], path: str) -> list[FieldError]:
    accepted = ", ".join(REVIEW_VERSIONS)
    if not versions:
        return [required(path, f"must specify one of {accepted}")]
    errs, seen = [], set()
    for i, v in enumerate(versions):
        if v in seen:
            errs.append(invalid(f"{path}[{i}]", v, "duplicate version"))
            continue
        seen.add(v)
    if not any(v in REVIEW_VERSIONS for v in versions):
        errs.append(invalid(path, _go_list(versions), f"must include at least one of {accepted}"))
    return errs


def validate_configuration(obj: Mapping[str, Any]) -> list[FieldError]:
    """Field errors for a Mutating/ValidatingWebhookConfiguration, with kube's paths and
    texts; plus a refusal of `matchConditions`, which need CEL we do not evaluate (better
    refused at create than silently matching everything)."""
    mutating = obj.get("kind") == "MutatingWebhookConfiguration"
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, w in enumerate(obj.get("webhooks") or []):
        p = f"webhooks[{i}]"
        name = w.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        elif dns := is_dns1123_subdomain(name):
            errs.append(invalid(f"{p}.name", name, ",".join(dns)))
        elif len(name.split(".")) < 3:
            errs.append(invalid(f"{p}.name", name,
                                "should be a domain with at least three segments separated by "
                                "dots"))
        for j, rule in enumerate(w.get("rules") or []):
            errs.extend(_validate_rule(rule, f"{p}.rules[{j}]"))
        policy = w.get("failurePolicy")
        if policy is not None and policy not in ("Fail", "Ignore"):
            errs.append(unsupported(f"{p}.failurePolicy", policy, ["Fail", "Ignore"]))
        match_policy = w.get("matchPolicy")
        if match_policy is not None and match_policy not in ("Equivalent", "Exact"):
            errs.append(unsupported(f"{p}.matchPolicy", match_policy, ["Equivalent", "Exact"]))
        side_effects = w.get("sideEffects")
        if side_effects is None:
            errs.append(required(f"{p}.sideEffects", "must specify one of None, NoneOnDryRun"))
        elif side_effects not in ("None", "NoneOnDryRun"):
            errs.append(unsupported(f"{p}.sideEffects", side_effects, ["None", "NoneOnDryRun"]))
        timeout = w.get("timeoutSeconds")
        if timeout is not None and (not isinstance(timeout, int) or not 1 <= timeout <= 30):
            errs.append(invalid(f"{p}.timeoutSeconds", timeout,
                                "the timeout value must be between 1 and 30 seconds"))
        errs.extend(validate_label_selector(w.get("namespaceSelector"), f"{p}.namespaceSelector"))
        errs.extend(validate_label_selector(w.get("objectSelector"), f"{p}.objectSelector"))
        if mutating:
            reinvocation = w.get("reinvocationPolicy")
            if reinvocation is not None and reinvocation not in ("IfNeeded", "Never"):
                errs.append(unsupported(f"{p}.reinvocationPolicy", reinvocation,
                                        ["IfNeeded", "Never"]))
        cc = w.get("clientConfig") or {}
        url, svc = cc.get("url"), cc.get("service")
        if (url is None) == (svc is None):
            errs.append(required(f"{p}.clientConfig", "exactly one of url or service is required"))
        elif url is not None:
            errs.extend(_validate_url(url, f"{p}.clientConfig.url"))
        elif isinstance(svc, Mapping):
            errs.extend(_validate_service(svc, f"{p}.clientConfig.service"))
        if w.get("matchConditions"):
            errs.append(forbidden(f"{p}.matchConditions",
                                  "matchConditions are CEL expressions, which this API server "
                                  "does not evaluate; remove them and narrow the webhook with "
                                  "rules, namespaceSelector or objectSelector"))
        errs.extend(_validate_review_versions(w.get("admissionReviewVersions") or [],
                                              f"{p}.admissionReviewVersions"))
        if name:
            if name in names:
                errs.append(FieldError(f"{p}.name", "Duplicate value", go_quote(name)))
            names.add(name)
    return errs
