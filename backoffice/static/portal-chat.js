/* carebox portal: the ticket conversation as a live chat.

   Polls GET <poll-url>?after=<last message id> with If-None-Match: the server
   answers 304 (no body) while the ticket's version and its parcel are unchanged,
   else the new public messages, the parcel's box and its situation. Every 4 s
   while the page is visible; each 304 in a row stretches the wait by half, up to
   30 s; a hidden tab waits 60 s. Replies are
   sent with fetch when possible; the plain form post works without JavaScript. */
(function () {
  "use strict";
  var chat = document.querySelector(".chat[data-poll-url]");
  if (!chat) return;
  var log = chat.querySelector(".chat-log");
  var url = chat.dataset.pollUrl;
  var lastId = parseInt(chat.dataset.lastId, 10) || 0;
  var status = chat.dataset.status;
  var etag = chat.dataset.etag || null;
  var FAST = 4000, SLOW = 30000, HIDDEN = 60000;
  var delay = FAST, timer = null, stopped = false, inFlight = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text; // messages are text, never HTML
    return node;
  }

  function add(m) {
    lastId = Math.max(lastId, m.id);
    if (document.getElementById("m" + m.id)) return;
    var li = el("li", "chat-msg is-new " + (m.mine ? "mine" : "theirs"));
    li.id = "m" + m.id;
    var meta = el("div", "chat-meta", m.author + " · ");
    var time = el("time", null, m.at_label);
    time.setAttribute("datetime", m.at);
    meta.appendChild(time);
    // The channel badge is the server's own markup (fixed, escaped by Jinja), not user text.
    if (m.channel_html) meta.insertAdjacentHTML("beforeend", " · " + m.channel_html);
    li.appendChild(meta);
    li.appendChild(el("div", "chat-body", m.body));
    m.attachments.forEach(function (a) {
      var box = el("div", "chat-file");
      var link = el("a", null, a.image ? null : "📎 " + a.name);
      link.href = a.url;
      if (a.image) {
        var img = el("img", "chat-thumb");
        img.src = a.url;
        img.alt = a.name;
        link.appendChild(img);
      } else {
        link.setAttribute("download", "");
      }
      box.appendChild(link);
      li.appendChild(box);
    });
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function changed(data) {
    var badge = document.querySelector(".js-status");
    if (badge) {
      badge.textContent = data.status_label;
      Array.prototype.slice.call(badge.classList).forEach(function (c) {
        if (c.indexOf("status-") === 0 && c !== "status-badge") badge.classList.remove(c);
      });
      badge.classList.add("status-" + data.status);
    }
    if ((data.status === "finished") !== (status === "finished")) {
      var note = document.querySelector(".js-changed");
      if (note) note.hidden = false; // what the customer can do changed: offer a reload
    }
    status = data.status;
  }

  /* The parcel's box and situation badge, redrawn when a tracking event arrives (the
     server's own markup, escaped by Jinja). */
  function parcel(data) {
    [[".js-parcel", data.parcel_html], [".js-situation", data.situation_html]].forEach(function (pair) {
      var box = document.querySelector(pair[0]);
      if (box && typeof pair[1] === "string" && box.innerHTML.trim() !== pair[1].trim()) box.innerHTML = pair[1];
    });
  }

  /* The customer has seen this version (its messages are on screen): close and reopen
     act on it, instead of being refused as coming from a stale page. */
  function seen(version) {
    document.querySelectorAll("input[name=version]").forEach(function (input) {
      input.value = version;
    });
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(poll, ms);
  }

  function poll() {
    if (inFlight) return;
    if (document.hidden) { schedule(HIDDEN); return; }
    inFlight = true;
    var headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    fetch(url + "?after=" + lastId, { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 304) { delay = Math.min(SLOW, Math.round(delay * 1.5)); return null; }
        if (r.status === 401 || r.status === 403 || r.status === 404) { stopped = true; return null; }
        if (!r.ok) { delay = SLOW; return null; }
        etag = r.headers.get("ETag");
        return r.json();
      })
      .then(function (data) {
        if (!data) return;
        parcel(data);
        data.messages.forEach(add);
        if (data.messages.length) delay = FAST;
        if (data.status !== status) changed(data);
        seen(data.version);
      })
      .catch(function () { delay = SLOW; })
      .then(function () { inFlight = false; schedule(delay); });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { delay = FAST; schedule(0); }
  });

  /* Send a reply without leaving the page; on any trouble, fall back to the plain post. */
  var form = document.querySelector(".js-reply-form");
  if (form && window.FormData) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      var problem = form.querySelector(".js-reply-error");
      if (!problem) {
        problem = el("div", "alert alert-danger js-reply-error");
        problem.setAttribute("role", "alert");
        form.insertBefore(problem, form.firstChild.nextSibling);
      }
      problem.hidden = true;
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (r) {
          var type = r.headers.get("Content-Type") || "";
          if (type.indexOf("application/json") === -1) { throw new Error("not json"); }
          return r.json().then(function (data) { return { status: r.status, data: data }; });
        })
        .then(function (res) {
          if (res.data.ok) {
            form.reset();
            add(res.data.message);
            seen(res.data.version);
            etag = null;
            delay = FAST;
            schedule(delay);
            return;
          }
          var lines = [];
          Object.keys(res.data.errors || {}).forEach(function (k) { lines = lines.concat(res.data.errors[k]); });
          if (!lines.length && res.data.message) lines.push(res.data.message);
          if (!lines.length) { form.submit(); return; } // let the server's page explain
          problem.textContent = lines.join(" ");
          problem.hidden = false;
        })
        .catch(function () { form.submit(); })
        .then(function () { button.disabled = false; });
    });
  }

  schedule(FAST);
})();
