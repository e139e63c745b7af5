"""The host agent's runtime side: containerd over CRI v1, and what it pulls from.

- containerd.py  ContainerdConfig (config.toml, base spec, registry hosts in one state dir)
                 and Containerd: start ours and restart it when it dies, or attach to one
- cri.py         CRIClient: RuntimeService/ImageService stubs over the unix socket; calls
                 wait out a containerd restart, idempotent ones are re-sent
- spec.py        the base OCI spec: Fargate's nofile/nproc limits, capped at the host's
- registry.py    LocalRegistry: Debian's docker-registry on 127.0.0.1, storage in a dir
- images.py      seed_registry: pause, busybox and an HTTP example built offline (umoci,
                 skopeo) from Debian's static binaries, cached
- stack.py       start_stack: registry -> images -> pod network -> containerd, in that
                 order, as `nodeless up` and the test fixture both need; RuntimeStack.stop
- cgroups.py     remove a pod's cgroup parent after its sandbox (runc leaves it behind)
- process.py     child daemons that die with the agent

Pod networking (CNI, nftables) is nodeless/agent/network; the pod lifecycle on top of
this is nodeless/agent/pods.
"""
