"""PodSandboxConfig as kubelet's generatePodSandboxConfig builds it (kuberuntime_sandbox.go)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cri_api.v1 import api_pb2

from nodeless.agent.pods.errors import ContainerConfigError, UnsupportedOnFargate
from nodeless.agent.pods.podutil import Pod
from nodeless.agent.pods.resources import sandbox_resources

POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
POD_UID_LABEL = "io.kubernetes.pod.uid"

MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_CHARS = 2048

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")

Warn = Callable[[str, str], None]
"""Receives (reason, message) of a Warning Event kubelet would record on the pod."""


@dataclass(frozen=True)
class DnsSettings:
    """The host agent's DNS configuration (kubelet's --cluster-dns, --cluster-domain,
    --resolv-conf). nodeless runs no cluster DNS yet: `cluster_dns` is empty, so
    ClusterFirst pods fall back to the Default policy, the host's resolv.conf, exactly as
    kubelet does without --cluster-dns (with its `MissingClusterDNS` Warning)."""

    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    resolv_conf: str = "/etc/resolv.conf"


def pod_labels(pod: Pod) -> dict[str, str]:
    """The pod's labels plus the three kubelet adds to every sandbox and container."""
    meta = pod.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels[POD_NAME_LABEL] = meta.get("name", "")
    labels[POD_NAMESPACE_LABEL] = meta.get("namespace", "")
    labels[POD_UID_LABEL] = meta.get("uid", "")
    return labels


def log_directory(root: str, pod: Pod) -> str:
    """`<root>/<namespace>_<name>_<uid>`, kubelet's pod log directory."""
    meta = pod.get("metadata") or {}
    return os.path.join(root, f"{meta.get('namespace', '')}_{meta.get('name', '')}_"
                              f"{meta.get('uid', '')}")


def hostname_and_domain(pod: Pod, cluster_domain: str = "cluster.local") -> tuple[str, str]:
    """(hostname, domain) as GeneratePodHostNameAndDomain: spec.hostname or the pod name,
    cut to 63 characters; `<subdomain>.<namespace>.svc.<cluster domain>` with a subdomain."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = meta.get("name", "")
    if spec.get("hostname"):
        if not _DNS1123_LABEL.match(spec["hostname"]) or len(spec["hostname"]) > 63:
            raise ContainerConfigError(
                f"pod Hostname {spec['hostname']!r} is not a valid DNS label")
        hostname = spec["hostname"]
    if len(hostname) > 63:
        hostname = hostname[:63].rstrip("-.")
        if not hostname:
            raise ContainerConfigError(f"hostname for pod {meta.get('name')!r} was invalid")
    domain = ""
    if spec.get("subdomain"):
        domain = f"{spec['subdomain']}.{meta.get('namespace', '')}.svc.{cluster_domain}"
    return hostname, domain


def kernel_hostname(pod: Pod, cluster_domain: str = "cluster.local") -> str:
    """The sandbox's hostname: the FQDN with setHostnameAsFQDN (at most 64 characters)."""
    hostname, domain = hostname_and_domain(pod, cluster_domain)
    if (pod.get("spec") or {}).get("setHostnameAsFQDN") and domain:
        fqdn = f"{hostname}.{domain}"
        if len(fqdn) > 64:
            raise ContainerConfigError(
                f"failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is "
                f"too long (64 characters is the max, {len(fqdn)} characters requested)")
        return fqdn
    return hostname


# --- DNS ------------------------------------------------------------------------------

