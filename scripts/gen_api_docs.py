"""Generate docs/api.md, the API reference, from the public modules' docstrings.

    python scripts/gen_api_docs.py            # rewrite docs/api.md
    python scripts/gen_api_docs.py --check    # exit 1 if docs/api.md is out of date (for CI)

The reference is what each module exports in ``__all__``, in that order (the
modules group their names by meaning), with signatures from
:func:`inspect.signature` and the docstrings as written: the docstrings are
the single source, so the page cannot drift from the code without ``--check``
noticing.  Every framework must be installed (``pip install -e '.[all]'``),
because each adapter module imports its framework.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"

MODULES = [
    ("bridges", "import bridges"),
    ("bridges.twisted", "from bridges import twisted as bt"),
    ("bridges.tornado", "from bridges import tornado as btn"),
    ("bridges.gevent", "from bridges import gevent as bg"),
    ("bridges.eventlet", "from bridges import eventlet as be"),
    ("bridges.asyncore", "from bridges import asyncore as ba"),
    ("bridges.gunicorn", "gunicorn worker classes: -k bridges.gunicorn.HubWorker"),
    ("bridges.metrics", "from bridges.metrics import HubCollector, log_every, dump_every"),
    ("bridges.pytest_plugin", "the pytest11 plugin (installed with the package)"),
]

ADAPTER_HOOKS = {"attach", "detach"}
"""Every adapter's ``attach(hub)``/``detach(hub)``: called by the hub, documented once."""

HEADER = """\
# API reference

Generated from the docstrings by `python scripts/gen_api_docs.py`; do not edit
by hand (CI runs it with `--check`). The concepts behind these names are in
[concepts.md](concepts.md); the traps in [pitfalls.md](pitfalls.md).

Every adapter module also has `attach(hub)` and `detach(hub)`, which the hub
calls when it starts and stops; user code never calls them.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python scripts/gen_api_docs.py", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is up to date")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


def render() -> str:
    parts = [HEADER]
    parts.append("## Contents\n")
    parts += [f"- [`{name}`](#{anchor(name)}) — {how}" for name, how in MODULES]
    parts.append("")
    for name, how in MODULES:
        parts += list(render_module(importlib.import_module(name), how))
    return "\n".join(parts).rstrip() + "\n"


def render_module(module: ModuleType, how: str) -> Iterator[str]:
    yield f"## {module.__name__}\n"
    yield f"*{how}*\n"
    yield docstring(module)
    for name in getattr(module, "__all__", []):
        if name in ADAPTER_HOOKS and module.__name__ != "bridges":
            continue
        obj = getattr(module, name)
        yield from render_object(module.__name__, name, obj)
    if hasattr(module, "pytest_addoption"):
        yield from render_pytest_options(module)


def render_object(module: str, name: str, obj: Any) -> Iterator[str]:
    qualified = f"{module}.{name}"
    if inspect.isclass(obj):
        yield from render_class(qualified, obj)
    elif callable(obj):
        prefix = "async " if inspect.iscoroutinefunction(obj) else ""
        yield f"### `{prefix}{qualified}{signature(obj)}`\n"
        yield docstring(obj)
    else:
        yield f"### `{qualified} = {obj!r}`\n"
        doc = attribute_docstring(sys.modules[module], name)
        if doc:
            yield doc + "\n"


def render_class(qualified: str, cls: type) -> Iterator[str]:
    if issubclass(cls, BaseException):
        bases = ", ".join(f"`{base.__qualname__}`" for base in cls.__bases__)
        yield f"### exception `{qualified}`\n"
        yield f"Subclass of {bases}.\n"
        yield docstring(cls)
        return
    init = "" if cls.__init__ is object.__init__ else signature(cls)
    yield f"### class `{qualified}{init}`\n"
    yield docstring(cls)
    for member, value in vars(cls).items():
        if member.startswith("_"):
            continue
        if isinstance(value, property):
            yield f"#### `{member}` (property)\n"
            yield docstring(value)
        elif inspect.isfunction(value):
            prefix = "async " if inspect.iscoroutinefunction(value) else ""
            yield f"#### `{prefix}{member}{signature(value, drop_self=True)}`\n"
            yield docstring(value)


class _OptionRecorder:
    """Stands in for pytest's parser, to read the options a plugin declares."""

    def __init__(self) -> None:
        self.ini: list[tuple[str, str, Any]] = []
        self.flags: list[tuple[str, str]] = []

    def getgroup(self, *args: Any, **kwargs: Any) -> _OptionRecorder:
        return self

    def addini(self, name: str, help: str, type: Any = None, default: Any = None) -> None:
        self.ini.append((name, help, default))

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.flags.append((", ".join(names), kwargs.get("help", "")))


