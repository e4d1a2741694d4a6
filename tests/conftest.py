"""Shared fixtures. Importing `src` first sets the oneDNN CPU kernel choice before MindSpore loads."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import src  # noqa: E402,F401


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def default_cfg():
    from src.config import load_config
    return load_config()
