"""Service (ports, cluster IPs, traffic policies, updates) and Endpoints."""

from __future__ import annotations

import ipaddress
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import (
    go_quote,
    go_string_slice,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
)
from nodeless.apiserver.resources.validation.containers import _PORT_PROTOCOLS, _port_num_or_name
from nodeless.apiserver.resources.validation.context import Obj, V, _d, _l
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    duplicate,
    forbidden,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.formats import (
    _cidr_errors,
    _ip_errors,
    is_valid_port_num,
)
from nodeless.apiserver.resources.validation.meta import validate_labels

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _go_service_port(protocol: str, port: Any) -> str:
    return (f'core.ServicePort{{Name:"", Protocol:{go_quote(protocol)}, '
            f"AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, "
            'IntVal:0, StrVal:""}, NodePort:0}')


def _service(v: V) -> None:
    obj = v.obj
    spec = _d(obj.get("spec"))
    svc_type = spec.get("type") or ""
    cluster_ips = [str(x) for x in _l(spec.get("clusterIPs"))]
    headless = len(cluster_ips) == 1 and cluster_ips[0] == "None"
    ports = _l(spec.get("ports"))
    if not ports and not headless and svc_type != "ExternalName":
        v.add(required("spec.ports"))
    if svc_type == "LoadBalancer" and headless:
        v.add(invalid("spec.clusterIPs[0]", cluster_ips[0],
                      "may not be set to 'None' for LoadBalancer services"))
    elif svc_type == "NodePort" and headless:
        v.add(invalid("spec.clusterIPs[0]", cluster_ips[0],
                      "may not be set to 'None' for NodePort services"))
    elif svc_type == "ExternalName":
        if cluster_ips:
            v.add(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            v.add(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            v.add(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            v.extend(invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname))
        else:
            v.add(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        port = _d(port)
        p = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            v.add(required(f"{p}.name"))
        elif name:
            v.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(str(name)))
            if name in names:
                v.add(duplicate(f"{p}.name", name))
            else:
                names.add(name)
        v.extend(invalid(f"{p}.port", port.get("port") or 0, m)
                 for m in is_valid_port_num(port.get("port")))
        protocol = port.get("protocol") or ""
        if protocol == "":
            v.add(required(f"{p}.protocol"))
        elif protocol not in _PORT_PROTOCOLS:
            v.add(unsupported(f"{p}.protocol", protocol, _PORT_PROTOCOLS))
        v.extend(_port_num_or_name(port.get("targetPort"), f"{p}.targetPort"))
        if port.get("appProtocol") is not None:
            v.extend(invalid(f"{p}.appProtocol", port["appProtocol"], m)
                     for m in is_qualified_name(str(port["appProtocol"])))
    if spec.get("selector") is not None:
        v.extend(validate_labels(spec["selector"], "spec.selector"))
    affinity = spec.get("sessionAffinity") or ""
    if affinity == "":
        v.add(required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        v.add(unsupported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    if affinity == "ClientIP":
        timeout = _d(_d(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        if isinstance(timeout, int) and not 0 < timeout <= 86400:
            v.add(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                          "must be greater than 0 and less than 86400"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        v.add(forbidden("spec.sessionAffinityConfig",
                        "must not be set when session affinity is None"))
    if svc_type != "ExternalName":
        v.extend(_cluster_ips(spec))
    for i, ip in enumerate(_l(spec.get("externalIPs"))):
        v.extend(_ip_errors(f"spec.externalIPs[{i}]", ip))
    if svc_type == "":
        v.add(required("spec.type"))
    elif svc_type not in _SERVICE_TYPES:
        v.add(unsupported("spec.type", svc_type, _SERVICE_TYPES))
    if svc_type == "ClusterIP":
        for i, port in enumerate(ports):
            if _d(port).get("nodePort"):
                v.add(forbidden(f"spec.ports[{i}].nodePort",
                                "may not be used when `type` is 'ClusterIP'"))
    seen_node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        port = _d(port)
        if not port.get("nodePort"):
            continue
        key = (port.get("protocol") or "", port["nodePort"])
        if key in seen_node_ports:
            v.add(duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
        seen_node_ports.add(key)
    seen_ports: set[tuple[str, Any]] = set()
    for i, port in enumerate(ports):
        port = _d(port)
        key2 = (str(port.get("protocol") or ""), port.get("port"))
        if key2 in seen_ports:
            v.add(duplicate(f"spec.ports[{i}]", GoValue(_go_service_port(*key2))))
        seen_ports.add(key2)
    ranges = _l(spec.get("loadBalancerSourceRanges"))
    if ranges:
        if svc_type != "LoadBalancer":
            v.add(forbidden("spec.LoadBalancerSourceRanges",
                            "may only be used when `type` is 'LoadBalancer'"))
        for i, value in enumerate(ranges):
            v.extend(_cidr_errors(f"spec.LoadBalancerSourceRanges[{i}]", str(value).strip()))
    if spec.get("allocateLoadBalancerNodePorts") is not None and svc_type != "LoadBalancer":
        v.add(forbidden("spec.allocateLoadBalancerNodePorts",
                        "may only be used when `type` is 'LoadBalancer'"))
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        v.add(required("allocateLoadBalancerNodePorts"))
    external = svc_type in ("LoadBalancer", "NodePort") or bool(spec.get("externalIPs"))
    etp = spec.get("externalTrafficPolicy") or ""
    if not external:
        if etp:
            v.add(invalid("spec.externalTrafficPolicy", etp,
                          "may only be set for externally-accessible services"))
    elif etp == "":
        v.add(required("spec.externalTrafficPolicy"))
    elif etp not in ("Cluster", "Local"):
        v.add(unsupported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    needs_health_check = svc_type == "LoadBalancer" and etp == "Local"
    hcnp = spec.get("healthCheckNodePort") or 0
    if not needs_health_check and hcnp:
        v.add(invalid("spec.healthCheckNodePort", hcnp, "may only be set when `type` is "
                                                        "'LoadBalancer' and "
                                                        "`externalTrafficPolicy` is 'Local'"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and svc_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        v.add(required("spec.internalTrafficPolicy"))
    if itp is not None and itp not in ("Cluster", "Local"):
        v.add(unsupported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    if v.old is not None:
        v.extend(_service_update(spec, _d(v.old.get("spec"))))


def _cluster_ips(spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = [str(x) for x in _l(spec.get("clusterIPs"))]
    shown = GoValue(go_string_slice(cluster_ips))
    if cluster_ip:
        if not cluster_ips:
            errs.append(required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            errs.append(invalid("spec.clusterIPs", shown, "first value must match `clusterIP`"))
    elif cluster_ips:
        errs.append(invalid("spec.clusterIPs", shown,
                            "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, family in enumerate(_l(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            errs.append(unsupported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
        if family in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in policies:
        errs.append(unsupported("spec.ipFamilyPolicy", policy, policies))
    bad = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                bad = True
                errs.append(invalid("spec.clusterIPs", shown,
                                    "'None' must be the first and only value"))
            continue
        ip_errs = _ip_errors(f"spec.clusterIPs[{i}]", ip)
        bad |= bool(ip_errs)
        errs.extend(ip_errs)
    if len(cluster_ips) > 2:
        errs.append(invalid("spec.clusterIPs", shown, "may only hold up to 2 values"))
    if bad:
        return errs
    if len(cluster_ips) > 1:
        versions = {ipaddress.ip_address(ip).version for ip in cluster_ips}
        if len(versions) != 2 or len(cluster_ips) != 2:
            errs.append(invalid("spec.clusterIPs", shown,
                                "may specify no more than one IP for each IP family"))
    families = _l(spec.get("ipFamilies"))
    if cluster_ips and cluster_ips != ["None"] and families:
        for i, ip in enumerate(cluster_ips[:len(families)]):
            is6 = ipaddress.ip_address(ip).version == 6
            if families[i] == "IPv4" and is6:
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, "expected an IPv4 value as "
                                                                 f"indicated by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and not is6:
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, "expected an IPv6 value as "
                                                                 f"indicated by `ipFamilies[{i}]`"))
    return errs


def _service_update(spec: Obj, old_spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return errs
    new_ips = [str(x) for x in _l(spec.get("clusterIPs"))]
    old_ips = [str(x) for x in _l(old_spec.get("clusterIPs"))]
    if new_ips == ["None"] and old_ips == ["None"]:
        return errs
    shown = GoValue(go_string_slice(new_ips))
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                errs.append(invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(invalid("spec.clusterIPs[0]", shown, "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
        if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            errs.append(invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                "must be set to 'SingleStack' when releasing the secondary "
                                "clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
    return errs


def _endpoints(v: V) -> None:
    for i, subset in enumerate(_l(v.obj.get("subsets"))):
        subset = _d(subset)
        p = f"subsets[{i}]"
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            v.add(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(_l(subset.get(key))):
                address = _d(address)
                ap = f"{p}.{key}[{j}]"
                v.extend(_ip_errors(f"{ap}.ip", address.get("ip") or ""))
                if address.get("hostname"):
                    v.extend(invalid(f"{ap}.hostname", address["hostname"], m)
                             for m in is_dns1123_label(str(address["hostname"])))
        ports = _l(subset.get("ports"))
        for j, port in enumerate(ports):
            port = _d(port)
            pp = f"{p}.ports[{j}]"
            if len(ports) > 1 and not port.get("name"):
                v.add(required(f"{pp}.name"))
            elif port.get("name"):
                v.extend(invalid(f"{pp}.name", port["name"], m)
                         for m in is_dns1123_label(str(port["name"])))
            v.extend(invalid(f"{pp}.port", port.get("port") or 0, m)
                     for m in is_valid_port_num(port.get("port")))
            protocol = port.get("protocol") or ""
            if not protocol:
                v.add(required(f"{pp}.protocol"))
            elif protocol not in _PORT_PROTOCOLS:
                v.add(unsupported(f"{pp}.protocol", protocol, _PORT_PROTOCOLS))
