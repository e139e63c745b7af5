"""ContainerConfig as kubelet's generateContainerConfig builds it (kuberuntime_container.go)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cri_api.v1 import api_pb2

from nodeless.agent.pods.env import expand_command_and_args, expand_subpath
from nodeless.agent.pods.errors import ContainerConfigError, UnsupportedOnFargate
from nodeless.agent.pods.podutil import Container, Pod, format_pod
from nodeless.agent.pods.resources import container_resources
from nodeless.agent.pods.sandbox import (
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
    namespace_options,
    supplemental_groups,
)

CONTAINER_NAME_LABEL = "io.kubernetes.container.name"
HASH_ANNOTATION = "io.kubernetes.container.hash"
RESTART_COUNT_ANNOTATION = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH_ANNOTATION = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY_ANNOTATION = "io.kubernetes.container.terminationMessagePolicy"
DELETION_GRACE_ANNOTATION = "io.kubernetes.pod.deletionGracePeriod"
TERMINATION_GRACE_ANNOTATION = "io.kubernetes.pod.terminationGracePeriod"
PRESTOP_ANNOTATION = "io.kubernetes.container.preStopHandler"
PORTS_ANNOTATION = "io.kubernetes.container.ports"

ETC_HOSTS = "/etc/hosts"
SECCOMP_ROOT = "/var/lib/kubelet/seccomp"

DEFAULT_MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger")

_PROPAGATION = {
    None: api_pb2.PROPAGATION_PRIVATE, "None": api_pb2.PROPAGATION_PRIVATE,
    "HostToContainer": api_pb2.PROPAGATION_HOST_TO_CONTAINER,
}


def container_hash(container: Container) -> str:
    """The container's hash (hex), over the fields whose change makes kubelet restart it
    (name and image, as HashContainer since in-place resize). FNV-1a 32 of their JSON;
    the same inputs as kubelet's, not bit-identical to its value."""
    data = json.dumps({"image": container.get("image", ""), "name": container.get("name", "")},
                      separators=(",", ":"), sort_keys=True).encode()
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return format(h, "x")


def container_log_path(name: str, restart_count: int) -> str:
    """`<name>/<restartCount>.log`, relative to the sandbox's log_directory."""
    return os.path.join(name, f"{restart_count}.log")


def container_labels(pod: Pod, container: Container) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    return {POD_NAME_LABEL: meta.get("name", ""), POD_NAMESPACE_LABEL: meta.get("namespace", ""),
            POD_UID_LABEL: meta.get("uid", ""), CONTAINER_NAME_LABEL: container.get("name", "")}


def container_annotations(pod: Pod, container: Container, restart_count: int) -> dict[str, str]:
    """What kubelet records on the container to read back after a restart of its own:
    hash, restart count, termination message path/policy, grace periods, preStop, ports."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    out = {
        HASH_ANNOTATION: container_hash(container),
        RESTART_COUNT_ANNOTATION: str(restart_count),
        TERMINATION_MESSAGE_PATH_ANNOTATION: container.get("terminationMessagePath", ""),
        TERMINATION_MESSAGE_POLICY_ANNOTATION: container.get("terminationMessagePolicy", ""),
    }
    if meta.get("deletionGracePeriodSeconds") is not None:
        out[DELETION_GRACE_ANNOTATION] = str(meta["deletionGracePeriodSeconds"])
    if spec.get("terminationGracePeriodSeconds") is not None:
        out[TERMINATION_GRACE_ANNOTATION] = str(spec["terminationGracePeriodSeconds"])
    pre_stop = (container.get("lifecycle") or {}).get("preStop")
    if pre_stop:
        out[PRESTOP_ANNOTATION] = json.dumps(pre_stop, separators=(",", ":"))
    if container.get("ports"):
        out[PORTS_ANNOTATION] = json.dumps(container["ports"], separators=(",", ":"))
    return out


def effective_security_context(pod: Pod, container: Container) -> dict[str, Any]:
    """DetermineEffectiveSecurityContext: the pod's settings, overridden by the container's."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    out = {k: psc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seLinuxOptions",
                                "seccompProfile", "appArmorProfile") if k in psc}
    out.update(csc)
    return out


