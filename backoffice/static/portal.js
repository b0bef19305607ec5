/* carebox portal: the chat box's as-you-type FAQ answers, and upload size checks.
   Everything here is an enhancement: every page works without JavaScript. */
(function () {
  "use strict";

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text; // never innerHTML: answers are shown as text
    return node;
  }

  /* The chat box: GET /faq/suggest?q= 250 ms after the last key, newest request wins. */
  document.querySelectorAll(".chatbox[data-suggest-url]").forEach(function (box) {
    var input = box.querySelector(".chatbox-input");
    var wrap = box.querySelector(".chatbox-answers");
    var list = box.querySelector(".chatbox-list");
    var empty = box.querySelector(".chatbox-empty");
    var link = box.querySelector(".chatbox-ticket");
    var lastQuery = null;
    var pending = null;

    function ticketLink(q) {
      var url = new URL(box.dataset.ticketUrl, window.location.href);
      if (q) {
        url.searchParams.set("subject", q.slice(0, 200));
        url.searchParams.set("body", q);
      }
      link.href = url.pathname + url.search;
    }

    function show(data) {
      list.textContent = "";
      // A resi in the question: the parcel's status comes before any FAQ answer.
      (data.parcels || []).forEach(function (p) {
        var li = el("li", "chatbox-parcel");
        var a = el("a", "q", p.resi + " · " + p.status);
        a.href = p.url;
        li.appendChild(a);
        if (p.message) li.appendChild(el("span", "a", p.message));
        list.appendChild(li);
      });
      data.results.forEach(function (r) {
        var li = el("li");
        var a = el("a", "q", r.question);
        a.href = r.url;
        li.appendChild(a);
        li.appendChild(el("span", "a", r.answer));
        list.appendChild(li);
      });
      empty.hidden = data.results.length + (data.parcels || []).length > 0;
      wrap.hidden = false;
    }

    var lookUp = debounce(function () {
      var q = input.value.trim();
      ticketLink(q);
      if (q === lastQuery) return;
      lastQuery = q;
      if (pending) pending.abort();
      if (q.length < 3) {
        wrap.hidden = true;
        list.textContent = "";
        return;
      }
      pending = new AbortController();
      fetch(box.dataset.suggestUrl + "?q=" + encodeURIComponent(q), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: pending.signal,
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && data.query === q) show(data); })
        .catch(function () { /* offline or aborted: the Search button still works */ });
    }, 250);

    input.addEventListener("input", lookUp);
  });

  /* Uploads: say "too large" before sending 5 MB for nothing (the server checks again). */
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    var max = parseInt(input.dataset.maxBytes, 10);
    var group = input.closest(".js-file-group");
    var note = group && group.querySelector(".js-file-error");
    function tooBig() {
      return Array.prototype.some.call(input.files || [], function (f) { return f.size > max; });
    }
    function check() {
      var bad = tooBig();
      if (note) {
        note.hidden = !bad;
        note.classList.toggle("d-block", bad);
      }
      input.classList.toggle("is-invalid", bad);
      return !bad;
    }
    input.addEventListener("change", check);
    if (input.form) {
      input.form.addEventListener("submit", function (event) {
        if (!check()) {
          event.preventDefault();
          event.stopImmediatePropagation();
          input.focus();
        }
      });
    }
  });
})();
