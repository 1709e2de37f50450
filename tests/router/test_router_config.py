"""Router settings: the TOML file, env providers, keys from env or files, and refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agentflow.config import ConfigError
from router.config import RouterConfig, Secret
from router.errors import ModelNotFound, NoProvider
from router.routing import Routes

pytestmark = pytest.mark.unit

EXAMPLE = """
listen = "127.0.0.1:4000"
dev = false

[providers.openai]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "MY_OPENAI_KEY"

[providers.claude]
kind = "anthropic"
api_key_file = "{key_file}"

[deployments.gpt4o]
provider = "openai"
model = "gpt-4o"
rpm = 500
tpm = 200000
timeout = "60s"
max_retries = 3

[deployments.sonnet]
provider = "claude"
model = "claude-sonnet-4-5"

[models]
"gpt-4o" = ["gpt4o"]
smart = {{ deployments = ["sonnet"], fallbacks = ["gpt-4o"] }}

[pricing."gpt-4o"]
input = 2.5
cached_input = 1.25
output = 10.0

[pricing."claude-*"]
input = 3.0
output = 15.0

[cache]
ttl = "1h"
max_size = "64Mi"

[breaker]
failures = 3
cooldown = "10s"

[retry]
base = "100ms"
max_wait = "5s"

[timeouts]
connect = "2s"
request = "120s"

