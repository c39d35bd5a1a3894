"""The reference server behind the defect layer, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reference_impl.app import create_app
from reference_impl.settings import Settings
from tests.conformance.faulty.defects import DefectLayer, DefectSwitch
from tests.support.server import free_port, serving


@dataclass
class FaultyServer:
    base_url: str
    switch: DefectSwitch


@contextmanager
def faulty_server(settings: Settings, *, startup_timeout: float = 120.0) -> Iterator[FaultyServer]:
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    switch = DefectSwitch()
    with serving(DefectLayer(create_app(settings), switch), port, startup_timeout=startup_timeout) as running:
        yield FaultyServer(running.base_url, switch)
