"""Crash-test driver for the registry: runs one install or delete and SIGKILLs itself where LLMOS_REGISTRY_KILL says.

LLMOS_REGISTRY_KILL is ``chunk:N`` (during the Nth chunk of blob data), ``replace:N:before|after`` (around the
Nth ``os.replace``) or ``commit:N:before|after`` (around the Nth SQL ``COMMIT``); counting starts once the
registry is open. Read only here: the registry itself knows nothing of it.

usage: registry_crash_helper.py ROOT install PACKAGE_DIR | ROOT delete NAME VERSION | ROOT loop PACKAGES_DIR
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reference_impl.registry import Registry


class _Trap:
    def __init__(self, spec: str) -> None:
        kind, count, *when = spec.split(":") if spec else ("", "0")
        self.kind, self.target, self.after = kind, int(count), when == ["after"]
        self.armed = False
        self.seen = 0

    def hit(self, kind: str) -> bool:
        if not self.armed or kind != self.kind:
            return False
        self.seen += 1
        return self.seen == self.target

    @staticmethod
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def around(self, kind: str, action: Callable[[], Any]) -> Any:
        fire = self.hit(kind)
        if fire and not self.after:
            self.die()
        result = action()
        if fire:
            self.die()
        return result


def _install_traps(trap: _Trap) -> None:
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        trap.around("replace", lambda: real_replace(src, dst))

    class Connection(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "COMMIT":
                cursor: sqlite3.Cursor = trap.around("commit", lambda: super(Connection, self).execute(sql, *args))
                return cursor
            return super().execute(sql, *args)

    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return real_connect(*args, factory=Connection, **kwargs)

    os.replace = replace  # type: ignore[assignment]
    sqlite3.connect = connect  # type: ignore[assignment]


def _chunks(data: bytes, trap: _Trap) -> Iterator[bytes]:
    for start in range(0, len(data), 3):
        if trap.hit("chunk"):
            trap.die()
        yield data[start : start + 3]


def _install(registry: Registry, package: Path, trap: _Trap) -> None:
    manifest = json.loads((package / "llmos-package.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        registry.put_blob(entry["digest"], _chunks((package / entry["path"]).read_bytes(), trap))
    registry.install(manifest, owner="crash-test")


def main(argv: list[str]) -> None:
    trap = _Trap(os.environ.get("LLMOS_REGISTRY_KILL", ""))
    _install_traps(trap)
    root, mode, *rest = argv
    with Registry(Path(root)) as registry:
        trap.armed = True
        print("open", flush=True)
        if mode == "install":
            _install(registry, Path(rest[0]), trap)
        elif mode == "delete":
            registry.delete_version(rest[0], rest[1])
        elif mode == "loop":  # until killed: install the packages under PACKAGE_DIR in turn, deleting the one before
            previous: tuple[str, str] | None = None
            for package in itertools.cycle(sorted(Path(rest[0]).iterdir())):
                _install(registry, package, trap)
                if previous is not None:
                    registry.delete_version(*previous)
                manifest = json.loads((package / "llmos-package.json").read_text(encoding="utf-8"))
                previous = (manifest["name"], manifest["version"])
                print("installed", previous[1], flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
