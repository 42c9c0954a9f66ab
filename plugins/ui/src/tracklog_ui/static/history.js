/* Sampled metric histories, fetched as early as possible: loaded in the page's head with
   the runs and the first metrics to draw, so the server works while plotly.js is parsed.
   TLHistory(runIds, key) returns a promise of the points (one request per metric). */
"use strict";
var TLHistory = (function () {
  var me = document.currentScript, prefix = me.dataset.prefix || "", cache = {};
  function get(runIds, key) {
    var id = key + "\u0000" + runIds.join(",");
    if (!cache[id]) {
      var q = new URLSearchParams({metric_key: key, max_results: "2500"});
      runIds.forEach(function (r) { q.append("run_ids", r); });
      cache[id] = fetch(prefix + "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?" + q)
        .then(function (r) { return r.json(); })
        .then(function (data) { return data.metrics || []; });
    }
    return cache[id];
  }
  var runs = JSON.parse(me.dataset.runs || "[]");
  JSON.parse(me.dataset.metrics || "[]").forEach(function (m) { get(runs, m); });
  return get;
})();
