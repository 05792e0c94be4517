"""Settings for flow runs: MONITOR_* from the worker's environment, parameters on top, secrets from blocks."""

from __future__ import annotations

from typing import Any

from prefect.blocks.system import Secret

from monitor.config import Settings, split_urls


def settings_with_secrets(**overrides: Any) -> Settings:
    """Settings from MONITOR_*, overridden by the non-empty parameters given, with the alert URLs of
    the Prefect Secret block that ``MONITOR_ALERT_URLS_SECRET`` names added."""
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if settings.alert_urls_secret:
        secret = Secret.load(settings.alert_urls_secret).get()
        settings = settings.model_copy(
            update={"alert_urls": [*settings.alert_urls, *split_urls(str(secret))]}
        )
    return settings
