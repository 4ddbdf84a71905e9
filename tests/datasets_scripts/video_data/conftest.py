from __future__ import annotations

import pytest

from . import synthetic


@pytest.fixture(scope="module")
def clip_set(tmp_path_factory):
    """Two synthetic clips of every kind (moving, static, cut, slideshow, blurry, text)."""
    return synthetic.clip_set(tmp_path_factory.mktemp("clips"))
