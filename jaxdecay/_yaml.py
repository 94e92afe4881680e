"""YAML: PyYAML's safe loader without YAML 1.1's traps, for every reader of configs.

The command line and `load` read YAML here, so that `1e-3` is a number both ways.
PyYAML (the `yaml` extra) is imported when YAML is first read or written, never when
jaxdecay is.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from jaxdecay._validation import missing_extra


def load_yaml(text: str) -> Any:
    """Parses YAML with PyYAML's safe loader, two YAML 1.1 traps removed.

    `1e-4` is read as a float (PyYAML reads it as the string '1e-4'), and a key
    written twice is refused instead of the last one silently winning. Aliases
    (`*name`) are refused: a config needs none, and nested ones expand exponentially.

    Raises:
      ValueError: the text is not valid YAML (one line, with the line and column).
    """
    yaml = pyyaml()
    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader
    except RecursionError:
        raise ValueError("YAML text is nested too deeply") from None
    except yaml.YAMLError as error:
        raise ValueError(f"not valid YAML: {_yaml_message(error)}") from None


def _yaml_message(error: Any) -> str:
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        problem += f" at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(problem).split())


# YAML 1.2's floats: 1e-4, 1E5, .5, 1.0e-4 (YAML 1.1 needs a dot and a signed
# exponent), plus .inf and .nan, which the schedule then refuses with a clear message.
_YAML_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


@functools.cache
def _yaml_loader() -> Any:
    yaml = pyyaml()

    class Loader(yaml.SafeLoader):  # type: ignore[name-defined,misc]
        def compose_node(self, parent: Any, index: Any) -> Any:
            # An alias shares a node; nested, a few lines expand into billions of
            # values when printed in an error message. A config has no use for them.
            if self.check_event(yaml.events.AliasEvent):
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    "aliases (*name) are refused in configs",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {key!r} is written twice",
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # Copy the resolvers before adding to them: they are class attributes shared
    # with yaml.SafeLoader, which other code in the process uses.
    Loader.yaml_implicit_resolvers = {
        first: list(resolvers)
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", _YAML_FLOAT, list("-+0123456789.")
    )
    return Loader


def pyyaml() -> Any:
    """The `yaml` module, or the error that names the extra."""
    try:
        import yaml
    except ImportError as error:
        raise missing_extra("PyYAML", "yaml") from error
    return yaml