def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of a resolv.conf; the last `search` line wins."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        line = re.split(r"[#;]", line, maxsplit=1)[0]
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.rstrip(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, searches, options


def _dedup(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _merge_options(base: list[str], extra: list[Mapping[str, Any]]) -> list[str]:
    """DNS options by name; the pod's dnsConfig options override the base's."""
    merged: dict[str, str] = {}
    for opt in base:
        name, sep, value = opt.partition(":")
        merged[name] = opt
    for opt in extra:
        name = opt.get("name", "")
        merged[name] = f"{name}:{opt['value']}" if opt.get("value") is not None else name
    return list(merged.values())


def dns_config(pod: Pod, dns: DnsSettings, warn: Warn | None = None) -> api_pb2.DNSConfig:
    """DNSConfig as kubelet's GetPodDNS computes it for dnsPolicy and dnsConfig."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    meta = pod.get("metadata") or {}
    if policy == "None":
        kind = "none"
    elif policy == "Default" or (policy == "ClusterFirst" and spec.get("hostNetwork")):
        kind = "host"
    else:
        kind = "cluster"
    if kind == "cluster" and not dns.cluster_dns:
        if warn:
            warn("MissingClusterDNS",
                 f'pod: "{meta.get("name")}_{meta.get("namespace")}({meta.get("uid")})". kubelet '
                 f'does not have ClusterDNS IP configured and cannot create Pod using "{policy}" '
                 'policy. Falling back to "Default" policy.')
        kind = "host"
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if kind in ("host", "cluster"):
        try:
            with open(dns.resolv_conf) as f:
                host = parse_resolv_conf(f.read())
        except FileNotFoundError:
            host = ([], [], [])
        if kind == "host":
            servers, searches, options = list(host[0]), list(host[1]), list(host[2])
        else:
            ns = meta.get("namespace", "")
            d = dns.cluster_domain
            servers = list(dns.cluster_dns)
            searches = [f"{ns}.svc.{d}", f"svc.{d}", d, *host[1]]
            options = ["ndots:5"]
    extra = spec.get("dnsConfig") or {}
    if extra:
        servers = _dedup(servers + list(extra.get("nameservers") or []))
        searches = _dedup(searches + list(extra.get("searches") or []))
        options = _merge_options(options, list(extra.get("options") or []))
    if len(servers) > MAX_DNS_NAMESERVERS:
        if warn:
            warn("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have "
                 f"been omitted, the applied nameserver line is: {' '.join(servers[:3])}")
        servers = servers[:MAX_DNS_NAMESERVERS]
    searches = _fit_searches(searches, warn)
    return api_pb2.DNSConfig(servers=servers, searches=searches, options=options)


def _fit_searches(searches: list[str], warn: Warn | None) -> list[str]:
    kept: list[str] = []
    chars = 0
    for s in searches:
        if len(kept) == MAX_DNS_SEARCH_PATHS or chars + len(s) + (1 if kept else 0) > \
                MAX_DNS_SEARCH_CHARS:
            if warn:
                warn("DNSConfigForming", "Search Line limits were exceeded, some search paths "
                     f"have been omitted, the applied search line is: {' '.join(kept)}")
            break
        chars += len(s) + (1 if kept else 0)
        kept.append(s)
    return kept


# --- ports, security -----------------------------------------------------------------

_PROTOCOLS = {"TCP": api_pb2.TCP, "UDP": api_pb2.UDP, "SCTP": api_pb2.SCTP}


def port_mappings(pod: Pod) -> list[api_pb2.PortMapping]:
    """Every containerPort of the regular containers, each name once (MakePortMappings).

    CRI forwards only those with a hostPort; admission refuses hostPort on Fargate."""
    mappings = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        names: set[str] = set()
        for p in c.get("ports") or []:
            proto = p.get("protocol") or "TCP"
            host_ip = p.get("hostIP") or ""
            family = "any" if not host_ip else ("v6" if ":" in host_ip else "v4")
            name = p.get("name") or (f"{family}-{proto}-{host_ip}:{p.get('containerPort', 0)}:"
                                     f"{p.get('hostPort', 0)}")
            if name in names:
                continue
            names.add(name)
            mappings.append(api_pb2.PortMapping(
                protocol=_PROTOCOLS.get(proto, api_pb2.TCP),
                container_port=int(p.get("containerPort", 0)),
                host_port=int(p.get("hostPort") or 0), host_ip=host_ip))
    return mappings


def namespace_options(pod: Pod) -> api_pb2.NamespaceOption:
    """Network and IPC per pod; PID per container unless shareProcessNamespace.

    Host namespaces are refused: Fargate does not run hostNetwork/hostPID/hostIPC pods."""
    spec = pod.get("spec") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            raise UnsupportedOnFargate(f"{key} is not supported on Fargate")
    pid = api_pb2.POD if spec.get("shareProcessNamespace") else api_pb2.CONTAINER
    return api_pb2.NamespaceOption(network=api_pb2.POD, pid=pid, ipc=api_pb2.POD)


def supplemental_groups(pod: Pod) -> list[int]:
    """fsGroup first, then supplementalGroups, as kubelet orders them."""
    sc = (pod.get("spec") or {}).get("securityContext") or {}
    groups = []
    if sc.get("fsGroup") is not None:
        groups.append(int(sc["fsGroup"]))
    groups += [int(g) for g in sc.get("supplementalGroups") or []]
    return groups


def has_privileged_container(pod: Pod) -> bool:
    spec = pod.get("spec") or {}
    return any(((c.get("securityContext") or {}).get("privileged"))
               for key in ("initContainers", "containers", "ephemeralContainers")
               for c in spec.get(key) or [])


def sandbox_config(pod: Pod, *, hostname: str | None = None, log_directory: str,
                   cgroup_parent: str, dns: DnsSettings, attempt: int = 0,
                   capacity: tuple[int, int] | None = None,
                   warn: Warn | None = None) -> api_pb2.PodSandboxConfig:
    """The PodSandboxConfig kubelet would send for this pod.

    hostname: None computes kubelet's (spec.hostname or the pod name, FQDN with
    setHostnameAsFQDN). log_directory: from `log_directory(root, pod)`. cgroup_parent:
    from cgroups.PodCgroup. capacity: (millicores, bytes) for the pod-level resources.
    Raises ContainerConfigError / UnsupportedOnFargate for what cannot run."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if has_privileged_container(pod):
        raise UnsupportedOnFargate("privileged containers are not supported on Fargate")
    sc = spec.get("securityContext") or {}
    security = api_pb2.LinuxSandboxSecurityContext(
        namespace_options=namespace_options(pod),
        # kubelet runs every sandbox (the pause process) under runtime/default (#84623).
        seccomp=api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.RuntimeDefault),
        supplemental_groups=supplemental_groups(pod),
    )
    if sc.get("runAsUser") is not None:
        security.run_as_user.value = int(sc["runAsUser"])
    if sc.get("runAsGroup") is not None:
        security.run_as_group.value = int(sc["runAsGroup"])
    if sc.get("seLinuxOptions"):
        o = sc["seLinuxOptions"]
        security.selinux_options.CopyFrom(api_pb2.SELinuxOption(
            user=o.get("user", ""), role=o.get("role", ""), type=o.get("type", ""),
            level=o.get("level", "")))
    linux = api_pb2.LinuxPodSandboxConfig(
        cgroup_parent=cgroup_parent, security_context=security,
        sysctls={s["name"]: str(s.get("value", "")) for s in sc.get("sysctls") or []})
    if capacity is not None:
        linux.resources.CopyFrom(sandbox_resources(*capacity))
    return api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(
            name=meta.get("name", ""), namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""), attempt=attempt),
        hostname=hostname if hostname is not None else kernel_hostname(pod),
        log_directory=log_directory,
        dns_config=dns_config(pod, dns, warn),
        port_mappings=port_mappings(pod),
        labels=pod_labels(pod),
        annotations=dict(meta.get("annotations") or {}),
        linux=linux,
    )



def sandbox_changed(sandboxes: list[api_pb2.PodSandboxStatus]) -> tuple[bool, int]:
    """(a new sandbox is needed, its attempt), as kubelet's PodSandboxChanged: none yet,
    more than one ready, the newest not ready, or the newest without an IP.

    sandboxes: the pod's sandboxes from the runtime, in any order. When a new one is
    needed, the others are stopped first; with restartPolicy Never and containers that
    already ran, kubelet does not create one (the pod is over)."""
    if not sandboxes:
        return True, 0
    ordered = sorted(sandboxes, key=lambda s: (s.created_at, s.id), reverse=True)
    newest = ordered[0]
    ready = sum(1 for s in ordered if s.state == api_pb2.SANDBOX_READY)
    if ready > 1 or newest.state != api_pb2.SANDBOX_READY or not newest.network.ip:
        return True, newest.metadata.attempt + 1
    return False, newest.metadata.attempt
