"""Suite-wide test configuration.

``--dist loadgroup`` on pytest 9.2: pytest-xdist (3.8) puts a test in its
``xdist_group`` by appending ``@<group>`` to ``item._nodeid``, a field pytest
9.2 no longer reads (node ids are structured, ``item._id``); every
``xdist_group`` mark is then silently ignored and grouped tests (those sharing
a session fixture such as the console's demo federation) spread over every
worker, each worker starting its own copy of the fixture
(pytest-dev/pytest-xdist#1386; the fix, #1388, is not released). The hook
below sets the suffix on the structured id too, after xdist's own hook, and
does nothing where xdist's suffix already took effect.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not (hasattr(config, "workerinput") and config.getvalue("loadgroup")):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9.2: xdist's own suffix works
        return
    for item in items:
        names = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix) and isinstance(getattr(item, "_id", None), NodeId):
            item._id = NodeId.parse(item.nodeid + suffix)
