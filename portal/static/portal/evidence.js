// Evidence on the case page: files dropped (or chosen) are sent one request each, in order, with their progress;
// when all are done the evidence card is replaced by the server's fresh copy (refusals included).
(function () {
  "use strict";

  function upload(form, files) {
    var list = form.querySelector("[data-progress]");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var kind = form.querySelector("[data-kind]").value;
    var captured = form.querySelector("input[name=captured_at]").value;
    var lastHtml = null;
    var errors = [];
    // Every file gets its row and bar at once; they are sent one after another, in the order dropped (the
    // evidence list, and the packet's numbering, follow the order the agent chose).
    var queue = Array.prototype.map.call(files, function (file) {
      var row = document.createElement("li");
      row.textContent = file.name;
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      row.appendChild(bar);
      list.appendChild(row);
      return { file: file, row: row, bar: bar };
    });

    function finish() {
      if (!lastHtml) return;
      var card = document.getElementById("case-evidence");
      card.outerHTML = lastHtml;
      if (window.htmx) window.htmx.process(document.getElementById("case-evidence"));
      var shown = document.querySelector("#case-evidence [data-evidence-error]");
      if (errors.length) {
        // the card shown is the last answer's: it may be a success that knows nothing of the others' refusals
        if (!shown) {
          shown = document.createElement("div");
          shown.className = "banner banner-bad";
          shown.setAttribute("role", "alert");
          shown.setAttribute("data-evidence-error", "");
          document.querySelector("#case-evidence h2").after(shown);
        }
        shown.textContent = errors.join(" ");
      }
    }

    function next() {
      var item = queue.shift();
      if (!item) return finish();
      var data = new FormData();
      data.append("file", item.file);
      data.append("kind", kind);
      if (captured) data.append("captured_at", captured);
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-CSRFToken", token);
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) item.bar.value = Math.round((100 * event.loaded) / event.total);
      });
      request.addEventListener("loadend", function () {
        item.bar.value = 100;
        if (request.status >= 200 && request.status < 500 && request.responseText) {
          lastHtml = request.responseText;
        }
        if (request.status !== 200) {
          item.row.classList.add("failed");
          errors.push(reason(request) || item.file.name + ": " + (request.statusText || "upload failed"));
        }
        next();
      });
      request.send(data);
    }

    next();
  }

  // The refusal the server wrote in its copy of the card, if it answered with one.
  function reason(request) {
    if (!request.responseText) return "";
    var template = document.createElement("template");
    template.innerHTML = request.responseText;
    var banner = template.content.querySelector("[data-evidence-error]");
    return banner ? banner.textContent.trim() : "";
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-file-input]") && event.target.files.length) {
      upload(event.target.closest("form"), event.target.files);
    }
  });
  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var zone = event.target.closest && event.target.closest("[data-dropzone]");
      if (!zone) return;
      event.preventDefault();
      zone.classList.add("dragover");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var zone = event.target.closest && event.target.closest("[data-dropzone]");
    if (zone) zone.classList.remove("dragover");
  });
  document.addEventListener("drop", function (event) {
    var zone = event.target.closest && event.target.closest("[data-dropzone]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("dragover");
    if (event.dataTransfer && event.dataTransfer.files.length) upload(zone.closest("form"), event.dataTransfer.files);
  });
})();
