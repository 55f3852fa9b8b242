"""Every example in a docstring of the ``qa`` package runs and prints what it shows (real model, real index)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import qa

MODULES = sorted(m.name for m in pkgutil.walk_packages(qa.__path__, "qa."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, article_index: qa.Index) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see above)"
