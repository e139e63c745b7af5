"""The admission chain as kube-apiserver runs it: after built-in defaulting, mutating
webhooks (in order, each seeing the last one's result), then, after validation,
validating webhooks (concurrently). Configurations are cached in memory and kept
current by the server's own writes and by a watch (so several API servers agree)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from nodeless.apiserver.admission.webhooks import (
    AdmissionAttributes,
    WebhookDispatcher,
    WebhookError,
)
from nodeless.apiserver.resources.registry import ResourceType

log = logging.getLogger(__name__)

MUTATING = "MutatingWebhookConfiguration"
VALIDATING = "ValidatingWebhookConfiguration"
WEBHOOK_KINDS = (MUTATING, VALIDATING)

# The kind a request on a subresource carries, as kube reports it in AdmissionReview.
_SUBRESOURCE_KINDS = {
    "binding": ("", "v1", "Binding"),
    "scale": ("autoscaling", "v1", "Scale"),
}


class WebhookConfigurations:
    """The current webhook configurations by name, per kind."""

    def __init__(self) -> None:
        self._configs: dict[str, dict[str, dict[str, Any]]] = {MUTATING: {}, VALIDATING: {}}
        self._by_name: dict[str, list[dict[str, Any]]] = {}
        """`of(kind)`, kept until the next change: every write asks for it."""

    def put(self, obj: dict[str, Any]) -> None:
        kind = obj.get("kind")
        if kind in self._configs:
            name = obj["metadata"]["name"]
            current = self._configs[kind].get(name)
            if current is not None and _rv(current) > _rv(obj):
                return  # an older event arriving after our own write
            self._configs[kind][name] = obj
            self._by_name.pop(kind, None)

    def remove(self, obj: dict[str, Any]) -> None:
        kind = obj.get("kind")
        if kind in self._configs:
            self._configs[kind].pop(obj["metadata"]["name"], None)
            self._by_name.pop(kind, None)

    def replace_all(self, kind: str, objs: list[dict[str, Any]]) -> None:
        self._configs[kind] = {o["metadata"]["name"]: o for o in objs}
        self._by_name.pop(kind, None)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The configurations of `kind` by name; the same list until one changes (do
        not modify it)."""
        found = self._by_name.get(kind)
        if found is None:
            found = self._by_name[kind] = [self._configs[kind][n]
                                           for n in sorted(self._configs[kind])]
        return found


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


@contextlib.contextmanager
def _warnings_kept(ctx: Any) -> Iterator[None]:
    """A refusal still carries every warning of the request (kube sends them as Warning
    headers on the error response too)."""
    try:
        yield
    except WebhookError as exc:
        ctx.warnings.extend(exc.warnings)
        exc.warnings = ctx.warnings
        raise


class AdmissionChain:
    """Implements `objects.Admission` with webhooks."""

    def __init__(
        self,
        configurations: WebhookConfigurations,
        namespace_labels: Callable[[str], Awaitable[dict[str, str] | None]],
        resolve_service: Callable[[str, str, int], Awaitable[tuple[str, int]]] | None = None,
    ) -> None:
        self.configurations = configurations
        self.dispatcher = WebhookDispatcher(namespace_labels, resolve_service)

    def _attributes(
        self, op: str, rt: ResourceType, subresource: str, obj: dict[str, Any] | None,
        old: dict[str, Any] | None, ctx: Any,
    ) -> AdmissionAttributes:
        kind_group, kind_version, kind = _SUBRESOURCE_KINDS.get(
            subresource, (rt.group, rt.version, rt.kind))
        meta = (obj or old or {}).get("metadata") or {}
        return AdmissionAttributes(
            operation=op,
            group=rt.group, version=rt.version, resource=rt.plural, subresource=subresource,
            kind_group=kind_group, kind_version=kind_version, kind=kind,
            namespace=meta.get("namespace") or "" if rt.namespaced else "",
            name=meta.get("name") or "",
            object=obj, old_object=old,
            user=ctx.user.as_dict(),
            dry_run=ctx.dry_run,
            options=ctx.options,
        )

    async def mutate(
        self, op: str, rt: ResourceType, subresource: str, obj: dict[str, Any] | None,
        old: dict[str, Any] | None, ctx: Any,
    ) -> dict[str, Any] | None:
        configs = self.configurations.of(MUTATING)
        if not configs:
            return obj
        with _warnings_kept(ctx):
            result, warnings = await self.dispatcher.mutate(
                configs, self._attributes(op, rt, subresource, obj, old, ctx))
        ctx.warnings.extend(warnings)
        return result

    async def validate(
        self, op: str, rt: ResourceType, subresource: str, obj: dict[str, Any] | None,
        old: dict[str, Any] | None, ctx: Any,
    ) -> None:
        configs = self.configurations.of(VALIDATING)
        if not configs:
            return
        with _warnings_kept(ctx):
            warnings = await self.dispatcher.validate(
                configs, self._attributes(op, rt, subresource, obj, old, ctx))
        ctx.warnings.extend(warnings)

    async def close(self) -> None:
        await self.dispatcher.close()
