"""Shared pytest setup: make the CLIs in tools/ importable as plain modules."""

import sys
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools"
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration runs real processes: mark it so `-m` can select it."""
    import pytest

    integration_dir = Path(__file__).resolve().parent / "integration"
    for item in items:
        if integration_dir in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
