"""PodSandboxConfig and ContainerConfig: the CRI messages kubelet would send for a pod."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cri_api.v1 import api_pb2

from nodeless.agent.pods.containers import (
    DEFAULT_MASKED_PATHS,
    container_config,
    container_hash,
    container_mounts,
    new_termination_log,
)
from nodeless.agent.pods.errors import ContainerConfigError, UnsupportedOnFargate
from nodeless.agent.pods.hosts import etc_hosts, write_etc_hosts
from nodeless.agent.pods.resources import container_resources, qos_class
from nodeless.agent.pods.sandbox import (
    DnsSettings,
    dns_config,
    log_directory,
    sandbox_changed,
    sandbox_config,
)
from nodeless.agent.pods.volumes import Volume

GIB = 2**30


def make_pod(containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web"}, "annotations": {"CapacityProvisioned":
                                                                   "0.5vCPU 1GB"}},
            "spec": {"containers": containers or [{"name": "app", "image": "busybox"}],
                     "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                     "securityContext": {}, **spec}}


@pytest.fixture
def resolv(tmp_path: Path) -> DnsSettings:
    path = tmp_path / "resolv.conf"
    path.write_text("# host\nnameserver 10.255.255.53\nsearch corp.example. .\n"
                    "options edns0 ndots:1\n")
    return DnsSettings(resolv_conf=str(path))


def test_sandbox_config_fields(resolv: DnsSettings) -> None:
    p = make_pod([{"name": "app", "image": "busybox",
                   "ports": [{"containerPort": 8080, "name": "http"},
                             {"containerPort": 53, "protocol": "UDP"}]}],
                 hostname="api", subdomain="backends", shareProcessNamespace=True,
                 securityContext={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                                  "supplementalGroups": [4000],
                                  "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start",
                                               "value": "0"}]})
    warnings: list[tuple[str, str]] = []
    cfg = sandbox_config(p, log_directory=log_directory("/var/log/pods", p),
                         cgroup_parent="/nodeless/podu-1", dns=resolv, attempt=2,
                         capacity=(500, GIB), warn=lambda r, m: warnings.append((r, m)))
    assert (cfg.metadata.name, cfg.metadata.namespace, cfg.metadata.uid, cfg.metadata.attempt) \
        == ("web", "shop", "u-1", 2)
    assert cfg.hostname == "api"
    assert cfg.log_directory == "/var/log/pods/shop_web_u-1"
    assert dict(cfg.labels) == {"app": "web", "io.kubernetes.pod.name": "web",
                                "io.kubernetes.pod.namespace": "shop",
                                "io.kubernetes.pod.uid": "u-1"}
    assert dict(cfg.annotations) == {"CapacityProvisioned": "0.5vCPU 1GB"}
    assert [(m.container_port, m.protocol, m.host_port) for m in cfg.port_mappings] == \
        [(8080, api_pb2.TCP, 0), (53, api_pb2.UDP, 0)]
    linux = cfg.linux
    assert linux.cgroup_parent == "/nodeless/podu-1"
    assert linux.sysctls == {"net.ipv4.ip_unprivileged_port_start": "0"}
    sc = linux.security_context
    assert sc.run_as_user.value == 1000 and sc.run_as_group.value == 3000
    assert list(sc.supplemental_groups) == [2000, 4000]
    assert sc.namespace_options.pid == api_pb2.POD
    assert sc.namespace_options.network == api_pb2.POD
    assert sc.seccomp.profile_type == api_pb2.SecurityProfile.RuntimeDefault
    assert (linux.resources.cpu_quota, linux.resources.cpu_period,
            linux.resources.memory_limit_in_bytes) == (50_000, 100_000, GIB)
    # No cluster DNS in nodeless: ClusterFirst falls back to the host's resolv.conf.
    assert list(cfg.dns_config.servers) == ["10.255.255.53"]
    assert list(cfg.dns_config.searches) == ["corp.example"]
    assert list(cfg.dns_config.options) == ["edns0", "ndots:1"]
    assert warnings[0][0] == "MissingClusterDNS"
    assert 'Falling back to "Default" policy.' in warnings[0][1]


def test_hostname_is_the_pod_name_cut_to_63(resolv: DnsSettings) -> None:
    p = make_pod()
    p["metadata"]["name"] = "a" * 62 + "-bbbb"
    cfg = sandbox_config(p, log_directory="/l", cgroup_parent="/c", dns=resolv)
    assert cfg.hostname == "a" * 62
    p = make_pod(hostname="db", subdomain="sts", setHostnameAsFQDN=True)
    cfg = sandbox_config(p, log_directory="/l", cgroup_parent="/c", dns=resolv)
    assert cfg.hostname == "db.sts.shop.svc.cluster.local"


@pytest.mark.parametrize(("policy", "dns_cfg", "cluster", "servers", "searches", "options"), [
    ("Default", None, [], ["10.255.255.53"], ["corp.example"], ["edns0", "ndots:1"]),
    ("None", {"nameservers": ["1.1.1.1"], "searches": ["a.example"],
              "options": [{"name": "ndots", "value": "2"}]}, [],
     ["1.1.1.1"], ["a.example"], ["ndots:2"]),
    ("ClusterFirst", None, ["10.96.0.10"], ["10.96.0.10"],
     ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"],
     ["ndots:5"]),
    ("ClusterFirst", {"nameservers": ["10.96.0.10", "8.8.8.8"],
                      "options": [{"name": "ndots", "value": "3"}, {"name": "rotate"}]},
     ["10.96.0.10"], ["10.96.0.10", "8.8.8.8"],
     ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"],
     ["ndots:3", "rotate"]),
    ("Default", {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]}, [],
     ["10.255.255.53", "1.1.1.1", "2.2.2.2"], ["corp.example"], ["edns0", "ndots:1"]),
])
def test_dns_policies(resolv: DnsSettings, policy: str, dns_cfg: Any, cluster: list[str],
                      servers: list[str], searches: list[str], options: list[str]) -> None:
    p = make_pod(dnsPolicy=policy, **({"dnsConfig": dns_cfg} if dns_cfg else {}))
    settings = DnsSettings(cluster_dns=cluster, resolv_conf=resolv.resolv_conf)
    got = dns_config(p, settings)
    assert (list(got.servers), list(got.searches), list(got.options)) == \
        (servers, searches, options)


@pytest.mark.parametrize(("spec", "message"), [
    ({"hostNetwork": True}, "hostNetwork is not supported on Fargate"),
    ({"hostPID": True}, "hostPID is not supported on Fargate"),
    ({"containers": [{"name": "a", "securityContext": {"privileged": True}}]},
     "privileged containers are not supported on Fargate"),
])
def test_sandbox_refuses_what_fargate_refuses(resolv: DnsSettings, spec: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(UnsupportedOnFargate, match=message):
        sandbox_config(make_pod(**spec), log_directory="/l", cgroup_parent="/c", dns=resolv)


@pytest.mark.parametrize(("resources", "shares", "quota", "memory", "oom"), [
    ({}, 2, 0, 0, 1000),                                                     # BestEffort
    ({"requests": {"cpu": "250m", "memory": "256Mi"}}, 256, 0, 0, 750),      # Burstable
    ({"requests": {"cpu": "500m", "memory": "512Mi"},
      "limits": {"cpu": "500m", "memory": "512Mi"}}, 512, 50_000, 512 * 2**20, -997),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, 1024, 100_000, GIB, -997),  # requests=limits
    ({"requests": {"cpu": "1m"}, "limits": {"cpu": "5m"}}, 2, 1000, 0, 999),
    ({"requests": {"memory": "1Gi"}}, 2, 0, 0, 3),                          # whole capacity
])
def test_resources_translate_as_kubelet(resources: dict[str, Any], shares: int, quota: int,
                                        memory: int, oom: int) -> None:
    c = {"name": "app", "resources": resources}
    if "limits" in resources and "requests" not in resources:
        c["resources"] = {**resources, "requests": resources["limits"]}  # API defaulting
    p = make_pod([c])
    r = container_resources(p, c, memory_capacity=GIB)
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes,
            r.oom_score_adj) == (shares, quota, 100_000, memory, oom)


def test_qos_classes() -> None:
    both = {"cpu": "1", "memory": "1Gi"}
    assert qos_class(make_pod([{"name": "a"}])) == "BestEffort"
    assert qos_class(make_pod([{"name": "a", "resources": {"requests": both,
                                                            "limits": both}}])) == "Guaranteed"
    assert qos_class(make_pod([{"name": "a", "resources": {"requests": both, "limits": both}},
                               {"name": "b"}])) == "Burstable"


def test_container_config(tmp_path: Path) -> None:
    c = {"name": "app", "image": "registry.local/app:1", "command": ["/bin/server"],
         "args": ["--name=$(POD)"], "workingDir": "/srv", "tty": True, "stdin": True,
         "terminationMessagePath": "/dev/termination-log",
         "terminationMessagePolicy": "FallbackToLogsOnError",
         "ports": [{"containerPort": 80, "protocol": "TCP"}],
         "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
         "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True,
                             "allowPrivilegeEscalation": False,
                             "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                             "seccompProfile": {"type": "RuntimeDefault"}}}
    p = make_pod([c], terminationGracePeriodSeconds=30,
                 securityContext={"runAsGroup": 3000, "fsGroup": 2000})
    env = [api_pb2.KeyValue(key="POD", value="web")]
    cfg = container_config(p, c, image_ref="sha256:abc", env=env, mounts=[], attempt=3,
                           memory_capacity=GIB)
    assert (cfg.metadata.name, cfg.metadata.attempt) == ("app", 3)
    assert (cfg.image.image, cfg.image.user_specified_image) == ("sha256:abc",
                                                                "registry.local/app:1")
    assert list(cfg.command) == ["/bin/server"] and list(cfg.args) == ["--name=web"]
    assert cfg.working_dir == "/srv" and cfg.tty and cfg.stdin and not cfg.stdin_once
    assert cfg.log_path == "app/3.log"
    assert dict(cfg.labels) == {"io.kubernetes.pod.name": "web",
                                "io.kubernetes.pod.namespace": "shop",
                                "io.kubernetes.pod.uid": "u-1",
                                "io.kubernetes.container.name": "app"}
    ann = dict(cfg.annotations)
    assert ann["io.kubernetes.container.restartCount"] == "3"
    assert ann["io.kubernetes.container.terminationMessagePath"] == "/dev/termination-log"
    assert ann["io.kubernetes.container.terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert ann["io.kubernetes.pod.terminationGracePeriod"] == "30"
    assert ann["io.kubernetes.container.preStopHandler"] == \
        '{"exec":{"command":["sleep","1"]}}'
    assert ann["io.kubernetes.container.ports"] == '[{"containerPort":80,"protocol":"TCP"}]'
    assert ann["io.kubernetes.container.hash"] == container_hash(c)
    assert container_hash(c) != container_hash({**c, "image": "registry.local/app:2"})
    assert container_hash(c) == container_hash({**c, "args": ["other"]})
    sc = cfg.linux.security_context
    assert sc.run_as_user.value == 1000 and sc.run_as_group.value == 3000
    assert sc.readonly_rootfs and sc.no_new_privs
    assert list(sc.capabilities.add_capabilities) == ["NET_BIND_SERVICE"]
    assert list(sc.capabilities.drop_capabilities) == ["ALL"]
    assert sc.seccomp.profile_type == api_pb2.SecurityProfile.RuntimeDefault
    assert list(sc.supplemental_groups) == [2000]
    assert tuple(sc.masked_paths) == DEFAULT_MASKED_PATHS
    assert sc.namespace_options.pid == api_pb2.CONTAINER


def test_seccomp_defaults_and_localhost() -> None:
    c = {"name": "app"}
    cfg = container_config(make_pod([c]), c, image_ref="i", env=[], mounts=[],
                           memory_capacity=GIB)
    assert cfg.linux.security_context.seccomp.profile_type == api_pb2.SecurityProfile.Unconfined
    assert not cfg.linux.security_context.no_new_privs
    p = make_pod([c], securityContext={"seccompProfile": {"type": "Localhost",
                                                          "localhostProfile": "my.json"}})
    sc = container_config(p, c, image_ref="i", env=[], mounts=[],
                          memory_capacity=GIB).linux.security_context
    assert sc.seccomp.profile_type == api_pb2.SecurityProfile.Localhost
    assert sc.seccomp.localhost_ref == "/var/lib/kubelet/seccomp/my.json"


@pytest.mark.parametrize(("pod_sc", "container_sc", "image_uid", "image_user", "message"), [
    ({"runAsNonRoot": True}, {"runAsUser": 0}, 1, "",
     "container's runAsUser breaks non-root policy (pod: \"web_shop(u-1)\", container: app)"),
    ({"runAsNonRoot": True}, {}, 0, "",
     "container has runAsNonRoot and image will run as root (pod: \"web_shop(u-1)\", "
     "container: app)"),
    ({}, {"runAsNonRoot": True}, None, "nginx",
     "container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user "
     "is non-root (pod: \"web_shop(u-1)\", container: app)"),
    ({"runAsNonRoot": True}, {}, None, "",                   # the image names no user
     "container has runAsNonRoot and image will run as root (pod: \"web_shop(u-1)\", "
     "container: app)"),
    ({"runAsNonRoot": True}, {}, 101, "", None),
    ({"runAsNonRoot": True, "runAsUser": 1000}, {}, 0, "", None),
])
def test_run_as_non_root(pod_sc: dict[str, Any], container_sc: dict[str, Any],
                         image_uid: int | None, image_user: str, message: str | None) -> None:
    c = {"name": "app", "securityContext": container_sc}
    p = make_pod([c], securityContext=pod_sc)
    if message is None:
        container_config(p, c, image_ref="i", env=[], mounts=[], memory_capacity=GIB,
                         image_uid=image_uid, image_username=image_user)
        return
    with pytest.raises(ContainerConfigError) as err:
        container_config(p, c, image_ref="i", env=[], mounts=[], memory_capacity=GIB,
                         image_uid=image_uid, image_username=image_user)
    assert str(err.value) == message


def test_privileged_container_is_refused() -> None:
    c = {"name": "app", "securityContext": {"privileged": True}}
    with pytest.raises(UnsupportedOnFargate, match="privileged"):
        container_config(make_pod([c]), c, image_ref="i", env=[], mounts=[],
                         memory_capacity=GIB)


def test_mounts_subpaths_hosts_and_termination_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o777)
    os.chmod(data, 0o777)
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    c = {"name": "app", "terminationMessagePath": "/dev/termination-log",
         "volumeMounts": [
             {"name": "data", "mountPath": "/data"},
             {"name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD)"},
             {"name": "cfg", "mountPath": "/etc/app", "readOnly": False},
             {"name": "data", "mountPath": "/cache", "subPath": "cache", "readOnly": True,
              "mountPropagation": "HostToContainer"}]}
    p = make_pod([c])
    hosts = write_etc_hosts(str(tmp_path), etc_hosts(["10.0.1.23"], "web"))
    tlog = new_termination_log(str(tmp_path / "containers" / "app"))
    mounts = container_mounts(
        p, c, {"data": str(data), "cfg": Volume("cfg", "configMap", str(cfg), True)},
        envs=[api_pb2.KeyValue(key="POD", value="web")], etc_hosts_path=hosts,
        termination_message_host_path=tlog)
    got = [(m.container_path, m.host_path, m.readonly) for m in mounts]
    assert got == [("/data", str(data), False),
                   ("/logs", str(data / "logs" / "web"), False),
                   ("/etc/app", str(cfg), True),           # configMap: always read-only
                   ("/cache", str(data / "cache"), True),
                   ("/etc/hosts", hosts, False),
                   ("/dev/termination-log", tlog, False)]
    assert stat.S_IMODE(os.stat(data / "logs" / "web").st_mode) == 0o777  # volume's mode
    assert stat.S_IMODE(os.stat(tlog).st_mode) == 0o666
    assert mounts[3].propagation == api_pb2.PROPAGATION_HOST_TO_CONTAINER
    assert Path(hosts).read_text().endswith("10.0.1.23\tweb\n")


@pytest.mark.parametrize(("mount", "message"), [
    ({"name": "data", "mountPath": "/x", "subPath": "/etc"},
     "error SubPath `/etc` must not be an absolute path"),
    ({"name": "data", "mountPath": "/x", "subPath": "a/../../etc"},
     "unable to provision SubPath `a/../../etc`: must not contain '..'"),
    ({"name": "data", "mountPath": "/x", "subPathExpr": "$(NOPE)"}, "missing value for NOPE"),
    ({"name": "gone", "mountPath": "/x"},
     'cannot find volume "gone" to mount into container "app"'),
    ({"name": "data", "mountPath": "/x", "subPath": "escape"}, "not within volume path"),
])
def test_bad_mounts(tmp_path: Path, mount: dict[str, Any], message: str) -> None:
    (tmp_path / "escape").symlink_to("/etc")
    c = {"name": "app", "volumeMounts": [mount]}
    with pytest.raises(ContainerConfigError, match=message.replace("(", r"\(")
                       .replace(")", r"\)").replace("$", r"\$").replace(".", r"\.")):
        container_mounts(make_pod([c]), c, {"data": str(tmp_path)})


def test_container_mounting_its_own_etc_hosts_gets_no_managed_one(tmp_path: Path) -> None:
    c = {"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/etc/hosts",
                                          "subPath": "hosts"}]}
    (tmp_path / "hosts").write_text("")
    mounts = container_mounts(make_pod([c]), c, {"data": str(tmp_path)},
                              etc_hosts_path=str(tmp_path / "etc-hosts"))
    assert [m.container_path for m in mounts] == ["/etc/hosts"]


def test_etc_hosts_content() -> None:
    text = etc_hosts(["10.0.1.23"], "db-0", "db.shop.svc.cluster.local",
                     [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}])
    assert text == ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
                    "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
                    "10.0.1.23\tdb-0.db.shop.svc.cluster.local\tdb-0\n\n"
                    "# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n")


def _sb(sid: str, created: int, ready: bool, ip: str = "10.0.1.23", attempt: int = 0
        ) -> api_pb2.PodSandboxStatus:
    return api_pb2.PodSandboxStatus(
        id=sid, created_at=created, metadata=api_pb2.PodSandboxMetadata(attempt=attempt),
        state=api_pb2.SANDBOX_READY if ready else api_pb2.SANDBOX_NOTREADY,
        network=api_pb2.PodSandboxNetworkStatus(ip=ip))


@pytest.mark.parametrize(("sandboxes", "expected"), [
    ([], (True, 0)),
    ([_sb("a", 1, True)], (False, 0)),
    ([_sb("a", 1, False, attempt=0)], (True, 1)),
    ([_sb("a", 1, True, attempt=0), _sb("b", 2, True, attempt=1)], (True, 2)),
    ([_sb("a", 1, True, attempt=0), _sb("b", 2, False, attempt=1)], (True, 2)),
    ([_sb("a", 1, True, ip="")], (True, 1)),
])
def test_sandbox_changed(sandboxes: list[Any], expected: tuple[bool, int]) -> None:
    assert sandbox_changed(sandboxes) == expected
