//! Fake vendor admin APIs, one module per vendor, for budgit's tests.
//!
//! Each fake implements exactly the endpoints budgit uses, with the request and
//! response shapes of the vendor's official SDK, plus scripted faults (429 with
//! `Retry-After`, 500, slow answers) and `/_fake/*` endpoints through which a test
//! seeds data. Tests check the fakes with the official SDKs under strict response
//! validation, so budgit is tested against shapes the vendor's own client accepts.

pub mod claude;
pub mod openai;

use std::net::SocketAddr;

/// Binds `listen`, prints `budgit-fake <name> listening on http://ADDR` to stderr and serves `app`.
pub async fn serve(name: &str, listen: &str, app: axum::Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr: SocketAddr = listener.local_addr()?;
    eprintln!("budgit-fake {name} listening on http://{addr}");
    axum::serve(listener, app).await
}

/// Serves `app` on a loopback port from a background thread; answers the address.
///
/// For tests and benchmarks that drive a fake from the same process. The server
/// lives until the process ends.
pub fn spawn(app: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    std::thread::Builder::new().name("budgit-fake".into()).spawn(move || {
        runtime.block_on(async move {
            if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                let _ = axum::serve(listener, app).await;
            }
        });
    })?;
    Ok(addr)
}
