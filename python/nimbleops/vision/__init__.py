"""Lightweight-vision ops: channel shuffle, fused concat + shuffle + split, position-sensitive
RoI align and pool."""
from .ps_roi import ps_roi_align, ps_roi_pool
from .shuffle import channel_shuffle, concat_shuffle_split

__all__ = ["channel_shuffle", "concat_shuffle_split", "ps_roi_align", "ps_roi_pool"]
