"""Pinned versions of the sandbox's components.

Kubernetes 1.36.1 is one of the releases kwok v0.8.0 is tested with, and etcd 3.6.8 is the
version that release's own go.mod requires.
"""

KUBERNETES = "1.36.1"
ETCD = "3.6.8"
KWOK = "0.8.0"
GATEWAY_API = "1.4.1"
ISTIO_API = "1.31.1"
# The newest release whose dependency graph the module proxy serves in full (0.51.0's is refused),
# so its components can be built (sandbox/knative.py) and its CRDs match them.
KNATIVE_SERVING = "0.50.0"