[budget]
thresholds = [0.25, 0.5, 1.0]
"""


def load(tmp_path: Path, text: str, *argv: str, env: dict[str, str] | None = None) -> RouterConfig:
    path = tmp_path / "router.toml"
    path.write_text(text)
    return RouterConfig.load(["--config", str(path), "--data-dir", str(tmp_path), *argv], environ=env or {})


def test_the_example_config_loads(tmp_path: Path) -> None:
    key_file = tmp_path / "claude.key"
    key_file.write_text("sk-ant-from-file\n")
    config = load(tmp_path, EXAMPLE.format(key_file=key_file), env={"MY_OPENAI_KEY": "sk-from-env"})
    openai, claude = config.providers
    assert (openai.kind, openai.base_url, openai.api_key) == ("openai", "http://127.0.0.1:8000/v1",
                                                              Secret("sk-from-env"))  # fmt: skip
    assert (claude.kind, claude.base_url, claude.api_key) == ("anthropic", "https://api.anthropic.com",
                                                              Secret("sk-ant-from-file"))  # fmt: skip
    gpt = config.deployments[0]
    assert (gpt.rpm, gpt.tpm, gpt.timeout, gpt.max_retries) == (500, 200000, timedelta(seconds=60), 3)
    routes = Routes(config)
    assert [d.name for d in routes.resolve("smart")] == ["sonnet", "gpt4o"]
    assert [d.name for d in routes.resolve("gpt-4o")] == ["gpt4o"]
    assert routes.price("gpt-4o").cached_input == 1.25  # type: ignore[union-attr]
    assert routes.price("claude-sonnet-4-5").output == 15.0  # type: ignore[union-attr]
    assert routes.price("unknown") is None
    assert config.cache.ttl == timedelta(hours=1) and config.cache.max_size == 64 * 2**20
    assert (config.breaker.failures, config.retry.max_wait) == (3, timedelta(seconds=5))
    assert config.budget.thresholds == (0.25, 0.5, 1.0)
    assert set(routes.model_names()) == {"gpt-4o", "smart", "gpt4o", "sonnet"}
    with pytest.raises(ModelNotFound, match='model "other" is not served here'):
        routes.resolve("other")


def test_keys_never_show_in_reprs(tmp_path: Path) -> None:
    config = RouterConfig.load(["--data-dir", str(tmp_path)], environ={"OPENAI_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(config) and "sk-very-secret" not in str(config.providers)
    assert config.providers[0].api_key.reveal() == "sk-very-secret"  # type: ignore[union-attr]


def test_providers_come_from_the_environment_without_a_config_file(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": "a", "OPENAI_BASE_URL": "http://localhost:11434/v1/", "ANTHROPIC_API_KEY": "b"}
    config = RouterConfig.load(["--data-dir", str(tmp_path)], environ=env)
    assert [(p.name, p.base_url, p.models) for p in config.providers] == [
        ("anthropic", "https://api.anthropic.com", ("claude*",)),
        ("openai", "http://localhost:11434/v1", ("*",)),
    ]
    routes = Routes(config)
    assert routes.resolve("claude-haiku")[0].provider == "anthropic"
    assert routes.resolve("llama3")[0].provider == "openai"


def test_without_any_provider_calls_say_how_to_configure_one(tmp_path: Path) -> None:
    config = RouterConfig.load(["--data-dir", str(tmp_path)], environ={})
    with pytest.raises(NoProvider) as exc:
        Routes(config).resolve("gpt-4o")
    for hint in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "--config", "--dev"):
        assert hint in str(exc.value)


def test_dev_is_a_bare_flag_or_a_setting(tmp_path: Path) -> None:
    assert RouterConfig.load(["--dev", "--data-dir", str(tmp_path)], environ={}).dev
    assert RouterConfig.load(["--data-dir", str(tmp_path), "--dev"], environ={}).dev
    assert not RouterConfig.load(["--dev", "false", "--data-dir", str(tmp_path)], environ={}).dev
    assert RouterConfig.load(["--data-dir", str(tmp_path)], environ={"AGENTFLOW_DEV": "1"}).dev
    routes = Routes(RouterConfig.load(["--dev", "--data-dir", str(tmp_path)], environ={}))
    assert routes.resolve("anything")[0].provider == "dev"


def test_a_listen_address_beyond_loopback_needs_allow_remote(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a loopback address.*--allow-remote"):
        RouterConfig.load(["--listen", "0.0.0.0:4000", "--data-dir", str(tmp_path)], environ={})
    config = RouterConfig.load(["--listen", "0.0.0.0:4000", "--allow-remote", "--data-dir", str(tmp_path)],
                               environ={})  # fmt: skip
    assert config.listen == "0.0.0.0:4000"
    assert RouterConfig.load(["--listen", "[::1]:0", "--data-dir", str(tmp_path)], environ={}).listen == "[::1]:0"


def test_tables_can_come_from_the_environment_as_json(tmp_path: Path) -> None:
    env = {"AGENTFLOW_CACHE": '{"ttl": "5m", "nondeterministic": true}'}
    config = RouterConfig.load(["--data-dir", str(tmp_path)], environ=env)
    assert config.cache.ttl == timedelta(minutes=5) and config.cache.nondeterministic


@pytest.mark.parametrize(
    ("text", "message"),
    [('[cache]\nttll = "1h"\n', 'cache: unknown key "ttll" (did you mean "ttl"?)'),
     ('[providers.x]\nkind = "openai"\napi_key = "sk-literal"\n', "write api_key_env"),
     ('[providers.x]\nkind = "openai"\napi_key_env = "NOT_SET_ANYWHERE"\n', "NOT_SET_ANYWHERE is not set"),
     ('[providers.x]\nkind = "grok"\n', '"grok" is not one of openai, anthropic, dev'),
     ('[deployments.d]\nprovider = "nobody"\nmodel = "m"\n', 'unknown provider "nobody"'),
     ('[deployments.d]\nprovider = "openai"\n', "deployments.d: model is required"),
     ('[models]\nfast = ["missing"]\n', 'unknown deployment "missing"'),
     ('[pricing.m]\ninput = -1\n', "must not be negative"),
     ('[deployments.d]\nprovider = "openai"\nmodel = "m"\nrpm = 0\n', "rpm: must be at least 1"),
     ('listn = "x"\n', 'unknown key "listn" (did you mean "listen"?)')],
    ids=["table-typo", "literal-key", "unset-key-env", "unknown-kind", "unknown-provider", "missing-model",
         "unknown-deployment", "negative-price", "zero-rpm", "top-level-typo"],
)  # fmt: skip
def test_bad_config_is_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    if "providers.openai" not in text and "deployments" in text:
        text = '[providers.openai]\nkind = "openai"\n' + text
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    assert message in str(exc.value)
