// Charts drawn from the tables behind them (the table stays: it is the accessible version and what prints).
// <table data-chart="line|bar" data-chart-x="0" data-chart-y="2,3" [data-chart-percent] [data-chart-stacked]>
// The x labels come from column data-chart-x, each series from a column of data-chart-y (its header names it);
// a cell's number is its data-value attribute, else its text. Redrawn after every HTMX swap.
(function () {
  "use strict";
  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

  function number(cell) {
    if (!cell) return null;
    var raw = cell.getAttribute("data-value");
    if (raw === null) raw = cell.textContent.replace(/[^0-9.\-]/g, "");
    if (raw === "") return null;
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }

  function columns(attribute) {
    return (attribute || "").split(",").filter(Boolean).map(function (n) { return parseInt(n, 10); });
  }

  function draw(table) {
    if (typeof window.Chart === "undefined") return;
    var kind = table.getAttribute("data-chart");
    var x = parseInt(table.getAttribute("data-chart-x") || "0", 10);
    var ys = columns(table.getAttribute("data-chart-y"));
    var headers = table.tHead ? table.tHead.rows[table.tHead.rows.length - 1].cells : [];
    var rows = table.tBodies.length ? Array.prototype.slice.call(table.tBodies[0].rows) : [];
    rows = rows.filter(function (row) { return !row.hasAttribute("data-chart-skip"); });
    if (!rows.length || !ys.length) return;
    var labels = rows.map(function (row) { return row.cells[x] ? row.cells[x].textContent.trim() : ""; });
    var datasets = ys.map(function (column, i) {
      var colour = PALETTE[i % PALETTE.length];
      return {
        label: headers[column] ? headers[column].textContent.trim() : "",
        data: rows.map(function (row) { return number(row.cells[column]); }),
        borderColor: colour,
        backgroundColor: kind === "line" ? colour : colour + "cc",
        borderWidth: 2,
        pointRadius: rows.length > 40 ? 0 : 2,
        tension: 0,
        spanGaps: true
      };
    });
    // A long table folds under its chart (<details>): the chart goes before the fold.
    var anchor = table.closest("details.chart-figures") || table;
    var holder = anchor.previousElementSibling;
    if (!holder || !holder.classList.contains("chart-box")) {
      holder = document.createElement("div");
      holder.className = "chart-box";
      var canvas = document.createElement("canvas");
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", (table.caption ? table.caption.textContent.trim() : "") || "chart");
      holder.appendChild(canvas);
      anchor.parentNode.insertBefore(holder, anchor);
    }
    var target = holder.querySelector("canvas");
    if (target._chart) target._chart.destroy();
    var percent = table.hasAttribute("data-chart-percent");
    var stacked = table.hasAttribute("data-chart-stacked");
    target._chart = new window.Chart(target, {
      type: kind === "bar" ? "bar" : "line",
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
        scales: {
          // Bars are categories (a carrier, a SKU): every one labelled; a day axis may skip some.
          x: { stacked: stacked, ticks: kind === "bar" ? { autoSkip: false, maxRotation: 45 } : { autoSkip: true, maxRotation: 0 } },
          y: {
            stacked: stacked,
            beginAtZero: true,
            ticks: percent
              ? { callback: function (value) { return value + "%"; } }
              : { precision: 0 }
          }
        }
      }
    });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("table[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) window.print();
  });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
})();
