"""Backups of the database and its keys: `brygga backup verify` proves a restored pair is readable."""
