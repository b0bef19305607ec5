/* Canned replies in the desk's reply box: typing "/" and a few letters at the
   start of a word lists the matching replies (arrow keys, Enter or Tab inserts,
   Escape closes); the picker's "Insert" puts one at the caret. The text comes
   from the server already filled from the ticket; placeholders without a value
   stay in it and are named in #canned-missing. Without JavaScript the picker
   reloads the desk with the text in the box (?canned=<id>); the list and the
   text come from the URLs on the reply box (data-canned-list-url, -text-url). */
(function () {
  "use strict";
  var body = document.getElementById("body");
  if (!body || !window.fetch || !body.hasAttribute("data-canned-list-url")) { return; }

  var listUrl = body.getAttribute("data-canned-list-url");
  var textUrl = body.getAttribute("data-canned-text-url");
  var ids = document.getElementById("canned_ids");
  var box = document.getElementById("canned-suggest");
  var missingBox = document.getElementById("canned-missing");
  var replies = null;
  var matches = [];
  var active = 0;
  var range = null;

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
  }

  var pending = null;
  function load() {
    if (replies) { return Promise.resolve(replies); }
    if (!pending) {  // one request, however many keys are typed before it answers
      pending = getJSON(listUrl).then(function (data) { replies = data; return data; },
        function (err) { pending = null; throw err; });
    }
    return pending;
  }

  /* The "/word" right before the caret, when it starts a word. */
  function slashWord() {
    var pos = body.selectionStart;
    var m = /(^|\s)\/([a-z0-9-]*)$/.exec(body.value.slice(0, pos));
    return m ? { start: pos - m[2].length - 1, end: pos, word: m[2] } : null;
  }

  function close() {
    box.hidden = true;
    box.innerHTML = "";
    matches = [];
    body.setAttribute("aria-expanded", "false");
    body.removeAttribute("aria-activedescendant");
  }

  function highlight(i) {
    active = i;
    var items = box.querySelectorAll("[role=option]");
    for (var k = 0; k < items.length; k++) {
      var on = k === i;
      items[k].setAttribute("aria-selected", on ? "true" : "false");
      items[k].classList.toggle("active", on);
    }
    if (items[i]) { body.setAttribute("aria-activedescendant", items[i].id); }
  }

  /* The suggestions for the "/word" as the box is when the list has arrived: keys
     typed while it loaded count (a fast typist's "/terima" is not taken as "/ter"). */
  function show() {
    load().then(function (all) {
      var found = slashWord();
      if (!found) { close(); return; }
      var word = found.word;
      matches = all.filter(function (r) {
        return r.shortcut.indexOf(word) === 0 || r.title.toLowerCase().indexOf(word) !== -1;
      }).slice(0, 8);
      box.innerHTML = "";
      if (!matches.length) { close(); return; }
      range = found;
      matches.forEach(function (r, i) {
        var li = document.createElement("li");
        li.id = "canned-opt-" + i;
        li.setAttribute("role", "option");
        li.className = "list-group-item list-group-item-action py-1";
        li.textContent = "/" + r.shortcut + " — " + r.title;
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
        box.appendChild(li);
      });
      box.hidden = false;
      body.setAttribute("aria-expanded", "true");
      highlight(0);
    });
  }

  function showMissing(list) {
    if (!list.length) { return; }
    missingBox.textContent = missingBox.getAttribute("data-text") + " ";
    list.forEach(function (m) {
      var mark = document.createElement("mark");
      mark.className = "placeholder-missing";
      mark.textContent = m;
      missingBox.appendChild(mark);
      missingBox.appendChild(document.createTextNode(" "));
    });
    missingBox.appendChild(document.createTextNode("— " + missingBox.getAttribute("data-hint")));
    missingBox.hidden = false;
  }

  function insert(id, where) {
    return getJSON(textUrl.replace(/\/0$/, "/" + id)).then(function (d) {
      var v = body.value;
      body.value = v.slice(0, where.start) + d.text + v.slice(where.end);
      var caret = where.start + d.text.length;
      body.focus();
      body.setSelectionRange(caret, caret);
      ids.value = ids.value ? ids.value + "," + d.id : String(d.id);
      showMissing(d.missing);
    });
  }

  function choose(i) {
    var r = matches[i];
    var where = range;
    close();
    if (r && where) { insert(r.id, where); }
  }

  body.addEventListener("input", function () {
    if (slashWord()) { show(); } else { close(); }
  });
  body.addEventListener("keydown", function (e) {
    if (box.hidden) { return; }
    if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % matches.length); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight((active - 1 + matches.length) % matches.length); }
    else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); choose(active); }
    else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); }
  });
  body.addEventListener("blur", function () { window.setTimeout(close, 150); });
  /* The picker arrives after the page (the desk's canned panel): listen on the document. */
  document.addEventListener("submit", function (e) {
    if (e.target.id !== "canned-picker") { return; }
    e.preventDefault();
    var select = document.getElementById("canned");
    insert(select.value, { start: body.selectionStart, end: body.selectionEnd });
  });
}());
