"""Settings shared by the daemons: flags, environment and TOML, and their parsers."""

from agentflow.config import parsers
from agentflow.config.errors import ConfigError
from agentflow.config.paths import (
    NODE_ADMIN_SOCKET,
    default_data_home,
    default_node_data_dir,
    default_router_data_dir,
)
from agentflow.config.settings import ENV_PREFIX, Option, load_settings

__all__ = [
    "ENV_PREFIX",
    "NODE_ADMIN_SOCKET",
    "ConfigError",
    "Option",
    "default_data_home",
    "default_node_data_dir",
    "default_router_data_dir",
    "load_settings",
    "parsers",
]
