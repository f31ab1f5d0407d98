// Keyboard work on queue cards: j/k move between cards, Enter or o opens the customer,
// a approves the offer, d opens the dismiss form, e edits the offer. Everything also
// works without this file: the buttons and links are plain forms and anchors.
(function () {
  "use strict";

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-card]"));
  }

  function current() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("[data-card]") : null;
  }

  function move(step) {
    var all = cards();
    if (!all.length) return;
    var at = all.indexOf(current());
    var next = at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, at + step));
    all[next].focus();
    all[next].scrollIntoView({ block: "nearest" });
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || (target && target.isContentEditable);
  }

  function open(card, name) {
    var details = card.querySelector("details[data-" + name + "]");
    if (details) {
      details.open = true;
      var field = details.querySelector("select, input:not([type=hidden]), textarea");
      if (field) field.focus();
      return true;
    }
    var link = card.querySelector("a[data-" + name + "]");
    if (link) {
      link.click();
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var card = current();
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter":
      case "o":
        if (!card || event.target !== card) return;
        var link = card.querySelector("a[data-open]");
        if (link) link.click();
        break;
      case "a":
        if (!card) return;
        var approve = card.querySelector("button[data-approve]");
        if (approve) approve.click();
        break;
      case "d":
        if (!card || !open(card, "dismiss")) return;
        break;
      case "e":
        if (!card || !open(card, "edit")) return;
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  // After htmx replaced a card, keep the keyboard where it was.
  document.addEventListener("htmx:afterSwap", function (event) {
    var id = event.detail.target && event.detail.target.id;
    var swapped = id ? document.getElementById(id) : null;
    if (swapped && swapped.matches("[data-card]")) swapped.focus();
  });
})();
