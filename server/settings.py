"""Configuration from `BRYGGA_*` environment variables and an optional TOML file.

Precedence (highest first): explicit keyword arguments, environment, TOML file named by
`BRYGGA_CONFIG`, defaults.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Comma-separated in the environment ("a,b"), a list in TOML.
CommaList = Annotated[list[str], NoDecode]

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRYGGA_", extra="ignore")

    data_dir: Path = Field(default=REPO_ROOT / "var", description="Where the SQLite file and keys live.")
    database_url: str = Field(default="", description="SQLAlchemy async URL; default SQLite in data_dir.")
    redis_url: str = Field(default="", description="Redis URL for multi-node; empty = in-process.")
    public_base_url: str = Field(default="http://localhost:8080", description="URL users reach Brygga at.")
    allowed_origins: CommaList = Field(default_factory=list, description="Extra browser origins.")
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="Addresses/networks of reverse proxies whose X-Forwarded-For/Forwarded headers are believed.",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    key_file: Path | None = Field(default=None, description="Key-encryption key file (default in data_dir).")
    pseudonym_key_file: Path | None = Field(
        default=None, description="Key of the patient pseudonyms that link readmissions (default in data_dir)."
    )
    index_key_file: Path | None = Field(
        default=None, description="Key of the blind indexes of sealed case references (default in data_dir)."
    )
    statistics_min_cell: int = Field(
        default=5, ge=1, description="Discharge statistics: cells with fewer cases (or readmissions) are suppressed."
    )
    web_dist: Path = Field(default=REPO_ROOT / "client_web" / "dist", description="Built web client.")
    max_body_bytes: int = Field(default=1024 * 1024, description="Largest JSON request body.")
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, description="Largest attachment upload.")
    header_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A connection must send a complete request head this soon (and idles this long).",
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A JSON or form body must arrive within this; an upload may pause this long."
    )
    log_level: str = "INFO"
    metrics_token: str = Field(default="", description="Bearer token for GET /metrics; empty = /metrics is off.")
    demo: bool = Field(default=False, description="Show demo hints (make run).")
    # --- identity (docs/identity.md)
    session_idle_minutes: int = Field(default=30, ge=1, description="Session ends after this long without use.")
    session_absolute_hours: int = Field(default=12, ge=1, description="Session ends this long after login.")
    oidc_issuer: str = Field(default="", description="External OpenID Provider; empty = the built-in one.")
    oidc_client_id: str = Field(default="", description="Client id at the external provider.")
    oidc_client_secret: str = Field(default="", description="Client secret at the external provider.")
    oidc_scopes: str = Field(default="openid profile", description="Scopes requested at login.")
    oidc_required_acr: CommaList = Field(
        default_factory=list, description="Accepted `acr` values (e.g. http://id.sambi.se/loa/loa3); empty = any."
    )
    oidc_allowed_algs: CommaList = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256"], description="ID-token signature algorithms accepted."
    )
    unit_admins_add_any_organisation: bool = Field(
        default=False, description="Unit administrators may add users of other organisations to their unit."
    )
    idp_max_failures: int = Field(
        default=5, ge=1, description="Failed logins of one account from one address before that address must wait."
    )
    idp_throttle_minutes: int = Field(
        default=15, ge=1, description="Window in which those failures count; accounts are never locked."
    )
    turn_urls: CommaList = Field(
        default_factory=list,
        description="TURN URLs handed to meeting participants, e.g. turns:turn.example.se:443?transport=tcp. "
        "Empty: host candidates only. Public STUN is never used.",
    )
    turn_secret: str = Field(default="", description="coturn static-auth-secret (TURN REST credentials).")
    turn_ttl_seconds: int = Field(default=3600, ge=60, le=86400, description="Lifetime of TURN credentials.")
    video_ice_transport_policy: str = Field(
        default="all", pattern="^(all|relay)$", description="'relay' forces browsers through TURN."
    )
    video_room_idle_seconds: float = Field(default=60.0, gt=0, description="Stop an empty room's relay after this.")
    video_room_lease_seconds: float = Field(
        default=5.0, ge=2, le=120, description="Lease on a live room's owner node; another node may take it after this."
    )
    video_relay_capacity: int = Field(
        default=50, ge=0, description="Participants this node's relays take (placement); 0 = never run rooms here."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # a typo fails at start, not silently
        return value

    @field_validator(
        "allowed_origins", "trusted_proxies", "oidc_required_acr", "oidc_allowed_algs", "turn_urls", mode="before"
    )
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("BRYGGA_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'brygga.db'}"

    @property
    def effective_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys" / "kek.json"

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]

    @property
    def effective_pseudonym_key_file(self) -> Path:
        return self.pseudonym_key_file or self.data_dir / "keys" / "pseudonym.key"

    @property
    def effective_index_key_file(self) -> Path:
        return self.index_key_file or self.data_dir / "keys" / "blind-index.key"

    @property
    def is_https(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def builtin_issuer(self) -> str:
        """Issuer URL of the built-in OpenID Provider (mounted under /idp)."""
        return self.public_base_url.rstrip("/") + "/idp"

    @property
    def uses_builtin_idp(self) -> bool:
        return not self.oidc_issuer or self.oidc_issuer.rstrip("/") == self.builtin_issuer

    @property
    def origins(self) -> list[str]:
        """Browser origins allowed for socket.io and CORS: the public URL's plus extras, never '*'."""
        own = self.public_base_url.rstrip("/")
        return [own, *[origin for origin in self.allowed_origins if origin != own]]
