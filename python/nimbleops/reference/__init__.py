"""Pure-Python reference implementations: plain loops, written to be read, used by the tests.

Same names and signatures as the public functions; numpy arrays in and out; slow.
"""
from . import rl, vision

__all__ = ["rl", "vision"]
