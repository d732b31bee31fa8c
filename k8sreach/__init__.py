"""k8sreach: reachability diagnostics for Kubernetes Services."""

__version__ = "0.1.0"
