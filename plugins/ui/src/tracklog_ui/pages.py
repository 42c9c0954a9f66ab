"""The UI's routes: server-rendered pages (Jinja2) and their static files.

Every page reads through :func:`tracklog_ui.api.call`, i.e. the core's API handlers under
the API's own authorization rules; pages change nothing themselves (their scripts post to
``/ajax-api/2.0/…``). Each route also declares its own rule for the page as a whole.
"""

from __future__ import annotations

import importlib.resources
import json
import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from tracklog import errors
from tracklog.server import rule
from tracklog.server.app import normalize_prefix
from tracklog.server.codec import Req
from tracklog.server.routing import Rule
from tracklog_ui import runs_table
from tracklog_ui.api import authorize, call, state_of
from tracklog_ui.previews import make_preview

PAGE_SIZES = (25, 50, 100, 250, 500)
_STATIC = Path(str(importlib.resources.files("tracklog_ui") / "static"))
_ARTIFACT_RULE = Rule("read", lambda req: {"run_id": req.run_id()})


def _fmt_time(ms: Any) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_duration(ms: Any) -> str:
    if ms is None:
        return ""
    s = int(ms) / 1000
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60)}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60)}m"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def _fmt_size(n: Any) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _environment(prefix: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tracklog_ui", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
    )
    env.globals["prefix"] = prefix
    env.filters.update(time=_fmt_time, duration=_fmt_duration, value=_fmt_value,
                       size=_fmt_size, tojson_attr=lambda v: json.dumps(v))
    return env


def _link(base: dict[str, Any], **changes: Any) -> str:
    """A query string: ``base`` with ``changes``, empty values left out. Earlier pages'
    tokens ride along as ``prev`` (``-`` for the first page) so "previous" works."""
    params = {**base, **changes}
    return "?" + urlencode({k: v for k, v in params.items() if v}, doseq=True)


def _tags(obj: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in obj.get("tags", [])}


