/* Metric charts (plotly.js, served from the installed plotly package). Histories come
   sampled from the server's get-history-bulk-interval route: at most 2,500 points per run
   and metric, with each bucket's min and max and the first and last points kept. */
"use strict";
var TLCharts = (function () {
  var config = {responsive: true, displaylogo: false};

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }

  /* Exponential moving average with TensorBoard's debiasing, so early points are not
     pulled towards zero. */
  function smooth(values, weight) {
    if (!weight) return values;
    var last = 0, debias = 0;
    return values.map(function (v) {
      if (!isFinite(v)) return v;
      last = last * weight + (1 - weight) * v;
      debias = debias * weight + (1 - weight);
      return last / debias;
    });
  }

  function metricChart(box) {
    var runs = JSON.parse(box.dataset.runs), metrics = JSON.parse(box.dataset.metrics);
    var controls = el("div", {"class": "controls"});
    var picker = el("fieldset", {"class": "metric-picker"}, [el("legend", {text: "Metrics"})]);
    metrics.forEach(function (m, i) {
      var c = el("input", {type: "checkbox", value: m, name: "chart-metric"});
      c.checked = i < 4;
      picker.appendChild(el("label", {}, [c, document.createTextNode(" " + m)]));
    });
    var xaxis = el("select", {id: "chart-x", "aria-label": "X axis"});
    [["step", "Step"], ["wall", "Wall time"], ["relative", "Relative time (s)"]].forEach(function (o) {
      xaxis.appendChild(el("option", {value: o[0], text: o[1]}));
    });
    var logy = el("input", {type: "checkbox", id: "chart-log"});
    var smoothing = el("input", {type: "range", id: "chart-smoothing", min: "0", max: "0.99",
                                 step: "0.01", value: "0"});
    var smoothLabel = el("output", {"for": "chart-smoothing", text: "0"});
    controls.appendChild(picker);
    controls.appendChild(el("label", {}, [document.createTextNode("X axis "), xaxis]));
    controls.appendChild(el("label", {}, [logy, document.createTextNode(" Log scale")]));
    controls.appendChild(el("label", {}, [document.createTextNode("Smoothing "), smoothing, smoothLabel]));
    var grid = el("div", {"class": "chart-grid"});
    box.appendChild(controls);
    box.appendChild(grid);

    function traces(points, mode, weight) {
      var byRun = {};
      points.forEach(function (p) { (byRun[p.run_id] = byRun[p.run_id] || []).push(p); });
      var out = runs.filter(function (r) { return byRun[r.id]; }).map(function (r) {
        var pts = byRun[r.id], t0 = Math.min.apply(null, pts.map(function (p) { return p.timestamp; }));
        var ordered = mode === "step" ? pts : pts.slice().sort(function (a, b) { return a.timestamp - b.timestamp; });
        var x = ordered.map(function (p) {
          return mode === "step" ? p.step : mode === "wall" ? new Date(p.timestamp)
            : (p.timestamp - t0) / 1000;
        });
        var y = smooth(ordered.map(function (p) { return Number(p.value); }), weight);
        return {x: x, y: y, name: r.name, type: "scatter", meta: r.id,
                mode: pts.length < 50 ? "lines+markers" : "lines"};
      });
      // SVG draws a few thousand points faster than WebGL starts (no GPU on many
      // servers' browsers); WebGL only for many runs' worth of points.
      var total = out.reduce(function (n, t) { return n + t.x.length; }, 0);
      if (total > 20000) out.forEach(function (t) { t.type = "scattergl"; });
      return out;
    }

    function draw() {
      var chosen = Array.prototype.map.call(picker.querySelectorAll("input:checked"),
                                            function (c) { return c.value; });
      var mode = xaxis.value, weight = Number(smoothing.value);
      smoothLabel.textContent = smoothing.value;
      Array.prototype.slice.call(grid.children).forEach(function (d) {
        if (chosen.indexOf(d.dataset.metric) < 0) { Plotly.purge(d); d.remove(); }
      });
      chosen.forEach(function (m) {
        var div = grid.querySelector('.plot[data-metric="' + CSS.escape(m) + '"]');
        if (!div) {
          div = el("div", {"class": "plot", "data-metric": m, role: "img",
                           "aria-label": "Chart of " + m});
          grid.appendChild(div);
        }
        var got = TLHistory(runs.map(function (r) { return r.id; }), m);
        got.then(function (points) {
          Plotly.react(div, traces(points, mode, weight), {
            title: {text: m, font: {size: 14}}, margin: {l: 55, r: 15, t: 36, b: 40},
            xaxis: {title: {text: xaxis.options[xaxis.selectedIndex].text}},
            yaxis: {type: logy.checked ? "log" : "linear"},
            showlegend: runs.length > 1, legend: {orientation: "h"}, height: 320,
          }, config).then(function () { div.dataset.drawn = "1"; });
        });
      });
    }
    [picker, xaxis, logy, smoothing].forEach(function (c) { c.addEventListener("input", draw); });
    draw();
  }

  function comparePage() {
    var data = JSON.parse(document.getElementById("compare-data").textContent);
    var keys = {};
    Object.keys(data.table).forEach(function (id) {
      Object.keys(data.table[id]).forEach(function (k) { keys[k] = 1; });
    });
    keys = Object.keys(keys).sort();
    var metrics = keys.filter(function (k) { return k.indexOf("metrics.") === 0; });
    var numeric = keys.filter(function (k) {
      return data.runs.every(function (r) {
        var v = data.table[r.id][k];
        return v === undefined || v === null || isFinite(Number(v));
      });
    });
    var holder = document.getElementById("scatter-controls");
    function select(id, label, options, chosen) {
      var s = el("select", {id: id});
      options.forEach(function (o) { s.appendChild(el("option", {value: o, text: o})); });
      if (chosen) s.value = chosen;
      holder.appendChild(el("label", {}, [document.createTextNode(label + " "), s]));
      return s;
    }
    if (metrics.length) {
      var xs = select("scatter-x", "X", keys, keys.filter(function (k) { return k.indexOf("params.") === 0; })[0]);
      var ys = select("scatter-y", "Y", metrics, metrics[0]);
      var drawScatter = function () {
        var pts = data.runs.filter(function (r) {
          return data.table[r.id][xs.value] !== undefined && data.table[r.id][ys.value] !== undefined;
        });
        Plotly.react("scatter", [{
          x: pts.map(function (r) { return data.table[r.id][xs.value]; }),
          y: pts.map(function (r) { return data.table[r.id][ys.value]; }),
          text: pts.map(function (r) { return r.name; }),
          mode: "markers", type: "scatter", marker: {size: 10},
        }], {xaxis: {title: {text: xs.value}}, yaxis: {title: {text: ys.value}},
             margin: {l: 60, r: 20, t: 20, b: 50}, height: 360}, config);
      };
      xs.addEventListener("input", drawScatter);
      ys.addEventListener("input", drawScatter);
      drawScatter();
    } else {
      holder.textContent = "No metrics to plot.";
    }
    if (numeric.length >= 2 && data.runs.length >= 2) {
      Plotly.react("parallel", [{
        type: "parcoords",
        dimensions: numeric.map(function (k) {
          return {label: k, values: data.runs.map(function (r) { return Number(data.table[r.id][k]); })};
        }),
        line: metrics.length ? {color: data.runs.map(function (r) {
          return Number(data.table[r.id][metrics[0]]); }), colorscale: "Viridis", showscale: true} : {},
      }], {margin: {l: 60, r: 60, t: 50, b: 30}, height: 380}, config);
    } else {
      document.getElementById("parallel").textContent = "Needs two runs and two numeric columns.";
    }
    var box = document.getElementById("chart-box");
    if (box) metricChart(box);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("compare-data")) comparePage();
    else {
      var box = document.getElementById("chart-box");
      if (box) metricChart(box);
    }
  });
  return {metricChart: metricChart, comparePage: comparePage, smooth: smooth};
})();
