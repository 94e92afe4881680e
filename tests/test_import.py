"""The public surface: names, version and typing marker."""

import importlib.resources
import pathlib
import re

import pytest

import jaxdecay

PYPROJECT = pathlib.Path(__file__).parent.parent / "pyproject.toml"


@pytest.mark.parametrize("name", jaxdecay.__all__)
def test_all_names_exist(name):
    """Every name listed in `__all__` is an attribute of the package."""
    assert hasattr(jaxdecay, name)


def test_all_is_not_empty_and_unique():
    """`__all__` lists the public API once each (an empty list would test nothing)."""
    assert len(jaxdecay.__all__) >= 5
    assert len(set(jaxdecay.__all__)) == len(jaxdecay.__all__)


def test_version_matches_pyproject():
    """`__version__` is a str equal to the static version in pyproject.toml."""
    # A regex rather than tomllib, which Python 3.10 (still supported) lacks.
    project = PYPROJECT.read_text().split("[project]", 1)[1].split("\n[", 1)[0]
    (version,) = re.findall(r'^version\s*=\s*"([^"]+)"', project, flags=re.MULTILINE)
    assert isinstance(jaxdecay.__version__, str)
    assert jaxdecay.__version__ == version


def test_py_typed_ships_in_package():
    """The PEP 561 marker `py.typed` is a file inside the package directory."""
    assert importlib.resources.files("jaxdecay").joinpath("py.typed").is_file()
    assert (pathlib.Path(jaxdecay.__file__).parent / "py.typed").is_file()


def test_metadata_links_the_docs_and_issues_and_states_maturity():
    """The package index shows where the docs and the issue tracker are, and how
    mature the package is."""
    project = PYPROJECT.read_text()
    urls = project.split("[project.urls]", 1)[1].split("\n[", 1)[0]
    for key in ("Documentation", "Source", "Issues"):
        assert re.search(rf'^{key} = "https://', urls, flags=re.MULTILINE), key
    assert re.search(r'"Development Status :: \d - \w+', project)
