"""Test doubles for k8sreach: a stand-in Kubernetes API server and realistic API objects."""
