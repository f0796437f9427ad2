"""Brygga's built-in OpenID Provider (for small deployments and demos) and OIDC helpers."""
