"""The kubelet's translation and bookkeeping for one pod, kept apart from the worker loop.

Pure functions and small classes that turn a pod (a plain dict, as the API returns it)
into CRI v1 messages (`sandbox`, `containers`, `env`), prepare what the containers mount
(`volumes`, `hosts`, `cgroups`), and compute what kubelet would write back (`status`,
`restarts`, `probes`). Behaviour follows kubelet's wherever a user can observe it.
"""
