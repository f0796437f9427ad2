"""Messaging settings: `BRYGGA_MESSAGING_*` environment variables (or keyword arguments in tests)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MessagingConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRYGGA_MESSAGING_", extra="ignore")

    max_body_chars: int = Field(default=8000, description="Longest message text.")
    edit_window_minutes: int = Field(default=15, description="How long a sender may edit or retract.")
    urgent_ack_minutes: int = Field(default=30, description="Default deadline for urgent messages (open time).")
    normal_ack_minutes: int = Field(default=240, description="Default deadline for ack_required messages.")
    sync_page_size: int = Field(default=200, description="Largest page returned by sync.")
    # Rate limits (events per window); the window is `rate_window_seconds`.
    rate_window_seconds: float = 10.0
    user_events_per_window: int = Field(default=200, description="Per user over all connections.")
    connection_events_per_window: int = Field(default=120, description="Per socket.io connection.")
    user_sends_per_window: int = Field(default=100, description="message:send per user.")
    batch_max: int = Field(default=256, description="Most sends committed in one transaction.")
    read_receipt_names: bool = Field(
        default=False, description="Show who read a message to the other side (otherwise only unit and time)."
    )
