"""Settings: the one place that reads the environment (and `.env`)."""

from config.settings import Settings, SettingsError, load_settings, to_environ

__all__ = ["Settings", "SettingsError", "load_settings", "to_environ"]
