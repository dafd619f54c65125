/* Afterdesk workspace: keyboard shortcuts, the bulk bar's tick count, the remembered queue for "next case",
   and dismissable flash messages. No framework; htmx does the requests. */
(function () {
  "use strict";
  var QUEUE_KEY = "afterdesk.queue";

  function typing(target) {
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#case-table tr.case-row"));
  }

  function rememberQueue() {
    if (!document.getElementById("case-table")) return;
    var hrefs = rows().map(function (row) { return row.getAttribute("data-href"); });
    try {
      sessionStorage.setItem(QUEUE_KEY, JSON.stringify({ url: location.pathname + location.search, hrefs: hrefs }));
    } catch (e) { /* private mode: the server-side "next case" link still works */ }
  }

  function rememberedQueue() {
    try { return JSON.parse(sessionStorage.getItem(QUEUE_KEY) || "null"); } catch (e) { return null; }
  }

  function pointQueueLinks() {
    var queue = rememberedQueue();
    if (!queue || !queue.url) return;
    document.querySelectorAll("[data-queue-link]").forEach(function (link) { link.href = queue.url; });
  }

  function moveRow(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.findIndex(function (row) { return row.classList.contains("is-current"); });
    var next = Math.max(0, Math.min(all.length - 1, index + step));
    if (index >= 0) all[index].classList.remove("is-current");
    all[next].classList.add("is-current");
    all[next].scrollIntoView({ block: "nearest" });
  }

  function currentRow() {
    return document.querySelector("#case-table tr.case-row.is-current");
  }

  function goToCase(step) {
    var here = location.pathname;
    var queue = rememberedQueue();
    if (queue && queue.hrefs) {
      var index = queue.hrefs.indexOf(here);
      var target = queue.hrefs[index + step];
      if (index >= 0 && target) { location.href = target; return; }
    }
    var link = document.querySelector("[data-next-case]");
    if (link && step > 0) location.href = link.href;
  }

  function updateBulkBar() {
    var bar = document.querySelector("[data-bulkbar]");
    if (!bar) return;
    var ticked = document.querySelectorAll("#case-table input[name=ids]:checked").length;
    var count = bar.querySelector("[data-selected-count]");
    if (count) count.textContent = ticked;
    bar.classList.toggle("has-selection", ticked > 0);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var onQueue = !!document.getElementById("case-table");
    var handled = true;
    switch (event.key) {
      case "/": {
        var search = document.getElementById("id_q");
        if (search) search.focus(); else handled = false;
        break;
      }
      case "j": case "n":
        if (onQueue) moveRow(1); else goToCase(1);
        break;
      case "k": case "p":
        if (onQueue) moveRow(-1); else goToCase(-1);
        break;
      case "o": case "Enter": {
        var row = onQueue && currentRow();
        if (row) location.href = row.getAttribute("data-href"); else handled = false;
        break;
      }
      case "x": {
        var box = onQueue && currentRow() && currentRow().querySelector("input[name=ids]");
        if (box) { box.checked = !box.checked; updateBulkBar(); } else handled = false;
        break;
      }
      default: {
        var button = document.querySelector('[data-key="' + event.key + '"]');
        var field = document.querySelector('[data-focus-key="' + event.key + '"]');
        if (button) button.click();
        else if (field) { field.focus(); field.scrollIntoView({ block: "center" }); }
        else handled = false;
      }
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-all]")) {
      document.querySelectorAll("#case-table input[name=ids]").forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
    if (event.target.matches("[data-select-all], #case-table input[name=ids]")) updateBulkBar();
  });

  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-dismiss]");
    if (close) close.closest("li").remove();
    // The bulk bar's "Build an appeal": a page of its own, not an in-place action.
    var appeal = event.target.closest("[data-build-appeal-bulk]");
    if (appeal) {
      event.preventDefault();
      var ids = Array.prototype.map.call(document.querySelectorAll("#case-table input[name=ids]:checked"), function (box) {
        return "ids=" + encodeURIComponent(box.value);
      });
      if (ids.length) window.location.href = appeal.getAttribute("formaction") + "?" + ids.join("&");
    }
  });

  function settle() {
    rememberQueue();
    pointQueueLinks();
    updateBulkBar();
  }
  document.addEventListener("DOMContentLoaded", settle);
  // Back from a case page out of the back/forward cache: the queue may have changed meanwhile.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && window.htmx) window.htmx.trigger(document.body, "queue-stale");
  });
  document.addEventListener("htmx:afterSettle", settle);
  // A value to copy (a webhook URL): selected whole when focused, ready for Ctrl-C.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("input.copyable")) event.target.select();
  });
})();
