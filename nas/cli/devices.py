"""`nas devices`: the device profiles and the kind of each latency table."""

from __future__ import annotations

import argparse

ORDER = 20
NAME = "devices"
HELP = "list the device profiles and the kind of each latency table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    del parser  # no flags


def run(args: argparse.Namespace) -> None:
    """Runs `nas devices`."""
    from latency_models.registry import available_devices, learned_summary, load_device, table_summaries

    for name in available_devices():
        device = load_device(name)
        print(f"{name:10s} {device.description}")
        print(
            f"{'':10s} runtime {device.runtime}; threads {device.threads}; RAM {_limit(device.ram_bytes)}, "
            f"flash {_limit(device.flash_bytes)}; active power {device.active_power.watts:g} W"
        )
        if device.cpu_fallback:
            print(
                f"{'':10s} --device {name}+cpu: what the NPU cannot run (float, weight-only int8) falls back to the CPU"
            )
        for table in table_summaries(device):
            entries = f"{table.entries} entries, " if table.entries else ""
            print(f"{'':10s} latency [{table.kernel_set}]: {table.kind} ({entries}{table.detail})")
            learned = learned_summary(name, table.kernel_set) if device.measurable_here and table.entries else None
            if learned is not None:
                print(f"{'':10s}   {learned}")


def _limit(value: int | None) -> str:
    return "no limit" if value is None else f"{value / 1024:g} KiB"
