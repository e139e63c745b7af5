"""Deployment: one ReplicaSet per pod template (named by its pod-template-hash), rolled
from the old ones to the new one as kube-controller-manager does, so that `kubectl
rollout status|history|undo|restart|pause|resume` and `kubectl scale` work unchanged.

- The new ReplicaSet is the one whose template equals the Deployment's, ignoring the hash
  label (`kubectl rollout undo` copies an old template back; that old ReplicaSet becomes
  the new one again, with the next revision).
- RollingUpdate: scale the new one up while all ReplicaSets' replicas stay within
  replicas + maxSurge, scale old ones down while available pods stay at least
  replicas - maxUnavailable. Recreate: old ones to zero, wait for their pods to be gone,
  then the new one to full size. Paused: only scaling, no rollout.
- A scaling event (replicas changed mid-rollout) scales every active ReplicaSet in
  proportion, as kube does.
- Status and the conditions `Available` and `Progressing` carry the reasons kubectl's
  rollout status reads (NewReplicaSetAvailable, ReplicaSetUpdated,
  ProgressDeadlineExceeded, DeploymentPaused, ...).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import orjson
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Pod

from nodeless.controllers import api
from nodeless.controllers.base import Controller, is_not_found, status_patch
from nodeless.controllers.informer import Obj, SharedInformers, key_of, plain
from nodeless.controllers.objects import (
    condition,
    controller_ref,
    is_deleting,
    is_terminal,
    labels,
    now,
    owner_reference,
    parse_time,
    rfc3339,
    set_condition,
)
from nodeless.controllers.selectors import label_selector_matches, selector_is_empty

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
NOT_COPIED = {REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
              "kubectl.kubernetes.io/last-applied-configuration",
              "deprecated.deployment.rollback.to"}
"""Deployment annotations not copied to its ReplicaSets (kube's skip list)."""

_SAFE = "bcdfghjklmnpqrstvwxz2456789"


# ---- pure helpers: each testable alone ---------------------------------------------


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """FNV-32a of the template (canonical JSON) and the collision count, encoded in the
    alphabet kube uses for names (no vowels, no look-alike digits)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(h))


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    meta = t.setdefault("metadata", {})
    lbls = dict(meta.get("labels") or {})
    lbls.pop(HASH_LABEL, None)
    meta["labels"] = lbls or None
    if meta["labels"] is None:
        meta.pop("labels")
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return _without_hash(a) == _without_hash(b)


def resolve(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString (`25%` or 1) against `total`."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def surge_and_unavailable(d: Obj) -> tuple[int, int]:
    """maxSurge (rounded up) and maxUnavailable (rounded down); never both zero."""
    spec = d["spec"]
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    replicas = int(spec.get("replicas", 1))
    surge = resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def revision(rs: Obj) -> int:
    try:
        return int(((rs["metadata"].get("annotations") or {}).get(REVISION)) or 0)
    except ValueError:
        return 0


def replicas_of(rs: Obj) -> int:
    return int(rs["spec"].get("replicas", 0) or 0)


def _status(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def _created(obj: Obj) -> tuple[float, str]:
    t = parse_time(obj["metadata"].get("creationTimestamp"))
    return (t.timestamp() if t else 0.0, obj["metadata"]["name"])


def deployment_complete(d: Obj, status: Obj) -> bool:
    replicas = int(d["spec"].get("replicas", 1))
    return (status.get("updatedReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
            and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 1))


def deployment_progressing(old: Obj, new: Obj) -> bool:
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
    return (new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
            or new_old < old_old
            or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or new.get("availableReplicas", 0) > old.get("availableReplicas", 0))


# ---- the controller -----------------------------------------------------------------


class DeploymentController(Controller):
    name = "deployment"
    workers = 4

    def __init__(self, client: Any, informers: SharedInformers) -> None:
        super().__init__(client, informers)
        self.deployments = informers.get(Deployment)
        self.sets = informers.get(ReplicaSet)
        self.pods = informers.get(Pod)
        self.events = api.EventRecorder(client, "deployment-controller")
        self.deployments.add_handler(lambda o, n: self.enqueue(key_of(n or o)))  # type: ignore[arg-type]
        self.sets.add_handler(self._on_set)
        self.pods.add_handler(self._on_pod)

    def _owner_key(self, rs: Obj) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        return f"{rs['metadata']['namespace']}/{ref['name']}"

    def _on_set(self, old: Obj | None, new: Obj | None) -> None:
        for rs in (old, new):
            if rs is None:
                continue
            key = self._owner_key(rs)
            if key:
                self.enqueue(key)
            elif controller_ref(rs) is None:
                for d in self.deployments.list(rs["metadata"]["namespace"]):
                    if label_selector_matches(d["spec"].get("selector"), labels(rs)):
                        self.enqueue(key_of(d))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        """Recreate waits for the old pods to be gone: look again when one goes."""
        if new is not None:
            return
        ref = controller_ref(old or {})
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.sets.get(f"{old['metadata']['namespace']}/{ref['name']}")  # type: ignore[index]
        if rs is not None:
            self.enqueue(self._owner_key(rs))

    # ---- sync ----------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        d = self.deployments.get(key)
        if d is None:
            return
        spec = d["spec"]
        if selector_is_empty(spec.get("selector")):
            self.events.event(d, "Warning", "SelectingAll",
                              "This deployment is selecting all pods. A non-empty selector "
                              "is required.")
            return
        namespace = d["metadata"]["namespace"]
        owned = await api.claim(self.client, ReplicaSet, d, self.sets.list(namespace),
                                spec.get("selector"))
        if is_deleting(d):
            new, olds = self._split(d, owned)
            await self._sync_status(d, new, olds, rollout=False)
            return
        if spec.get("paused") or self._is_scaling_event(d, owned):
            await self._sync_scale(d, owned)
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(d, owned)
        else:
            await self._rolling(d, owned)

    def _split(self, d: Obj, owned: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        template = d["spec"].get("template") or {}
        matching = sorted((rs for rs in owned
                           if equal_ignore_hash(rs["spec"].get("template") or {}, template)),
                          key=_created)
        new = matching[0] if matching else None
        return new, [rs for rs in owned if rs is not new]

    def _is_scaling_event(self, d: Obj, owned: list[Obj]) -> bool:
        replicas = str(d["spec"].get("replicas", 1))
        for rs in owned:
            if replicas_of(rs) <= 0:
                continue
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is not None and desired != replicas:
                return True
        return False

    async def _new_replica_set(self, d: Obj, new: Obj | None, olds: list[Obj], *,
                               create: bool) -> tuple[Obj | None, str | None]:
        """The new ReplicaSet with its annotations current, created if asked; and the
        Progressing reason to report for it (created/found) if any."""
        max_old = max((revision(rs) for rs in olds), default=0)
        next_revision = str(max_old + 1)
        surge, _ = surge_and_unavailable(d)
        replicas = int(d["spec"].get("replicas", 1))
        copied = {k: v for k, v in (d["metadata"].get("annotations") or {}).items()
                  if k not in NOT_COPIED}
        if new is not None:
            annotations = dict(new["metadata"].get("annotations") or {})
            wanted = {**annotations, **copied}
            if revision(new) < max_old + 1:
                if annotations.get(REVISION):
                    history = [h for h in (annotations.get(REVISION_HISTORY) or "").split(",")
                               if h]
                    wanted[REVISION_HISTORY] = ",".join([*history, annotations[REVISION]])
                wanted[REVISION] = next_revision
            body: Obj = {}
            if wanted != annotations:
                body["metadata"] = {"annotations": wanted}
            min_ready = d["spec"].get("minReadySeconds", 0)
            if new["spec"].get("minReadySeconds", 0) != min_ready:
                body["spec"] = {"minReadySeconds": min_ready}
            if body:
                new = await api.patch(self.client, ReplicaSet, new, body)
            await self._set_revision(d, (new["metadata"].get("annotations") or {}).get(
                REVISION, next_revision))
            return new, None
        if not create:
            return None, None
        return await self._create_replica_set(d, olds, next_revision, copied, surge,
                                              replicas)

    async def _create_replica_set(self, d: Obj, olds: list[Obj], next_revision: str,
                                  copied: dict[str, str], surge: int, replicas: int
                                  ) -> tuple[Obj | None, str | None]:
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        template = copy.deepcopy(d["spec"].get("template") or {})
        pod_hash = template_hash(template, collisions)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
        selector = copy.deepcopy(d["spec"].get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            size = replicas
        else:
            total = sum(replicas_of(rs) for rs in olds)
            size = max(0, min(replicas, replicas + surge - total))
        name = f"{d['metadata']['name']}-{pod_hash}"
        body = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": d["metadata"]["namespace"],
                         "labels": tmeta["labels"],
                         "annotations": {**copied, REVISION: next_revision,
                                         DESIRED_REPLICAS: str(replicas),
                                         MAX_REPLICAS: str(replicas + surge)},
                         "ownerReferences": [owner_reference(d)]},
            "spec": {"replicas": size, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                     "selector": selector, "template": template},
        }
        try:
            created = plain(await self.client.create(ReplicaSet.from_dict(body),
                                                     namespace=d["metadata"]["namespace"]))
        except ApiError as exc:
            if exc.status.code != 409:
                raise
            existing = plain(await self.client.get(ReplicaSet, name,
                                                   namespace=d["metadata"]["namespace"]))
            ref = controller_ref(existing)
            if ref and ref.get("uid") == d["metadata"]["uid"] and equal_ignore_hash(
                    existing["spec"].get("template") or {}, d["spec"].get("template") or {}):
                return existing, None  # ours, created by an earlier sync: the cache lags
            # A hash collision: count it and come back with another name.
            await api.patch(self.client, Deployment.Status, d,
                            {"status": {"collisionCount": collisions + 1}}, pin=False)
            raise
        self.events.event(d, "Normal", "ScalingReplicaSet",
                          f"Scaled up replica set {name} from 0 to {size}")
        await self._set_revision(d, next_revision)
        return created, "NewReplicaSetCreated"

    async def _set_revision(self, d: Obj, value: str) -> None:
        annotations = d["metadata"].get("annotations") or {}
        if annotations.get(REVISION) != value:
            updated = await api.patch(self.client, Deployment, d,
                                      {"metadata": {"annotations": {REVISION: value}}})
            d["metadata"] = updated["metadata"]

    async def _scale(self, d: Obj, rs: Obj, size: int) -> Obj:
        surge, _ = surge_and_unavailable(d)
        replicas = int(d["spec"].get("replicas", 1))
        annotations = rs["metadata"].get("annotations") or {}
        want_annotations = {DESIRED_REPLICAS: str(replicas), MAX_REPLICAS: str(replicas + surge)}
        current = replicas_of(rs)
        if current == size and all(annotations.get(k) == v
                                   for k, v in want_annotations.items()):
            return rs
        updated = await api.patch(self.client, ReplicaSet, rs, {
            "spec": {"replicas": size}, "metadata": {"annotations": want_annotations}})
        if current != size:
            direction = "up" if size > current else "down"
            self.events.event(d, "Normal", "ScalingReplicaSet",
                              f"Scaled {direction} replica set {rs['metadata']['name']} "
                              f"from {current} to {size}")
        return updated

    # ---- strategies ----------------------------------------------------------------

    async def _rolling(self, d: Obj, owned: list[Obj]) -> None:
        new, olds = self._split(d, owned)
        new, created = await self._new_replica_set(d, new, olds, create=True)
        assert new is not None
        replicas = int(d["spec"].get("replicas", 1))
        surge, unavailable = surge_and_unavailable(d)
        # Scale the new ReplicaSet up (or down to size) within maxSurge.
        size = replicas_of(new)
        if size != replicas:
            if size > replicas:
                target = replicas
            else:
                total = sum(replicas_of(rs) for rs in [new, *olds])
                target = size + max(0, min(replicas + surge - total, replicas - size))
            if target != size:
                new = await self._scale(d, new, target)
                await self._sync_status(d, new, olds, created=created)
                return
        # Scale old ReplicaSets down while enough pods stay available.
        if await self._scale_down_old(d, new, olds, replicas, unavailable):
            await self._sync_status(d, new, olds, created=created)
            return
        status = self._calculate_status(d, new, olds)
        if deployment_complete(d, status):
            await self._cleanup(d, olds)
        await self._sync_status(d, new, olds, created=created)

    async def _scale_down_old(self, d: Obj, new: Obj, olds: list[Obj], replicas: int,
                              max_unavailable: int) -> bool:
        if sum(replicas_of(rs) for rs in olds) == 0:
            return False
        all_pods = sum(replicas_of(rs) for rs in [new, *olds])
        min_available = replicas - max_unavailable
        new_unavailable = replicas_of(new) - _status(new, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        olds = sorted(olds, key=_created)
        scaled = 0
        # Unhealthy old replicas first: they hold no availability.
        for i, rs in enumerate(olds):
            if scaled >= max_scaled_down:
                break
            size, available = replicas_of(rs), _status(rs, "availableReplicas")
            if size == 0 or available >= size:
                continue
            down = min(max_scaled_down - scaled, size - available)
            olds[i] = await self._scale(d, rs, size - down)
            scaled += down
        available = sum(_status(rs, "availableReplicas") for rs in [new, *olds])
        budget = available - min_available
        for i, rs in enumerate(olds):
            if budget <= 0:
                break
            size = replicas_of(rs)
            if size == 0:
                continue
            down = min(size, budget)
            olds[i] = await self._scale(d, rs, size - down)
            budget -= down
            scaled += down
        return scaled > 0

    async def _recreate(self, d: Obj, owned: list[Obj]) -> None:
        new, olds = self._split(d, owned)
        new, created = await self._new_replica_set(d, new, olds, create=False)
        scaled = False
        for rs in olds:
            if replicas_of(rs) > 0:
                await self._scale(d, rs, 0)
                scaled = True
        if scaled or self._old_pods_running(olds):
            await self._sync_status(d, new, olds, created=created)
            return
        if new is None:
            new, created = await self._new_replica_set(d, None, olds, create=True)
        assert new is not None
        replicas = int(d["spec"].get("replicas", 1))
        if replicas_of(new) != replicas:
            new = await self._scale(d, new, replicas)
        if deployment_complete(d, self._calculate_status(d, new, olds)):
            await self._cleanup(d, olds)
        await self._sync_status(d, new, olds, created=created)

    def _old_pods_running(self, olds: list[Obj]) -> bool:
        if any(_status(rs, "replicas") > 0 for rs in olds):
            return True
        uids = {rs["metadata"]["uid"] for rs in olds}
        if not uids:
            return False
        namespace = olds[0]["metadata"]["namespace"]
        return any((controller_ref(p) or {}).get("uid") in uids and not is_terminal(p)
                   for p in self.pods.list(namespace))

    async def _sync_scale(self, d: Obj, owned: list[Obj]) -> None:
        """Paused or a scaling event: resize without rolling (proportionally)."""
        new, olds = self._split(d, owned)
        new, _ = await self._new_replica_set(d, new, olds, create=False)
        replicas = int(d["spec"].get("replicas", 1))
        everything = [rs for rs in [new, *olds] if rs is not None]
        active = [rs for rs in everything if replicas_of(rs) > 0]
        target: Obj | None = None
        if len(active) == 1:
            target = active[0]
        elif not active:
            target = new or (max(olds, key=_created) if olds else None)
        if target is not None:
            await self._scale(d, target, replicas)
        elif new is not None and replicas_of(new) == replicas and _status(
                new, "availableReplicas") == replicas:
            for rs in olds:
                await self._scale(d, rs, 0)
        else:
            await self._scale_proportionally(d, active)
        if d["spec"].get("paused"):
            await self._cleanup(d, olds)
        await self._sync_status(d, new, olds, rollout=False)

    async def _scale_proportionally(self, d: Obj, active: list[Obj]) -> None:
        replicas = int(d["spec"].get("replicas", 1))
        surge, _ = surge_and_unavailable(d)
        allowed = replicas + surge if replicas > 0 else 0
        to_add = allowed - sum(replicas_of(rs) for rs in active)
        if to_add == 0:
            return
        # Largest first; on a tie the newest when adding, the oldest when removing.
        order = sorted(active, key=lambda rs: (replicas_of(rs), _created(rs)),
                       reverse=to_add > 0)
        if to_add < 0:
            order = sorted(active, key=lambda rs: (-replicas_of(rs), _created(rs)))
        sizes, added = {}, 0
        for rs in order:
            size = replicas_of(rs)
            try:
                annotated = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS))
            except (TypeError, ValueError):
                annotated = 0
            if replicas == 0:
                part = -size
            elif annotated > 0:
                part = round(size * allowed / annotated) - size
            else:
                part = 0
            left = to_add - added
            part = min(part, left) if to_add > 0 else max(part, left)
            sizes[rs["metadata"]["uid"]] = size + part
            added += part
        if order and added != to_add:
            first = order[0]["metadata"]["uid"]
            sizes[first] += to_add - added
        for rs in order:
            await self._scale(d, rs, max(0, sizes[rs["metadata"]["uid"]]))

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        """Old ReplicaSets beyond revisionHistoryLimit, oldest revision first."""
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [rs for rs in olds if replicas_of(rs) == 0 and _status(rs, "replicas") == 0
                     and not is_deleting(rs)
                     and rs["metadata"].get("generation", 1) <= _status(rs, "observedGeneration")]
        surplus = len(cleanable) - int(limit)
        for rs in sorted(cleanable, key=revision)[:max(0, surplus)]:
            try:
                await self.client.delete(ReplicaSet, rs["metadata"]["name"],
                                         namespace=rs["metadata"]["namespace"])
            except ApiError as exc:
                if not is_not_found(exc):
                    raise

    # ---- status --------------------------------------------------------------------

    def _calculate_status(self, d: Obj, new: Obj | None, olds: list[Obj]) -> Obj:
        everything = [rs for rs in [new, *olds] if rs is not None]
        replicas = int(d["spec"].get("replicas", 1))
        _, unavailable = surge_and_unavailable(d)
        available = sum(_status(rs, "availableReplicas") for rs in everything)
        total = sum(replicas_of(rs) for rs in everything)
        status: Obj = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(_status(rs, "replicas") for rs in everything),
            "updatedReplicas": _status(new, "replicas") if new else 0,
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in everything),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
        }
        old = d.get("status") or {}
        if old.get("collisionCount"):
            status["collisionCount"] = old["collisionCount"]
        stamp = rfc3339()
        conditions = list(old.get("conditions") or [])
        if available >= replicas - unavailable:
            avail = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability."}
        else:
            avail = {"type": "Available", "status": "False",
                     "reason": "MinimumReplicasUnavailable",
                     "message": "Deployment does not have minimum availability."}
        status["conditions"] = set_condition(conditions, {
            **avail, "lastUpdateTime": stamp, "lastTransitionTime": stamp})
        return status

    async def _sync_status(self, d: Obj, new: Obj | None, olds: list[Obj], *,
                           created: str | None = None, rollout: bool = True) -> None:
        status = self._calculate_status(d, new, olds)
        old = d.get("status") or {}
        stamp = rfc3339()
        progressing = condition(d, "Progressing")
        conditions = status["conditions"]

        def put(kind: str, state: str, reason: str, message: str, touch: bool = False) -> None:
            nonlocal conditions
            conditions = set_condition(conditions, {
                "type": kind, "status": state, "reason": reason, "message": message,
                "lastUpdateTime": stamp, "lastTransitionTime": stamp}, touch=touch)

        rs_name = new["metadata"]["name"] if new else ""
        paused = bool(d["spec"].get("paused"))
        deadline = d["spec"].get("progressDeadlineSeconds")
        if paused:
            if not progressing or progressing.get("reason") != "DeploymentPaused":
                put("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif progressing and progressing.get("reason") == "DeploymentPaused":
            put("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        if created and new is not None:
            put("Progressing", "True", created, f'Created new replica set "{rs_name}"')
        elif new is not None and progressing is None and not paused:
            put("Progressing", "True", "FoundNewReplicaSet", f'Found new replica set "{rs_name}"')
        requeue: float | None = None
        if rollout and not paused and deadline is not None:
            current = next((c for c in conditions if c.get("type") == "Progressing"), None)
            complete_already = (current is not None and current.get("reason")
                                == "NewReplicaSetAvailable"
                                and status["replicas"] == status["updatedReplicas"])
            if not complete_already:
                if deployment_complete(d, status):
                    put("Progressing", "True", "NewReplicaSetAvailable",
                        f'ReplicaSet "{rs_name}" has successfully progressed.')
                elif deployment_progressing(old, status):
                    message = (f'ReplicaSet "{rs_name}" is progressing.' if new
                               else "Deployment is progressing.")
                    put("Progressing", "True", "ReplicaSetUpdated", message, touch=True)
                    requeue = float(deadline)
                elif current is not None and current.get("reason") != "ProgressDeadlineExceeded":
                    since = parse_time(current.get("lastUpdateTime"))
                    left = (since.timestamp() + deadline - now().timestamp()) if since else 0
                    if left <= 0:
                        put("Progressing", "False", "ProgressDeadlineExceeded",
                            f'ReplicaSet "{rs_name}" has timed out progressing.')
                    else:
                        requeue = left + 0.5
        status["conditions"] = conditions
        body = status_patch(old, {k: v for k, v in status.items()
                                  if v or k in ("replicas", "observedGeneration")})
        if body is not None:
            try:
                await api.patch(self.client, Deployment.Status, d, {"status": body}, pin=False)
            except ApiError as exc:
                if not is_not_found(exc):
                    raise
        if requeue is not None:
            self.queue.add_after(key_of(d), requeue)
