"""pods/log as kube-apiserver checks it before asking the node's agent."""

from __future__ import annotations

import pytest

from nodeless.apiserver import errors
from nodeless.apiserver.kubelet import KUBELET_ENDPOINT_ANNOTATION, kubelet_url, log_container

POD = {"metadata": {"name": "web"},
       "spec": {"nodeName": "n1", "initContainers": [{"name": "setup"}],
                "containers": [{"name": "app"}, {"name": "proxy"}]}}


def test_the_only_container_is_the_default() -> None:
    single = {"metadata": {"name": "one"},
              "spec": {"nodeName": "n1", "containers": [{"name": "app"}]}}
    assert log_container(single, None) == "app"


def test_several_containers_need_a_name() -> None:
    with pytest.raises(errors.BadRequest) as caught:
        log_container(POD, None)
    assert caught.value.message == ("a container name must be specified for pod web, choose "
                                    "one of: [app proxy] or one of the init containers: [setup]")
    assert log_container(POD, "setup") == "setup"
    with pytest.raises(errors.BadRequest, match="container db is not valid for pod web"):
        log_container(POD, "db")


def test_unscheduled_pod_has_no_logs() -> None:
    pending = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}}
    with pytest.raises(errors.BadRequest, match="pod p does not have a host assigned"):
        log_container(pending, None)


def test_kubelet_endpoint_of_a_node() -> None:
    micro = {"metadata": {"name": "fargate-ip-10-0-0-9", "annotations": {
        KUBELET_ENDPOINT_ANNOTATION: "https://127.0.0.1:40000/"}},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.9"}]}}
    assert kubelet_url(micro) == "https://127.0.0.1:40000"
    ordinary = {"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": "Hostname", "address": "n1"},
                      {"type": "InternalIP", "address": "192.168.1.5"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
    assert kubelet_url(ordinary) == "https://192.168.1.5:10250"
    with pytest.raises(errors.BadRequest, match="node 'bare' has no kubelet endpoint"):
        kubelet_url({"metadata": {"name": "bare"}, "status": {}})
