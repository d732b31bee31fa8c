"""A network lab in Linux network namespaces that mirrors the field deployment.

Used by k8sreach's end-to-end tests, its demo and its benchmark; needs root.
"""

from __future__ import annotations

from k8sreach.lab._faults import FAULTS
from k8sreach.lab._proc import LabError
from k8sreach.lab.lab import Lab, leftovers, remove_leftovers

__all__ = ["FAULTS", "Lab", "LabError", "leftovers", "remove_leftovers"]
