"""Liveness, readiness, metrics and the API description."""
