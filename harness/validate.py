"""Validation of data files (topologies, reproduction bundles): one-line errors that name
the file and the dotted key, e.g. `repros/x/repro.toml: steps[1].timeout: expected ...`."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError


class Where:
    """The file and dotted key being validated; errors are raised as `error` (a class)."""

    def __init__(self, path: Path, key: str = "", error: type[HarnessError] = HarnessError):
        self.path, self.key, self.error_class = path, key, error

    def __truediv__(self, part: str | int) -> Where:
        if isinstance(part, int):
            return Where(self.path, f"{self.key}[{part}]", self.error_class)
        return Where(self.path, f"{self.key}.{part}" if self.key else part, self.error_class)

    def error(self, message: str) -> HarnessError:
        return self.error_class(f"{self.path}: {self.key or '(top level)'}: {message}")


def table_of(value, where: Where, allowed: set[str] | None,
          required: set[str] = frozenset()) -> dict:
    """value as a dict, with only `allowed` keys (None: any) and every `required` one."""
    if not isinstance(value, dict):
        raise where.error(f"expected a table, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        raise (where / unknown[0]).error(f"unknown key (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(value))
    if missing:
        raise (where / missing[0]).error("required key is missing")
    return value


def typed(value, where: Where, kind: type | tuple, name: str):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise where.error(f"expected {name}, got {value!r}")
    return value


def array(value, where: Where) -> list:
    return typed(value, where, list, "an array")
