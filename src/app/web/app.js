// smtprobe web: submits the form as JSON, reads the server-sent events of the check as
// they arrive (fetch + a stream reader: EventSource cannot POST, and a password never
// goes in a URL), and shows the finished HTML report in a sandboxed frame.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="smtprobe-csrf"]').content;
  var form = document.getElementById("form");
  var $ = function (id) { return document.getElementById(id); };

  $("provider").addEventListener("change", function () {
    $("host").placeholder = this.value ? "(from the provider)" : "smtp.example.com";
  });

  function requestBody() {
    var data = {};
    new FormData(form).forEach(function (v, k) {
      if (k === "csrf" || v === "") { return; }
      if (k === "port" || k === "timeout") { data[k] = Number(v); return; }
      if (k === "to") { data[k] = v.split(",").map(function (s) { return s.trim(); }).filter(Boolean); return; }
      data[k] = v;
    });
    return data;
  }

  function reset(title) {
    $("live").classList.remove("hidden");
    $("livetitle").textContent = title;
    $("stages").textContent = "";
    $("lines").textContent = "";
    $("verdict").className = "verdict hidden";
    $("report").classList.add("hidden");
    $("download").classList.add("hidden");
    $("wire").open = true;
    $("live").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function onEvent(kind, data) {
    if (kind === "line") {
      var mark = data.dir === "*" ? "* " : data.dir + ": ";
      $("lines").textContent += (data.tls ? "[TLS] " : "      ") + mark + data.text + "\n";
      $("lines").scrollTop = $("lines").scrollHeight;
    } else if (kind === "stage") {
      var li = document.createElement("li");
      li.textContent = (data.ok ? "\u2713 " : "\u2717 ") + data.stage + " " + data.ms.toFixed(1) + " ms";
      if (!data.ok) { li.className = "bad"; }
      $("stages").appendChild(li);
    } else if (kind === "report") {
      showReport(data.report, data.html);
    } else if (kind === "error") {
      showError(data.error);
    }
  }

  function showReport(report, html) {
    var d = report.diagnosis, ok = report.outcome === "ok";
    $("livetitle").textContent = ok ? "Check passed" : "Check failed";
    var v = $("verdict");
    v.className = "verdict " + (ok ? "ok" : "failed");
    v.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = ok ? "OK " : "FAILED at " + report.failed_stage + " ";
    var code = document.createElement("code");
    code.textContent = d.code;
    v.appendChild(strong); v.appendChild(code);
    v.appendChild(document.createTextNode(": " + d.summary));
    if (d.fix) {
      var fix = document.createElement("div");
      fix.className = "fix";
      fix.textContent = "Fix: " + d.fix;
      v.appendChild(fix);
    }
    $("wire").open = false;
    var frame = $("report");
    frame.srcdoc = html;
    frame.classList.remove("hidden");
    frame.onload = function () {
      try { frame.style.height = (frame.contentDocument.documentElement.scrollHeight + 20) + "px"; } catch (e) { /* keep the default */ }
    };
    var a = $("download");
    if (a.href) { URL.revokeObjectURL(a.href); }
    a.href = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    a.download = "smtprobe-" + (report.target.host || "report").replace(/[^a-z0-9.-]/gi, "_") + ".html";
    a.classList.remove("hidden");
  }

  function showError(e) {
    $("livetitle").textContent = "Request refused";
    var v = $("verdict");
    v.className = "verdict failed";
    v.textContent = e.message + (e.field ? " (field: " + e.field + ")" : "");
  }

  function run(url, body) {
    var buttons = document.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    var done = function () { buttons.forEach(function (b) { b.disabled = false; }); };
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream", "X-Smtprobe-Csrf": csrf },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (resp) {
      var type = resp.headers.get("Content-Type") || "";
      if (type.indexOf("text/event-stream") !== 0) {
        return resp.json().then(function (j) { showError(j.error || { message: "HTTP " + resp.status }); });
      }
      var reader = resp.body.getReader(), decoder = new TextDecoder(), buf = "";
      var pump = function () {
        return reader.read().then(function (r) {
          if (r.done) { return; }
          buf += decoder.decode(r.value, { stream: true });
          var at;
          while ((at = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, at); buf = buf.slice(at + 2);
            var kind = "message", data = "";
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) { kind = line.slice(6).trim(); }
              else if (line.indexOf("data:") === 0) { data += line.slice(5).replace(/^ /, ""); }
            });
            if (data) { onEvent(kind, JSON.parse(data)); }
          }
          return pump();
        });
      };
      return pump();
    }).catch(function (e) {
      showError({ message: "The connection to smtprobe failed: " + e.message });
    }).then(done);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = requestBody();
    reset("Checking " + (body.host || body.provider || "") + "…");
    // The password has done its job once sent: clear it from the page.
    $("password").value = "";
    run("/api/v1/check", body);
  });

  document.querySelectorAll("button.demo").forEach(function (b) {
    b.addEventListener("click", function () {
      reset("Demo " + b.dataset.demo + "…");
      run("/api/v1/demo/" + encodeURIComponent(b.dataset.demo), {});
    });
  });
})();
