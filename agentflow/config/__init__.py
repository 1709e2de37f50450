"""Settings shared by the daemons: flags, environment and TOML, and their parsers."""

from agentflow.config import parsers
from agentflow.config.errors import ConfigError
from agentflow.config.paths import default_data_home
from agentflow.config.settings import ENV_PREFIX, Option, load_settings

__all__ = ["ENV_PREFIX", "ConfigError", "Option", "default_data_home", "load_settings", "parsers"]
