//! The browser explorer's server: hyper (HTTP/1.1) on a small tokio runtime, serving one embedded
//! page and a JSON/PNG API over the runs it was given (docs/explore-api.md; the README's "Explore
//! in the browser" summarises it). Decoding runs on tokio's blocking pool. (tiny_http was tried
//! first: it allocates a request's whole announced Content-Length when it drains an unread body,
//! so one hostile header aborted the process.)
//!
//! Hygiene, since a server on a laptop is reachable by every web page the user opens: it binds to
//! 127.0.0.1 unless told otherwise, refuses a `Host` (or `Origin`) that names another site (DNS
//! rebinding), caps bodies, batches and numbers, and names run ids and files only from its own
//! table (no path from a request ever reaches the file system).

mod api;
mod http;
mod runs;
mod space;

pub use runs::ExploredRun;

use anyhow::{Context, Result, anyhow};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// Threads that decode at once: enough for a page's parallel requests and a few clients (each
/// decode is parallel inside the backend too).
const WORKERS: usize = 8;
/// A client that has not sent its headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Server {
    listener: TcpListener,
    state: Arc<http::State>,
    /// What the user should know before opening the page (a non-loopback bind).
    pub warnings: Vec<String>,
}

impl Server {
    /// Bind `host:port` (port 0: any free port) for `runs`.
    pub fn bind(host: &str, port: u16, runs: Vec<ExploredRun>) -> Result<Server> {
        let ip: IpAddr = match host {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => h.trim_matches(['[', ']']).parse().map_err(|_| {
                anyhow!(
                    "--host {h}: give an IP address to listen on (127.0.0.1, ::1, 0.0.0.0 or one of this machine's)"
                )
            })?,
        };
        let listener = TcpListener::bind(SocketAddr::new(ip, port)).map_err(|e| {
            anyhow!(
                "cannot listen on {host}:{port}: {e}{}",
                if port != 0 { " (pass --port 0 for any free port)" } else { "" }
            )
        })?;
        let bound = listener.local_addr()?;
        let mut warnings = Vec::new();
        if !ip.is_loopback() {
            warnings.push(format!(
                "listening on {bound}: other machines on the network can read these runs' pictures and metrics"
            ));
        }
        let state = Arc::new(http::State::new(runs, bound.port(), host));
        Ok(Server { listener, state, warnings })
    }

    /// The page's address (a loopback name when bound to all interfaces).
    pub fn url(&self) -> String {
        let addr = self.listener.local_addr().expect("a bound socket has an address");
        let host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}/", addr.port())
    }

    /// Answer requests until the process ends (Ctrl-C).
    pub fn serve(self) -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(WORKERS)
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the server's runtime")?;
        self.listener.set_nonblocking(true)?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            loop {
                // Accept errors (too many open files…) concern one client, not the server.
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = self.state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| state.clone().handle(req));
                    // A client that misbehaves only loses its own connection.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    }
}
