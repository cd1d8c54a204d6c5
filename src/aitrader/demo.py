"""The main job on bundled data (grows with the project): for now, the data part of the pipeline."""

from __future__ import annotations

from aitrader.config import Settings


def run_demo(settings: Settings) -> None:
    from aitrader.cli.common import console

    console.print("demo: data pipeline")
