// One experiment's analysis page: every user string reaches the page as text, never markup.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("mitosis-data").textContent);
  var ROWS = DATA.rows;
  var SVG = "http://www.w3.org/2000/svg";
  var PAGE = 200;  // trials shown in the table at once
  var TITLED = 1000;  // up to this many trials, each point names its trial on hover
  var state = { page: 0, query: null, metric: DATA.metrics[0] || null, over: {}, brushes: {} };

  function el(tag, attrs, text, ns) {
    var node = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function svg(tag, attrs, text) { return el(tag, attrs, text, true); }
  function isNumber(v) { return typeof v === "number" && isFinite(v); }
  function shown(v) {
    if (v === null || v === undefined) { return ""; }
    if (typeof v === "number") { return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(6)); }
    return String(v);
  }
  function distinct(column, rows) {
    var seen = {}, values = [];
    rows.forEach(function (r) {
      var v = r[column];
      if (v === null || v === undefined) { return; }
      var key = typeof v + ":" + String(v);
      if (!seen[key]) { seen[key] = 1; values.push(v); }
    });
    var numeric = values.every(isNumber);
    values.sort(numeric ? function (a, b) { return a - b; } : function (a, b) { return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0; });
    return { values: values, numeric: numeric };
  }
  function stats(values) {
    var n = values.length;
    if (!n) { return { n: 0 }; }
    var mean = values.reduce(function (a, b) { return a + b; }, 0) / n;
    var squares = values.reduce(function (a, b) { return a + (b - mean) * (b - mean); }, 0);
    return { n: n, mean: mean, std: n > 1 ? Math.sqrt(squares / (n - 1)) : null,
             min: Math.min.apply(null, values), max: Math.max.apply(null, values) };
  }
  function scale(lo, hi, from, to) {
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    return function (v) { return from + (v - lo) / (hi - lo) * (to - from); };
  }
  function queried() {
    if (!state.query) { return ROWS; }
    return ROWS.filter(function (r) { return MitosisQuery.evaluate(state.query, function (c) { return r[c]; }); });
  }
  function brushed(rows) {
    var axes = Object.keys(state.brushes);
    return rows.filter(function (r) {
      return axes.every(function (axis) {
        var b = state.brushes[axis], v = r[axis];
        if (b.values) { return b.values.some(function (x) { return x === v; }); }
        return isNumber(v) && v >= b.lo && v <= b.hi;
      });
    });
  }
  var PARAMS = DATA.params.filter(function (p) { return distinct(p, ROWS).values.length >= 2; });

  // --- metric against each parameter -----------------------------------------------------
  function drawByParam(rows) {
    var box = document.getElementById("by-param");
    box.textContent = "";
    if (!state.metric) { box.appendChild(el("p", { "class": "muted" }, "These trials have no numeric result to plot.")); return; }
    var metric = state.metric;
    var ys = rows.map(function (r) { return r[metric]; }).filter(isNumber);
    var lo = Math.min.apply(null, ys), hi = Math.max.apply(null, ys);
    PARAMS.forEach(function (param) {
      var d = distinct(param, rows), W = 340, H = 200, L = 64, B = 30;
      var fig = el("figure", { "data-param": param });
      fig.appendChild(el("figcaption", {}, metric + " against " + param));
      var plot = svg("svg", { width: W, height: H, role: "img", "aria-label": metric + " against " + param });
      var y = scale(lo, hi, H - B, 8);
      var x = d.numeric && d.values.length > 1 ? scale(d.values[0], d.values[d.values.length - 1], L + 14, W - 14) : null;
      function xOf(v) { var i = d.values.indexOf(v); return x ? x(v) : L + 14 + (i + 0.5) * (W - L - 28) / d.values.length; }
      plot.appendChild(svg("line", { x1: L, y1: 8, x2: L, y2: H - B, "class": "axis", stroke: "#99a" }));
      [lo, hi].forEach(function (v) { plot.appendChild(svg("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, shown(v))); });
      d.values.forEach(function (v) {
        plot.appendChild(svg("text", { x: xOf(v), y: H - B + 14, "text-anchor": "middle" }, shown(v)));
        var group = rows.filter(function (r) { return r[param] === v && isNumber(r[metric]); });
        group.forEach(function (r, i) {
          var jitter = ((i * 7919) % 13 - 6) * 1.2;
          var point = plot.appendChild(svg("circle", { cx: xOf(v) + jitter, cy: y(r[metric]), r: 3, "class": "point" + (r.status === "succeeded" ? "" : " failed") }));
          if (rows.length <= TITLED) { point.appendChild(svg("title", {}, r.id + ": " + shown(r[metric]))); }
        });
        var s = stats(group.filter(function (r) { return r.status === "succeeded"; }).map(function (r) { return r[metric]; }));
        if (s.n) {
          var spread = s.std || 0;
          plot.appendChild(svg("line", { x1: xOf(v), x2: xOf(v), y1: y(s.mean - spread), y2: y(s.mean + spread), "class": "spread" }));
          plot.appendChild(svg("line", { x1: xOf(v) - 9, x2: xOf(v) + 9, y1: y(s.mean), y2: y(s.mean), "class": "mean", "data-mean": s.mean }));
        }
      });
      fig.appendChild(plot);
      box.appendChild(fig);
    });
    if (!PARAMS.length) { box.appendChild(el("p", { "class": "muted" }, "No parameter takes two values or more in these trials.")); }
  }

  // --- parallel coordinates ----------------------------------------------------------------
  var AXES = PARAMS.concat(DATA.metrics.filter(function (m) { return ROWS.some(function (r) { return isNumber(r[m]); }); }));
  var W = Math.max(480, 130 * AXES.length), H = 260, TOP = 24, BOTTOM = 30;
  var axisInfo = AXES.map(function (axis, i) {
    var d = distinct(axis, ROWS);
    var x = 60 + i * (W - 120) / Math.max(1, AXES.length - 1);
    var y;
    if (d.numeric) { y = scale(d.values[0], d.values[d.values.length - 1], H - BOTTOM, TOP); }
    else { y = function (v) { var k = d.values.indexOf(v); return H - BOTTOM - (k + 0.5) * (H - BOTTOM - TOP) / Math.max(1, d.values.length); }; }
    return { name: axis, x: x, y: y, d: d };
  });

  function drawParallel(rows, kept) {
    var plot = document.getElementById("parallel");
    plot.textContent = "";
    plot.setAttribute("width", W);
    plot.setAttribute("height", H);
    var keptIds = {};
    kept.forEach(function (r) { keptIds[r.id] = 1; });
    rows.forEach(function (r) {
      var points = [];
      axisInfo.forEach(function (a) { var v = r[a.name]; if (v !== null && v !== undefined && (a.d.numeric ? isNumber(v) : true)) { points.push(a.x + "," + a.y(v)); } });
      if (points.length > 1) {
        plot.appendChild(svg("polyline", { points: points.join(" "), "class": keptIds[r.id] ? "line" : "line out", "data-id": r.id }));
      }
    });
    axisInfo.forEach(function (a) {
      var g = svg("g", { "class": "axis", "data-axis": a.name });
      g.appendChild(svg("line", { x1: a.x, x2: a.x, y1: TOP, y2: H - BOTTOM }));
      g.appendChild(svg("text", { x: a.x, y: TOP - 8, "text-anchor": "middle" }, a.name));
      var ends = a.d.numeric ? [a.d.values[0], a.d.values[a.d.values.length - 1]] : a.d.values;
      ends.forEach(function (v) { g.appendChild(svg("text", { x: a.x + 5, y: a.y(v) + 3 }, shown(v))); });
      var b = state.brushes[a.name];
      if (b && b.y0 !== undefined) {
        g.appendChild(svg("rect", { x: a.x - 8, width: 16, y: Math.min(b.y0, b.y1), height: Math.abs(b.y1 - b.y0), "class": "brush" }));
      }
      var grip = svg("rect", { x: a.x - 12, width: 24, y: TOP - 8, height: H - BOTTOM - TOP + 16, fill: "transparent", "data-axis": a.name, "class": "grip" });
      grip.addEventListener("mousedown", function (event) { startBrush(event, a); });
      g.appendChild(grip);
      plot.appendChild(g);
    });
  }

  function localY(event) {
    var box = document.getElementById("parallel").getBoundingClientRect();
    return event.clientY - box.top;
  }
  function setBrush(a, y0, y1) {
    var top = Math.min(y0, y1), bottom = Math.max(y0, y1);
    if (bottom - top < 3) { delete state.brushes[a.name]; return; }
    var inside = a.d.values.filter(function (v) { var p = a.y(v); return p >= top && p <= bottom; });
    if (a.d.numeric) {
      state.brushes[a.name] = { lo: inside.length ? inside[0] : Infinity, hi: inside.length ? inside[inside.length - 1] : -Infinity, y0: y0, y1: y1 };
    } else {
      state.brushes[a.name] = { values: inside, y0: y0, y1: y1 };
    }
  }
  function startBrush(event, a) {
    event.preventDefault();
    var y0 = localY(event);
    function move(e) { setBrush(a, y0, localY(e)); update(); }
    function up(e) {
      setBrush(a, y0, localY(e));
      document.removeEventListener("mousemove", move);
      document.removeEventListener("mouseup", up);
      update();
    }
    document.addEventListener("mousemove", move);
    document.addEventListener("mouseup", up);
  }
  function drawRanges() {
    var box = document.getElementById("ranges");
    box.textContent = "";
    axisInfo.filter(function (a) { return a.d.numeric; }).forEach(function (a) {
      var label = el("label", {}, a.name + " ");
      ["lo", "hi"].forEach(function (end) {
        var input = el("input", { type: "number", step: "any", "aria-label": a.name + (end === "lo" ? " at least" : " at most"), "data-axis": a.name, "data-end": end });
        var b = state.brushes[a.name];
        if (b && isFinite(b[end])) { input.value = b[end]; }
        input.addEventListener("change", function () {
          var b2 = state.brushes[a.name] || { lo: -Infinity, hi: Infinity };
          var v = input.value === "" ? (end === "lo" ? -Infinity : Infinity) : Number(input.value);
          b2[end] = v;
          delete b2.y0;
          if (b2.lo === -Infinity && b2.hi === Infinity) { delete state.brushes[a.name]; } else { state.brushes[a.name] = b2; }
          update(true);
        });
        label.appendChild(input);
        if (end === "lo") { label.appendChild(document.createTextNode(" to ")); }
      });
      box.appendChild(label);
    });
  }

  // --- summary and trials ------------------------------------------------------------------
  function drawSummary(rows) {
    var table = document.getElementById("summary");
    var by = DATA.tracked.filter(function (p) { return !state.over[p]; });
    var groups = {}, order = [];
    rows.forEach(function (r) {
      var key = JSON.stringify(by.map(function (p) { return r[p] === undefined ? null : r[p]; }));
      if (!groups[key]) { groups[key] = []; order.push(key); }
      groups[key].push(r);
    });
    var head = el("tr");
    by.concat(["n", "failed", "mean", "std", "min", "max"]).forEach(function (h) { head.appendChild(el("th", { scope: "col" }, h)); });
    table.tHead.textContent = "";
    table.tHead.appendChild(head);
    var body = table.tBodies[0];
    body.textContent = "";
    order.forEach(function (key) {
      var group = groups[key], values = JSON.parse(key);
      var ok = group.filter(function (r) { return r.status === "succeeded"; });
      var s = stats(ok.map(function (r) { return r[state.metric]; }).filter(isNumber));
      var tr = el("tr", { "data-group": key });
      values.forEach(function (v) { tr.appendChild(el("td", {}, shown(v))); });
      tr.appendChild(el("td", { "class": "num", "data-stat": "n" }, s.n));
      tr.appendChild(el("td", { "class": "num", "data-stat": "failed" }, group.length - ok.length));
      ["mean", "std", "min", "max"].forEach(function (k) {
        var v = s[k];
        tr.appendChild(el("td", { "class": "num", "data-stat": k, "data-value": isNumber(v) ? String(v) : "" }, isNumber(v) ? shown(v) : ""));
      });
      body.appendChild(tr);
    });
  }
  function drawTrials(rows) {
    var table = document.getElementById("trials");
    var columns = ["id", "status", "iteration"].concat(PARAMS, DATA.metrics);
    var head = el("tr");
    columns.forEach(function (c) { head.appendChild(el("th", { scope: "col" }, c)); });
    table.tHead.textContent = "";
    table.tHead.appendChild(head);
    var body = table.tBodies[0];
    body.textContent = "";
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    if (state.page >= pages) { state.page = pages - 1; }
    document.getElementById("page").textContent = "page " + (state.page + 1) + " of " + pages;
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    var fragment = document.createDocumentFragment();
    rows.slice(state.page * PAGE, (state.page + 1) * PAGE).forEach(function (r) {
      var tr = el("tr", { "data-id": r.id });
      columns.forEach(function (c) {
        var td = el("td", { "class": (isNumber(r[c]) ? "num " : "") + (c === "status" ? "status-" + r.status : "") });
        if (c === "id" && r.page) { td.appendChild(el("a", { href: r.page }, r.id)); } else { td.textContent = shown(r[c]); }
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    body.appendChild(fragment);
  }

  function update(keepRanges) {
    var rows = queried(), kept = brushed(rows);
    drawByParam(rows);
    drawParallel(rows, kept);
    if (!keepRanges) { drawRanges(); }
    drawSummary(kept);
    drawTrials(kept);
    document.getElementById("count").textContent = kept.length + " of " + ROWS.length + " trials";
  }

  var select = document.getElementById("metric");
  DATA.metrics.forEach(function (m) { select.appendChild(el("option", { value: m }, m)); });
  select.addEventListener("change", function () { state.metric = select.value; update(); });
  var over = document.getElementById("over");
  if (DATA.tracked.length) { over.appendChild(document.createTextNode("average over: ")); }
  DATA.tracked.forEach(function (p) {
    var box = el("input", { type: "checkbox", "data-param": p });
    box.checked = !!DATA.over_default[p];
    state.over[p] = box.checked;
    box.addEventListener("change", function () { state.over[p] = box.checked; update(); });
    var label = el("label", {});
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + p + " "));
    over.appendChild(label);
  });
  document.getElementById("prev").addEventListener("click", function () { state.page -= 1; drawTrials(brushed(queried())); });
  document.getElementById("next").addEventListener("click", function () { state.page += 1; drawTrials(brushed(queried())); });
  var query = document.getElementById("query"), error = document.getElementById("query-error");
  query.addEventListener("input", function () {
    var text = query.value.trim();
    try {
      state.query = text ? MitosisQuery.parse(text) : null;
      error.textContent = "";
      query.removeAttribute("aria-invalid");
    } catch (e) {
      if (!(e instanceof MitosisQuery.QueryError)) { throw e; }
      error.textContent = e.message + " (at character " + (e.position + 1) + ")";
      query.setAttribute("aria-invalid", "true");
      return;
    }
    state.page = 0;
    update();
  });
  update();
  document.body.dataset.ready = "true";
}());
