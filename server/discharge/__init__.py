"""Discharge cases (LUS): milestones, clocks, SIP meetings, monthly statistics."""
