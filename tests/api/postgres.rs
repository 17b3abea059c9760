//! PostgreSQL for the tests: the server `KEYWARD_TEST_POSTGRES` names (CI starts one with
//! `.ci/postgres.sh`), a database of its own for each test (dropped at the end), and a TCP
//! proxy a test can cut to play a network failure between nodes and the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_postgres::NoTls;

use crate::helpers::skip;

/// The url of the server tests make their databases on; `None` after saying SKIPPED (and
/// failing under CI) when there is none.
pub fn server(test: &str) -> Option<String> {
    match std::env::var("KEYWARD_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip(
                test,
                "no PostgreSQL: run `export KEYWARD_TEST_POSTGRES=$(bash .ci/postgres.sh)` first",
            );
            None
        }
    }
}

/// A fresh database, dropped (with its connections) when this is dropped.
pub struct Database {
    server: String,
    name: String,
    /// Its url.
    pub url: String,
}

impl Database {
    pub async fn create(server: &str) -> Database {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap();
        let name = format!(
            "keyward_test_{}",
            random.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let (client, connection) = tokio_postgres::connect(server, NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let (base, _) = server
            .rsplit_once('/')
            .expect("KEYWARD_TEST_POSTGRES ends in /<database>");
        Database {
            server: server.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// The url with its host and port replaced by `addr` (to go through a proxy).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let (credentials, rest) = self.url.rsplit_once('@').unwrap();
        let (_, path) = rest.split_once('/').unwrap();
        format!("{credentials}@{addr}/{path}")
    }

    /// The database's host and port.
    pub fn address(&self) -> SocketAddr {
        let rest = self.url.rsplit_once('@').unwrap().1;
        let host_port = rest.split('/').next().unwrap();
        host_port.parse().unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok((client, connection)) = tokio_postgres::connect(&server, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A TCP proxy in front of the database. `cut()` closes every connection through it and
/// refuses new ones until `restore()`: the shared server keeps serving everyone else.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (generation, cuts) = watch::channel(0u64);
        let accepting = Arc::clone(&open);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !accepting.load(Ordering::SeqCst) {
                    let _ = client.shutdown().await;
                    continue;
                }
                let mut cut = cuts.clone();
                // Only a cut after this connection was made ends it.
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, open, generation }
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
