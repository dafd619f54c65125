// Evidence on the case page: files dropped (or chosen) are sent one request each, with their progress;
// when all are done the evidence card is replaced by the server's fresh copy (refusals included).
(function () {
  "use strict";

  function upload(form, files) {
    var list = form.querySelector("[data-progress]");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var pending = files.length;
    var lastHtml = null;
    var errors = [];
    Array.prototype.forEach.call(files, function (file) {
      var row = document.createElement("li");
      row.textContent = file.name;
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      row.appendChild(bar);
      list.appendChild(row);
      var data = new FormData();
      data.append("file", file);
      data.append("kind", form.querySelector("[data-kind]").value);
      var captured = form.querySelector("input[name=captured_at]").value;
      if (captured) data.append("captured_at", captured);
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-CSRFToken", token);
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
      });
      request.addEventListener("loadend", function () {
        bar.value = 100;
        if (request.status >= 200 && request.status < 500 && request.responseText) {
          lastHtml = request.responseText;
        }
        if (request.status !== 200) {
          row.classList.add("failed");
          errors.push(file.name);
        }
        pending -= 1;
        if (pending === 0 && lastHtml) {
          var card = document.getElementById("case-evidence");
          card.outerHTML = lastHtml;
          if (window.htmx) window.htmx.process(document.getElementById("case-evidence"));
          if (errors.length && !document.querySelector("#case-evidence [data-evidence-error]")) {
            var banner = document.createElement("div");
            banner.className = "banner banner-bad";
            banner.setAttribute("role", "alert");
            banner.textContent = errors.join(", ");
            document.querySelector("#case-evidence h2").after(banner);
          }
        }
      });
      request.send(data);
    });
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
