"""What kube-controller-manager does, for the embedded control plane: Deployment,
ReplicaSet, Job, DaemonSet, Endpoints and EndpointSlices, the garbage collector and the
namespace lifecycle.

Every controller has one shape (`base.Controller`): shared informers (one list+watch per
resource type, `informer.py`) feed a rate-limited work queue of keys (`workqueue.py`); a
worker reads the current state from the caches, computes the difference and acts through
the API, idempotently. Expectations (`expectations.py`) keep a controller from acting
twice on a cache that has not yet seen its own writes. Everything goes through the
Kubernetes API, so the same controllers run against any API server.
"""
