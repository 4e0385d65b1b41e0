//! A small, synchronous Chrome DevTools Protocol (CDP) client for driving headless Chromium from
//! integration tests: load a page, wait for a JS condition, click and move sliders the way a user
//! would, evaluate JS, take screenshots, and collect the page's uncaught errors.
//!
//! It is deliberately tiny (one page, one websocket, blocking calls) so that a test failure points
//! at the page under test rather than at a browser-automation framework.
//!
//! ```ignore
//! use common::cdp::Browser;
//! use std::time::Duration;
//!
//! let Some(mut b) = Browser::launch() else { return }; // None only with LATENTLAB_SKIP_BROWSER=1
//! b.navigate(&format!("http://127.0.0.1:{port}/"));
//! b.wait_for("window.appReady === true", Duration::from_secs(10));
//! b.click_in("#canvas", 0.25, 0.75); // a quarter across, three quarters down the element
//! b.set_range("#temperature", 0.5);
//! assert_eq!(b.eval("document.querySelector('#status').textContent"), "done");
//! b.screenshot(&dir.path().join("page.png"));
//! assert!(b.js_errors().is_empty(), "page errors: {:?}", b.js_errors());
//! ```

use serde_json::{Value, json};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// How long one CDP call may take before the test fails: a hung browser must not hang CI.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Chromium may take to start and publish its DevTools port (slow, busy CI machines).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The headless browser to use: $LATENTLAB_CHROMIUM, else the first of chromium,
/// chromium-browser, google-chrome that runs. Without one the test fails with an install hint,
/// unless LATENTLAB_SKIP_BROWSER=1 asks to skip (then None). Same rule as tests/report.rs.
pub fn chromium() -> Option<String> {
    let candidates = std::env::var("LATENTLAB_CHROMIUM")
        .into_iter()
        .chain(["chromium", "chromium-browser", "google-chrome"].map(String::from));
    for c in candidates {
        if Command::new(&c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(c);
        }
    }
    if std::env::var("LATENTLAB_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("LATENTLAB_SKIP_BROWSER=1: skipping the headless-browser check");
        return None;
    }
    panic!("this test needs headless Chromium (apt-get install chromium), or LATENTLAB_SKIP_BROWSER=1");
}

/// A headless Chromium with one page, driven over CDP. The process is killed on drop.
pub struct Browser {
    ws: WebSocket<TcpStream>,
    // Dropped after `ws` (fields drop in order), killing the browser; then the profile goes.
    process: Process,
    next_id: u64,
    errors: Vec<String>,
    _profile: tempfile::TempDir,
}

