"""Errors carrying the reason kubelet shows for them (container waiting reason or Event)."""

from __future__ import annotations


class PodSetupError(Exception):
    """A pod cannot proceed; `reason` is what kubelet puts in the waiting state or Event."""

    reason = "Failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContainerConfigError(PodSetupError):
    """The container's config cannot be built (env source missing, runAsNonRoot, ...)."""

    reason = "CreateContainerConfigError"


class MountError(PodSetupError):
    """A volume cannot be set up; kubelet records it as a `FailedMount` Event."""

    reason = "FailedMount"

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume
        self.detail = message


class UnsupportedOnFargate(PodSetupError):
    """Something Fargate refuses (privileged, hostPath): admission rejects it first."""

    reason = "CreateContainerConfigError"
