"""Plugin options: typed environment values, declaration through ``register_options``,
the ``tracklog server`` flags, the check at start and the listing."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from tracklog import cli, hookimpl, plugins
from tracklog.errors import ErrorCode, TracklogError
from tracklog.options import Option, env_value

SIZE = Option("demo", "batch-size", int, 64, "Rows per batch.", env=("OLD_DEMO_BATCH",),
              minimum=1)
FAST = Option("demo", "fast", bool, False, "Take the quick path.")


@pytest.mark.parametrize(("kind", "raw", "value"), [
    (int, " 42 ", 42), (float, "0.25", 0.25), (float, "1e3", 1000.0), (bool, "Yes", True),
    (bool, "off", False), (str, "eu-west-3", "eu-west-3"),
])
def test_env_value_converts(kind, raw, value):
    assert env_value("X", kind, None, env={"X": raw}) == value


def test_env_value_takes_the_first_name_set_else_the_default():
    assert env_value(["NEW", "OLD"], int, 7, env={"OLD": "3"}) == 3
    assert env_value(["NEW", "OLD"], int, 7, env={"NEW": "5", "OLD": "3"}) == 5
    assert env_value(["NEW", "OLD"], int, 7, env={"NEW": "  ", "OLD": ""}) == 7


@pytest.mark.parametrize(("kind", "raw"), [
    (int, "soon"), (int, "0"), (int, "-5"), (int, "1.5"), (float, "nan"), (float, "x"),
    (bool, "maybe"),
])
def test_env_value_refuses_naming_the_variable(kind, raw):
    with pytest.raises(TracklogError) as err:
        env_value(["NEW", "OLD"], kind, None, minimum=1, env={"OLD": raw})
    assert err.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert err.value.message.startswith("OLD must be ") and repr(raw) in err.value.message


def test_option_names_its_flag_and_variables():
    assert SIZE.flag == "--demo-batch-size"
    assert SIZE.variables == ("TRACKLOG_DEMO_BATCH_SIZE", "OLD_DEMO_BATCH")
    assert SIZE.read({}) == 64 and SIZE.read({"OLD_DEMO_BATCH": "9"}) == 9
    assert math.isclose(Option("p", "r", float, 0.5, "").read({"TRACKLOG_P_R": "2"}), 2.0)
    with pytest.raises(TypeError):
        Option("p", "list", list, [], "")


class Demo:
    @hookimpl
    def register_options(self, register):
        register(SIZE)
        register(FAST)


@pytest.fixture
def demo(monkeypatch):
    for name in (*SIZE.variables, *FAST.variables):
        monkeypatch.delenv(name, raising=False)
    plugins.register_plugin(Demo(), "demo")
    plugins.call_hook("register_commands", cli=cli.cli)  # the server gains the flags
    yield
    plugins.unregister_plugin("demo")
    server = cli.cli.commands["server"]
    server.params = [p for p in server.params if not (p.name or "").startswith("demo_")]


def test_options_are_listed(demo):
    listing = CliRunner().invoke(cli.cli, ["plugins", "--json"])
    assert listing.exit_code == 0, listing.output
    (demo_info,) = [p for p in json.loads(listing.output) if p["name"] == "demo"]
    assert demo_info["options"] == [
        {"name": "batch-size", "type": "int", "default": 64, "help": "Rows per batch.",
         "flag": "--demo-batch-size",
         "environment": ["TRACKLOG_DEMO_BATCH_SIZE", "OLD_DEMO_BATCH"]},
        {"name": "fast", "type": "bool", "default": False, "help": "Take the quick path.",
         "flag": "--demo-fast", "environment": ["TRACKLOG_DEMO_FAST"]},
    ]
    helptext = CliRunner().invoke(cli.cli, ["server", "--help"]).output
    assert "--demo-batch-size INT" in helptext and "--demo-fast / --no-demo-fast" in helptext


def test_hook_register_options(demo):
    """The flags the server gains reach the plugin's own reading of its options."""
    # A bad --uvicorn-opts stops the command after the plugin flags are taken.
    result = CliRunner().invoke(cli.cli, ["server", "--demo-batch-size", "128", "--demo-fast",
                                          "--uvicorn-opts", "nonsense"])
    assert "--uvicorn-opts" in result.output
    assert SIZE.read() == 128 and FAST.read() is True


@pytest.mark.parametrize(("args", "env", "line"), [
    (["--demo-batch-size", "0"], {}, "--demo-batch-size must be an integer of at least 1, "
                                     "got '0'"),
    ([], {"OLD_DEMO_BATCH": "lots"}, "OLD_DEMO_BATCH must be an integer of at least 1, "
                                     "got 'lots'"),
    ([], {"TRACKLOG_DEMO_FAST": "sure"}, "TRACKLOG_DEMO_FAST must be true or false, "
                                         "got 'sure'"),
])
def test_a_bad_value_stops_the_server_with_one_line(demo, monkeypatch, args, env, line):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli.cli, ["server", "--port", "0", *args])
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {line}"]


def test_one_flag_declared_twice_marks_the_second_plugin_broken(demo):
    class Again:
        @hookimpl
        def register_options(self, register):
            register(Option("demo", "batch-size", int, 1, "Clash."))

    plugins.register_plugin(Again(), "again")
    try:
        infos = {i.name: i for i in plugins.plugin_infos()}
        assert infos["again"].error == ("option --demo-batch-size is claimed by two plugins: "
                                        "'demo' and 'again'")
        assert infos["again"].options == [] and len(infos["demo"].options) == 2
    finally:
        plugins.unregister_plugin("again")
