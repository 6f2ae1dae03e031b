// signgen eval report: sorting, filtering, per-frame plots. Inlined into report.html;
// reads the figures from the JSON script element "report-data"; no network.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var tbody = document.querySelector("#videos tbody");
  var byName = {};
  data.rows.forEach(function (row) { byName[row.name] = row; });

  function videoRows() { return Array.prototype.slice.call(tbody.querySelectorAll("tr.video")); }

  function sortBy(key, header) {
    var descending = header.classList.contains("sorted-asc");
    document.querySelectorAll("#videos th.sortable").forEach(function (th) {
      th.classList.remove("sorted-asc", "sorted-desc");
    });
    header.classList.add(descending ? "sorted-desc" : "sorted-asc");
    var rows = videoRows();
    rows.sort(function (a, b) {
      var x = a.dataset[key], y = b.dataset[key];
      var nx = x === "" || x === undefined ? NaN : Number(x), ny = y === "" || y === undefined ? NaN : Number(y);
      var result;
      if (!isNaN(nx) || !isNaN(ny)) {  // numbers; videos without the figure go last
        if (isNaN(nx)) return 1;
        if (isNaN(ny)) return -1;
        result = nx - ny;
      } else {
        result = String(x).localeCompare(String(y));
      }
      return descending ? -result : result;
    });
    rows.forEach(function (row) {
      tbody.appendChild(row);
      var detail = document.getElementById("detail-" + row.dataset.index);
      if (detail) tbody.appendChild(detail);
    });
  }

  document.querySelectorAll("#videos th.sortable").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th.dataset.key, th); });
  });

  var ALL_SPLITS = "*all*";  // html_report.ALL_SPLITS: the "all splits" option, no split's name
  var splitFilter = document.getElementById("split-filter");
  var textFilter = document.getElementById("text-filter");
  function applyFilter() {
    var split = splitFilter.value, text = textFilter.value.toLowerCase();
    videoRows().forEach(function (row) {
      var shown = (split === ALL_SPLITS || row.dataset.split === split) &&
        (text === "" || (row.dataset.name + " " + row.dataset.glosses).toLowerCase().indexOf(text) >= 0);
      row.hidden = !shown;
      var detail = document.getElementById("detail-" + row.dataset.index);
      if (detail) detail.hidden = !shown;
    });
  }
  splitFilter.addEventListener("change", applyFilter);
  textFilter.addEventListener("input", applyFilter);

  var SVG = "http://www.w3.org/2000/svg";
  function element(name, attributes, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  // One series over the frames as an SVG line plot with its own y range; null values leave gaps.
  function plot(title, values, colour) {
    var width = 300, height = 120, left = 40, right = 8, top = 16, bottom = 18;
    var svg = element("svg", {width: width, height: height, "class": "plot", "data-series": title});
    element("text", {x: left, y: 11}, svg).textContent = title;
    var present = values.filter(function (v) { return v !== null && isFinite(v); });
    if (!present.length) {
      element("text", {x: left, y: height / 2}, svg).textContent = "no values";
      return svg;
    }
    var low = Math.min.apply(null, present), high = Math.max.apply(null, present);
    if (high - low < 1e-9) { low -= 0.5; high += 0.5; }
    var x = function (i) { return left + (width - left - right) * (values.length > 1 ? i / (values.length - 1) : 0.5); };
    var y = function (v) { return top + (height - top - bottom) * (1 - (v - low) / (high - low)); };
    element("line", {x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#999"}, svg);
    element("line", {x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#999"}, svg);
    element("text", {x: 2, y: top + 8}, svg).textContent = high.toFixed(3);
    element("text", {x: 2, y: height - bottom}, svg).textContent = low.toFixed(3);
    element("text", {x: width - right - 40, y: height - 4}, svg).textContent = values.length + " pts";
    var path = "", pen = false;
    values.forEach(function (v, i) {
      if (v === null || !isFinite(v)) { pen = false; return; }
      path += (pen ? " L " : " M ") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
    });
    element("path", {d: path, fill: "none", stroke: colour, "stroke-width": 1.5}, svg);
    var cursor = element("line", {x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#d33", "class": "cursor"}, svg);
    svg.moveCursor = function (fraction) {
      var position = left + (width - left - right) * Math.max(0, Math.min(1, fraction));
      cursor.setAttribute("x1", position); cursor.setAttribute("x2", position);
    };
    return svg;
  }

  function openRow(row) {
    var index = row.dataset.index, existing = document.getElementById("detail-" + index);
    if (existing) { existing.remove(); return; }
    var entry = byName[row.dataset.name];
    var detail = document.createElement("tr");
    detail.className = "detail";
    detail.id = "detail-" + index;
    var cell = document.createElement("td");
    cell.colSpan = row.children.length;
    detail.appendChild(cell);
    var heading = document.createElement("div");
    heading.textContent = entry.name + ": " + (entry.glosses || "(no glosses)");
    cell.appendChild(heading);
    var plots = document.createElement("div");
    plots.className = "plots";
    var series = entry.per_frame || {};
    var names = [["ssim_rgb", "SSIM (RGB) per frame", "#1f77b4"], ["hand_ssim", "hand-SSIM per frame", "#2ca02c"],
                 ["tde", "TDE per frame transition", "#d62728"]];
    var drawn = [];
    names.forEach(function (item) {
      if (series[item[0]]) { var svg = plot(item[1], series[item[0]], item[2]); drawn.push(svg); plots.appendChild(svg); }
    });
    if (!drawn.length) plots.textContent = "no per-frame figures in this row (a run of an older signgen, or gloss driving)";
    cell.appendChild(plots);
    row.after(detail);
    var video = row.querySelector("video");
    if (video && !video.dataset.cursorListener) {  // once per video: a reopened row finds its plots anew
      video.dataset.cursorListener = "1";
      video.addEventListener("timeupdate", function () {
        var shown = document.getElementById("detail-" + index);
        if (!video.duration || !shown) return;
        shown.querySelectorAll("svg.plot").forEach(function (svg) {
          if (svg.moveCursor) svg.moveCursor(video.currentTime / video.duration);
        });
      });
    }
  }

  tbody.addEventListener("click", function (event) {
    var button = event.target.closest("button.open");
    if (button) openRow(button.closest("tr.video"));
  });
  document.querySelectorAll("a.worst").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var row = tbody.querySelector('tr.video[data-name="' + CSS.escape(link.dataset.name) + '"]');
      if (!row) return;
      row.hidden = false;
      if (!document.getElementById("detail-" + row.dataset.index)) openRow(row);
      row.scrollIntoView();
    });
  });
})();
