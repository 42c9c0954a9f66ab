"""``tracklog auth``: users, groups, permissions and tokens straight in the database,
seen by the server afterwards."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tracklog.cli import cli

from .conftest import API, PASSWORD, auth_env, basic, build_app


def test_auth_commands(tmp_path: Path, monkeypatch) -> None:
    from tracklog.plugins import call_hook

    call_hook("register_commands", cli=cli)  # as `tracklog` does before parsing
    store = f"sqlite:///{tmp_path / 'tracking.db'}"
    for name in list(__import__("os").environ):
        if name.startswith("TRACKLOG_AUTH"):
            monkeypatch.delenv(name)

    def run(*args: str, **env: str) -> str:
        result = CliRunner().invoke(cli, ["auth", "--backend-store-uri", store, *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    assert "created user olga (administrator)" in run("users", "create", "olga", "--admin",
                                                      "--password", PASSWORD)
    run("users", "create", "pat", TRACKLOG_AUTH_NEW_PASSWORD=PASSWORD)
    refused = CliRunner().invoke(cli, ["auth", "--backend-store-uri", store, "users", "create",
                                       "quin", "--password", "short"])
    assert refused.exit_code != 0 and "at least 12 characters" in refused.output
    run("groups", "create", "ops")
    run("groups", "add-member", "ops", "pat")
    assert run("groups", "list").strip() == "ops\tpat"
    assert run("users", "list").splitlines() == ["olga\tadmin\t", "pat\tuser\tops"]
    last = CliRunner().invoke(cli, ["auth", "--backend-store-uri", store, "users", "delete",
                                    "olga"])
    assert last.exit_code != 0 and "last administrator" in last.output
    token = run("tokens", "create", "pat", "--name", "ci").strip().splitlines()[-1]
    assert token.startswith("tlk_")
    assert "ci" in run("tokens", "list", "pat") and token not in run("tokens", "list", "pat")

    for a in build_app(tmp_path, auth_env(), store_uri=store):
        exp = a.ok("POST", f"{API}/experiments/create", basic("olga"),
                   json={"name": "cli"})["experiment_id"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert a.call("POST", f"{API}/runs/create", bearer,
                      json={"experiment_id": exp}).status_code == 403
        run("permissions", "grant", "experiment", exp, "EDIT", "--group", "ops")
        assert "experiment\t" + exp + "\tEDIT" in run("permissions", "list", "--group", "ops")
        assert a.call("POST", f"{API}/runs/create", bearer,
                      json={"experiment_id": exp}).status_code == 200
        run("permissions", "grant", "experiment", exp, "no_permissions", "--user", "pat")
        assert a.call("GET", f"{API}/experiments/get", bearer,
                      params={"experiment_id": exp}).status_code == 403
        run("tokens", "revoke", "pat", "1")
        assert a.call("GET", "/version", bearer).status_code == 401
        run("users", "set-password", "pat", "--password", "another password 1")
        assert a.call("GET", "/version", basic("pat", "another password 1")).status_code == 200
        run("users", "delete", "pat")
        assert a.call("GET", "/version", basic("pat", "another password 1")).status_code == 401
