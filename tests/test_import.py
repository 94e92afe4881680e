"""The public surface: names, version and typing marker."""

import ast
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


# ---------------------------------------------------------------------------
# The shape of the package: modules share public names only, functions stay short.
# ---------------------------------------------------------------------------

PACKAGE = pathlib.Path(jaxdecay.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_CODE_LINES = 60


def _private_imports(tree):
    """`from jaxdecay._x import _name` and `_x._name` for a jaxdecay module `_x`."""
    modules = {path.stem for path in MODULES}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "jaxdecay."
        ):
            found += [a.name for a in node.names if a.name.startswith("_")]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def _code_lines(source_lines, function):
    """Lines of `function` that hold code: no blank, comment or docstring lines."""
    skip = set()
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        skip = set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number in range(function.lineno, function.end_lineno + 1)
        if number not in skip
        and source_lines[number - 1].strip()
        and not source_lines[number - 1].strip().startswith("#")
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_uses_another_modules_private_names(path):
    assert _private_imports(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_function_is_longer_than_60_lines_of_code(path):
    source = path.read_text()
    lines = source.splitlines()
    long = [
        (node.name, _code_lines(lines, node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and _code_lines(lines, node) > MAX_CODE_LINES
    ]
    assert long == []


def test_the_guards_see_what_they_guard():
    """The checks above would catch a private import and a long function."""
    tree = ast.parse("from jaxdecay._json import _Refused\nx = _schedule._ONE\n")
    assert _private_imports(tree) == ["_Refused", "_schedule._ONE"]
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    function = ast.parse(f"def f():\n    '''Doc.'''\n    # why\n{body}\n").body[0]
    assert (
        _code_lines(
            f"def f():\n    '''Doc.'''\n    # why\n{body}\n".splitlines(), function
        )
        == 62
    )


def test_the_pytree_leaves_are_the_programs_numbers():
    """The leaves read from the fields' roles are the numbers the program packs."""
    from jaxdecay import _config, _schedule

    assert _config.LEAVES == _schedule.NUMBERS
