"""Brygga: secure communication server for care coordination at hospital discharge."""

__version__ = "0.1.0"
