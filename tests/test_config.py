from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Settings, get_settings
from qa.errors import ConfigError


def test_environment_overrides_defaults() -> None:
    s = Settings.from_env({"QA_K": "3", "QA_MIN_SCORE": "0.5", "QA_PROGRESS": "off", "QA_INDEX": "/tmp/x"})
    assert (s.k, s.min_score, s.progress, s.index) == (3, 0.5, False, Path("/tmp/x"))


def test_explicit_values_override_environment_and_none_keeps_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_K", "3")
    assert get_settings().k == 3
    assert get_settings(k=9).k == 9
    assert get_settings(k=None).k == 3


def test_invalid_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="QA_K='many' is not a valid int"):
        Settings.from_env({"QA_K": "many"})


def test_out_of_range_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="k=0 must be at least 1"):
        Settings().replace(k=0)


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings().replace(colour="blue")


def test_auth_is_not_shown_in_repr() -> None:
    assert "secret" not in repr(Settings.from_env({"QA_AUTH": "me:secret"}))
