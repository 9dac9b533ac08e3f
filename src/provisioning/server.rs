//! The HTTPS listener: our own accept loop (so handlers see the client certificate) — tokio
//! `TcpListener` → rustls handshake (with a timeout) → the peer's leaf certificate, if it chains
//! to a device CA, and the addresses put into every request's extensions → hyper (HTTP/1.1 with keep-alive) serving an axum router:
//! `GET|HEAD /{*path}` for configs, `PUT /{*path}` for Poly uploads (size-limited, 413). On
//! shutdown it stops accepting and lets open connections finish their request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::provisioning::fetch::{FetchRequest, Reply};
use crate::provisioning::{ProvisioningService, Vendor};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS connection a request arrived on, in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The client's leaf certificate, when it chains to a configured device CA (others are dropped).
    pub peer_certificate: Option<Arc<CertificateDer<'static>>>,
}

/// Serves provisioning on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: Arc<ProvisioningService>, shutdown: CancellationToken) {
    let acceptor = TlsAcceptor::from(state.tls_config());
    let app = router(state.clone());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    connections.spawn(connection(tcp, remote, state.clone(), acceptor.clone(), app.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(target: "deskline::provisioning", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        connections.abort_all();
    }
}

/// The router alone (no TLS); requests must carry a [`ConnectionInfo`] extension.
pub fn router(state: Arc<ProvisioningService>) -> Router {
    Router::new()
        .route("/{*path}", get(get_file).put(put_file))
        .fallback(|| async { reply_response(Reply::NotFound) })
        .with_state(state)
}

async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    service: Arc<ProvisioningService>,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let Ok(local) = tcp.local_addr() else { return };
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(target: "deskline::provisioning", %remote, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(target: "deskline::provisioning", %remote, "TLS handshake timed out");
            return;
        }
    };
    let presented = tls.get_ref().1.peer_certificates();
    let peer_certificate = service.trusted_client_certificate(presented).map(Arc::new);
    if presented.is_some() && peer_certificate.is_none() {
        tracing::debug!(target: "deskline::provisioning", %remote, "client certificate not from a device CA: ignored");
    }
    let info = ConnectionInfo { remote, local, peer_certificate };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        app.clone().oneshot(request.map(Body::new))
    });
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(target: "deskline::provisioning", %remote, "connection ended: {e}");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn fetch_request<'a>(
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    conn: &'a ConnectionInfo,
) -> FetchRequest<'a> {
    FetchRequest {
        method: method.as_str(),
        path: uri.path(),
        target: uri.path_and_query().map_or(uri.path(), |p| p.as_str()),
        host: header_str(headers, header::HOST).or(uri.authority().map(|a| a.as_str())),
        user_agent: header_str(headers, header::USER_AGENT),
        authorization: header_str(headers, header::AUTHORIZATION),
        if_none_match: header_str(headers, header::IF_NONE_MATCH),
        remote: conn.remote,
        local: conn.local,
        peer_certificate: conn.peer_certificate.as_deref().map(|c| c.as_ref()),
    }
}

async fn get_file(
    State(service): State<Arc<ProvisioningService>>,
    Extension(conn): Extension<ConnectionInfo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    reply_response(service.handle_get(&fetch_request(&method, &uri, &headers, &conn)))
}

async fn put_file(
    State(service): State<Arc<ProvisioningService>>,
    Extension(conn): Extension<ConnectionInfo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let grant = match service.authorize_upload(&fetch_request(&method, &uri, &headers, &conn)) {
        Ok(grant) => grant,
        Err(reply) => return reply_response(reply),
    };
    let limit = service.max_upload_bytes();
    let too_large = || {
        service.report(Some(Vendor::Poly), "too_large");
        reply_response(Reply::PayloadTooLarge)
    };
    let declared = header_str(&headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return too_large(),
        Err(_) => return StatusCode::REQUEST_TIMEOUT.into_response(),
    };
    reply_response(service.store_upload(&grant, &bytes))
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The HTTP form of a reply. Error bodies are fixed texts: they never depend on the MAC.
pub fn reply_response(reply: Reply) -> Response {
    match reply {
        Reply::File { body, content_type, etag } => {
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(etag) = HeaderValue::from_str(&etag) {
                headers.insert(header::ETAG, etag);
            }
            response
        }
        Reply::NotModified { etag } => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(etag) = HeaderValue::from_str(&etag) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Reply::Challenge { www_authenticate } => {
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "401 Unauthorized: this file is served only to the phone it belongs to\n",
            );
            for value in www_authenticate {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().append(header::WWW_AUTHENTICATE, value);
                }
            }
            response
        }
        Reply::Forbidden => text(StatusCode::FORBIDDEN, "403 Forbidden\n"),
        Reply::NotFound => text(StatusCode::NOT_FOUND, "404 Not Found\n"),
        Reply::MethodNotAllowed => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        Reply::TooManyRequests { retry_after } => {
            let mut response = text(StatusCode::TOO_MANY_REQUESTS, "429 Too Many Requests: too many failed attempts\n");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            response
        }
        Reply::PayloadTooLarge => text(StatusCode::PAYLOAD_TOO_LARGE, "413 Payload Too Large\n"),
        Reply::Stored => StatusCode::NO_CONTENT.into_response(),
        Reply::Error => text(StatusCode::INTERNAL_SERVER_ERROR, "500 Internal Server Error\n"),
    }
}