def verify_run_as_non_root(pod: Pod, container: Container, image_uid: int | None,
                           image_username: str) -> None:
    """kubelet's verifyRunAsNonRoot, with its messages (CreateContainerConfigError)."""
    sc = effective_security_context(pod, container)
    if not sc.get("runAsNonRoot"):
        return
    who = f'(pod: "{format_pod(pod)}", container: {container.get("name", "")})'
    if sc.get("runAsUser") is not None:
        if int(sc["runAsUser"]) == 0:
            raise ContainerConfigError(f"container's runAsUser breaks non-root policy {who}")
        return
    if image_uid is None and not image_username:
        image_uid = 0  # an image naming no user runs as root (kubelet's getImageUser)
    if image_uid == 0:
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root {who}")
    if image_uid is None and image_username:
        raise ContainerConfigError(
            f"container has runAsNonRoot and image has non-numeric user ({image_username}), "
            f"cannot verify user is non-root {who}")


def seccomp_profile(pod: Pod, container: Container, *, seccomp_root: str = SECCOMP_ROOT,
                    default_runtime: bool = False) -> api_pb2.SecurityProfile:
    """The container's seccomp profile, else the pod's, else Unconfined (kubelet's default
    without --seccomp-default)."""
    profile = (container.get("securityContext") or {}).get("seccompProfile") or \
        ((pod.get("spec") or {}).get("securityContext") or {}).get("seccompProfile")
    kind = (profile or {}).get("type")
    sp = api_pb2.SecurityProfile
    if kind == "RuntimeDefault" or (kind is None and default_runtime):
        return sp(profile_type=sp.RuntimeDefault)
    if kind == "Localhost":
        local = profile.get("localhostProfile") or ""
        return sp(profile_type=sp.Localhost, localhost_ref=os.path.join(seccomp_root, local))
    return sp(profile_type=sp.Unconfined)


def security_context(pod: Pod, container: Container, *, image_uid: int | None = None,
                     image_username: str = "", seccomp_root: str = SECCOMP_ROOT
                     ) -> api_pb2.LinuxContainerSecurityContext:
    """LinuxContainerSecurityContext from the effective security context. Privileged is
    refused (Fargate refuses it); runAsNonRoot is checked against the image's user."""
    sc = effective_security_context(pod, container)
    if sc.get("privileged"):
        raise UnsupportedOnFargate("privileged containers are not supported on Fargate")
    verify_run_as_non_root(pod, container, image_uid, image_username)
    caps = sc.get("capabilities") or {}
    unmasked = sc.get("procMount") == "Unmasked"
    out = api_pb2.LinuxContainerSecurityContext(
        capabilities=api_pb2.Capability(add_capabilities=list(caps.get("add") or []),
                                        drop_capabilities=list(caps.get("drop") or [])),
        namespace_options=namespace_options(pod),
        readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        supplemental_groups=supplemental_groups(pod),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        masked_paths=[] if unmasked else list(DEFAULT_MASKED_PATHS),
        readonly_paths=[] if unmasked else list(DEFAULT_READONLY_PATHS),
        seccomp=seccomp_profile(pod, container, seccomp_root=seccomp_root),
    )
    if sc.get("runAsUser") is not None:
        out.run_as_user.value = int(sc["runAsUser"])
    elif image_uid is not None:
        out.run_as_user.value = image_uid
    elif image_username:
        out.run_as_username = image_username
    if sc.get("runAsGroup") is not None:
        out.run_as_group.value = int(sc["runAsGroup"])
    if sc.get("seLinuxOptions"):
        o = sc["seLinuxOptions"]
        out.selinux_options.CopyFrom(api_pb2.SELinuxOption(
            user=o.get("user", ""), role=o.get("role", ""), type=o.get("type", ""),
            level=o.get("level", "")))
    return out


def new_termination_log(pod_container_dir: str) -> str:
    """Create the host file mounted at terminationMessagePath: a fresh name per container
    instance in `<pod dir>/containers/<name>/`, mode 0666 so any user can write it."""
    os.makedirs(pod_container_dir, exist_ok=True)
    path = os.path.join(pod_container_dir, uuid.uuid4().hex[:8])
    with open(path, "w"):
        pass
    os.chmod(path, 0o666)
    return path


