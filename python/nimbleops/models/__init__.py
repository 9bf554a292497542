"""Whole models built on the nimbleops ops (torch required): ThunderNet and its SNet backbone, each
with ``backend="nimbleops"`` or the ``backend="torch"`` baseline (same state_dict)."""
from .snet import SNet, ShuffleUnit
from .thundernet import CEM, RPN, SAM, RCNNHead, ThunderNet
from .inference import optimize_for_inference

__all__ = ["SNet", "ShuffleUnit", "ThunderNet", "CEM", "RPN", "SAM", "RCNNHead", "optimize_for_inference"]
