"""Prometheus metrics named as kube-apiserver names them, so dashboards carry over."""

from __future__ import annotations

from typing import Any

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
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        """The label children of each (verb, resource, code): looking them up by label
        values costs more than counting the request."""

    def record_request(self, verb: str, resource: str, code: str, seconds: float | None
                       ) -> None:
        """Count one request; `seconds` goes to the latency histogram. Pass None for
        every request of a verb that has no latency (watches), never only for some."""
        key = (verb, resource, code)
        children = self._request_children.get(key)
        if children is None:
            # A watch has no latency: no histogram series for it, as before.
            children = self._request_children[key] = (
                self.requests.labels(verb, resource, code),
                None if seconds is None else self.latency.labels(verb, resource))
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
