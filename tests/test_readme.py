"""The Python snippets in README.md run as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).parent.parent / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.splitlines()[0][:40])
def test_readme_snippet_runs(snippet, tmp_path, monkeypatch):
    for module in re.findall(r"^(?:import|from) (\w+)", snippet, flags=re.MULTILINE):
        pytest.importorskip(module)  # an optional library, e.g. fiddle or optax
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, str(README), "exec"), {})
