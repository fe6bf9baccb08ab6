"""What every real-NAT-lab test module shares: run only where the lab can, and leave
no namespace behind.

A module calls :func:`require_lab` at import: where the lab (or a tool it names)
is missing the module skips, unless an environment variable CI sets turns the
skip into a failure. It imports :func:`nothing_left_behind`, an autouse fixture.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from punchlab.netlab import cleanup_leftovers, namespaces
from punchlab.netlab.system import PREFIX, lab_problems


def require_lab(what: str, tools: tuple[str, ...] = (), envs: tuple[str, ...] = ()) -> None:
    """Skip the calling module where the lab or ``tools`` are missing; fail instead when
    ``PUNCHLAB_REQUIRE_NETLAB`` or one of ``envs`` is set."""
    problems = lab_problems() + [f"needs {t}" for t in tools if shutil.which(t) is None]
    if not problems:
        return
    if any(os.environ.get(env) for env in ("PUNCHLAB_REQUIRE_NETLAB", *envs)):
        pytest.fail(f"{what} cannot run: " + "; ".join(problems), pytrace=False)
    pytest.skip(f"{what}: " + "; ".join(problems), allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """No namespace of this process before the module's tests, and none after, whatever
    happened."""
    mine = f"{PREFIX}{os.getpid()}-"
    assert [n for n in namespaces() if n.startswith(mine)] == []
    yield
    leftovers = [n for n in namespaces() if n.startswith(mine)]
    cleanup_leftovers(mine)
    assert leftovers == []
