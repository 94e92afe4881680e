"""The public surface: names, version and typing marker."""

import ast
import importlib.resources
import pathlib
import re
import subprocess
import sys

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


def _code_lines(source_lines, node):
    """Lines of a function or class that hold code: no blank, comment or docstring
    lines (the docstrings of what it defines inside included)."""
    skip = set()
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            skip |= set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number in range(node.lineno, node.end_lineno + 1)
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
    tree = ast.parse("from jaxdecay._json import _Refused\nx = _program._LAYOUTS\n")
    assert _private_imports(tree) == ["_Refused", "_program._LAYOUTS"]
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    function = ast.parse(f"def f():\n    '''Doc.'''\n    # why\n{body}\n").body[0]
    assert (
        _code_lines(
            f"def f():\n    '''Doc.'''\n    # why\n{body}\n".splitlines(), function
        )
        == 62
    )


def test_the_pytree_leaves_are_the_numbers_the_programs_pack():
    """The leaves read from the fields' roles are the numbers the parts of a plan
    read: the family's and, when a config uses it, the warmup's."""
    from jaxdecay import _config

    warm = jaxdecay.ExponentialDecay(0.1, 10, 0.5, warmup_steps=5)
    cold = jaxdecay.ExponentialDecay(0.1, 10, 0.5)
    for config, pieces in ((warm, ("warmup",)), (cold, ())):
        plan = _config._plan(type(config), (("staircase", False),), pieces)
        packed = [name for part in plan.parts for name in part.floats + part.integers]
        assert len(plan.pieces) == len(pieces)
        if pieces:
            assert sorted(packed) == sorted(type(config).spec.leaves)
        else:
            assert set(packed) < set(type(config).spec.leaves)
            assert not {"warmup_steps", "warmup_init"} & set(packed)


# ---------------------------------------------------------------------------
# The house: no import circle, no module imported inside a function, short classes.
# ---------------------------------------------------------------------------

MAX_CLASS_CODE_LINES = 120


def _package_imports(tree):
    """(module names, names imported inside a function) of jaxdecay's modules that
    `tree` imports: `from jaxdecay import _x`, `from jaxdecay._x import y`,
    `import jaxdecay._x`."""
    stems = {path.stem for path in MODULES}
    found, inside = set(), []

    def names(node):
        if isinstance(node, ast.ImportFrom) and node.module == "jaxdecay":
            return {a.name for a in node.names if a.name in stems} or {"__init__"}
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "jaxdecay."
        ):
            return {node.module.split(".")[1]}
        if isinstance(node, ast.Import):
            return {
                a.name.split(".")[1] if "." in a.name else "__init__"
                for a in node.names
                if a.name.split(".")[0] == "jaxdecay"
            }
        return set()

    for node in ast.walk(tree):
        found |= names(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                inside += sorted(names(inner))
    return found, inside


def _circles(graph):
    """The strongly connected groups of more than one module, or with a self-loop."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def _import_graph():
    return {
        path.stem: _package_imports(ast.parse(path.read_text()))[0] - {path.stem}
        for path in MODULES
    }


def test_the_modules_import_each_other_in_no_circle():
    assert _circles(_import_graph()) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_imports_a_package_module_inside_a_function(path):
    assert _package_imports(ast.parse(path.read_text()))[1] == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_class_is_longer_than_120_lines_of_code(path):
    source = path.read_text()
    lines = source.splitlines()
    long = [
        (node.name, _code_lines(lines, node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef)
        and _code_lines(lines, node) > MAX_CLASS_CODE_LINES
    ]
    assert long == []


def test_the_house_guards_see_what_they_guard():
    """A circle, an import inside a function and a long class would be caught."""
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]
    assert _circles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse("def f():\n    from jaxdecay import _json\n    import optax\n")
    assert _package_imports(tree) == ({"_json"}, ["_json"])
    assert "_exponential" in _import_graph()["_registry"]
    body = "\n".join(f"    x{i} = {i}" for i in range(121))
    source = f'class C:\n    """Doc.\n\n    More."""\n    # why\n{body}\n'
    assert _code_lines(source.splitlines(), ast.parse(source).body[0]) == 122


def _design_layers():
    """Module -> layer, from the table in docs/design.md."""
    text = (PACKAGE.parent / "docs" / "design.md").read_text()
    layers = {}
    for number, modules in re.findall(r"^\| (\d+) \| (.*?) \|", text, re.MULTILINE):
        for name in re.findall(r"`(_\w+)\.py`", modules):
            layers[name] = int(number)
    return layers


def test_each_module_imports_only_layers_below_it_as_design_md_says():
    """docs/design.md's table lists every module, and each imports only modules
    of lower layers."""
    layers = _design_layers()
    private = {path.stem for path in MODULES if path.stem.startswith("_")}
    assert private - {"__init__", "__main__"} == set(layers)
    upward = [
        (module, imported)
        for module, imports in _import_graph().items()
        if module in layers
        for imported in imports
        if imported in layers and layers[imported] >= layers[module]
    ]
    assert upward == []


# ---------------------------------------------------------------------------
# Keras: imported by the bridge only when it is used.
# ---------------------------------------------------------------------------


def test_import_jaxdecay_imports_no_keras():
    """The core depends on jax and numpy alone: importing jaxdecay (every family
    with it) and running a schedule through the shared program imports no Keras,
    nor jaxdecay's public Keras module."""
    code = (
        "import sys, jaxdecay\n"
        "jaxdecay.ExponentialDecay(0.1, 3, 0.5)(7)\n"
        "print(sorted({'keras', 'jaxdecay.keras'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_the_keras_bridge_imports_no_schedule_module():
    """`_config` imports the bridge, so the bridge imports neither `_config`, the
    registry nor any family: it reads a schedule class by what it does."""
    from jaxdecay._registry import FAMILIES

    families = {cls.__module__.rpartition(".")[2] for cls in FAMILIES.values()}
    assert "_keras" in _import_graph()["_config"]
    assert _import_graph()["_keras"] & {"_config", "_registry", *families} == set()
