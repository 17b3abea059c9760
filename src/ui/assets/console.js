// keyward web console: the copy button of the page that shows a new key. Served as a file
// (the Content-Security-Policy allows scripts from this origin only, never inline).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = target.textContent.trim();
      var copied = function () {
        button.textContent = "Copied";
        var status = document.getElementById("copy-status");
        if (status) status.textContent = "The key is on your clipboard.";
      };
      var selectIt = function () {
        var range = document.createRange();
        range.selectNodeContents(target);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (document.execCommand && document.execCommand("copy")) copied();
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(copied, selectIt);
      } else {
        selectIt();
      }
    });
  });
});
