"""Lightweight-vision ops: position-sensitive RoI align and pool."""
from .ps_roi import ps_roi_align, ps_roi_pool

__all__ = ["ps_roi_align", "ps_roi_pool"]
