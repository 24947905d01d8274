"""The README and the docs site cannot drift from the code: the site builds with `mkdocs build --strict`
(a broken link or a page missing from the navigation fails), the configuration page is the settings
object's, every shell line they show names a real command, target, script or setting, and the ports
table holds the defaults the code uses."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.M | re.S)
VARIABLE = re.compile(r"\b(?:ML_PLATFORM|DEMO)_[A-Z0-9_]*[A-Z0-9]\b")


def _settings_names() -> set[str]:
    from ml_platform.config import Settings

    return {f"ML_PLATFORM_{name.upper()}" for name in Settings.model_fields}


def _script_names() -> set[str]:
    """The ML_PLATFORM_* / DEMO_* variables the scripts, the Makefile and CI read."""
    found: set[str] = set()
    for f in [*(ROOT / "scripts").iterdir(), ROOT / "Makefile", *(ROOT / ".ci").iterdir()]:
        if f.is_file() and f.suffix in ("", ".sh", ".py"):
            found |= set(VARIABLE.findall(f.read_text(errors="replace")))
    return found


def _shell_lines() -> list[tuple[str, str]]:
    """(page, command line) of every shell block of the README and the docs, comments dropped."""
    out = []
    for page in PAGES:
        for block in SHELL_BLOCK.findall(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].strip()
                if line and not line.startswith("#"):
                    out.append((page.name, line))
    return out


def test_the_site_builds_strictly_with_every_page_in_the_navigation(tmp_path):
    import yaml

    nav = {next(iter(item.values())) for item in yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages == nav, f"pages not in the navigation: {pages - nav}; missing pages: {nav - pages}"
    mkdocs = Path(sys.executable).parent / "mkdocs"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()


def test_the_configuration_page_is_generated_from_the_settings_object():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs_settings.py"), "--check"], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert all(f"| `{name}` |" in page for name in _settings_names())


def test_every_variable_a_script_reads_is_documented_and_every_documented_one_exists():
    page = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(VARIABLE.findall(page))
    prefixes = {"ML_PLATFORM_AZURE_STORAGE"}  # `ML_PLATFORM_AZURE_STORAGE_*`: the settings' family
    missing = sorted(n for n in _script_names() - documented if n not in prefixes)
    assert not missing, f"read by a script but not in docs/configuration.md: {missing}"
    real = _settings_names() | _script_names()
    for page in PAGES:
        named = set(VARIABLE.findall(page.read_text()))
        unknown = sorted(n for n in named - real if n not in prefixes)
        assert not unknown, f"{page.name} names variables that nothing reads: {unknown}"


def test_every_shell_line_names_a_real_command_target_script_or_setting():
    from ml_platform.cli import build_parser

    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    parser = build_parser()
    checked = 0
    for page, line in _shell_lines():
        words = shlex.split(line)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value prefixes
            assert not words[0].startswith(("ML_PLATFORM_", "DEMO_")) or VARIABLE.match(words[0])
            words = words[1:]
        if not words:
            continue
        cmd = words[0]
        if cmd.endswith("ml-platform"):
            _parses(parser, line, page)
            checked += 1
        elif cmd == "make":
            wanted = [w for w in words[1:] if "=" not in w]
            assert set(wanted) <= targets, f"{page}: `{line}`: no make target {set(wanted) - targets}"
            checked += 1
        for w in words:
            if re.fullmatch(r"(\./)?(scripts|benchmarks|docs|\.ci)/[\w./-]+\.(sh|py|dot)", w) or w == ".ci/run":
                assert (ROOT / w.removeprefix("./")).exists(), f"{page}: `{line}`: {w} does not exist"
    assert checked >= 10  # the README alone shows more


def _subcommand(parser, words: list[str]):
    """The sub-parser `words` lead to (`features training-set` -> that parser)."""
    import argparse

    for w in words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or w not in subs[0].choices:
            break
        parser = subs[0].choices[w]
    return parser


def _parses(parser, line: str, page: str) -> None:
    """An `ml-platform ...` line parses with the CLI's parser. A usage synopsis's optional groups
    (`[--flag VALUE]`, `[--a X | --b Y]`) are left out of the parse, and each flag they name must be
    one of the sub-command's options."""
    optional = re.findall(r"\[([^\[\]]*)\]", line)
    words = shlex.split(re.sub(r"\[[^\[\]]*\]", " ", line).replace("...", " "))[1:]
    try:
        parser.parse_args(words)
    except SystemExit:
        pytest.fail(f"{page}: `{line}` does not parse with ml-platform's own parser")
    options = set(_subcommand(parser, words)._option_string_actions)
    for group in optional:
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", group):
            assert flag in options, f"{page}: `{line}`: {flag} is not an option of this command"


def test_the_ports_table_holds_the_defaults_the_code_uses():
    from ml_platform.config import Settings

    rows = re.findall(
        r"^\| (\d+) \| [^|]+ \| `(ML_PLATFORM_\w+)` \| ([^|]+) \|", (ROOT / "docs" / "ports.md").read_text(), re.M
    )
    assert len(rows) >= 8
    fields = Settings.model_fields
    for port, variable, started_by in rows:
        field = variable.removeprefix("ML_PLATFORM_").lower()
        if field in fields:
            default = fields[field].default  # a port, or host:port
            assert default == int(port) or str(default).endswith(f":{port}"), f"{variable}: the default is {default}"
            continue
        scripts = re.findall(r"scripts/[\w.]+\.sh", started_by)
        assert scripts, f"{variable}: no script named"
        text = "".join((ROOT / s).read_text() for s in scripts)
        assert f"${{{variable}:-{port}}}" in text, f"{variable}: {scripts} do not default it to {port}"
