"""Each function's environment variables, seen only by the thread invoking it.

On Lambda every function runs in an execution environment of its own, so the telemetry processor
and the update manager never see each other's variables and run side by side. Locally both run in
one process, whose ``os.environ`` is shared. :func:`function_environment` gives the calling thread
an overlay of the function's variables: reads from that thread see the overlay over the process
environment, other threads do not see it, and nothing is written to the process environment, so
two functions can be invoked at the same time on two threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

_DELETED = object()


class ThreadScopedEnviron(MutableMapping[str, str]):
    """``os.environ`` with a per-thread overlay; without an overlay it is the process environment."""

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process
        self._local = threading.local()

    def _overlay(self) -> dict[str, object] | None:
        return getattr(self._local, "overlay", None)

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is _DELETED:
                raise KeyError(key)
            return value  # type: ignore[return-value]
        return self.process[key]

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            self.process[key] = value
        else:  # set inside an invocation: it stays in that function's environment
            overlay[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            del self.process[key]
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        overlay = self._overlay()
        if overlay is None:
            yield from self.process
            return
        yield from (key for key, value in overlay.items() if value is not _DELETED)
        yield from (key for key in self.process if key not in overlay)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)

    @contextmanager
    def overlaid(self, values: dict[str, str]) -> Iterator[None]:
        saved = self._overlay()
        self._local.overlay = {**(saved or {}), **values}
        try:
            yield
        finally:
            self._local.overlay = saved


_install_lock = threading.Lock()


def scoped_environ() -> ThreadScopedEnviron:
    """The process's :class:`ThreadScopedEnviron`, installed as ``os.environ`` on first use."""
    with _install_lock:
        environ: MutableMapping[str, str] = os.environ
        if not isinstance(environ, ThreadScopedEnviron):
            # Wraps the process environment, which stays underneath: nothing is cleared or copied.
            environ = ThreadScopedEnviron(environ)
            os.environ = environ  # type: ignore[assignment]  # noqa: B003
        return environ


@contextmanager
def function_environment(values: dict[str, str]) -> Iterator[None]:
    """Inside, this thread sees ``values`` over the process environment; other threads do not."""
    with scoped_environ().overlaid(values):
        yield
