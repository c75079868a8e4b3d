// The template editor's row buttons, in place. Without this script each button
// posts the form back and the server returns it with the rows changed
// (batches/forms_templates.py); with it, the same changes happen here: a new
// row is copied from the page's <template> markup, and after every change the
// rows are numbered again, so the field names (criterion-2-level-1-label), the
// counts posted with them and the buttons say what the server expects.
(function () {
  "use strict";

  var CRITERION = /criterion-(\d+|__C__)-/g;
  var LEVEL = /level-(\d+|__L__)-/g;
  var ATTRIBUTES = ["name", "id", "for", "aria-describedby"];

  function criteria(editor) {
    return Array.prototype.slice.call(editor.querySelectorAll("[data-criteria-list] > [data-criterion]"));
  }

  function levels(row) {
    return Array.prototype.slice.call(row.querySelectorAll("[data-level-list] > [data-level]"));
  }

  function rename(element, pattern, replacement) {
    ATTRIBUTES.forEach(function (name) {
      var value = element.getAttribute(name);
      if (value) element.setAttribute(name, value.replace(pattern, replacement));
    });
  }

  function renumber(editor) {
    var rows = criteria(editor);
    rows.forEach(function (row, index) {
      row.id = "criterion-" + (index + 1);
      row.querySelectorAll("*").forEach(function (element) { rename(element, CRITERION, "criterion-" + index + "-"); });
      row.querySelectorAll("[data-criterion-number]").forEach(function (span) { span.textContent = index + 1; });
      var rowLevels = levels(row);
      rowLevels.forEach(function (level, number) {
        level.querySelectorAll("*").forEach(function (element) { rename(element, LEVEL, "level-" + number + "-"); });
        level.querySelectorAll("[data-level-number]").forEach(function (span) { span.textContent = number + 1; });
        level.querySelectorAll("button[data-op]").forEach(function (button) {
          button.value = button.dataset.op + ":" + index + ":" + number;
        });
      });
      row.querySelectorAll("button[data-op]").forEach(function (button) {
        if (!/level-up|level-down|remove-level/.test(button.dataset.op)) button.value = button.dataset.op + ":" + index;
      });
      var count = row.querySelector('input[name="criterion-' + index + '-levels"]');
      if (count) count.value = rowLevels.length;
    });
    var total = editor.querySelector('input[name="criteria_count"]');
    if (total) total.value = rows.length;
  }

  function copyOf(id) {
    var template = document.getElementById(id);
    return template.content.firstElementChild.cloneNode(true);
  }

  function say(sentence) {
    var status = document.getElementById("editor-status");
    if (!status) return;
    status.hidden = false;
    status.textContent = sentence;
  }

  function focusFirstField(element) {
    var field = element.querySelector("input:not([type=hidden]), textarea, select");
    if (field) field.focus();
  }

  function move(item, step) {
    var sibling = step < 0 ? item.previousElementSibling : item.nextElementSibling;
    if (!sibling) return false;
    if (step < 0) item.parentNode.insertBefore(item, sibling);
    else item.parentNode.insertBefore(sibling, item);
    return true;
  }

  function act(editor, button) {
    var op = button.dataset.op;
    var row = button.closest("[data-criterion]");
    var level = button.closest("[data-level]");
    var rowNumber = row ? criteria(editor).indexOf(row) + 1 : 0;
    var levelNumber = level ? levels(row).indexOf(level) + 1 : 0;
    var most = Number(editor.dataset.maxCriteria) || Infinity;
    var mostLevels = Number(editor.dataset.maxLevels) || Infinity;
    // Past these the server refuses the whole post, before reading a field: stop here, as its buttons do.
    if (op === "add-criterion" && criteria(editor).length >= most) {
      say("The editor takes at most " + most + " criterion rows.");
    } else if (op === "add-level" && levels(row).length >= mostLevels) {
      say("The editor takes at most " + mostLevels + " level rows per criterion.");
    } else if (op === "add-criterion") {
      var added = copyOf("criterion-blank");
      editor.querySelector("[data-criteria-list]").appendChild(added);
      renumber(editor);
      focusFirstField(added);
      say("Added criterion " + criteria(editor).length + ".");
    } else if (op === "add-level") {
      var newLevel = copyOf("level-blank");
      row.querySelector("[data-level-list]").appendChild(newLevel);
      renumber(editor);
      focusFirstField(newLevel);
      say("Added level " + levels(row).length + " to criterion " + rowNumber + ".");
    } else if (op === "remove-criterion") {
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber(editor);
      if (next) focusFirstField(next);
      else editor.querySelector('[data-op="add-criterion"]').focus();
      say("Removed criterion " + rowNumber + ".");
    } else if (op === "remove-level") {
      level.remove();
      renumber(editor);
      row.querySelector('[data-op="add-level"]').focus();
      say("Removed level " + levelNumber + " of criterion " + rowNumber + ".");
    } else {
      var item = op === "up" || op === "down" ? row : level;
      var step = op === "up" || op === "level-up" ? -1 : 1;
      var what = item === row ? "Criterion " + rowNumber : "Level " + levelNumber + " of criterion " + rowNumber;
      if (!move(item, step)) {
        say(what + " is already " + (step < 0 ? "first" : "last") + ".");
        return;
      }
      renumber(editor);
      button.focus();
      var place = item === row ? criteria(editor).indexOf(row) + 1 : levels(row).indexOf(level) + 1;
      say(what + " moved " + (step < 0 ? "up" : "down") + ": it is now number " + place + ".");
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-op]");
    if (!button) return;
    var editor = button.closest("[data-template-editor]");
    if (!editor) return;
    event.preventDefault();
    act(editor, button);
  });
})();
