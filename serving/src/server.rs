//! Running the server: open and migrate the store, load the signing keys, bind, serve
//! until a shutdown signal, then finish the requests in flight and close the WebSockets
//! with 1001 (going away).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use crate::app::{AppState, router};
use crate::config::{DatabaseConfig, ServeConfig};
use crate::store::Store;
use crate::{Error, Result};

/// How often each replica reloads the signing keys (and rotates them when due). Must be
/// shorter than [`crate::auth::token::PUBLISH_LEAD_SECS`].
pub const KEY_SYNC_INTERVAL: Duration = Duration::from_secs(60);

/// How long a shutdown waits for WebSockets to finish their closing handshakes.
const SOCKET_DRAIN: Duration = Duration::from_secs(3);

/// Opens the store named by `database.url` and applies pending migrations; returns the
/// store and how many migrations ran.
pub async fn open_store(database: &DatabaseConfig) -> Result<(Store, usize)> {
    let url = database
        .url
        .as_deref()
        .ok_or_else(|| Error::Config("database.url is not set".to_owned()))?;
    let store = Store::connect(url, database.max_connections).await?;
    let ran = store.migrate().await?;
    Ok((store, ran))
}

/// Serves until `shutdown` completes, then drains requests in flight.
/// `on_listening` is told the bound address (useful with port 0).
pub async fn run_with(
    config: &ServeConfig,
    database: &DatabaseConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr, &Store, usize),
) -> Result<()> {
    config.validate()?;
    let (store, migrations) = open_store(database).await?;
    let state = AppState::new(store.clone(), config.clone()).await?;
    let listener = tokio::net::TcpListener::bind(&config.bind)
        .await
        .map_err(|source| Error::Io {
            addr: config.bind.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        addr: config.bind.clone(),
        source,
    })?;
    on_listening(addr, &store, migrations);
    let background = state.start_background();
    let hub = state.hub.clone();
    let closing = hub.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Sockets are not requests: tell them to close (1001), or the drain would
            // wait for clients that never leave.
            closing.begin_closing();
        })
        .await;
    let open = hub.drained(SOCKET_DRAIN).await;
    if open > 0 {
        tracing::warn!(open, "WebSockets still open at shutdown; dropping them");
    }
    drop(background);
    store.close().await;
    served.map_err(|source| Error::Io {
        addr: addr.to_string(),
        source,
    })
}

/// [`run_with`] without a listening callback.
pub async fn run(
    config: &ServeConfig,
    database: &DatabaseConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    run_with(config, database, shutdown, |_, _, _| {}).await
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
