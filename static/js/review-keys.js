// Keys on a job's page: j opens the next job of the review queue, k the
// previous one, a accepts the AI grade as the review. They follow the page's
// own links and form (marked data-key), which work without this script; keys
// typed into a field, or with a modifier held, are left alone.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.closest) return false;
    return Boolean(target.isContentEditable || target.closest("input, textarea, select, [contenteditable]"));
  }

  function use(control) {
    if (control.tagName === "FORM") {
      if (control.requestSubmit) control.requestSubmit();
      else control.submit();
    } else {
      control.click();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var legend = document.getElementById("key-legend");
    if (legend) legend.hidden = false;
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var key = event.key;
    if (key !== "j" && key !== "k" && key !== "a") return;
    var control = document.querySelector('[data-key="' + key + '"]');
    if (!control) return;
    event.preventDefault();
    use(control);
  });
})();
