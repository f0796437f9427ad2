"""Configuration from `BRYGGA_*` environment variables and an optional TOML file.

Precedence (highest first): explicit keyword arguments, environment, TOML file named by
`BRYGGA_CONFIG`, defaults.
"""

from __future__ import annotations

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

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRYGGA_", extra="ignore")

    data_dir: Path = Field(default=REPO_ROOT / "var", description="Where the SQLite file and keys live.")
    database_url: str = Field(default="", description="SQLAlchemy async URL; default SQLite in data_dir.")
    redis_url: str = Field(default="", description="Redis URL for multi-node; empty = in-process.")
    public_base_url: str = Field(default="http://localhost:8080", description="URL users reach Brygga at.")
    # NoDecode: the env value is comma separated (README), not JSON; `_split_origins` parses it.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Extra browser origins.")
    host: str = "127.0.0.1"
    port: int = 8080
    key_file: Path | None = Field(default=None, description="Key-encryption key file (default in data_dir).")
    web_dist: Path = Field(default=REPO_ROOT / "client_web" / "dist", description="Built web client.")
    max_body_bytes: int = Field(default=1024 * 1024, description="Largest JSON request body.")
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, description="Largest attachment upload.")
    log_level: str = "INFO"
    demo: bool = Field(default=False, description="Show demo hints (make run).")

    @field_validator("allowed_origins", mode="before")
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
    def is_https(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def origins(self) -> list[str]:
        """Browser origins allowed for socket.io and CORS: the public URL's plus extras, never '*'."""
        own = self.public_base_url.rstrip("/")
        return [own, *[origin for origin in self.allowed_origins if origin != own]]
