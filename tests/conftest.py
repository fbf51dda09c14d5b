"""Shared test setup: the helpers next to the tests (hook_recorder, ...) are importable."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
