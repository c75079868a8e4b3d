// The browser's time zone, for the server to show times in until the user
// picks one on /account (accounts/zones.py): kept in the `tz` cookie, written
// again only when it changes. Runs on every page, the sign-in page included.
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (error) { return; }
  if (!zone || !/^[A-Za-z0-9_+\-\/]+$/.test(zone)) return;
  var current = document.cookie.split("; ").filter(function (pair) { return pair.indexOf("tz=") === 0; })[0];
  if (current === "tz=" + zone) return;
  document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax" + (location.protocol === "https:" ? "; secure" : "");
})();

// Drag and drop onto the upload zone. The zone is a label for a real file
// input, so the picker and the keyboard work without this script; it only adds
// dropping files and a list of what was chosen.
(function () {
  "use strict";

  function showChosen(input) {
    var list = document.getElementById(input.getAttribute("aria-controls"));
    if (!list) return;
    list.textContent = "";
    Array.prototype.forEach.call(input.files, function (file) {
      var item = document.createElement("li");
      item.textContent = file.name;
      list.appendChild(item);
    });
  }

  function wire(zone) {
    var input = zone.querySelector('input[type="file"]');
    if (!input || zone.dataset.wired) return;
    zone.dataset.wired = "1";
    input.addEventListener("change", function () { showChosen(input); });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("is-dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("is-dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      showChosen(input);
    });
  }

  function wireAll(root) {
    (root || document).querySelectorAll("[data-dropzone]").forEach(wire);
  }

  // Files dropped just beside the zone would make the browser open them in place of the page,
  // losing it: on a page with a zone, a drop anywhere else is taken and does nothing.
  function carriesFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") !== -1;
  }
  ["dragover", "drop"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (!carriesFiles(event) || !document.querySelector("[data-dropzone]")) return;
      if (event.target.closest && event.target.closest("[data-dropzone]")) return;
      event.preventDefault();
      if (name === "dragover") event.dataTransfer.dropEffect = "none";
    });
  });

  document.addEventListener("DOMContentLoaded", function () { wireAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { wireAll(event.target); });
})();

// A control marked data-submit-on-change (the list's Sort) applies its form at
// once. Without this script the form's own button still applies it.
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var control = event.target;
    if (!control || !control.matches || !control.matches("[data-submit-on-change]") || !control.form) return;
    if (control.form.requestSubmit) control.form.requestSubmit();
    else control.form.submit();
  });
})();

// The list's bulk bar (batches/templates/batches/_bulk_bar.html): says how many
// batches are selected, ticks every row with "Select all on this page", and
// keeps the rows ticked when the live refresh redraws them. Without this script
// the form works as it is: "Select all on this page" then sends the page's rows.
(function () {
  "use strict";
  var chosen = new Set();

  function bar() { return document.querySelector("[data-bulk]"); }
  function rows() { return document.querySelectorAll("input.row-select"); }

  function show() {
    var form = bar();
    if (!form) return;
    var count = form.querySelector("[data-selected-count]");
    var matching = form.querySelector("[data-select-matching]");
    if (matching && matching.checked) {
      count.textContent = "All " + count.dataset.matching + " matching selected, on every page.";
    } else {
      count.textContent = chosen.size ? chosen.size + " selected." : "";
    }
  }

  function remember(box) {
    if (box.checked) chosen.add(box.value); else chosen.delete(box.value);
  }

  document.addEventListener("change", function (event) {
    var control = event.target;
    if (!control || !control.matches) return;
    if (control.matches("[data-select-page]")) {
      rows().forEach(function (box) { box.checked = control.checked; remember(box); });
    } else if (control.matches("input.row-select")) {
      remember(control);
      var page = document.querySelector("[data-select-page]");
      if (page && !control.checked) page.checked = false;
    } else if (!control.matches("[data-select-matching]")) {
      return;
    }
    show();
  });

  document.addEventListener("DOMContentLoaded", function () {
    rows().forEach(remember);
    show();
  });
  document.addEventListener("htmx:afterSettle", function () {
    rows().forEach(function (box) { box.checked = chosen.has(box.value); });
  });
})();
