"""Deviation reports (avvikelser) to the regional follow-up."""
