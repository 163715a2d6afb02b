// Keeps the status page live: every 5 s, fetch a fresh <main> and swap it in (no full
// reload, no external script). The "live" badge turns red when the server stops answering.
(function () {
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  var refreshes = 0;
  function refresh() {
    if (document.hidden) return;
    fetch("?part=main", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        main.innerHTML = html;
        refreshes += 1;
        document.body.setAttribute("data-refreshes", String(refreshes));
        live.textContent = "live";
        live.className = "live";
      })
      .catch(function () {
        live.textContent = "offline";
        live.className = "live stale";
      });
  }
  refresh();
  setInterval(refresh, 5000);
})();
