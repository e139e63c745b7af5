"""Prometheus metrics named as kube-apiserver names them, so dashboards carry over."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request_total", "Requests by verb, resource and HTTP code.",
            ["verb", "resource", "code"], registry=self.registry)
        self.latency = Histogram(
            "apiserver_request_duration_seconds", "Request latency by verb and resource.",
            ["verb", "resource"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 5, 10, 30, 60))
        self.watchers = Gauge(
            "apiserver_registered_watchers", "Open watches by resource.", ["resource"],
            registry=self.registry)
        self.objects = Gauge(
            "apiserver_storage_objects", "Stored objects by resource (sampled).", ["resource"],
            registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
