"""Brygga's built-in OpenID Provider (mounted at `<public_base_url>/idp`), built on authlib.

Local accounts use argon2id passwords and mandatory TOTP; the provider never claims LoA 3.
"""
