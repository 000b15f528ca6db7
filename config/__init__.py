"""Settings: the one place that reads the environment (and `.env`)."""

from config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
