"""mkdocs hook: Sphinx cross-reference roles in docstrings become links of the API reference.

The docstrings write references as Sphinx roles (``:class:`TrackerConfig```,
``:func:`~emtrack.track.fit.fit_sequence```), which mkdocstrings renders as the role's name
followed by code. This hook turns each into the code alone (``~`` shows the last name only, as
in Sphinx) and links it to the object's heading in the API reference when there is one: a
dotted name that is documented, or else the one documented object whose full name ends with
the written name (``Tracker.update`` is ``emtrack.track.Tracker.update``). Names that are not
documented stay plain code. The links are resolved by mkdocs-autorefs, after every page is
rendered; nothing is fetched.
"""

from __future__ import annotations

import re
from typing import Any

#: A role as mkdocstrings renders it: ``:func:<code>~a.b</code>``.
ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|obj|exc|const):<code>(~?)([\w.]+)</code>")
#: Placeholders left by ``on_page_content`` for ``on_env`` to resolve.
PENDING = re.compile(r'<span data-emtrack-ref="([\w.]+)">(.*?)</span>', flags=re.DOTALL)
#: Identifiers of documented objects (mkdocstrings' heading ids).
ANCHOR = re.compile(r'id="(emtrack(?:\.\w+)*)"')

_documented: set[str] = set()


def on_pre_build(config: Any) -> None:
    _documented.clear()


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    _documented.update(ANCHOR.findall(html))

    def placeholder(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        shown = name.rsplit(".", 1)[-1] if short else name
        return f'<span data-emtrack-ref="{name}"><code>{shown}</code></span>'

    return ROLE.sub(placeholder, html)


def _identifier(name: str) -> str | None:
    """The documented object ``name`` refers to, if exactly one."""
    if name in _documented:
        return name
    matches = [ident for ident in _documented if ident.endswith("." + name)]
    return matches[0] if len(matches) == 1 else None


def on_env(env: Any, config: Any, files: Any) -> Any:
    def resolve(match: re.Match[str]) -> str:
        identifier = _identifier(match.group(1))
        if identifier is None:
            return match.group(2)
        return f'<autoref identifier="{identifier}" optional>{match.group(2)}</autoref>'

    for file in files:
        if file.page is not None and file.page.content:
            file.page.content = PENDING.sub(resolve, file.page.content)
    return env
