/* tracklog UI: the few things pages do in the browser. Every change goes through the
   same REST API the MLflow client uses (/ajax-api/2.0/mlflow/...), then the page reloads. */
"use strict";
var TL = (function () {
  var prefix = document.body.dataset.prefix || "";

  function say(text, isError) {
    var el = document.getElementById("status");
    el.textContent = text;
    el.className = isError ? "show error" : "show";
    if (!isError) setTimeout(function () { el.className = ""; }, 2500);
  }

  // A server with browser sign-in hands its pages a token for writes in this cookie; a
  // change made with the session cookie must send it back (another site cannot read it).
  function writeToken() {
    var m = document.cookie.match(/(?:^|;\s*)tracklog_csrf_token=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function api(method, path, body) {
    var opts = {method: method, headers: {"Content-Type": "application/json"}};
    var token = writeToken();
    if (token) opts.headers["X-CSRF-Token"] = token;
    if (body !== undefined) opts.body = JSON.stringify(body);
    return fetch(prefix + "/ajax-api/2.0/mlflow/" + path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw new Error(data.message || ("HTTP " + r.status));
        return data;
      });
    }).catch(function (err) { say(err.message, true); throw err; });
  }

  function localTimes() {
    document.querySelectorAll("time[data-ms]").forEach(function (t) {
      var ms = Number(t.dataset.ms);
      if (!ms) return;
      var d = new Date(ms);
      t.title = d.toISOString();
      t.textContent = d.toLocaleString(undefined, {year: "numeric", month: "short",
        day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"});
    });
  }

  function checkedValues(name) {
    return Array.prototype.map.call(
      document.querySelectorAll("input[name=" + name + "]:checked"), function (c) { return c.value; });
  }

  function enableWhenChecked(name, ids) {
    function update() {
      var n = checkedValues(name).length;
      ids.forEach(function (id) {
        var b = document.getElementById(id);
        if (b) b.disabled = n === 0 || (id === "compare-selected" && n < 2);
      });
    }
    document.addEventListener("change", function (e) {
      if (e.target.name === name || e.target.id === "select-all") update();
    });
    update();
  }

  function experimentsPage() {
    document.getElementById("create-experiment").addEventListener("submit", function (e) {
      e.preventDefault();
      var name = e.target.name.value.trim();
      if (!name) return;
      api("POST", "experiments/create", {name: name}).then(function (r) {
        location.href = prefix + "/experiments/" + r.experiment_id;
      });
    });
    var table = document.getElementById("experiments");
    if (!table) return;
    table.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-action]");
      if (!b) return;
      var row = b.closest("tr"), id = row.dataset.experimentId, action = b.dataset.action;
      if (action === "rename") {
        var name = prompt("New name for " + row.dataset.name, row.dataset.name);
        if (!name || name === row.dataset.name) return;
        api("POST", "experiments/update", {experiment_id: id, new_name: name})
          .then(function () { location.reload(); });
      } else if (action === "delete" && confirm("Delete experiment " + row.dataset.name + "?")) {
        api("POST", "experiments/delete", {experiment_id: id}).then(function () { location.reload(); });
      } else if (action === "restore") {
        api("POST", "experiments/restore", {experiment_id: id}).then(function () { location.reload(); });
      }
    });
    enableWhenChecked("exp", ["open-selected"]);
    document.getElementById("open-selected").addEventListener("click", function () {
      location.href = prefix + "/experiments/" + checkedValues("exp").join(",");
    });
  }

  function experimentTags() {
    document.querySelectorAll("form.add-tag").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        e.preventDefault();
        var text = f.tag.value, at = text.indexOf("=");
        if (at < 1) { say("Write the tag as key=value", true); return; }
        api("POST", "experiments/set-experiment-tag", {experiment_id: f.dataset.experimentId,
          key: text.slice(0, at).trim(), value: text.slice(at + 1).trim()})
          .then(function () { location.reload(); });
      });
    });
    document.querySelectorAll("[data-action=delete-experiment-tag]").forEach(function (b) {
      b.addEventListener("click", function () {
        var id = b.closest("[data-experiment-id]").dataset.experimentId;
        api("POST", "experiments/delete-experiment-tag", {experiment_id: id, key: b.dataset.key})
          .then(function () { location.reload(); });
      });
    });
  }

  function runsPage() {
    experimentTags();
    var chooser = document.querySelector("details.chooser");
    if (chooser) chooser.addEventListener("keydown", function (e) {
      if (e.key !== "Escape") return;
      chooser.open = false;
      chooser.querySelector("summary").focus();
    });
    var all = document.getElementById("select-all");
    if (all) all.addEventListener("change", function () {
      document.querySelectorAll("input[name=run]").forEach(function (c) { c.checked = all.checked; });
    });
    enableWhenChecked("run", ["compare-selected", "delete-selected", "restore-selected"]);
    function each(path, verb) {
      var ids = checkedValues("run");
      if (!ids.length || (verb && !confirm(verb + " " + ids.length + " run(s)?"))) return;
      Promise.all(ids.map(function (id) { return api("POST", path, {run_id: id}); }))
        .then(function () { location.reload(); });
    }
    var del = document.getElementById("delete-selected");
    if (del) del.addEventListener("click", function () { each("runs/delete", "Delete"); });
    var res = document.getElementById("restore-selected");
    if (res) res.addEventListener("click", function () { each("runs/restore"); });
    document.getElementById("compare-selected").addEventListener("click", function () {
      location.href = prefix + "/compare?runs=" + checkedValues("run").join(",");
    });
    document.querySelectorAll("#runs button.toggle").forEach(function (b) {
      b.addEventListener("click", function () {
        var open = b.getAttribute("aria-expanded") !== "true";
        b.setAttribute("aria-expanded", String(open));
        b.textContent = open ? "▾" : "▸";
        b.setAttribute("aria-label", open ? "Hide child runs" : "Show child runs");
        var id = b.closest("tr").dataset.runId;
        (function hide(parent) {
          document.querySelectorAll('#runs tr[data-parent="' + parent + '"]').forEach(function (r) {
            r.hidden = !open;
            hide(r.dataset.runId);
          });
        })(id);
      });
    });
  }

  function runPage() {
    document.querySelectorAll("[data-action=delete-run],[data-action=restore-run]").forEach(function (b) {
      b.addEventListener("click", function () {
        var id = b.closest("[data-run-id]").dataset.runId;
        var del = b.dataset.action === "delete-run";
        if (del && !confirm("Delete this run?")) return;
        api("POST", del ? "runs/delete" : "runs/restore", {run_id: id})
          .then(function () { location.reload(); });
      });
    });
    if (location.hash === "#preview") {
      var p = document.getElementById("preview");
      if (p) p.focus();
    }
  }

  localTimes();
  return {api: api, say: say, prefix: prefix, experimentsPage: experimentsPage,
          runsPage: runsPage, runPage: runPage};
})();
