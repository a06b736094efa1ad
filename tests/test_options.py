"""The option table (``seqflow.options.FLAGS``) against the config, the API and the CLI: a flag
declared in one place and missing from another fails here, not in a user's hands."""

from __future__ import annotations

import inspect
import typing
from importlib import import_module
from typing import Any

import pytest
import typer.main

from seqflow import api
from seqflow.cli import app
from seqflow.config import Config
from seqflow.options import FLAGS, command_flags, config_flags

API = {"fit": api.fit, "sample": api.sample}

NOT_CONFIG = {
    "fit": {
        "api": {"data", "preset", "config_file", "overrides", "out", "resume", "on_start",
                "on_progress", "on_step", "handle_signals", "strict", "allow_changed_data"},
        "cli": {"data", "preset", "config", "overrides", "out", "resume", "threads", "strict",
                "allow_changed_data", "log"},
    },
    "sample": {
        "api": {"checkpoint", "n", "label", "value", "signal", "seed", "output", "device",
                "id_prefix", "template", "prefix", "suffix", "forbid", "max_homopolymer",
                "gc_min", "gc_max", "min_novelty", "train", "max_candidates", "oracle", "score",
                "top", "fmt", "on_progress"},
        "cli": {"checkpoint", "n", "label", "value", "signal", "seed", "output", "fmt",
                "template", "prefix", "suffix", "forbid", "max_homopolymer", "gc_min", "gc_max",
                "min_novelty", "train", "max_candidates", "oracle", "score", "top", "device",
                "libraries", "size", "out_dir", "id_prefix", "threads"},
    },
}  # fmt: skip
"""Parameters that are not config keys: a new one must be added to the table or here."""


def _cli(command: str) -> Any:
    """The registered command (a click command, as Typer builds it)."""
    return typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]


def _optional(hint: object) -> object:
    """``X | None`` -> ``X``, with Typer's ``Annotated`` metadata stripped."""
    hint = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def test_every_key_is_a_config_key_and_takes_its_type():
    defaults = Config().to_dict()
    for key, flag in FLAGS.items():
        assert flag.key == key
        section, _, name = key.rpartition(".")
        node = defaults[section] if section else defaults
        assert name in node, key
        field_type = typing.get_type_hints(type(getattr(Config(), section)) if section else Config)
        hint = _optional(field_type[name])
        api_hint = _optional(typing.get_type_hints(API[flag.command])[flag.keyword])
        if typing.get_origin(hint) is typing.Literal:  # a choice travels as its type, e.g. str
            hint = type(typing.get_args(hint)[0])
        assert api_hint == hint, (key, api_hint, hint)


@pytest.mark.parametrize("command", sorted(API))
def test_api_keywords_are_the_table_plus_the_listed_others(command):
    keywords = set(inspect.signature(API[command]).parameters)
    table = {f.keyword for f in command_flags(command)}
    assert len(table) == len(command_flags(command))  # one keyword per flag
    assert table <= keywords, table - keywords
    assert keywords - table == NOT_CONFIG[command]["api"]


@pytest.mark.parametrize("command", sorted(API))
def test_cli_registers_every_flag_with_its_help(command):
    params = {p.name: p for p in _cli(command).params}
    assert set(params) - {f.keyword for f in command_flags(command)} == NOT_CONFIG[command]["cli"]
    api_hints = typing.get_type_hints(API[command])
    cli_hints = typing.get_type_hints(getattr(import_module(f"seqflow.cli.{command}"), command))
    for flag in command_flags(command):
        param = params[flag.keyword]
        declared = flag.flag.split("/")
        assert param.opts == declared[:1] and param.secondary_opts == declared[1:], flag.key
        assert param.help == flag.help and param.default is None
        assert _optional(cli_hints[flag.keyword]) == _optional(api_hints[flag.keyword]), flag.key


def test_config_flags_maps_given_keywords_to_keys():
    values = {f.keyword: None for f in command_flags("fit")}
    values.update(steps=7, fmt="csv", compile=False, mode="library")
    assert config_flags("fit", values) == {
        "train.steps": 7, "data.format": "csv", "train.compile": False, "mode": "library"
    }  # fmt: skip
    cfg = Config().with_overrides(config_flags("fit", values))
    assert (cfg.train.steps, cfg.data.format, cfg.mode) == (7, "csv", "library")
