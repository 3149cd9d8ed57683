// rlaif review: the keyboard. Every key has a button or link too; keys do nothing while typing in a field.
(function () {
  var keys = {"1": "left", "ArrowLeft": "left", "2": "right", "ArrowRight": "right", "t": "tie", "x": "both_bad", "s": "skip"};
  function press(selector) { var el = document.querySelector(selector); if (el) { el.click(); } }
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("raw-toggle");
    if (toggle) {
      toggle.addEventListener("click", function () {
        document.querySelectorAll(".raw").forEach(function (el) { el.hidden = !el.hidden; });
        document.querySelectorAll(".md").forEach(function (el) { el.hidden = !el.hidden; });
      });
    }
    document.body.setAttribute("data-review-ready", "1");
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) { return; }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (keys[event.key]) { press('#decide button[value="' + keys[event.key] + '"]'); }
    else if (event.key === "u") { press("#undo button"); }
    else if (event.key === "j") { press("#next"); }
    else if (event.key === "k") { press("#prev"); }
    else if (event.key === "r") { press("#raw-toggle"); }
    else if (event.key === "?") { var help = document.getElementById("help"); help.hidden = !help.hidden; }
    else { return; }
    event.preventDefault();
  });
})();
