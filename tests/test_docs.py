"""README.md and the pages under docs/ say what the code does.

Every Python snippet runs, and every `jaxdecay` command runs as written, in order,
from an empty folder, printing exactly what the page shows. README stays short, and
its links and images work where it is shown (the package index shows it too).
"""

import pathlib
import re
import shlex

import jax
import pytest

from jaxdecay import _cli

ROOT = pathlib.Path(__file__).parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 12_000  # characters: a read of about five minutes
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", flags=re.DOTALL | re.MULTILINE)
SHELLS = {"console", "sh", "shell", "bash"}


def blocks(page, kinds):
    """The fenced code blocks of `page` whose info string is in `kinds`."""
    text = page.read_text(encoding="utf-8")
    return [body for kind, body in FENCE.findall(text) if kind in kinds]


def page_id(page):
    return str(page.relative_to(ROOT))


SNIPPETS = [
    pytest.param(page, snippet, id=f"{page_id(page)}:{number}")
    for page in PAGES
    for number, snippet in enumerate(blocks(page, {"python"}), start=1)
]


def test_pages_have_snippets():
    assert len(SNIPPETS) >= 10
    assert blocks(README, {"python"})


@pytest.mark.parametrize(("page", "snippet"), SNIPPETS)
def test_snippet_runs(page, snippet, tmp_path, monkeypatch):
    for module in re.findall(r"^(?:import|from) (\w+)", snippet, flags=re.MULTILINE):
        pytest.importorskip(module)  # an optional library, e.g. fiddle or optax
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, str(page), "exec"), {})


# ---------------------------------------------------------------------------
# Commands.
# ---------------------------------------------------------------------------


def sessions(page):
    """The page's shell sessions as (command, expected output) in order.

    A command is a line that starts with `$ `, continued by lines that end with a
    backslash; its output is the lines up to the next command or the block's end.
    """
    steps = []
    for body in blocks(page, SHELLS):
        command = None
        for line in body.splitlines():
            if line.startswith("$ "):
                command = line[2:]
                steps.append([command, []])
            elif command is not None and command.endswith("\\"):
                command = command[:-1] + " " + line.strip()
                steps[-1][0] = command
            elif command is not None:
                steps[-1][1].append(line)
            else:
                assert not line.startswith("jaxdecay "), (
                    f"{page_id(page)}: show the command as `$ {line}`, so that it runs "
                    "in the tests"
                )
    return [(command, "".join(f"{line}\n" for line in out)) for command, out in steps]


PAGES_WITH_COMMANDS = [page for page in PAGES if sessions(page)]


def test_pages_have_commands():
    assert {page.name for page in PAGES_WITH_COMMANDS} >= {"README.md", "cli.md"}


@pytest.mark.skipif(
    jax.config.jax_enable_x64, reason="the pages show JAX's default float32 output"
)
@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=page_id)
def test_commands_run_as_shown(page, tmp_path, monkeypatch, capsys):
    """Each command, in the page's order, in one empty folder: the same output
    (stderr, then stdout unless redirected), and exit code 2 for an error."""
    monkeypatch.chdir(tmp_path)
    for command, expected in sessions(page):
        words = shlex.split(command)
        assert words[0] == "jaxdecay", f"{page_id(page)}: {command}"
        output = None
        if ">" in words:
            (at,) = [i for i, word in enumerate(words) if word == ">"]
            assert at == len(words) - 2, f"`> FILE` ends the command: {command}"
            output = words[at + 1]
            words = words[:at]
        code = _cli.main(words[1:])
        captured = capsys.readouterr()
        if output is not None:
            pathlib.Path(output).write_text(captured.out)
            shown = captured.err
        else:
            shown = captured.err + captured.out
        assert shown == expected, f"{page_id(page)}: $ {command}"
        failed = any(
            line.startswith("jaxdecay: error:") for line in expected.splitlines()
        )
        assert code == (2 if failed else 0), f"{page_id(page)}: $ {command}"


# ---------------------------------------------------------------------------
# README as the front page.
# ---------------------------------------------------------------------------


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8")) <= README_LIMIT


def test_readme_links_every_page_and_has_no_relative_image():
    """The package index shows README without the repository's files: images must be
    absolute URLs (or absent). Every page under docs/ is linked."""
    text = README.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text)
    images += re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", text)
    assert all(image.startswith("https://") for image in images), images
    for page in PAGES[1:]:
        assert f"]({page_id(page)})" in text, f"README does not link {page_id(page)}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page):
    """Links and images to files of the repository point at files that exist."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path = target.split("#", 1)[0]
        if path and "://" not in path:
            assert (page.parent / path).exists(), f"{page_id(page)} links {target}"