def render_pytest_options(module: ModuleType) -> Iterator[str]:
    recorder = _OptionRecorder()
    module.pytest_addoption(recorder)
    yield "### ini options\n"
    yield "| option | default | meaning |"
    yield "|---|---|---|"
    for name, help_text, default in recorder.ini:
        yield f"| `{name}` | `{default}` | {help_text} |"
    yield ""
    if recorder.flags:
        yield "### command-line options\n"
        for names, help_text in recorder.flags:
            yield f"- `{names}`: {help_text}"
        yield ""


def signature(obj: Any, drop_self: bool = False) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())[1 if drop_self else 0 :]
    params = [p.replace(annotation=_bare(p.annotation)) for p in params]
    returns = inspect.Signature.empty if inspect.isclass(obj) else _bare(sig.return_annotation)
    return str(sig.replace(parameters=params, return_annotation=returns))


class _Bare:
    """An annotation that prints as written: ``from __future__ import annotations`` keeps them
    as strings, which ``inspect`` would print quoted."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _bare(annotation: Any) -> Any:
    return _Bare(annotation) if isinstance(annotation, str) else annotation


def docstring(obj: Any) -> str:
    doc = inspect.getdoc(obj)
    if not doc or (inspect.isclass(obj) and doc == inspect.getdoc(obj.__bases__[0])):
        return "*(no docstring)*\n"
    return rst_to_markdown(doc) + "\n"


def attribute_docstring(module: ModuleType, name: str) -> str:
    """The string literal right after ``NAME = ...`` in the module source, as Sphinx reads it."""
    try:
        lines = inspect.getsource(module).splitlines()
    except (OSError, TypeError):
        return ""
    for index, line in enumerate(lines):
        if line.startswith((f"{name} =", f"{name}:")):
            for follow in lines[index + 1 : index + 4]:
                stripped = follow.strip()
                if stripped.startswith('"""'):
                    return rst_to_markdown(stripped.strip('"'))
    return ""


def rst_to_markdown(text: str) -> str:
    """Just enough of reStructuredText for docstrings to read well as Markdown.

    ``code`` becomes `code`, :role:`name` becomes `name`, and a paragraph ending
    in ``::`` opens a code block for the indented lines that follow.
    """
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if in_code and line.strip() and not line.startswith("    "):
            _close_code(out)
            in_code = False
        if in_code:
            out.append(line[4:] if line.startswith("    ") else line)
            continue
        if line.rstrip().endswith("::"):
            head = line.rstrip()[:-2].rstrip()
            if head:
                out += [head + ":", ""]
            elif out and out[-1].strip():
                out.append("")
            out.append("```python")
            in_code = True
            continue
        out.append(line)
    if in_code:
        _close_code(out)
    return "\n".join(_drop_blank_after_fence(out)).rstrip()


def _close_code(out: list[str]) -> None:
    while out and not out[-1].strip():
        out.pop()
    out += ["```", ""]


def _drop_blank_after_fence(lines: list[str]) -> Iterator[str]:
    previous = ""
    for line in lines:
        if previous == "```python" and not line.strip():
            continue
        yield line
        previous = line


def anchor(name: str) -> str:
    return name.replace(".", "").lower()


if __name__ == "__main__":
    sys.exit(main())
