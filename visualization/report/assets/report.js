/* The report page: summary, extremes, a paged sortable table, and one image's detail.
   Vanilla JS, no network: the data comes from data.js (window.SMDL_REPORT) and, per image,
   from details/<class>/<stem>.js, which calls SMDL_REPORT_DETAIL when loaded. */
(function () {
  "use strict";
  var R = window.SMDL_REPORT;
  var state = { col: "ins0", dir: 1, page: 0, filter: "", rows: R.rows.slice() };
  var pending = {};

  function el(tag, attrs, kids) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "on") Object.keys(attrs.on).forEach(function (e) { node.addEventListener(e, attrs.on[e]); });
      else node.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (kid) { if (kid != null) node.appendChild(typeof kid === "string" ? document.createTextNode(kid) : kid); });
    return node;
  }
  function fmt(v, digits) { return v == null || isNaN(v) ? "–" : Number(v).toFixed(digits == null ? 4 : digits); }
  function pm(s, digits) { return s.mean == null ? "–" : fmt(s.mean, digits) + (s.se == null ? "" : " ± " + fmt(s.se, digits)); }
  function pairs(o) { return o == null ? "–" : typeof o !== "object" ? String(o) : Object.keys(o).map(function (k) { return k + "=" + o[k]; }).join(", "); }
  function href(key) { return key.split("/").map(encodeURIComponent).join("/"); }
  function thumb(run, key) { return "thumbs/" + run + "/" + href(key) + ".jpg"; }
  function title(row) { return row.stem + " · " + (row.tname || "target " + row.target); }
  function open(key) { location.hash = "img=" + encodeURIComponent(key); }

  /* ---- columns of the table: image, target, per run ins/del/forwards, per extra run Δ */
  var columns = [
    { id: "key", label: "image", text: true, get: function (r) { return r.key; } },
    { id: "target", label: "target", text: true, get: function (r) { return r.tname || String(r.target); } }
  ];
  R.runs.forEach(function (run, i) {
    var tag = R.runs.length > 1 ? " [" + (i + 1) + "]" : "";
    columns.push({ id: "ins" + i, label: "insertion AUC" + tag, get: function (r) { return r.runs[i].ins; } });
    columns.push({ id: "del" + i, label: "deletion AUC" + tag, get: function (r) { return r.runs[i].del; } });
    columns.push({ id: "fw" + i, label: "forwards" + tag, digits: 0, get: function (r) { return r.runs[i].fw; } });
  });
  R.runs.slice(1).forEach(function (run, j) {
    var tag = " [" + (j + 2) + "] − [1]";
    columns.push({ id: "dins" + j, label: "Δ insertion" + tag, signed: true, get: function (r) { return r.d[j].ins; } });
    columns.push({ id: "ddel" + j, label: "Δ deletion" + tag, signed: true, get: function (r) { return r.d[j].del; } });
  });
  function column(id) { return columns.filter(function (c) { return c.id === id; })[0]; }

  function compare(col, dir) {
    return function (a, b) {
      var x = col.get(a), y = col.get(b);
      if (x == null || y == null) return (x == null) - (y == null);  /* missing values last */
      if (col.text) return dir * String(x).localeCompare(String(y), undefined, { numeric: true });
      return dir * (x - y) || a.key.localeCompare(b.key);
    };
  }

  /* ---- summary */
  function renderSummary() {
    document.getElementById("generated").textContent = "built " + R.generated + " · " + R.rows.length + " images";
    if (R.note) { var note = document.getElementById("note"); note.textContent = R.note; note.hidden = false; }
    var head = ["", "run", "images", "insertion AUC", "deletion AUC", "forwards / image", "division", "λ1…λ4", "search", "model", "failures"];
    var body = R.runs.map(function (run, i) {
      var s = run.settings, opts = Object.keys(s.search || {}).filter(function (k) { return k !== "name"; });
      var search = (s.search && s.search.name || "?") + (opts.length ? " (" + opts.map(function (k) { return k + "=" + s.search[k]; }).join(", ") + ")" : "");
      search = search.replace(/=null/g, "=default");
      var unresolved = run.failures.filter(function (f) { return !f.resolved; }).length;
      var cells = ["[" + (i + 1) + "]", run.label, String(run.ins.n), pm(run.ins), pm(run.del), pm(run.fw, 0),
        pairs(s.division), (s.lambdas || []).join(", "), search, s.model || "–",
        run.failures.length ? unresolved + " without a result, " + (run.failures.length - unresolved) + " resolved" : "none"];
      return el("tr", {}, cells.map(function (c, k) { return el("td", { "class": k === 1 ? "text run" : k > 5 ? "text" : "", title: k === 1 ? run.folder : "", text: c }); }));
    });
    document.getElementById("runs").appendChild(el("table", {}, [
      el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", { "class": "text", text: h }); }))]),
      el("tbody", {}, body)]));
    var box = document.getElementById("failures");
    R.runs.forEach(function (run, i) {
      if (!run.failures.length) return;
      box.appendChild(el("details", {}, [el("summary", { text: "[" + (i + 1) + "] failures.jsonl: " + run.failures.length + " entries" })].concat(
        [el("table", {}, run.failures.map(function (f) {
          return el("tr", {}, [f.time || "", f.image, f.reason, f.resolved ? "resolved by a later run" : "no result"].map(function (c) { return el("td", { "class": "text", text: c }); }));
        }))])));
    });
  }

  /* ---- worst and best by the first run's insertion AUC */
  function renderExtremes() {
    var sorted = R.rows.slice().sort(compare(column("ins0"), 1)), n = Math.min(R.extremes, Math.floor(sorted.length / 2));
    var box = document.getElementById("extremes");
    if (n < 1) return;
    [["Worst " + n + " by insertion AUC", sorted.slice(0, n)], ["Best " + n + " by insertion AUC", sorted.slice(-n).reverse()]].forEach(function (pair) {
      box.appendChild(el("h2", { text: pair[0] + (R.runs.length > 1 ? " of [1]" : "") }));
      box.appendChild(el("div", { "class": "strip" }, pair[1].map(function (row) {
        return el("div", { "class": "thumb", title: row.key, on: { click: function () { open(row.key); } } }, [
          el("img", { src: thumb(0, row.key), alt: row.key }), el("div", { text: row.stem }), el("div", { "class": "muted", text: "AUC " + fmt(row.runs[0].ins, 3) })]);
      })));
    });
  }

  /* ---- the table */
  function visible() {
    var f = state.filter.toLowerCase();
    return state.rows.filter(function (r) { return !f || (r.key + " " + (r.tname || "")).toLowerCase().indexOf(f) >= 0; });
  }
  function renderTable() {
    var rows = visible(), size = R.page_size, pages = Math.max(1, Math.ceil(rows.length / size));
    state.page = Math.min(state.page, pages - 1);
    var head = document.querySelector("#table thead"), body = document.querySelector("#table tbody");
    head.innerHTML = ""; body.innerHTML = "";
    head.appendChild(el("tr", {}, [el("th", { text: "" })].concat(columns.map(function (c) {
      var cls = "sortable" + (c.text ? " text" : "") + (state.col === c.id ? (state.dir > 0 ? " asc" : " desc") : "");
      return el("th", { "class": cls, "data-col": c.id, text: c.label, on: { click: function () { sortBy(c.id); } } });
    }))));
    rows.slice(state.page * size, (state.page + 1) * size).forEach(function (row) {
      body.appendChild(el("tr", { "data-key": row.key, on: { click: function () { open(row.key); } } }, [
        el("td", {}, [el("img", { src: thumb(0, row.key), loading: "lazy", alt: "" })])].concat(columns.map(function (c) {
        var v = c.get(row), cls = c.text ? "text" : c.signed && v < 0 ? "neg" : c.signed && v > 0 ? "pos" : "";
        return el("td", { "class": cls, text: c.text ? String(v) : (c.signed && v > 0 ? "+" : "") + fmt(v, c.digits) });
      }))));
    });
    document.getElementById("page").textContent = "page " + (state.page + 1) + " of " + pages + " (" + rows.length + " images)";
  }
  function sortBy(id) {
    state.dir = state.col === id ? -state.dir : 1;
    state.col = id;
    state.rows.sort(compare(column(id), state.dir));
    state.page = 0;
    renderTable();
  }

  /* ---- one image: canvases composited from the photo and each run's rank map */
  window.SMDL_REPORT_DETAIL = function (d) { var done = pending[d.key]; delete pending[d.key]; if (done) done(d); };
  function loadDetail(key, done) {
    pending[key] = done;
    var script = el("script", { src: "details/" + href(key) + ".js" });
    script.onload = script.onerror = function (e) {
      script.remove();
      if (e.type === "error") showError("could not load details/" + key + ".js (rebuild the report)");
    };
    document.head.appendChild(script);
  }
  function pixels(uri, done) {
    var img = new Image();
    img.onload = function () {
      var c = el("canvas", { width: img.width, height: img.height }), ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      done(ctx.getImageData(0, 0, img.width, img.height).data);
    };
    img.src = uri;
  }
  function showError(text) { var box = document.getElementById("detail"); box.hidden = false; box.textContent = text; }

  function showDetail(key) {
    var row = R.rows.filter(function (r) { return r.key === key; })[0], box = document.getElementById("detail");
    if (!row) return showError("no image " + key + " in this report");
    loadDetail(key, function (d) {
      box.innerHTML = ""; box.hidden = false;
      var order = visible().sort(compare(column(state.col), state.dir)), at = order.indexOf(row);
      box.appendChild(el("div", { "class": "controls" }, [el("h2", { text: title(row) + " (" + row.key + ")" }),
        el("button", { type: "button", text: "← previous", on: { click: function () { if (at > 0) open(order[at - 1].key); } } }),
        el("button", { type: "button", text: "next →", on: { click: function () { if (at >= 0 && at < order.length - 1) open(order[at + 1].key); } } }),
        el("button", { type: "button", text: "close", on: { click: function () { location.hash = ""; } } })]));
      if (d.photo_note) box.appendChild(el("p", { "class": "note", text: "photo: " + d.photo_note + "; regions are shown in the heat-map's colours" }));
      var panels = el("div", { "class": "panels" }), views = [];
      box.appendChild(panels);
      var withPhoto = function (photo) {
        d.runs.forEach(function (run, i) {
          var holder = panels.appendChild(el("div"));
          if (run.photo) pixels(run.photo, function (own) { views.push(panel(holder, row, run, i, own, views)); });  /* another input size */
          else views.push(panel(holder, row, run, i, photo, views));
        });
      };
      if (d.photo) pixels(d.photo, withPhoto); else withPhoto(null);
      box.scrollIntoView();
    });
  }

  function panel(parent, row, run, i, photo, views) {
    var n = run.x.length - 1, h = run.size[0], w = run.size[1];
    var canvases = ["ordering", "insertion: first k kept", "deletion: first k removed"].map(function () { return el("canvas", { width: w, height: h }); });
    var slider = el("input", { type: "range", min: "0", max: String(n), value: String(run.best != null ? Math.min(run.best, n) : Math.ceil(n / 4)), "aria-label": "regions k" });
    var score = el("div", { "class": "score" }), svg = curves(run);
    var cell = row.runs[i], label = R.runs[i].label;
    parent.appendChild(el("div", { "class": "panel" }, [
      el("h3", { text: "[" + (i + 1) + "] " + label }),
      el("div", { text: "insertion AUC " + fmt(cell.ins) + " · deletion AUC " + fmt(cell.del) + " · " + (cell.fw == null ? "?" : cell.fw) + " forwards" }),
      el("div", { "class": "views" }, canvases.map(function (c, k) { return el("figure", {}, [c, el("figcaption", { text: ["ordering (bright = first)", "insertion: first k kept", "deletion: first k removed"][k] })]); })),
      el("div", { "class": "slider" }, [slider]), score, svg,
      run.order.length ? el("details", {}, [el("summary", { text: "region order (" + run.order.length + " regions, first → last)" }),
        el("div", { "class": "order", text: run.order.join(", ") })]) : null]));
    var view = { slider: slider, n: n, draw: null };
    pixels(run.ranks, function (rgba) {
      var ranks = new Int32Array(w * h), base = new Uint8ClampedArray(w * h * 4);
      for (var p = 0; p < w * h; p++) {
        ranks[p] = rgba[4 * p] * 256 + rgba[4 * p + 1];
        var heat = R.lut[Math.round(255 * (n - ranks[p]) / n)] || R.lut[0];
        var grey = photo ? 0.299 * photo[4 * p] + 0.587 * photo[4 * p + 1] + 0.114 * photo[4 * p + 2] : null;
        for (var ch = 0; ch < 3; ch++) base[4 * p + ch] = photo ? R.alpha * heat[ch] + (1 - R.alpha) * grey : heat[ch];
        base[4 * p + 3] = 255;
      }
      canvases[0].getContext("2d").putImageData(new ImageData(base, w, h), 0, 0);
      var source = photo || base;
      view.draw = function (k) {
        var ins = new ImageData(w, h), del = new ImageData(w, h);
        for (var p = 0; p < w * h; p++) {
          var kept = ranks[p] < k;
          for (var ch = 0; ch < 3; ch++) { ins.data[4 * p + ch] = kept ? source[4 * p + ch] : 0; del.data[4 * p + ch] = kept ? 0 : source[4 * p + ch]; }
          ins.data[4 * p + 3] = del.data[4 * p + 3] = 255;
        }
        canvases[1].getContext("2d").putImageData(ins, 0, 0);
        canvases[2].getContext("2d").putImageData(del, 0, 0);
        score.textContent = "k = " + k + " of " + n + " regions · area " + (100 * run.x[k]).toFixed(1) + "% · insertion p = " +
          fmt(run.yi[k], 3) + " · deletion p = " + fmt(run.yd[k], 3) + (run.best === k ? " · best SMDL score" : "");
        svg.querySelector(".marker").setAttribute("x1", X(run.x[k])); svg.querySelector(".marker").setAttribute("x2", X(run.x[k]));
      };
      view.draw(Number(slider.value));
    });
    slider.addEventListener("input", function () {
      var k = Number(slider.value);
      views.forEach(function (v) {  /* every run's panel follows the same k */
        if (v !== view) v.slider.value = String(Math.min(k, v.n));
        if (v.draw) v.draw(Number(v.slider.value));
      });
    });
    return view;
  }

  /* ---- insertion and deletion curves as inline SVG (markup parsed by the HTML parser,
     which gives it the SVG namespace) */
  var W = 460, H = 190, M = 34;
  function X(v) { return (M + v * (W - M - 8)).toFixed(1); }
  function Y(v) { return (H - M + 10 - (v / 1.05) * (H - M - 4)).toFixed(1); }
  function tag(name, attrs, text) {
    return "<" + name + Object.keys(attrs).map(function (k) { return " " + k + '="' + attrs[k] + '"'; }).join("") + ">" + (text || "") + "</" + name + ">";
  }
  function curves(run) {
    var parts = [tag("rect", { x: X(0), y: Y(1.05), width: X(1) - X(0), height: Y(0) - Y(1.05), fill: "#fff", stroke: "#999" })];
    [0, 0.5, 1].forEach(function (t) {
      parts.push(tag("text", { x: X(t), y: Number(Y(0)) + 14, "text-anchor": "middle" }, String(t)));
      parts.push(tag("text", { x: X(0) - 4, y: Number(Y(t)) + 4, "text-anchor": "end" }, String(t)));
    });
    parts.push(tag("text", { x: X(0.5), y: H - 2, "text-anchor": "middle" }, "fraction of image area"));
    [["yi", "#1f5fbf", "insertion"], ["yd", "#d9731a", "deletion"]].forEach(function (c, k) {
      var points = run.x.map(function (x, j) { return X(x) + "," + Y(run[c[0]][j]); }).join(" ");
      parts.push(tag("polyline", { "class": c[2], fill: "none", stroke: c[1], "stroke-width": 1.8, points: points }));
      parts.push(tag("text", { x: X(1) - 4, y: Number(Y(1.05)) + 14 + 14 * k, "text-anchor": "end", fill: c[1] }, c[2]));
    });
    parts.push(tag("line", { "class": "marker", x1: X(0), x2: X(0), y1: Y(0), y2: Y(1.05), stroke: "#c00", "stroke-dasharray": "3,3" }));
    var holder = el("div");
    holder.innerHTML = tag("svg", { width: W, height: H }, parts.join(""));
    return holder.firstChild;
  }

  function route() {
    var m = /^#img=(.+)$/.exec(location.hash);
    if (m) showDetail(decodeURIComponent(m[1])); else document.getElementById("detail").hidden = true;
  }

  renderSummary();
  renderExtremes();
  state.rows.sort(compare(column(state.col), state.dir));
  renderTable();
  document.getElementById("filter").addEventListener("input", function (e) { state.filter = e.target.value; state.page = 0; renderTable(); });
  document.getElementById("prev").addEventListener("click", function () { if (state.page > 0) { state.page--; renderTable(); } });
  document.getElementById("next").addEventListener("click", function () { state.page++; renderTable(); });
  window.addEventListener("hashchange", route);
  route();
})();
