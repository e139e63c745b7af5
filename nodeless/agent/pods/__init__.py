"""The kubelet's translation and bookkeeping for one pod, kept apart from the worker loop.

Pure functions and small classes over pods as plain dicts (as the API returns them) and
CRI v1 messages (`cri_api.v1.api_pb2`); behaviour follows kubelet's wherever a user can
observe it. The worker calls them in this order:

- `cgroups.PodCgroup.create` -> the pod cgroup at its provisioned size (`cgroup_parent`)
- `sandbox.sandbox_config` -> RunPodSandbox
- `volumes.PodVolumes.setup`, `hosts.write_etc_hosts` -> what the containers mount
- `restarts.plan` -> which init/regular containers to start or kill next;
  `restarts.CrashLoopBackoff.check` before each restart
- `env.resolve_env`, `containers.container_mounts`, `containers.container_config`
  -> CreateContainer
- `probes.ProbeManager` -> started/ready results and restart requests
- `status.pod_status` -> the PodStatus to write

Errors carry kubelet's reason (`errors.PodSetupError.reason`): CreateContainerConfigError
for configs, FailedMount for volumes.
"""
