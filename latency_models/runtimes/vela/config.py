"""The Vela configuration of an Ethos-U device: the ``vela`` section of its profile, parsed and checked.

``{"accelerator": "ethos-u55-128", "system_config": "...", "memory_mode": "...", "config_file": "Arm/vela.ini",
"source": "..."}``: the NPU and its MACs per cycle, the system (clocks, memory bandwidths and latencies) and the
memory mode (which memory holds the weights, the tensor arena and the cache), the last two named sections of a
configuration file that ships with Vela. Every one is passed to Vela explicitly: its defaults (an Ethos-U55-256,
its internal system) would silently describe another device.
"""

from __future__ import annotations

import configparser
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError

# The accelerator configurations Vela 5.2.0 accepts (``vela --help``).
ACCELERATORS = (
    "ethos-u55-32",
    "ethos-u55-64",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u65-512",
    "ethos-u85-128",
    "ethos-u85-256",
    "ethos-u85-512",
    "ethos-u85-1024",
    "ethos-u85-2048",
)
FIELDS = ("accelerator", "system_config", "memory_mode", "config_file", "source")


@dataclass(frozen=True, kw_only=True)
class VelaConfig:
    """What Vela compiles a file for (hashable: it keys the runtime's cache with the file's hash)."""

    accelerator: str
    system_config: str
    memory_mode: str
    config_file: str  # relative to Vela's own ``config_files`` folder

    def arguments(self) -> list[str]:
        """Vela's command-line options for this configuration."""
        return [
            "--accelerator-config",
            self.accelerator,
            "--config",
            self.config_file,  # Vela finds its own files by this name (a full path draws a warning)
            "--system-config",
            self.system_config,
            "--memory-mode",
            self.memory_mode,
        ]


def vela_config(device: DeviceProfile) -> VelaConfig:
    """The checked Vela configuration of ``device``; a missing or bad ``vela`` section is refused in one line."""
    if device.vela is None:
        raise CostModelError(
            f"{device.name}: the profile has no 'vela' section; Vela compiles only for Ethos-U devices"
        )
    return config_from_dict(device.vela, device.name)


def config_from_dict(raw: Any, source: str) -> VelaConfig:
    """Validates a ``vela`` section: a known accelerator, and sections that exist in the named config file."""
    if not isinstance(raw, dict):
        raise CostModelError(f"{source}: 'vela' must be an object with {', '.join(FIELDS)}")
    missing = [name for name in FIELDS if not str(raw.get(name, "")).strip()]
    if missing:
        raise CostModelError(f"{source}: the vela section lacks {', '.join(missing)}")
    config = VelaConfig(
        accelerator=str(raw["accelerator"]),
        system_config=str(raw["system_config"]),
        memory_mode=str(raw["memory_mode"]),
        config_file=str(raw["config_file"]),
    )
    if config.accelerator not in ACCELERATORS:
        raise CostModelError(
            f"{source}: unknown Vela accelerator {config.accelerator!r}; use {', '.join(ACCELERATORS)}"
        )
    sections = config_sections(config.config_file)
    for kind, name in (("System_Config", config.system_config), ("Memory_Mode", config.memory_mode)):
        if name not in sections[kind]:
            known = ", ".join(sections[kind])
            raise CostModelError(f"{source}: {config.config_file} has no {kind} {name!r}; use one of {known}")
    return config


def config_path(name: str) -> Path:
    """The configuration file ``name`` (``Arm/vela.ini``) in the installed Vela package."""
    spec = importlib.util.find_spec("ethosu")
    if spec is None or not spec.submodule_search_locations:
        raise CostModelError("Vela is not installed; pip install ethos-u-vela==5.2.0 (pinned in pyproject.toml)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "config_files"
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        shipped = ", ".join(str(p.relative_to(folder)) for p in sorted(folder.rglob("*.ini")))
        raise CostModelError(f"Vela ships no configuration file {name!r}; use one of {shipped}")
    return path


def config_sections(name: str) -> dict[str, list[str]]:
    """The system configs and memory modes a configuration file defines, by kind."""
    parser = configparser.ConfigParser()
    parser.read(config_path(name))
    found: dict[str, list[str]] = {"System_Config": [], "Memory_Mode": []}
    for section in parser.sections():
        kind, _, label = section.partition(".")
        if kind in found:
            found[kind].append(label)
    return found
