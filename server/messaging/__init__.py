"""Secure messaging between units: conversations, acknowledgement, escalation, attachments."""
