//! Requests in, replies out: the Host/Origin guard, the body limit, routing, and errors as JSON.

use super::api;
use super::runs::ExploredRun;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, HOST, HeaderMap, HeaderValue, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// Largest request body (a decode of 1024 codes of 100 numbers is ~2 MB of text at worst; the page
/// sends far less).
pub const MAX_BODY: usize = 4 << 20;

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// A failed request: its status and a message naming the input and the problem.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError { status: 400, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: 404, message: message.into() }
    }
    /// The run cannot answer this yet (no checkpoint) or at all (no data).
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError { status: 409, message: message.into() }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What a handler answers.
pub enum Reply {
    Json(serde_json::Value),
    Png(Vec<u8>, Vec<(&'static str, String)>),
    File(Vec<u8>, &'static str),
}

pub struct State {
    pub runs: Vec<ExploredRun>,
    port: u16,
    /// The `--host` name, accepted in Host headers besides IP literals and localhost.
    host: String,
}

/// A parsed request: method, path segments and query pairs (no percent-decoding: no name we serve
/// needs it, so an encoded `..` or `/` simply matches nothing).
pub struct Call<'a> {
    pub method: &'a Method,
    pub segments: Vec<&'a str>,
    pub query: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

impl Call<'_> {
    /// Query parameter `name` parsed as T, or `default`; unknown parameters are refused by `check_query`.
    pub fn param<T: std::str::FromStr>(&self, name: &str, default: T) -> ApiResult<T> {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// Query parameter `name` parsed as T, if given.
    pub fn opt<T: std::str::FromStr>(&self, name: &str) -> ApiResult<Option<T>> {
        match self.query.iter().rev().find(|(k, _)| *k == name) {
            None => Ok(None),
            Some((_, v)) => {
                v.parse().map(Some).map_err(|_| ApiError::bad(format!("query parameter {name}={v} is not valid")))
            }
        }
    }

    pub fn check_query(&self, allowed: &[&str]) -> ApiResult<()> {
        match self.query.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((k, _)) => Err(ApiError::bad(format!(
                "unknown query parameter '{k}' (this endpoint takes: {})",
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
            ))),
            None => Ok(()),
        }
    }

    /// The body as JSON of type T.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> ApiResult<T> {
        serde_json::from_slice(self.body).map_err(|e| {
            let text = String::from_utf8_lossy(self.body);
            // JSON has no NaN or Infinity; say so rather than only where parsing stopped.
            let hint = if ["NaN", "Infinity"].iter().any(|t| text.contains(t)) || e.to_string().contains("out of range")
            {
                " (numbers must be finite: JSON has no NaN or Infinity)"
            } else {
                ""
            };
            ApiError::bad(format!("request body: {e}{hint}"))
        })
    }
}

impl State {
    pub fn new(runs: Vec<ExploredRun>, port: u16, host: &str) -> State {
        State { runs, port, host: host.to_ascii_lowercase() }
    }

    /// Whether `authority` (a Host header, or an Origin's host:port) names this server: the bound
    /// port, and an IP literal, localhost or the --host name. A DNS name that resolves here is
    /// exactly what a rebinding attack sends, so other names are refused.
    fn is_own(&self, authority: &str) -> bool {
        let (name, port) = match authority.rsplit_once(':') {
            Some((n, p)) if !n.ends_with(':') || n.starts_with('[') => (n, p),
            _ => return false,
        };
        if port.parse::<u16>().ok() != Some(self.port) {
            return false;
        }
        let name = name.to_ascii_lowercase();
        name == "localhost" || name == self.host || name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
    }

    fn guard(&self, headers: &HeaderMap) -> ApiResult<()> {
        let header = |n| headers.get(n).map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let Some(host) = header(HOST) else {
            return Err(ApiError::bad("the request has no Host header"));
        };
        if !self.is_own(&host) {
            return Err(ApiError {
                status: 403,
                message: format!(
                    "Host '{host}' is not this server's address (a guard against DNS rebinding); \
                     open http://127.0.0.1:{}/",
                    self.port
                ),
            });
        }
        if let Some(origin) = header(ORIGIN) {
            let authority = origin.strip_prefix("http://").unwrap_or("");
            if !self.is_own(authority) {
                return Err(ApiError {
                    status: 403,
                    message: format!("cross-site request from Origin '{origin}' refused"),
                });
            }
        }
        Ok(())
    }

