"""What every step of the scheduling pipeline shares: the failure it raises and how the
controller retries it.

kube-scheduler's framework lets each plugin return a Status with a reason and whether the
pod is unschedulable or the error transient; ours is one exception whose `retry` says when
trying again can help, and whose `message` is the text the user reads in the
`FailedScheduling` Event. One place (the controller) turns it into an Event and a requeue,
so no step has to know about queues or Events.
"""

from __future__ import annotations

from enum import Enum

UNSUPPORTED_PREFIX = "Pod not supported on Fargate: "


class Retry(Enum):
    """When a failed pod is tried again."""

    WHEN_POD_CHANGES = "when-pod-changes"
    """The pod itself is the problem (too large, unreadable quantity): the same spec fails
    the same way, so only an update of the pod brings it back."""
    BACKOFF = "backoff"
    """Something outside the pod may heal (a profile not ACTIVE yet, a subnet missing,
    addresses exhausted, the API failing): retried with per-pod exponential backoff."""
    WHEN_CAPACITY_FREES = "when-capacity-frees"
    """No host has room: retried with backoff and at once when a host joins or capacity
    frees (aws/containers-roadmap#2654: never Pending forever for a transient reason)."""


class SchedulingFailure(Exception):
    """A step could not place the pod; `message` is what the FailedScheduling Event says."""

    def __init__(self, message: str, retry: Retry = Retry.BACKOFF) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry


def unsupported(reason: str) -> SchedulingFailure:
    """The pod can never run as it is: EKS's wording, so scripts grepping for it work."""
    return SchedulingFailure(UNSUPPORTED_PREFIX + reason, Retry.WHEN_POD_CHANGES)