/// The browser's process group, killed on drop: also when `launch` itself panics half-way.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: plain kill(2). The group id outlives its leader while helpers remain in it, so
        // this reaches them even after Browser.close; ESRCH (all gone) is fine.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Launch with a 1280x800 viewport; see [`Browser::launch_sized`].
    pub fn launch() -> Option<Browser> {
        Browser::launch_sized(1280, 800)
    }

    /// Launch headless Chromium with a `width` x `height` CSS-pixel viewport and connect to its
    /// about:blank page. None only when no browser exists and LATENTLAB_SKIP_BROWSER=1.
    pub fn launch_sized(width: u32, height: u32) -> Option<Browser> {
        let exe = chromium()?;
        let profile = tempfile::tempdir().unwrap();
        // Chromium's stderr goes to a file so that a failed start can show why.
        let log = std::fs::File::create(profile.path().join("stderr.log")).unwrap();
        let mut cmd = Command::new(&exe);
        cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
            // Port 0: Chromium picks a free port and writes it to DevToolsActivePort, so parallel
            // tests never collide.
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .args(["--no-first-run", "--no-default-browser-check", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // Own process group, so Drop can kill the renderer/GPU/zygote helpers along with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut process = Process(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {exe}: {e}")));
        let port = wait_for_port(&mut process.0, profile.path(), &exe);
        let ws_url = page_websocket_url(port);
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
        let (mut ws, _) = tungstenite::client(ws_url.as_str(), stream)
            .unwrap_or_else(|e| panic!("websocket handshake with {ws_url} failed: {e}"));
        // Screenshots come back as one big base64 message; lift tungstenite's 16 MiB frame cap.
        ws.set_config(|c| {
            c.max_message_size = None;
            c.max_frame_size = None;
        });
        let mut b = Browser { ws, process, next_id: 0, errors: Vec::new(), _profile: profile };
        b.call("Runtime.enable", json!({}));
        b.call("Page.enable", json!({}));
        // Pin the viewport: headless Chromium 156 turns --window-size=1280,800 into a 1280x657
        // page (it reserves room for browser UI it does not draw), and the DPI may vary by host.
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false});
        b.call("Emulation.setDeviceMetricsOverride", metrics);
        Some(b)
    }

    /// Send one CDP command to the page and return its `result`. Events that arrive meanwhile
    /// are skipped, except page errors, which are kept for [`Browser::js_errors`]. Panics on a
    /// CDP error response, and when no answer comes within 30 s.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).unwrap_or_else(|e| panic!("CDP {method}: send failed: {e}"));
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "CDP {method}: no answer within {CALL_TIMEOUT:?}");
            // A blocked read ends after the stream's read timeout, so this cannot hang forever.
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut =>
                {
                    panic!("CDP {method}: no answer within {CALL_TIMEOUT:?}: the browser hangs")
                }
                Err(e) => panic!("CDP {method}: reading the answer failed (has the browser gone?): {e}"),
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("CDP {method} failed: {err}");
                }
                return v["result"].clone();
            }
            self.note_event(&v);
        }
    }

    /// Keep uncaught exceptions and console.error calls, so that a test can assert none happened.
    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                let line = d["lineNumber"].as_u64().map_or(0, |l| l + 1); // CDP counts from 0
                let at = format!("{}:{line}", d["url"].as_str().unwrap_or("?"));
                self.errors.push(format!("uncaught {} (at {at})", exception_text(d)));
            }
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                let args = p["args"].as_array().map(Vec::as_slice).unwrap_or_default();
                let parts: Vec<String> = args
                    .iter()
                    .map(|a| match &a["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => a["description"].as_str().unwrap_or("?").to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                self.errors.push(format!("console.error: {}", parts.join(" ")));
            }
            _ => {}
        }
    }

    /// Uncaught exceptions and console.error messages seen so far (in the order they came).
    /// Events are read while calls are waiting for answers, so call anything (e.g. `eval("0")`)
    /// before checking, to pick up errors from the page's latest work.
    pub fn js_errors(&self) -> &[String] {
        &self.errors
    }

    /// Load `url` and wait until its `load` event has fired (document.readyState "complete").
    /// Page.navigate answers once the new document has committed, so the old page's readyState
    /// cannot be mistaken for the new one's.
    pub fn navigate(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({"url": url}));
        if let Some(e) = r["errorText"].as_str() {
            panic!("navigating to {url} failed: {e}");
        }
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(20));
    }

    /// Evaluate `js` in the page (awaiting a returned promise) and return its value as JSON
    /// (undefined becomes null). Panics with the exception's text if it throws.
    pub fn eval(&mut self, js: &str) -> Value {
        self.try_eval(js).unwrap_or_else(|e| panic!("JS threw: {e}\n  evaluating: {js}"))
    }

    fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        let params = json!({"expression": js, "returnByValue": true, "awaitPromise": true});
        let r = self.call("Runtime.evaluate", params);
        if let Some(d) = r.get("exceptionDetails") {
            return Err(exception_text(d));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Poll `condition` every 50 ms until it is truthy. A condition that throws (say, an element
    /// not there yet) counts as not yet true. Panics after `timeout`, naming the condition.
    pub fn wait_for(&mut self, condition: &str, timeout: Duration) {
        let js = format!("!!({condition})");
        let deadline = Instant::now() + timeout;
        let mut last = String::from("it stayed false");
        while Instant::now() < deadline {
            match self.try_eval(&js) {
                Ok(Value::Bool(true)) => return,
                Ok(_) => last = String::from("it stayed false"),
                Err(e) => last = format!("it last threw: {e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {timeout:?} waiting for `{condition}`: {last}. Did the page load (see js_errors: {:?}), \
             or does the condition need a longer timeout?",
            self.errors
        );
    }

    /// The bounding box (x, y, width, height) in viewport CSS pixels of the first element matching
    /// `selector`. Panics if nothing matches.
    pub fn rect(&mut self, selector: &str) -> (f64, f64, f64, f64) {
        let sel = serde_json::to_string(selector).unwrap();
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) throw new Error('no element matches ' + {sel}); \
             const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }})()"
        );
        let v = self.eval(&js);
        let n = |i: usize| v[i].as_f64().unwrap();
        (n(0), n(1), n(2), n(3))
    }

    /// Move the mouse to (x, y) in viewport CSS pixels (fires mousemove/mouseover, i.e. hover).
    pub fn hover(&mut self, x: f64, y: f64) {
        self.call("Input.dispatchMouseEvent", json!({"type": "mouseMoved", "x": x, "y": y}));
    }

    /// Left-click at (x, y) as a user does: move there, press, release (so the page sees
    /// mousemove, mousedown, mouseup and click, with real coordinates).
    pub fn click(&mut self, x: f64, y: f64) {
        self.hover(x, y);
        for kind in ["mousePressed", "mouseReleased"] {
            let p = json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1});
            self.call("Input.dispatchMouseEvent", p);
        }
    }

    /// Click at fractions (`fx`, `fy`) of the element's box, e.g. (0.5, 0.5) is its centre. The
    /// element is scrolled into view first, since a click outside the viewport hits nothing.
    pub fn click_in(&mut self, selector: &str, fx: f64, fy: f64) {
        let sel = serde_json::to_string(selector).unwrap();
        self.eval(&format!("document.querySelector({sel})?.scrollIntoView({{block: 'nearest', inline: 'nearest'}})"));
        let (x, y, w, h) = self.rect(selector);
        self.click(x + w * fx, y + h * fy);
    }

    /// Move an `<input type=range>` to `value` and return the value it took (after the browser's
    /// clamping to min/max and step). This does what a user's drag amounts to: set `.value`, then
    /// fire `input` and `change`. Dragging the native thumb with synthetic mouse events is
    /// unreliable headless (thumb geometry depends on the platform theme), so it is not done.
    pub fn set_range(&mut self, selector: &str, value: f64) -> f64 {
        let sel = serde_json::to_string(selector).unwrap();
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) throw new Error('no element matches ' + {sel}); \
             e.value = String({value}); e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return Number(e.value); }})()"
        );
        self.eval(&js).as_f64().unwrap()
    }

    /// Save a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    /// Ask Chromium to close cleanly (briefly); `Process` then kills whatever is left of its
    /// process group, so that no browser or helper process outlives the test, even one that panicked.
    fn drop(&mut self) {
        let close = json!({"id": self.next_id + 1, "method": "Browser.close", "params": {}}).to_string();
        if self.ws.send(Message::text(close)).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && !exited(&mut self.process.0) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The message of a CDP `ExceptionDetails`: an Error's description (message and stack), else the
/// thrown value itself (`throw "x"`), else CDP's summary text (often just "Uncaught").
fn exception_text(d: &Value) -> String {
    let e = &d["exception"];
    match (e["description"].as_str(), e.get("value")) {
        (Some(desc), _) => desc.to_string(),
        (None, Some(v)) => format!("{v}"),
        (None, None) => d["text"].as_str().unwrap_or("?").to_string(),
    }
}

/// Whether `child` has exited (a crashed or refused start must not cost the full timeout).
fn exited(child: &mut Child) -> bool {
    !matches!(child.try_wait(), Ok(None))
}

/// Wait for Chromium to write `<profile>/DevToolsActivePort` (first line: the port it picked).
fn wait_for_port(child: &mut Child, profile: &Path, exe: &str) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline && !exited(child) {
        // The file may be seen half-written: only accept a first line that parses.
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
            return port;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(profile.join("stderr.log")).unwrap_or_default();
    panic!("{exe} exited or did not publish a DevTools port within {START_TIMEOUT:?}; its stderr:\n{log}");
}

/// The websocket URL of the browser's page target (the about:blank tab it opened).
fn page_websocket_url(port: u16) -> String {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    let url = format!("http://127.0.0.1:{port}/json/list");
    let deadline = Instant::now() + START_TIMEOUT;
    // The HTTP endpoint can answer before the first tab is registered: retry until it shows.
    while Instant::now() < deadline {
        if let Some(body) = agent.get(&url).call().ok().and_then(|r| r.into_string().ok()) {
            let targets: Value = serde_json::from_str(&body).unwrap_or_default();
            let page = targets.as_array().into_iter().flatten().find(|t| t["type"] == "page");
            if let Some(ws) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                return ws.to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no page target at {url} within {START_TIMEOUT:?}");
}
