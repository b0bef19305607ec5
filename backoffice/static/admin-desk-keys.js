/* The desk's keyboard shortcuts (the "?" overlay lists them): j / k next and
   previous ticket of the list, r reply, n internal note, f finish, ? the
   overlay. None fires inside a text field or with Ctrl, Alt or Meta held;
   Escape leaves the message box so the shortcuts work again. */
(function () {
  "use strict";
  var overlay = document.getElementById("shortcuts");
  var opener = document.getElementById("shortcuts-open");
  var body = document.getElementById("body");
  if (!overlay) { return; }

  function typing(el) {
    if (!el) { return false; }
    var tag = el.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable ||
      (tag === "INPUT" && !/^(button|submit|reset|checkbox|radio|file)$/i.test(el.type));
  }

  function toggle(show) {
    overlay.hidden = !show;
    opener.setAttribute("aria-expanded", show ? "true" : "false");
    if (show) { overlay.focus(); } else { opener.focus(); }
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) { window.location.assign(link.href); }
  }

  function write(kind) {
    var radio = document.getElementById("visibility-" + kind);
    if (!body || (radio && radio.disabled)) { return; }
    if (radio) { radio.checked = true; }
    body.focus();
  }

  opener.addEventListener("click", function () { toggle(overlay.hidden); });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      if (!overlay.hidden) { e.preventDefault(); toggle(false); return; }
      if (document.activeElement === body) { body.blur(); }
      return;
    }
    if (e.ctrlKey || e.altKey || e.metaKey || e.defaultPrevented || typing(e.target)) { return; }
    var handled = true;
    switch (e.key) {
      case "?": toggle(overlay.hidden); break;
      case "j": follow("desk-next"); break;
      case "k": follow("desk-prev"); break;
      case "r": write("public"); break;
      case "n": write("internal"); break;
      case "f":
        var finish = document.getElementById("finish-button");
        if (finish) { finish.click(); } else { handled = false; }
        break;
      default: handled = false;
    }
    if (handled) { e.preventDefault(); }
  });
}());
