// A container's terminal (xterm.js, vendored in static/vendor/xterm/) over the dashboard's
// WebSocket (ui/terminal.py): typed keys go out as binary messages, resizes as
// {"resize": [rows, cols]}; output comes back as binary, and {"exit": code} when the process ends.
// Closing the panel or the tab closes the socket, which ends a new shell (not the container).
(function () {
  const panel = document.querySelector("[data-terminal-url]");
  if (!panel || !window.Terminal) return;
  const box = panel.querySelector("[data-terminal]");
  const status = panel.querySelector("[data-terminal-status]");
  const closeButton = panel.querySelector("[data-terminal-close]");
  const encoder = new TextEncoder();
  // The status words come from the page, in its language (data-status-*).
  const say = (word) => panel.dataset["status" + word[0].toUpperCase() + word.slice(1)] || word;
  let ended = false;
  let session = null;

  function close() {
    if (!session) return;
    const { socket, term, observer } = session;
    session = null;
    observer.disconnect();
    if (socket.readyState <= WebSocket.OPEN) socket.close(1000);
    term.dispose();
    box.hidden = true;
    closeButton.hidden = true;
  }

  function open(mode, logs) {
    close();
    box.hidden = false;
    closeButton.hidden = false;
    const term = new window.Terminal({ cursorBlink: true, convertEol: false, scrollback: 5000,
                                       fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" });
    const fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ mode, rows: term.rows, cols: term.cols });
    if (logs) query.set("logs", "1");  // a container just run: its output so far, first prompt included
    const socket = new WebSocket(`${scheme}//${location.host}${panel.dataset.terminalUrl}?${query}`);
    socket.binaryType = "arraybuffer";
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(box);
    session = { socket, term, observer };
    status.textContent = say("connecting");
    ended = false;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      status.textContent = say(mode === "attach" ? "attached" : "connected");
      term.focus();
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data);
        if ("exit" in message) {
          ended = true;
          status.textContent = message.exit === null ? say("ended") : `${say("exited")} (${message.exit})`;
        }
        return;
      }
      term.write(new Uint8Array(event.data));
    };
    socket.onclose = (event) => {
      if (!ended) {
        status.textContent = say(opened ? "closed" : "refused");
      }
    };
    term.onData((data) => { if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data)); });
    term.onResize(({ rows, cols }) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ resize: [rows, cols] }));
    });
  }

  panel.querySelectorAll("[data-terminal-mode]").forEach((button) => {
    button.addEventListener("click", () => open(button.dataset.terminalMode));
  });
  closeButton.addEventListener("click", close);
  window.addEventListener("pagehide", close);
  if (panel.dataset.open) open(panel.dataset.open, true);
})();