def install(app: Any, config: Any) -> None:
    prefix = normalize_prefix(config.static_prefix)
    env = _environment(prefix)

    def page(name: str, code: int = 200, /, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=code)

    def failure(err: errors.TracklogError) -> HTMLResponse:
        status = err.http_status
        return page("error.html", status, title="Error", message=str(err), status=status)

    def guarded(handler: Any) -> Any:
        """Render a TracklogError (not found, permission denied) as an error page."""
        def wrapper(request: Request) -> Response:
            try:
                return handler(request)
            except errors.TracklogError as err:
                return failure(err)
        wrapper.__name__ = handler.__name__
        wrapper.__doc__ = handler.__doc__
        return wrapper

    # --- static files ------------------------------------------------------------------

    @app.get(prefix + "/ui-static/plotly.min.js", include_in_schema=False)
    @rule("read")
    def plotly_bundle() -> Response:
        bundle = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
        return FileResponse(str(bundle), media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})

    @app.get(prefix + "/ui-static/{name}", include_in_schema=False)
    @rule("read")
    def static(name: str) -> Response:
        path = _STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise errors.not_found(f"No such file: {name!r}")
        return FileResponse(path, media_type=mimetypes.guess_type(name)[0],
                            headers={"cache-control": "public, max-age=3600"})

    # --- experiments -------------------------------------------------------------------

    @app.get(prefix + "/", include_in_schema=False)
    @rule("read")
    @guarded
    def experiments(request: Request) -> Response:
        q = request.query_params
        text = (q.get("q") or "").strip()
        view = q.get("view") or "ACTIVE_ONLY"
        flt = None
        if text:
            quote = '"' if "'" in text else "'"
            flt = f"name ILIKE {quote}%{text.replace(quote, '')}%{quote}"
        token = q.get("page_token") or None
        pages = [t for t in q.getlist("prev") if t]
        result = call(request, "POST", "/mlflow/experiments/search", max_results=100,
                      filter=flt, view_type=view, page_token=token,
                      order_by=["last_update_time DESC"])
        base = {"q": text, "view": view}
        following = result.get("next_page_token")
        rows = result.get("experiments", [])
        for e in rows:
            e["tag_map"] = {k: v for k, v in _tags(e).items() if not k.startswith("mlflow.")}
        return page(
            "experiments.html", title="Experiments", experiments=rows, q=text, view=view,
            next_link=_link(base, page_token=following, prev=[*pages, token or "-"])
            if following else None,
            prev_link=_link(base, page_token=pages[-1] if pages[-1] != "-" else None,
                            prev=pages[:-1]) if pages else None,
        )

    @app.get(prefix + "/experiments/{experiment_ids}", include_in_schema=False)
    @rule("read", lambda req: {"experiment_ids": [
        i for i in req.path_params.get("experiment_ids", "").split(",") if i]})
    @guarded
    def runs(request: Request) -> Response:
        ids = [i for i in request.path_params["experiment_ids"].split(",") if i]
        exps = [call(request, "GET", "/mlflow/experiments/get", experiment_id=i)["experiment"]
                for i in ids]
        for e in exps:
            tags = _tags(e)
            e["tag_map"] = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
            e["note"] = tags.get("mlflow.note.content", "")
        q = request.query_params
        flt = (q.get("filter") or "").strip()
        order_by = (q.get("order_by") or "").strip()
        view = q.get("view") or "ACTIVE_ONLY"
        size = next((n for n in PAGE_SIZES if str(n) == q.get("size")), 100)
        pages = [t for t in q.getlist("prev") if t]
        token = q.get("page_token") or None
        error = position = None
        result: dict[str, Any] = {}
        try:
            result = call(request, "POST", "/mlflow/runs/search", experiment_ids=ids,
                          filter=flt or None, order_by=[order_by] if order_by else None,
                          run_view_type=view, max_results=size, page_token=token)
        except errors.TracklogError as err:
            if err.error_code != errors.ErrorCode.INVALID_PARAMETER_VALUE:
                raise
            error, position = str(err), runs_table.locate(flt, str(err))
        found = result.get("runs", [])
        columns = runs_table.available_columns(found)
        chosen = q.getlist("col") or runs_table.default_columns(columns, found)
        shown = [c for c in columns if c.id in chosen]
        base = {"filter": flt, "order_by": order_by, "view": view, "size": size,
                "col": q.getlist("col")}

        def link(**changes: Any) -> str:
            return _link(base, **changes)

        exp_names = {e["experiment_id"]: e["name"] for e in exps}
        return page(
            "runs.html", 400 if error else 200,
            title=", ".join(e["name"] for e in exps), experiments=exps, ids=ids,
            exp_names=exp_names, rows=runs_table.nest(found), columns=columns, shown=shown,
            chosen=set(chosen), request_cols=q.getlist("col"), filter=flt,
            order_by=order_by, view=view, size=size,
            sizes=PAGE_SIZES, error=error, position=position, link=link,
            next_order=runs_table.next_order, page_number=len(pages) + 1,
            next_link=link(page_token=result.get("next_page_token"),
                           prev=[*pages, token or "-"])
            if result.get("next_page_token") else None,
            prev_link=link(page_token=pages[-1] if pages[-1] != "-" else None,
                           prev=pages[:-1]) if pages else None,
        )

    # --- one run -----------------------------------------------------------------------

    @app.get(prefix + "/experiments/{experiment_id}/runs/{run_id}", include_in_schema=False)
    @app.get(prefix + "/runs/{run_id}", include_in_schema=False)
    @rule("read", lambda req: {"run_id": req.path_params.get("run_id", "")})
    @guarded
    def run_page(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run = call(request, "GET", "/mlflow/runs/get", run_id=run_id)["run"]
        info = run["info"]
        exp = call(request, "GET", "/mlflow/experiments/get",
                   experiment_id=info["experiment_id"])["experiment"]
        path = (request.query_params.get("path") or "").strip("/")
        # Artifacts may live where this server cannot reach (a scheme without a plugin, a
        # refused credential): the rest of the run is still shown, with the reason.
        files: list[dict[str, Any]] = []
        preview = artifact_error = None
        preview_path = request.query_params.get("preview")
        try:
            listing = call(request, "GET", "/mlflow/artifacts/list", run_id=run_id,
                           path=path or None)
            files = sorted(listing.get("files", []),
                           key=lambda f: (not f["is_dir"], f["path"]))
            if preview_path:
                preview = _preview(request, info, preview_path)
        except errors.TracklogError as err:
            if err.error_code == errors.ErrorCode.PERMISSION_DENIED:
                raise
            artifact_error = str(err)
        models = call(request, "POST", "/mlflow/logged-models/search",
                      experiment_ids=[info["experiment_id"]],
                      filter=f"source_run_id = '{run_id}'").get("models", [])
        data = run.get("data", {})
        tags = _tags(data)
        parent = tags.get(runs_table.PARENT_TAG)
        return page(
            "run.html", title=info.get("run_name") or run_id, run=run, info=info,
            experiment=exp, metrics=sorted(data.get("metrics", []), key=lambda m: m["key"]),
            params=sorted(data.get("params", []), key=lambda p: p["key"]),
            tags={k: v for k, v in sorted(tags.items()) if not k.startswith("mlflow.")},
            system_tags={k: v for k, v in sorted(tags.items()) if k.startswith("mlflow.")},
            parent=parent, inputs=run.get("inputs", {}).get("dataset_inputs", []),
            models=models, path=path, files=files, preview_path=preview_path,
            preview=preview, artifact_error=artifact_error,
            parent_path=path.rsplit("/", 1)[0] if "/" in path else "",
        )

    def _preview(request: Request, info: dict[str, Any], path: str) -> Any:
        # The same rule as the download route /get-artifact.
        authorize(request, _ARTIFACT_RULE, Req({"run_id": info["run_id"]}))
        from tracklog.artifacts import safe_relpath
        from tracklog.artifacts.paths import join

        rel = safe_relpath(path, "preview")
        repo, base = state_of(request).repository_for(info["artifact_uri"])
        full = join(base, rel)
        found = repo.file_info(full)
        if found is None or found.is_dir:
            raise errors.not_found(f"No such artifact: '{rel}'")
        return make_preview(repo, full, found.file_size)

    @app.get(prefix + "/experiments/{experiment_id}/models/{model_id}", include_in_schema=False)
    @app.get(prefix + "/logged-models/{model_id}", include_in_schema=False)
    @rule("read", lambda req: {"logged_model": req.path_params.get("model_id", "")})
    @guarded
    def logged_model(request: Request) -> Response:
        model = call(request, "GET", "/mlflow/logged-models/{model_id}",
                     model_id=request.path_params["model_id"])["model"]
        tags = _tags(model["info"])
        try:
            versions = json.loads(tags.get("mlflow.modelVersions") or "[]")
        except ValueError:
            versions = []
        return page("logged_model.html", title=model["info"]["name"], model=model,
                    info=model["info"], tags=tags, versions=versions,
                    params=sorted(model["data"].get("params", []), key=lambda p: p["key"]),
                    metrics=sorted(model["data"].get("metrics", []), key=lambda m: m["key"]))

    # --- comparing runs ----------------------------------------------------------------

    @app.get(prefix + "/compare", include_in_schema=False)
    @rule("read", lambda req: {"run_ids": [i for i in (req.string("runs") or "").split(",") if i]})
    @guarded
    def compare(request: Request) -> Response:
        ids = [i for i in (request.query_params.get("runs") or "").split(",") if i][:100]
        runs = [call(request, "GET", "/mlflow/runs/get", run_id=i)["run"] for i in ids]
        cells = [runs_table.cells_of(r) for r in runs]
        keys: dict[str, set[str]] = {"params": set(), "metrics": set()}
        for c in cells:
            for k in c:
                group = k.split(".", 1)[0]
                if group in keys:
                    keys[group].add(k)
        rows = []
        for group in ("params", "metrics"):
            for k in sorted(keys[group]):
                values = [c.get(k) for c in cells]
                rows.append({"group": group, "key": k.split(".", 1)[1], "cells": values,
                             "differs": len({json.dumps(v) for v in values}) > 1})
        chart_runs = [{"id": r["info"]["run_id"], "name": r["info"].get("run_name") or
                       r["info"]["run_id"][:8]} for r in runs]
        table = {r["info"]["run_id"]: {k: v for k, v in c.items()
                                       if k.startswith(("params.", "metrics."))}
                 for r, c in zip(runs, cells, strict=True)}
        return page("compare.html", title="Compare runs", runs=runs, rows=rows,
                    chart_runs=chart_runs, metric_keys=sorted(
                        k.split(".", 1)[1] for k in keys["metrics"]), table=table)

    # --- models ------------------------------------------------------------------------

    @app.get(prefix + "/models", include_in_schema=False)
    @rule("read")
    @guarded
    def models(request: Request) -> Response:
        q = (request.query_params.get("q") or "").strip()
        result = call(request, "GET", "/mlflow/registered-models/search", max_results=100,
                      filter=f"name ILIKE '%{q.replace(chr(39), '')}%'" if q else None,
                      page_token=request.query_params.get("page_token") or None)
        return page("models.html", title="Models", models=result.get("registered_models", []),
                    q=q, next_token=result.get("next_page_token"))

    @app.get(prefix + "/models/{name:path}/versions/{version}", include_in_schema=False)
    @rule("read", lambda req: {"registered_model": req.path_params.get("name", "")})
    @guarded
    def model_version(request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params["version"]
        mv = call(request, "GET", "/mlflow/model-versions/get", name=name,
                  version=version)["model_version"]
        model = call(request, "GET", "/mlflow/registered-models/get",
                     name=name)["registered_model"]
        source_run = None
        if mv.get("run_id"):
            try:
                source_run = call(request, "GET", "/mlflow/runs/get",
                                  run_id=mv["run_id"])["run"]["info"]
            except errors.TracklogError:
                source_run = None  # deleted or not readable: the id is still shown
        return page("model_version.html", title=f"{name} v{version}", mv=mv, model=model,
                    tags=_tags(mv), source_run=source_run)

    @app.get(prefix + "/models/{name:path}", include_in_schema=False)
    @rule("read", lambda req: {"registered_model": req.path_params.get("name", "")})
    @guarded
    def model(request: Request) -> Response:
        name = request.path_params["name"]
        model = call(request, "GET", "/mlflow/registered-models/get",
                     name=name)["registered_model"]
        quoted = name.replace("'", "\\'")
        versions = call(request, "GET", "/mlflow/model-versions/search",
                        filter=f"name = '{quoted}'", max_results=1000,
                        order_by=["version_number DESC"]).get("model_versions", [])
        aliases: dict[str, list[str]] = {}
        for a in model.get("aliases", []):
            aliases.setdefault(str(a["version"]), []).append(a["alias"])
        return page("model.html", title=name, model=model, versions=versions,
                    aliases=aliases, tags=_tags(model))