    /// Answer one request. The body is read up to the limit (hyper never allocates what a
    /// Content-Length announces); the work runs on the blocking pool, and a bug there becomes a
    /// 500 with its message rather than a dead server.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let too_big =
            || ApiError { status: 413, message: format!("request body over the {} MiB limit", MAX_BODY >> 20) };
        let reply = async {
            self.guard(req.headers())?;
            let announced = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if announced.is_some_and(|n| n > MAX_BODY as u64) {
                return Err(too_big());
            }
            let (parts, body) = req.into_parts();
            let body = match Limited::new(body, MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_big()),
                Err(e) => return Err(ApiError::bad(format!("cannot read the request body: {e}"))),
            };
            let state = self.clone();
            tokio::task::spawn_blocking(move || {
                let path = parts.uri.path();
                let call = Call {
                    method: &parts.method,
                    segments: path.split('/').filter(|s| !s.is_empty()).collect(),
                    query: parts
                        .uri
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .filter(|s| !s.is_empty())
                        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                        .collect(),
                    body: &body,
                };
                state.route(&call)
            })
            .await
            .unwrap_or_else(|e| {
                let msg = e.try_into_panic().ok().and_then(|p| {
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                });
                Err(ApiError { status: 500, message: format!("internal error: {}", msg.unwrap_or_default()) })
            })
        }
        .await;
        let (status, ty, bytes, extra) = match reply {
            Ok(Reply::Json(v)) => (200, "application/json", v.to_string().into_bytes(), vec![]),
            Ok(Reply::Png(bytes, extra)) => (200, "image/png", bytes, extra),
            Ok(Reply::File(bytes, ty)) => (200, ty, bytes, vec![]),
            Err(e) => (e.status, "application/json", json!({ "error": e.message }).to_string().into_bytes(), vec![]),
        };
        let mut r = Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("Content-Type", ty)
            .header("Cache-Control", "no-store")
            .header("X-Content-Type-Options", "nosniff")
            .header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        for (k, v) in extra {
            r = r.header(k, v);
        }
        Ok(r.body(Full::new(Bytes::from(bytes))).expect("the headers we set are valid"))
    }

    fn route(&self, c: &Call) -> ApiResult<Reply> {
        let get = *c.method == Method::GET;
        let post = *c.method == Method::POST;
        let method_error =
            || ApiError { status: 405, message: format!("{} is not allowed on /{}", c.method, c.segments.join("/")) };
        match c.segments.as_slice() {
            [] | ["index.html"] if get => Ok(Reply::File(PAGE.as_bytes().to_vec(), "text/html; charset=utf-8")),
            ["app.js"] if get => Ok(Reply::File(SCRIPT.as_bytes().to_vec(), "text/javascript; charset=utf-8")),
            ["app.css"] if get => Ok(Reply::File(STYLE.as_bytes().to_vec(), "text/css; charset=utf-8")),
            ["api", "runs"] if get => api::list(self, c),
            ["api", "runs", id, rest @ ..] => {
                let run = self
                    .runs
                    .iter()
                    .find(|r| r.id == *id)
                    .ok_or_else(|| ApiError::not_found(format!("unknown run '{id}' (see /api/runs)")))?;
                match rest {
                    ["space"] if get => api::space(run, c),
                    ["decode"] if post => api::decode(run, c),
                    ["encode"] if post => api::encode(run, c),
                    ["samples"] if get => api::samples(run, c),
                    ["test", file] if get => api::test_image(run, c, file),
                    ["metrics"] if get => api::metrics(run, c),
                    ["latest-samples.png"] if get => api::latest_samples(run, c),
                    ["eval.json"] if get => api::eval_json(run, c),
                    ["report.html"] if get => api::report(run, c),
                    [
                        "space" | "samples" | "metrics" | "latest-samples.png" | "eval.json" | "report.html" | "decode"
                        | "encode",
                    ]
                    | ["test", _] => Err(method_error()),
                    _ => Err(ApiError::not_found(format!("no such endpoint /{}", c.segments.join("/")))),
                }
            }
            ["api", "runs"] | [] | ["index.html" | "app.js" | "app.css"] => Err(method_error()),
            _ => Err(ApiError::not_found(format!("no such page /{}", c.segments.join("/")))),
        }
    }
}
