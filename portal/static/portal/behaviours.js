// Behaviours the markup asks for with data- attributes, so no template needs an inline <script> or an on*=
// attribute (the Content-Security-Policy runs neither, and htmx runs with allowEval off):
//   <form data-confirm="Question?">       asks first, and submits only on OK (htmx forms use hx-confirm)
//   <select data-autosubmit>              submits its form when a choice is made
//   <el hx-trigger="poll" data-poll="60" [data-poll-on-show]>
//       fires htmx's "poll" on the element every 60 seconds while the tab is visible, and at once when the
//       tab is shown again if data-poll-on-show; htmx's `every 60s [document.visibilityState === ...]`
//       would need eval for its filter (without it the filter is skipped and a hidden tab polls on).
(function () {
  "use strict";

  // Capture phase: asked before htmx or anything else acts on the submit.
  document.addEventListener(
    "submit",
    function (event) {
      var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("[data-autosubmit]") && field.form) field.form.requestSubmit();
  });

  // When each polling element is next due; an element swapped in starts its own count when first seen.
  var due = new WeakMap();

  function poll(element, now) {
    due.set(element, now + 1000 * parseFloat(element.getAttribute("data-poll")));
    if (window.htmx) window.htmx.trigger(element, "poll");
  }

  window.setInterval(function () {
    if (document.visibilityState !== "visible") return;
    var now = Date.now();
    document.querySelectorAll("[data-poll]").forEach(function (element) {
      var next = due.get(element);
      if (next === undefined) due.set(element, now + 1000 * parseFloat(element.getAttribute("data-poll")));
      else if (now >= next) poll(element, now);
    });
  }, 500);

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible") return;
    var now = Date.now();
    document.querySelectorAll("[data-poll][data-poll-on-show]").forEach(function (element) {
      poll(element, now);
    });
  });
})();
