import pytest

from agentflow.spec import format_cpu, format_memory, parse_cpu, parse_memory

pytestmark = pytest.mark.unit

Ki, Mi, Gi, Ti, Pi, Ei = (1024**n for n in range(1, 7))


@pytest.mark.parametrize(
    ("value", "millis"),
    [
        pytest.param("100m", 100, id="millicores"),
        pytest.param("1m", 1, id="one-millicore"),
        pytest.param("0.5", 500, id="half-core"),
        pytest.param(".5", 500, id="leading-dot"),
        pytest.param("1", 1000, id="one-core"),
        pytest.param("2", 2000, id="two-cores"),
        pytest.param("1.5", 1500, id="decimal"),
        pytest.param("0.001", 1, id="smallest-decimal"),
        pytest.param("1500m", 1500, id="over-one-core-in-m"),
        pytest.param(1, 1000, id="yaml-int"),
        pytest.param(0.25, 250, id="yaml-float"),
        pytest.param(" 250m ", 250, id="surrounding-spaces"),
        pytest.param("1000000", 1_000_000_000, id="limit"),
    ],
)
def test_parse_cpu_valid(value: object, millis: int) -> None:
    assert parse_cpu(value) == millis


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("0", 'CPU must be greater than zero, got "0"', id="zero"),
        pytest.param("0m", "greater than zero", id="zero-millis"),
        pytest.param(0, "greater than zero", id="zero-int"),
        pytest.param("-1", 'CPU must be greater than zero, got "-1"', id="negative"),
        pytest.param(-0.5, "greater than zero", id="negative-float"),
        pytest.param("100x", '"100x" is not a CPU quantity (use e.g. 100m, 0.5 or 2)', id="bad-suffix"),
        pytest.param("100M", "is not a CPU quantity", id="memory-suffix"),
        pytest.param("1 core", "is not a CPU quantity", id="words"),
        pytest.param("", '"" is not a CPU quantity', id="empty"),
        pytest.param("1e3", "is not a CPU quantity", id="exponent"),
        pytest.param("0.0001", '"0.0001" is finer than a millicore', id="sub-millicore"),
        pytest.param("0.5m", "finer than a millicore", id="fractional-millicore"),
        pytest.param("1000001", "is more than 1000000 cores", id="absurd"),
        pytest.param(10**70, "not plausible", id="absurdly-long"),
        pytest.param(True, "got a boolean", id="bool"),
        pytest.param(None, "got null", id="null"),
        pytest.param(["1"], "got a list", id="list"),
        pytest.param(float("nan"), "is not a CPU quantity", id="nan"),
    ],
)
def test_parse_cpu_invalid(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_cpu(value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("value", "num_bytes"),
    [
        pytest.param("64Mi", 64 * Mi, id="mebibytes"),
        pytest.param("1Gi", Gi, id="gibibyte"),
        pytest.param("512Ki", 512 * Ki, id="kibibytes"),
        pytest.param("1Ti", Ti, id="tebibyte"),
        pytest.param("1Pi", Pi, id="pebibyte"),
        pytest.param("1Ei", Ei, id="exbibyte"),
        pytest.param("500M", 500 * 10**6, id="megabytes"),
        pytest.param("1G", 10**9, id="gigabyte"),
        pytest.param("1k", 1000, id="kilobyte"),
        pytest.param("2T", 2 * 10**12, id="terabytes"),
        pytest.param("1P", 10**15, id="petabyte"),
        pytest.param("1E", 10**18, id="exabyte"),
        pytest.param("1.5Gi", 3 * Gi // 2, id="decimal-binary"),
        pytest.param("0.5Ki", 512, id="half-kibibyte"),
        pytest.param("1.5k", 1500, id="decimal-decimal"),
        pytest.param("4096", 4096, id="bytes-string"),
        pytest.param(4096, 4096, id="bytes-int"),
        pytest.param(1e9, 10**9, id="bytes-float"),
    ],
)
def test_parse_memory_valid(value: object, num_bytes: int) -> None:
    assert parse_memory(value) == num_bytes


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("64MB", '"64MB" is not a memory quantity (use e.g. 64Mi, 1Gi, 512M or a byte count)', id="MB"),
        pytest.param("64mi", "is not a memory quantity", id="lowercase-mi"),
        pytest.param("1K", "is not a memory quantity", id="uppercase-K"),
        pytest.param("64m", "is not a memory quantity", id="milli"),
        pytest.param("64 Mi", "is not a memory quantity", id="space-before-suffix"),
        pytest.param("Mi", "is not a memory quantity", id="suffix-only"),
        pytest.param("", '"" is not a memory quantity', id="empty"),
        pytest.param("-64Mi", 'memory must be greater than zero, got "-64Mi"', id="negative"),
        pytest.param("0", "greater than zero", id="zero"),
        pytest.param("0Gi", "greater than zero", id="zero-with-suffix"),
        pytest.param(0, "greater than zero", id="zero-int"),
        pytest.param("1.5", '"1.5" is not a whole number of bytes', id="fractional-bytes"),
        pytest.param("0.0001k", "not a whole number of bytes", id="fractional-kilo"),
        pytest.param("8Ei", "is too large", id="over-int64"),
        pytest.param(False, "got a boolean", id="bool"),
        pytest.param({"Mi": 64}, "got a mapping", id="mapping"),
    ],
)
def test_parse_memory_invalid(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_memory(value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        pytest.param(100, "100m", id="millicores"),
        pytest.param(1000, "1", id="one-core"),
        pytest.param(2000, "2", id="two-cores"),
        pytest.param(1500, "1500m", id="one-and-a-half"),
        pytest.param(1, "1m", id="one-millicore"),
    ],
)
def test_format_cpu(millis: int, text: str) -> None:
    assert format_cpu(millis) == text
    assert parse_cpu(text) == millis


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        pytest.param(64 * Mi, "64Mi", id="mebibytes"),
        pytest.param(Gi, "1Gi", id="gibibyte"),
        pytest.param(1536 * Mi, "1536Mi", id="one-and-a-half-gibibytes"),
        pytest.param(10**9, "1G", id="gigabyte"),
        pytest.param(500 * 10**6, "500M", id="megabytes"),
        pytest.param(1000, "1k", id="kilobyte"),
        pytest.param(1024, "1Ki", id="kibibyte"),
        pytest.param(1024000, "1024k", id="shorter-decimal"),
        pytest.param(4097, "4097", id="plain-bytes"),
        pytest.param(1, "1", id="one-byte"),
        pytest.param(Ei, "1Ei", id="exbibyte"),
    ],
)
def test_format_memory(num_bytes: int, text: str) -> None:
    assert format_memory(num_bytes) == text
    assert parse_memory(text) == num_bytes


@pytest.mark.parametrize("amount", [0, -1])
def test_format_rejects_non_positive(amount: int) -> None:
    with pytest.raises(ValueError):
        format_cpu(amount)
    with pytest.raises(ValueError):
        format_memory(amount)


@pytest.mark.parametrize("num_bytes", [1, 999, 1000, 1023, 1024, 10**6 + 1, 3 * Gi, 5 * 10**12, 2**63 - 1])
def test_format_memory_round_trips(num_bytes: int) -> None:
    assert parse_memory(format_memory(num_bytes)) == num_bytes


@pytest.mark.parametrize("millis", [1, 999, 1000, 1001, 250_000, 1_000_000_000])
def test_format_cpu_round_trips(millis: int) -> None:
    assert parse_cpu(format_cpu(millis)) == millis
