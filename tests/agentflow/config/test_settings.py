"""Settings precedence (flag > env > TOML file > default) and errors, with each daemon's real options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agentflow.config import ConfigError, Option, parsers
from controlplane import config as controlplane_config
from controlplane.config import ControlPlaneConfig
from noded import config as noded_config
from noded.config import NodedConfig

pytestmark = pytest.mark.unit

DAEMONS: dict[str, Any] = {"controlplane": ControlPlaneConfig, "noded": NodedConfig}
OPTIONS = {"controlplane": controlplane_config.OPTIONS, "noded": noded_config.OPTIONS}


@dataclass(frozen=True)
class Sample:
    """Three different valid settings of one option: as a flag, as env and as a TOML line."""

    flag: str
    env: str
    toml: str
    expected: tuple[Any, Any, Any]  # the typed values of flag, env and toml


S = timedelta(seconds=1)
MI = 2**20

SAMPLES: dict[tuple[str, str], Sample] = {
    ("controlplane", "data_dir"): Sample(
        "/srv/a", "/srv/b", 'data_dir = "/srv/c"', (Path("/srv/a"), Path("/srv/b"), Path("/srv/c"))
    ),
    ("controlplane", "listen"): Sample(
        "127.0.0.1:1001", "127.0.0.1:1002", 'listen = "[::1]:0"', ("127.0.0.1:1001", "127.0.0.1:1002", "[::1]:0")
    ),
    ("controlplane", "metrics_listen"): Sample(
        "127.0.0.1:0",
        "0.0.0.0:9000",
        'metrics_listen = "localhost:9001"',
        ("127.0.0.1:0", "0.0.0.0:9000", "localhost:9001"),
    ),
    ("controlplane", "heartbeat_interval"): Sample("1s", "500ms", 'heartbeat_interval = "3s"', (S, S / 2, 3 * S)),
    ("controlplane", "node_ttl"): Sample("20s", "1m", 'node_ttl = "1m30s"', (20 * S, 60 * S, 90 * S)),
    ("controlplane", "max_module_size"): Sample("1Mi", "2Mi", "max_module_size = 3145728", (MI, 2 * MI, 3 * MI)),
    ("controlplane", "log_level"): Sample("debug", "WARNING", 'log_level = "error"', ("debug", "warning", "error")),
    ("controlplane", "nats_url"): Sample(
        "nats://10.0.0.1:4222",
        "tls://nats.internal",
        'nats_url = "nats://[::1]:4222"',
        ("nats://10.0.0.1:4222", "tls://nats.internal", "nats://[::1]:4222"),
    ),
    ("controlplane", "events_retention"): Sample(
        "24h", "0s", 'events_retention = "12h"', (24 * 3600 * S, 0 * S, 12 * 3600 * S)
    ),
    ("noded", "server"): Sample(
        "10.0.0.1:7070", "10.0.0.2:7070", 'server = "[::1]:7070"', ("10.0.0.1:7070", "10.0.0.2:7070", "[::1]:7070")
    ),
    ("noded", "router"): Sample(
        "127.0.0.1:4001", "127.0.0.1:4002", 'router = "[::1]:4003"', ("127.0.0.1:4001", "127.0.0.1:4002", "[::1]:4003")
    ),
    ("noded", "data_dir"): Sample(
        "/srv/a", "/srv/b", 'data_dir = "/srv/c"', (Path("/srv/a"), Path("/srv/b"), Path("/srv/c"))
    ),
    ("noded", "name"): Sample("node-a", "node-b", 'name = "node-c"', ("node-a", "node-b", "node-c")),
    ("noded", "labels"): Sample(
        "zone=eu,gpu=a100",
        "zone=us",
        'labels = { zone = "ap", "kubernetes.io/arch" = "arm64" }',
        ({"zone": "eu", "gpu": "a100"}, {"zone": "us"}, {"zone": "ap", "kubernetes.io/arch": "arm64"}),
    ),
    ("noded", "admin_socket"): Sample(
        "/run/a.sock",
        "/run/b.sock",
        'admin_socket = "/run/c.sock"',
        (Path("/run/a.sock"), Path("/run/b.sock"), Path("/run/c.sock")),
    ),
    ("noded", "metrics_listen"): Sample(
        "127.0.0.1:0",
        "127.0.0.1:9100",
        'metrics_listen = "127.0.0.1:9101"',
        ("127.0.0.1:0", "127.0.0.1:9100", "127.0.0.1:9101"),
    ),
    ("noded", "slots"): Sample("8", "16", "slots = 32", (8, 16, 32)),
    ("noded", "warm_workers"): Sample("1", "3", "warm_workers = 4", (1, 3, 4)),
    ("noded", "cpu"): Sample("4", "3500m", "cpu = 2", (4000, 3500, 2000)),
    ("noded", "memory"): Sample("8Gi", "auto", "memory = 1073741824", (8 * 2**30, None, 2**30)),
    ("noded", "isolation"): Sample("none", "cgroup1", 'isolation = "cgroup2"', ("none", "cgroup1", "cgroup2")),
    ("noded", "confinement"): Sample("auto", "off", 'confinement = "required"', ("auto", "off", "required")),
    ("noded", "shutdown_grace"): Sample(
        "0s", "90s", 'shutdown_grace = "2m"', (timedelta(0), timedelta(seconds=90), timedelta(minutes=2))
    ),
    ("noded", "log_level"): Sample("info", "debug", 'log_level = "warning"', ("info", "debug", "warning")),
    ("controlplane", "tls_ca"): Sample(
        "/etc/a/tls_ca.pem",
        "/etc/b/tls_ca.pem",
        'tls_ca = "/etc/c/tls_ca.pem"',
        (Path("/etc/a/tls_ca.pem"), Path("/etc/b/tls_ca.pem"), Path("/etc/c/tls_ca.pem")),
    ),
    ("controlplane", "tls_cert"): Sample(
        "/etc/a/tls_cert.pem",
        "/etc/b/tls_cert.pem",
        'tls_cert = "/etc/c/tls_cert.pem"',
        (Path("/etc/a/tls_cert.pem"), Path("/etc/b/tls_cert.pem"), Path("/etc/c/tls_cert.pem")),
    ),
    ("controlplane", "tls_key"): Sample(
        "/etc/a/tls_key.pem",
        "/etc/b/tls_key.pem",
        'tls_key = "/etc/c/tls_key.pem"',
        (Path("/etc/a/tls_key.pem"), Path("/etc/b/tls_key.pem"), Path("/etc/c/tls_key.pem")),
    ),
    ("noded", "tls_ca"): Sample(
        "/etc/a/tls_ca.pem",
        "/etc/b/tls_ca.pem",
        'tls_ca = "/etc/c/tls_ca.pem"',
        (Path("/etc/a/tls_ca.pem"), Path("/etc/b/tls_ca.pem"), Path("/etc/c/tls_ca.pem")),
    ),
    ("noded", "tls_cert"): Sample(
        "/etc/a/tls_cert.pem",
        "/etc/b/tls_cert.pem",
        'tls_cert = "/etc/c/tls_cert.pem"',
        (Path("/etc/a/tls_cert.pem"), Path("/etc/b/tls_cert.pem"), Path("/etc/c/tls_cert.pem")),
    ),
    ("noded", "tls_key"): Sample(
        "/etc/a/tls_key.pem",
        "/etc/b/tls_key.pem",
        'tls_key = "/etc/c/tls_key.pem"',
        (Path("/etc/a/tls_key.pem"), Path("/etc/b/tls_key.pem"), Path("/etc/c/tls_key.pem")),
    ),
    ("noded", "join_token_file"): Sample(
        "/etc/a/join",
        "/etc/b/join",
        'join_token_file = "/etc/c/join"',
        (Path("/etc/a/join"), Path("/etc/b/join"), Path("/etc/c/join")),
    ),
}
for _daemon in DAEMONS:  # the tracing settings every daemon shares
    SAMPLES[(_daemon, "otlp_endpoint")] = Sample(
        "http://10.0.0.9:4318", "collector:4317", 'otlp_endpoint = "https://otel.internal:4317"',
        ("http://10.0.0.9:4318", "collector:4317", "https://otel.internal:4317"),
    )  # fmt: skip
    SAMPLES[(_daemon, "log_format")] = Sample("text", "json", 'log_format = "auto"', ("text", "json", "auto"))
    SAMPLES[(_daemon, "otlp_protocol")] = Sample("http", "grpc", 'otlp_protocol = "http"', ("http", "grpc", "http"))
    SAMPLES[(_daemon, "trace_file")] = Sample(
        "/var/log/a.jsonl", "off", 'trace_file = "/var/log/c.jsonl"',
        (Path("/var/log/a.jsonl"), Path(os.devnull), Path("/var/log/c.jsonl")),
    )  # fmt: skip
IDS = [f"{daemon}-{name}" for daemon, name in SAMPLES]


def _option(daemon: str, name: str) -> Option:
    return next(o for o in OPTIONS[daemon] if o.name == name)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agentflow.toml"
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize("daemon", DAEMONS)
def test_every_option_has_a_sample(daemon: str) -> None:
    assert {o.name for o in OPTIONS[daemon]} == {name for d, name in SAMPLES if d == daemon}


@pytest.mark.parametrize(("daemon", "name"), SAMPLES, ids=IDS)
def test_flag_beats_env_and_file(tmp_path: Path, daemon: str, name: str) -> None:
    sample, opt = SAMPLES[daemon, name], _option(daemon, name)
    file = _write(tmp_path, sample.toml)
    cfg = DAEMONS[daemon].load([opt.flag, sample.flag, "--config", str(file)], {opt.env: sample.env})
    assert getattr(cfg, name) == sample.expected[0]


@pytest.mark.parametrize(("daemon", "name"), SAMPLES, ids=IDS)
def test_env_beats_file(tmp_path: Path, daemon: str, name: str) -> None:
    sample, opt = SAMPLES[daemon, name], _option(daemon, name)
    file = _write(tmp_path, sample.toml)
    cfg = DAEMONS[daemon].load(["--config", str(file)], {opt.env: sample.env})
    assert getattr(cfg, name) == sample.expected[1]


@pytest.mark.parametrize(("daemon", "name"), SAMPLES, ids=IDS)
def test_file_beats_default(tmp_path: Path, daemon: str, name: str) -> None:
    sample = SAMPLES[daemon, name]
    file = _write(tmp_path, sample.toml)
    cfg = DAEMONS[daemon].load(["--config", str(file)], {})
    assert getattr(cfg, name) == sample.expected[2]
    # the same file named by AGENTFLOW_CONFIG instead of --config
    assert getattr(DAEMONS[daemon].load([], {"AGENTFLOW_CONFIG": str(file)}), name) == sample.expected[2]


@pytest.mark.parametrize(("daemon", "name"), SAMPLES, ids=IDS)
def test_default_when_unset(daemon: str, name: str) -> None:
    cfg = DAEMONS[daemon].load([], {})
    expected = parsers.default_node_name() if (daemon, name) == ("noded", "name") else _option(daemon, name).default
    assert getattr(cfg, name) == expected


def test_defaults_of_the_control_plane() -> None:
    cfg = ControlPlaneConfig.load([], {})
    assert cfg.listen == "127.0.0.1:7070"
    assert (cfg.heartbeat_interval, cfg.node_ttl) == (2 * S, 10 * S)
    assert cfg.state_file == cfg.data_dir / "controlplane.json"


def test_defaults_of_noded() -> None:
    cfg = NodedConfig.load([], {})
    assert (cfg.server, cfg.isolation, cfg.labels, cfg.slots, cfg.warm_workers) == (
        "127.0.0.1:7070",
        "auto",
        {},
        None,
        2,
    )
    assert cfg.state_file == cfg.data_dir / "noded.json"


def test_config_flag_beats_config_env(tmp_path: Path) -> None:
    by_flag = tmp_path / "flag.toml"
    by_flag.write_text('listen = "127.0.0.1:1111"\n')
    by_env = tmp_path / "env.toml"
    by_env.write_text('listen = "127.0.0.1:2222"\n')
    cfg = ControlPlaneConfig.load(["--config", str(by_flag)], {"AGENTFLOW_CONFIG": str(by_env)})
    assert cfg.listen == "127.0.0.1:1111"


def test_env_of_other_daemons_and_unrelated_names_is_ignored() -> None:
    environ = {"AGENTFLOW_SERVER": "10.9.9.9:1", "AGENTFLOW_LISTEN_X": "nope", "LISTEN": "nope"}
    assert ControlPlaneConfig.load([], environ).listen == "127.0.0.1:7070"


def test_option_names_map_to_flag_and_env() -> None:
    opt = _option("controlplane", "metrics_listen")
    assert (opt.flag, opt.env) == ("--metrics-listen", "AGENTFLOW_METRICS_LISTEN")


# --- errors ---------------------------------------------------------------------------------

UNKNOWN_KEYS = {
    "controlplane-typo": ("controlplane", 'listne = "127.0.0.1:7070"', 'unknown key "listne" (did you mean "listen"?)'),
    "controlplane-dashes": ("controlplane", 'node-ttl = "30s"', 'unknown key "node-ttl" (did you mean "node_ttl"?)'),
    "noded-typo": ("noded", "warm_worker = 1", 'unknown key "warm_worker" (did you mean "warm_workers"?)'),
    "noded-other-daemons-key": (
        "noded",
        'listen = "127.0.0.1:7070"',
        'unknown key "listen" (did you mean "metrics_listen"?)',
    ),
}


@pytest.mark.parametrize(("daemon", "toml", "message"), UNKNOWN_KEYS.values(), ids=UNKNOWN_KEYS.keys())
def test_unknown_key_names_file_and_closest_key(tmp_path: Path, daemon: str, toml: str, message: str) -> None:
    file = _write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        DAEMONS[daemon].load(["--config", str(file)], {})
    assert str(info.value) == f"{file}: {message}"


def test_unknown_key_without_a_near_miss_has_no_hint(tmp_path: Path) -> None:
    file = _write(tmp_path, "frobnicate = 1")
    with pytest.raises(ConfigError) as info:
        ControlPlaneConfig.load(["--config", str(file)], {})
    assert str(info.value) == f'{file}: unknown key "frobnicate"'


def test_unknown_key_is_an_error_even_when_a_flag_sets_the_rest(tmp_path: Path) -> None:
    file = _write(tmp_path, 'listen = "127.0.0.1:1"\nlisten_adress = "x"')
    with pytest.raises(ConfigError, match='unknown key "listen_adress"'):
        ControlPlaneConfig.load(["--config", str(file), "--listen", "127.0.0.1:2"], {})


@pytest.mark.parametrize(
    "text",
    ['listen = "127.0.0.1:7070', "listen = ", "[[[", 'listen = "a"\nlisten = "b"'],
    ids=["unterminated-string", "missing-value", "bad-table", "duplicate-key"],
)
def test_invalid_toml_names_the_file(tmp_path: Path, text: str) -> None:
    file = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        ControlPlaneConfig.load(["--config", str(file)], {})
    assert str(info.value).startswith(f"{file}: invalid TOML: ")


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        NodedConfig.load([], {"AGENTFLOW_CONFIG": str(missing)})
    assert str(info.value) == f"{missing}: cannot read config file: No such file or directory"


BAD_VALUES = {
    "controlplane-listen": ("controlplane", "listen", "nowhere", 'listen = "nowhere"', '"nowhere" is not an address'),
    "controlplane-port": (
        "controlplane",
        "metrics_listen",
        "h:70000",
        'metrics_listen = "h:70000"',
        "port must be a number",
    ),
    "controlplane-node-ttl": ("controlplane", "node_ttl", "10", "node_ttl = 10", "missing a unit"),
    "noded-otlp-endpoint": (
        "noded",
        "otlp_endpoint",
        "ftp://collector:4317",
        'otlp_endpoint = "ftp://collector:4318"',
        "is not an OTLP endpoint",
    ),
    "controlplane-nats-url": (
        "controlplane",
        "nats_url",
        "http://nats:4222",
        'nats_url = "nats://nats:99999"',
        "NATS URL",
    ),
    "controlplane-module-size": (
        "controlplane",
        "max_module_size",
        "64MB",
        'max_module_size = "64MB"',
        "is not a memory quantity",
    ),
    "controlplane-log-level": (
        "controlplane",
        "log_level",
        "loud",
        'log_level = "loud"',
        "is not one of debug, info, warning, error",
    ),
    "noded-name": ("noded", "name", "my node", 'name = "my node"', "is not a node name"),
    "noded-labels": ("noded", "labels", "zone", 'labels = "zone"', 'label "zone" is not key=value'),
    "noded-slots": ("noded", "slots", "0", "slots = 0", "must be a positive integer"),
    "noded-cpu": ("noded", "cpu", "lots", 'cpu = "lots"', "is not a CPU quantity"),
    "noded-isolation": (
        "noded",
        "isolation",
        "docker",
        'isolation = "docker"',
        "is not one of auto, cgroup2, cgroup1, none",
    ),
}


@pytest.mark.parametrize(("daemon", "name", "raw", "toml", "reason"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_value_names_its_origin(tmp_path: Path, daemon: str, name: str, raw: str, toml: str, reason: str) -> None:
    opt, load = _option(daemon, name), DAEMONS[daemon].load
    file = _write(tmp_path, toml)
    origins = {
        opt.flag: lambda: load([opt.flag, raw], {}),
        opt.env: lambda: load([], {opt.env: raw}),
        f"{file}: {name}": lambda: load(["--config", str(file)], {}),
    }
    for origin, attempt in origins.items():
        with pytest.raises(ConfigError) as info:
            attempt()
        message = str(info.value)
        assert message.startswith(f"{origin}: "), message
        assert reason in message


def test_bad_value_in_file_names_the_file_from_env(tmp_path: Path) -> None:
    file = _write(tmp_path, 'listen = "nowhere"')
    with pytest.raises(ConfigError) as info:
        ControlPlaneConfig.load([], {"AGENTFLOW_CONFIG": str(file)})
    assert str(info.value).startswith(f"{file}: listen: ")


def test_bad_env_value_overridden_by_a_flag_is_not_read() -> None:
    assert ControlPlaneConfig.load(["--listen", "127.0.0.1:1"], {"AGENTFLOW_LISTEN": "bad"}).listen == "127.0.0.1:1"


# --- cross-field checks -------------------------------------------------------------------------

TTL_CASES = {
    "ttl-equal-to-heartbeat": (["--node-ttl", "2s"], {}),
    "ttl-below-heartbeat": (["--node-ttl", "1s"], {}),
    "heartbeat-raised-above-default-ttl": ([], {"AGENTFLOW_HEARTBEAT_INTERVAL": "30s"}),
}


@pytest.mark.parametrize(("argv", "environ"), TTL_CASES.values(), ids=TTL_CASES.keys())
def test_control_plane_rejects_ttl_not_above_heartbeat(argv: list[str], environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"node_ttl \(.*\) must be longer than heartbeat_interval"):
        ControlPlaneConfig.load(argv, environ)


def test_control_plane_accepts_ttl_just_above_heartbeat() -> None:
    cfg = ControlPlaneConfig.load(["--heartbeat-interval", "1s", "--node-ttl", "1001ms"], {})
    assert cfg.node_ttl - cfg.heartbeat_interval == timedelta(milliseconds=1)


def test_control_plane_checks_ttl_in_the_file_too(tmp_path: Path) -> None:
    file = _write(tmp_path, 'heartbeat_interval = "5s"\nnode_ttl = "5s"')
    with pytest.raises(ConfigError, match="must be longer than heartbeat_interval"):
        ControlPlaneConfig.load(["--config", str(file)], {})


WARM_CASES = {
    "more-warm-than-slots": (["--slots", "2", "--warm-workers", "3"], {}),
    "default-warm-above-one-slot": (["--slots", "1"], {}),
    "from-env": ([], {"AGENTFLOW_SLOTS": "4", "AGENTFLOW_WARM_WORKERS": "5"}),
}


@pytest.mark.parametrize(("argv", "environ"), WARM_CASES.values(), ids=WARM_CASES.keys())
def test_noded_rejects_more_warm_workers_than_slots(argv: list[str], environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"warm_workers \(\d+\) must not exceed slots \(\d+\)"):
        NodedConfig.load(argv, environ)


def test_noded_accepts_warm_workers_equal_to_slots_or_automatic_slots() -> None:
    assert NodedConfig.load(["--slots", "3", "--warm-workers", "3"], {}).warm_workers == 3
    assert NodedConfig.load(["--warm-workers", "64"], {}).slots is None


def test_unknown_flag_exits_with_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        NodedConfig.load(["--cores", "4"], {})
    assert info.value.code == 2
    assert "unrecognized arguments: --cores 4" in capsys.readouterr().err