def container_mounts(pod: Pod, container: Container, volume_paths: Mapping[str, Any], *,
                     envs: Sequence[api_pb2.KeyValue] = (), etc_hosts_path: str | None = None,
                     termination_message_host_path: str | None = None) -> list[api_pb2.Mount]:
    """kubelet's makeMounts: each volumeMount onto its volume's host path (subPath and
    subPathExpr resolved inside the volume, created when missing), /etc/hosts unless the
    container mounts its own, then the termination-message file.

    volume_paths: volume name -> host path (str) or volumes.Volume (its `path` and
    `read_only`: configMap, secret, downwardAPI and projected volumes are always mounted
    read-only)."""
    mounts: list[api_pb2.Mount] = []
    mount_hosts = etc_hosts_path is not None
    for vm in container.get("volumeMounts") or []:
        name, target = vm.get("name", ""), vm.get("mountPath", "")
        if target == ETC_HOSTS:
            mount_hosts = False
        vol = volume_paths.get(name)
        if vol is None:
            raise ContainerConfigError(
                f'cannot find volume "{name}" to mount into container "{container.get("name")}"')
        host_path = vol if isinstance(vol, str) else vol.path
        must_ro = False if isinstance(vol, str) else bool(getattr(vol, "read_only", False))
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            sub = expand_subpath(vm["subPathExpr"], envs)
        if sub:
            host_path = _subpath(host_path, sub, name, container.get("name", ""))
        propagation = vm.get("mountPropagation")
        if propagation == "Bidirectional":
            raise UnsupportedOnFargate(
                "Bidirectional mount propagation needs a privileged container, which Fargate "
                "does not run")
        mounts.append(api_pb2.Mount(
            container_path=target, host_path=host_path,
            readonly=bool(vm.get("readOnly")) or must_ro,
            propagation=_PROPAGATION.get(propagation, api_pb2.PROPAGATION_PRIVATE)))
    if mount_hosts and etc_hosts_path:
        mounts.append(api_pb2.Mount(container_path=ETC_HOSTS, host_path=etc_hosts_path))
    if termination_message_host_path and container.get("terminationMessagePath"):
        mounts.append(api_pb2.Mount(container_path=container["terminationMessagePath"],
                                    host_path=termination_message_host_path))
    return mounts


def _subpath(volume_path: str, sub: str, volume: str, container: str) -> str:
    """The subPath inside the volume; refused if absolute, with `..`, or escaping through a
    symlink (what kubelet's safe subpath bind-mount prevents)."""
    if os.path.isabs(sub):
        raise ContainerConfigError(f"error SubPath `{sub}` must not be an absolute path")
    if ".." in sub.split("/"):
        raise ContainerConfigError(
            f"unable to provision SubPath `{sub}`: must not contain '..'")
    path = os.path.join(volume_path, sub)
    if not os.path.lexists(path):
        try:
            mode = os.stat(volume_path).st_mode & 0o7777
            os.makedirs(path, exist_ok=True)
            os.chmod(path, mode)
        except OSError:
            raise ContainerConfigError(f'failed to create subPath directory for volumeMount '
                                       f'"{volume}" of container "{container}"') from None
    real_volume, real = os.path.realpath(volume_path), os.path.realpath(path)
    if real != real_volume and not real.startswith(real_volume + os.sep):
        raise ContainerConfigError(
            f"subpath {real!r} not within volume path {real_volume!r}")
    return real


def container_config(pod: Pod, container: Container, *, image_ref: str,
                     env: Sequence[api_pb2.KeyValue], mounts: Sequence[api_pb2.Mount],
                     log_path: str | None = None, attempt: int = 0, memory_capacity: int,
                     image_uid: int | None = None, image_username: str = "",
                     seccomp_root: str = SECCOMP_ROOT) -> api_pb2.ContainerConfig:
    """The ContainerConfig kubelet would send for this container instance.

    image_ref: the image ID after the pull (the spec's image is kept as
    user_specified_image). env: from env.resolve_env. mounts: from container_mounts.
    attempt: the restart count. memory_capacity: the node's memory (the pod's provisioned
    bytes), for the OOM score. image_uid/image_username: the image's user from CRI
    ImageStatus (`image.uid.value` / `image.username`), for runAsNonRoot; an image naming
    neither counts as root. Raises ContainerConfigError."""
    name = container.get("name", "")
    command, args = expand_command_and_args(container, env)
    return api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=name, attempt=attempt),
        image=api_pb2.ImageSpec(image=image_ref, user_specified_image=container.get("image", "")),
        command=command,
        args=args,
        working_dir=container.get("workingDir", ""),
        envs=list(env),
        mounts=list(mounts),
        labels=container_labels(pod, container),
        annotations=container_annotations(pod, container, attempt),
        log_path=log_path if log_path is not None else container_log_path(name, attempt),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=api_pb2.LinuxContainerConfig(
            resources=container_resources(pod, container, memory_capacity),
            security_context=security_context(pod, container, image_uid=image_uid,
                                              image_username=image_username,
                                              seccomp_root=seccomp_root)),
    )
