"""The config file: validated, relative paths resolved, a bad file named with its line and the
valid keys; ``legato serve`` errors before listening."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from legato.errors import ConfigError
from legato.serve import load_config

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def test_a_config_file_declares_pipelines_and_options(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("k\n")
    file = tmp_path / "legato.yaml"
    file.write_text("pipelines:\n  - app.py:agent\n  - package.module:other\n"
                    "host: 0.0.0.0\nport: 9000\nmax_queue: 64\nmax_timeout: 2.5\n"
                    "api_key_file: keys\nstore: default\nresources:\n  asr: 1\n")
    config = load_config(file)
    assert config.pipelines == [f"{tmp_path / 'app.py'}:agent", "package.module:other"]
    assert (config.host, config.port, config.max_queue, config.max_timeout) == (
        "0.0.0.0", 9000, 64, 2.5)
    assert config.api_key_file == tmp_path / "keys"
    assert config.store == "default"
    assert config.resources == {"asr": 1}


def test_an_unknown_key_names_its_line_and_the_valid_keys(tmp_path: Path) -> None:
    file = tmp_path / "legato.yaml"
    file.write_text("pipelines: [a.py:p]\nport: 8000\nmax_qeue: 5\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    message = str(caught.value)
    assert f"{file}:3: unknown key 'max_qeue'" in message
    assert "valid keys:" in message
    assert "max_queue" in message
    assert "pipelines" in message


def test_a_bad_value_names_its_line(tmp_path: Path) -> None:
    file = tmp_path / "legato.yaml"
    file.write_text("pipelines:\n  - a.py:p\nport: many\nresources:\n  asr: lots\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    message = str(caught.value)
    assert f"{file}:3: 'port':" in message
    assert f"{file}:5: 'resources.asr':" in message


def test_missing_pipelines_and_bad_yaml_are_named(tmp_path: Path) -> None:
    file = tmp_path / "legato.yaml"
    file.write_text("port: 1\n")
    with pytest.raises(ConfigError, match="'pipelines': Field required"):
        load_config(file)
    file.write_text("port: [1\n")
    with pytest.raises(ConfigError, match=r"legato.yaml:\d+: not valid YAML"):
        load_config(file)
    file.write_text("- a\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(file)


def test_legato_serve_reports_a_bad_config_and_exits_1(tmp_path: Path) -> None:
    file = tmp_path / "legato.yaml"
    file.write_text("pipelines: [a.py:p]\nbogus: 1\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "legato.cli", "serve", "--config", str(file)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert f"{file}:2: unknown key 'bogus'" in done.stderr


def test_import_legato_does_not_import_the_server_stack() -> None:
    code = ("import sys, legato; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'yaml') "
            "if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_legato_serve_without_pipelines_is_a_usage_error() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "legato.cli", "serve"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "name the pipelines to serve" in done.stderr
