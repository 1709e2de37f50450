"""`agentflow agent new`: the files each language scaffolds, and the refusals, with their messages."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml
from wasm_modules import MINIMAL_AGENT

from agentflow.authoring import LANGUAGES, UsageError, language_named, load_project, scaffold
from agentflow.authoring.scaffold import package_root, resource
from agentflow.cli.main import main
from agentflow.spec import load_workflow

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

EXPECTED_FILES = {
    "c": {".gitignore", "README.md", "agent.toml", "workflow.yaml", "hello-agent.c"},
    "assemblyscript": {".gitignore", "README.md", "agent.toml", "workflow.yaml", "package.json", "asconfig.json",
                       "assembly/index.ts", "assembly/agentflow.ts", "assembly/tsconfig.json"},
}  # fmt: skip


def test_every_registered_language_is_covered_here() -> None:
    assert set(EXPECTED_FILES) <= set(LANGUAGES)


@pytest.mark.parametrize("lang", sorted(EXPECTED_FILES))
def test_scaffold_writes_a_complete_agent_named_everywhere(lang: str, tmp_path: Path) -> None:
    made = scaffold("hello-agent", language_named(lang), tmp_path)
    assert made.dir == tmp_path / "hello-agent"
    on_disk = {str(p.relative_to(made.dir)) for p in made.dir.rglob("*") if p.is_file()}
    assert on_disk == EXPECTED_FILES[lang]
    assert {str(p) for p in made.files} == EXPECTED_FILES[lang]
    assert sorted(tmp_path.iterdir()) == [made.dir]  # no staging directory left beside it
    for rel in on_disk:
        text = (made.dir / rel).read_text()
        assert "{{" not in text and "__name__" not in text, rel

    project = load_project(made.dir)
    assert (project.name, project.language) == ("hello-agent", lang)
    assert project.output() == made.dir / "build" / "hello-agent.wasm"
    project.check_build_keys(LANGUAGES[lang].build_keys)
    assert (made.dir / LANGUAGES[lang].source.replace("__name__", "hello-agent")).is_file()

    # The workflow runs the module the build writes, relative to the workflow file, and validates
    # once it exists.
    doc = yaml.safe_load((made.dir / "workflow.yaml").read_text())
    [step] = doc["agents"]
    assert doc["name"] == step["name"] == "hello-agent"
    assert step["module"] == "./build/hello-agent.wasm"
    assert step["capabilities"]["http"]["allowedHosts"] == ["example.com"]
    (made.dir / "build").mkdir()
    (made.dir / "build" / "hello-agent.wasm").write_bytes(MINIMAL_AGENT)
    spec = load_workflow((made.dir / "workflow.yaml").read_text(), source="workflow.yaml", base_dir=made.dir)
    assert [a.name for a in spec.agents] == ["hello-agent"]

    readme = (made.dir / "README.md").read_text()
    assert "agentflow agent build" in readme and "agentflow run workflow.yaml" in readme


def test_c_scaffold_uses_the_shipped_header_and_handles_a_denied_fetch(tmp_path: Path) -> None:
    made = scaffold("hello", LANGUAGES["c"], tmp_path)
    source = (made.dir / "hello.c").read_text()
    assert '#include "agentflow.h"' in source
    assert not (made.dir / "agentflow.h").exists()  # found through -I, one copy in the package
    for needed in ("af_read_stdin", "af_log", "af_http_fetch", "AF_ERR_DENIED", "af_fail", "af_buf_string"):
        assert needed in source
    build = tomllib.loads((made.dir / "agent.toml").read_text())["build"]
    assert build == {"sources": ["hello.c"], "output": "build/hello.wasm",
                     "cflags": ["-O2", "-s", "-Wl,-z,stack-size=262144"]}  # fmt: skip


def test_assemblyscript_scaffold_carries_the_library_and_the_wasi_shim(tmp_path: Path) -> None:
    made = scaffold("hello", LANGUAGES["assemblyscript"], tmp_path)
    library = (package_root() / "assemblyscript" / "agentflow.ts").read_bytes()
    assert (made.dir / "assembly" / "agentflow.ts").read_bytes() == library
    package = json.loads((made.dir / "package.json").read_text())
    assert package["name"] == "hello"
    assert set(package["devDependencies"]) == {"assemblyscript", "@assemblyscript/wasi-shim"}
    config = json.loads((made.dir / "asconfig.json").read_text())
    assert config["extends"] == "./node_modules/@assemblyscript/wasi-shim/asconfig.json"
    assert config["targets"]["release"]["outFile"] == "build/hello.wasm"
    source = (made.dir / "assembly" / "index.ts").read_text()
    for needed in ("readInput", "log(", "httpFetch", "ERR_DENIED", "fail(", "writeOutput"):
        assert needed in source
    assert (made.dir / ".gitignore").read_text().split() == ["build/", "node_modules/"]


def test_an_empty_existing_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "hello").mkdir()
    made = scaffold("hello", LANGUAGES["c"], tmp_path)
    assert (made.dir / "hello.c").is_file()


def test_a_non_empty_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError) as refused:
        scaffold("hello", LANGUAGES["c"], tmp_path)
    assert str(refused.value) == (
        f"{tmp_path / 'hello'}: already exists and is not empty (1 entry: notes.txt); "
        "pick another NAME or --dir, or remove it"
    )
    assert sorted(p.name for p in (tmp_path / "hello").iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello"]


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hello").write_text("x")
    with pytest.raises(UsageError, match="hello: already exists and is not a directory"):
        scaffold("hello", LANGUAGES["c"], tmp_path)


def test_a_missing_parent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        scaffold("hello", LANGUAGES["c"], tmp_path / "nope")
    assert str(refused.value) == f"{tmp_path / 'nope'}: no such directory (the parent of the new agent; see --dir)"


@pytest.mark.parametrize("name", ["Hello", "hello_agent", "-hello", "hello-", "", "a" * 64, "héllo", "../x", "a b"])
def test_bad_names_are_refused_with_the_rule(name: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        scaffold(name, LANGUAGES["c"], tmp_path)
    assert str(refused.value).startswith(f"NAME: {name!r} is not a valid agent name: use lowercase letters, digits")
    assert list(tmp_path.iterdir()) == []


def test_the_longest_name_is_accepted(tmp_path: Path) -> None:
    name = "a" * 63
    assert scaffold(name, LANGUAGES["c"], tmp_path).dir == tmp_path / name


def test_unknown_language_is_refused_with_a_suggestion() -> None:
    with pytest.raises(UsageError) as refused:
        language_named("assemblyscrpt")
    assert str(refused.value) == (
        "--lang: unknown language 'assemblyscrpt' (did you mean \"assemblyscript\"?); known: " + ", ".join(LANGUAGES)
    )
    assert language_named("as") is LANGUAGES["assemblyscript"]


def test_cli_new_prints_the_files_and_the_next_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "new", "greeter", "--lang", "c", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"created C agent greeter in {tmp_path / 'greeter'}:\n")
    assert "  greeter.c\n" in out and "  workflow.yaml\n" in out
    assert f"next (then edit greeter.c):\n  cd {tmp_path / 'greeter'}\n  agentflow agent build\n" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["agent", "new", "Bad_Name", "--lang", "c"], "agentflow agent new: NAME: 'Bad_Name' is not a valid agent"),
        (["agent", "new", "ok", "--lang", "cobol"], "agentflow agent new: --lang: unknown language 'cobol'"),
        (["agent", "new", "taken", "--lang", "c"], "agentflow agent new: {dir}/taken: already exists and is not empty"),
    ],
    ids=["bad-name", "bad-lang", "non-empty-dir"],
)
def test_cli_new_refusals_exit_2_with_the_message(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    assert main([*argv, "--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message.format(dir=tmp_path)), captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_templates_of_every_language_hold_an_agent_toml_of_that_language() -> None:
    for language in LANGUAGES.values():
        toml = (package_root() / "templates" / language.templates / "agent.toml").read_text()
        assert tomllib.loads(toml.replace("{{name}}", "x"))["agent"]["language"] == language.name
        for spec in language.library.values():
            assert resource(spec).is_file() or resource(spec).is_dir(), spec
        assert PurePosixPath(language.source).name
