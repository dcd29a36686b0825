"""Yilian (医联): digital services for a county hospital and its county medical community."""

__version__ = "0.1.0"
