//! Several nodes (the built binary) on one PostgreSQL database: what one node does, every
//! other node enforces within seconds (polled, 5 s deadline); a restarted node refuses what
//! was revoked while it was down; a node cut off from the database fails closed past
//! `max_staleness` and recovers; the change feed never skips a change.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, Http, Server, eventually, start_binary};
use crate::postgres::{Database, Proxy, server};

/// A node: the binary on `url`, in a directory of its own.
struct Node {
    http: Http,
    server: Server,
    dir: tempfile::TempDir,
    url: String,
}

impl Node {
    fn start(url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        Node::start_in(dir, url)
    }

    fn start_in(dir: tempfile::TempDir, url: &str) -> Node {
        let (server, address) = start_binary(
            dir.path(),
            &[
                ("KEYWARD__DATABASE__URL", url),
                ("KEYWARD__CLUSTER__POLL_INTERVAL", "1s"),
                ("KEYWARD__CLUSTER__MAX_STALENESS", "3s"),
            ],
        );
        Node {
            http: Http::new(&address),
            server,
            dir,
            url: url.to_owned(),
        }
    }

    fn kill(self) -> (tempfile::TempDir, String) {
        let Node { server, dir, url, .. } = self;
        drop(server); // SIGKILL
        (dir, url)
    }

    /// What the node logged (for a failure's message).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    async fn login(&self) -> String {
        let r = self
            .http
            .post("/v1/auth/token")
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    async fn me(&self, key: &str) -> StatusCode {
        self.http.get("/v1/me").api_key(key).await.status()
    }

    async fn create_key(&self, token: &str, body: Value) -> (String, String) {
        let r = self.http.post("/v1/keys").as_(token).json(&body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text());
        let made = r.json();
        (
            made["id"].as_str().unwrap().to_owned(),
            made["key"].as_str().unwrap().to_owned(),
        )
    }
}

/// Waits (up to 5 s) until `key` answers `status` on every node.
async fn everywhere(nodes: &[&Node], key: &str, status: StatusCode) {
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            eventually(|| async { node.me(key).await == status }).await,
            "node {} still answers {} for the key, not {status}; its log:\n{}",
            i + 1,
            node.me(key).await,
            node.log()
        );
    }
}

#[tokio::test]
async fn what_one_node_does_every_node_enforces() {
    let Some(server) = server("cluster::what_one_node_does_every_node_enforces") else {
        return;
    };
    let db = Database::create(&server).await;
    let (one, two, three) = (Node::start(&db.url), Node::start(&db.url), Node::start(&db.url));
    let token = one.login().await;

    // Made on node 1, works on 2 and 3.
    let (id, key) = one.create_key(&token, json!({"name": "everywhere"})).await;
    everywhere(&[&one, &two, &three], &key, StatusCode::OK).await;
    // Revoked on 2: refused on 2 at once, and on 1 and 3.
    let token_two = two.login().await;
    assert_eq!(
        two.http
            .delete(&format!("/v1/keys/{id}"))
            .as_(&token_two)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(two.me(&key).await, StatusCode::UNAUTHORIZED);
    everywhere(&[&one, &three], &key, StatusCode::UNAUTHORIZED).await;

    // A user disabled on 3: their keys and their access tokens stop on 1 and 2.
    let r = one
        .http
        .post("/v1/users")
        .as_(&token)
        .json(&json!({"username": "ada", "password": "ada's password"}))
        .await;
    let ada_id = r.json()["id"].as_str().unwrap().to_owned();
    let r = two
        .http
        .post("/v1/auth/token")
        .json(&json!({"username": "ada", "password": "ada's password"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}\n{}", r.text(), two.log());
    let ada_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let (_, ada_key) = two.create_key(&ada_token, json!({})).await;
    everywhere(&[&one, &two, &three], &ada_key, StatusCode::OK).await;
    let token_three = three.login().await;
    let r = three
        .http
        .patch(&format!("/v1/users/{ada_id}"))
        .as_(&token_three)
        .json(&json!({"disabled": true}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    everywhere(&[&one, &two, &three], &ada_key, StatusCode::UNAUTHORIZED).await;
    for node in [&one, &two] {
        assert!(
            eventually(|| async { node.http.get("/v1/me").as_(&ada_token).await.status() == StatusCode::UNAUTHORIZED })
                .await,
            "the access token still works"
        );
    }

    // A rotation's grace ends on every node.
    let (old_id, old_key) = one.create_key(&token, json!({"name": "rotating"})).await;
    everywhere(&[&one, &two, &three], &old_key, StatusCode::OK).await;
    let r = one
        .http
        .post(&format!("/v1/keys/{old_id}/rotate"))
        .as_(&token)
        .json(&json!({"grace": "1s"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let new_key = r.json()["key"].as_str().unwrap().to_owned();
    everywhere(&[&one, &two, &three], &new_key, StatusCode::OK).await;
    everywhere(&[&one, &two, &three], &old_key, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_node_restarted_after_revocations_refuses_them_from_its_first_answer() {
    let Some(server) = server("cluster::a_node_restarted_after_revocations_refuses_them_from_its_first_answer") else {
        return;
    };
    let db = Database::create(&server).await;
    let (one, three) = (Node::start(&db.url), Node::start(&db.url));
    let token = one.login().await;
    let mut keys = Vec::new();
    for n in 0..20 {
        keys.push(one.create_key(&token, json!({"name": format!("k{n}")})).await);
    }
    everywhere(&[&three], &keys[19].1, StatusCode::OK).await;
    let (dir, url) = three.kill();
    for (id, _) in &keys {
        assert_eq!(
            one.http.delete(&format!("/v1/keys/{id}")).as_(&token).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let three = Node::start_in(dir, &url);
    for (_, key) in &keys {
        assert_eq!(
            three.me(key).await,
            StatusCode::UNAUTHORIZED,
            "a key revoked while node 3 was down"
        );
    }
}

// Multi-threaded: starting a node blocks a thread (it reads the node's log), and the proxy
// must keep serving it meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_database_fails_closed_and_recovers() {
    let Some(server) = server("cluster::a_node_cut_off_from_the_database_fails_closed_and_recovers") else {
        return;
    };
    let db = Database::create(&server).await;
    let proxy = Proxy::start(db.address()).await;
    // Node 1 reaches the database through the proxy; node 2 directly.
    let one = Node::start(&db.url_via(proxy.addr));
    let two = Node::start(&db.url);
    let token = two.login().await;
    let (keep_id, keep) = two.create_key(&token, json!({"name": "kept"})).await;
    let (gone_id, gone) = two.create_key(&token, json!({"name": "revoked while cut off"})).await;
    everywhere(&[&one], &gone, StatusCode::OK).await;
    let _ = keep_id;

    // Under load, the database goes away for node 1.
    let load = {
        let http = one.http.clone();
        let keep = keep.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..200 {
                statuses.push(http.get("/v1/me").api_key(&keep).await.status());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    proxy.cut();
    // Past max_staleness (3 s) node 1 refuses every credential with 503 and Retry-After,
    // and says it is not ready; /healthz, the JWKS and /openapi.json stay up.
    assert!(
        eventually(|| async { one.me(&keep).await == StatusCode::SERVICE_UNAVAILABLE }).await,
        "a stale node still answers credentials"
    );
    let r = one.http.get("/v1/me").api_key(&keep).await;
    assert!(r.header("retry-after").is_some());
    assert_eq!(one.http.get("/readyz").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    for path in ["/healthz", "/.well-known/jwks.json", "/openapi.json"] {
        assert_eq!(one.http.get(path).await.status(), StatusCode::OK, "{path}");
    }
    // Meanwhile a key is revoked through node 2.
    assert_eq!(
        two.http
            .delete(&format!("/v1/keys/{gone_id}"))
            .as_(&token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    proxy.restore();
    everywhere(&[&one], &keep, StatusCode::OK).await;
    everywhere(&[&one, &two], &gone, StatusCode::UNAUTHORIZED).await;
    assert_eq!(one.http.get("/readyz").await.status(), StatusCode::OK);
    // Node 1 writes again (its writer reconnected), and node 2 sees it.
    let (_, made) = one
        .create_key(&one.login().await, json!({"name": "after the cut"}))
        .await;
    everywhere(&[&two], &made, StatusCode::OK).await;
    let statuses = load.await.unwrap();
    assert!(statuses.contains(&StatusCode::SERVICE_UNAVAILABLE));
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_change_feed_never_skips_a_revocation() {
    let Some(server) = server("cluster::the_change_feed_never_skips_a_revocation") else {
        return;
    };
    let db = Database::create(&server).await;
    let nodes = [Node::start(&db.url), Node::start(&db.url), Node::start(&db.url)];
    let token = nodes[0].login().await;
    let mut keys = Vec::new();
    for n in 0..60 {
        keys.push(nodes[0].create_key(&token, json!({"name": format!("k{n}")})).await);
    }
    everywhere(&[&nodes[1], &nodes[2]], &keys[59].1, StatusCode::OK).await;
    // Eight clients revoke at once, through two nodes.
    let clients: Vec<_> = keys
        .chunks(8)
        .enumerate()
        .map(|(i, chunk)| {
            let http = nodes[i % 2].http.clone();
            let token = token.clone();
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            tokio::spawn(async move {
                for id in ids {
                    assert_eq!(
                        http.delete(&format!("/v1/keys/{id}")).as_(&token).await.status(),
                        StatusCode::NO_CONTENT
                    );
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    for (_, key) in &keys {
        everywhere(&[&nodes[0], &nodes[1], &nodes[2]], key, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn guessing_passwords_through_several_nodes_gains_nothing() {
    let Some(server) = server("cluster::guessing_passwords_through_several_nodes_gains_nothing") else {
        return;
    };
    let db = Database::create(&server).await;
    // Three nodes up before the first guess: the third sees none of them, and the first
    // block (one second) is not spent waiting for a node to start.
    let (one, two, three) = (Node::start(&db.url), Node::start(&db.url), Node::start(&db.url));
    let guess = |node: &Node, password: &'static str| {
        let http = node.http.clone();
        async move {
            http.post("/v1/auth/token")
                .json(&json!({"username": "admin", "password": password}))
                .await
                .status()
        }
    };
    // Five wrong guesses, alternating nodes: the count is the database's, not each node's.
    for n in 0..5 {
        let node = if n % 2 == 0 { &one } else { &two };
        assert_eq!(guess(node, "wrong guess").await, StatusCode::UNAUTHORIZED);
    }
    // A node that saw none of the guesses refuses too: the count is in the database.
    assert_eq!(guess(&three, "wrong guess").await, StatusCode::TOO_MANY_REQUESTS);
    // Blocked on both nodes, even with the right password.
    for node in [&one, &two] {
        let r = node
            .http
            .post("/v1/auth/token")
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{}", node.log());
        assert!(r.header("retry-after").is_some());
    }
}

/// `keyward ARGS` against the database at `url`, `stdin` piped in; stdout, or the failure.
fn cli(url: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(dir.path())
        .env("KEYWARD__DATABASE__URL", url)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "keyward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("keyward.db").exists(), "no SQLite file beside a url");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_cli_on_the_same_url_acts_on_every_node() {
    let Some(server) = server("cluster::the_cli_on_the_same_url_acts_on_every_node") else {
        return;
    };
    let db = Database::create(&server).await;
    let (one, two) = (Node::start(&db.url), Node::start(&db.url));
    cli(&db.url, &["user", "add", "ada"], "ada's long password\n");
    let key = cli(
        &db.url,
        &["key", "create", "--user", "ada", "--name", "from the cli"],
        "",
    );
    let key = key.trim();
    everywhere(&[&one, &two], key, StatusCode::OK).await;
    let r = two
        .http
        .post("/v1/auth/token")
        .json(&json!({"username": "ada", "password": "ada's long password"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a password set by the CLI works on a node");
    let listed = cli(&db.url, &["key", "list", "--user", "ada"], "");
    let id = listed
        .lines()
        .find(|l| l.contains("from the cli"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    cli(&db.url, &["key", "revoke", &id], "");
    everywhere(&[&one, &two], key, StatusCode::UNAUTHORIZED).await;
    let checked = cli(&db.url, &["check"], "");
    assert!(
        checked.contains("PostgreSQL") && checked.contains("reachable"),
        "{checked}"
    );
    assert!(!checked.contains("keyward_test:keyward_test"), "{checked}");
}

/// Credits are exact across nodes: two nodes spending one key's 300 credits, 16 clients
/// each, get 300 successes between them, never one more (each node reserves blocks with a
/// conditional update on the locked row).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_are_exact_across_nodes() {
    let Some(server) = server("cluster::credits_are_exact_across_nodes") else {
        return;
    };
    let db = Database::create(&server).await;
    let (one, two) = (Node::start(&db.url), Node::start(&db.url));
    let token = one.login().await;
    let (_, key) = one.create_key(&token, json!({"credits": {"remaining": 300}})).await;
    everywhere(&[&one, &two], &key, StatusCode::OK).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let http = if i % 2 == 0 { one.http.clone() } else { two.http.clone() };
        let key = key.clone();
        tasks.spawn(async move {
            let mut ok = 0;
            for _ in 0..40 {
                match http.get("/v1/me").api_key(&key).await.status() {
                    StatusCode::OK => ok += 1,
                    StatusCode::TOO_MANY_REQUESTS => {}
                    other => panic!("unexpected {other}"),
                }
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        ok += done.unwrap();
    }
    // The two `everywhere` checks spent one credit on each node.
    assert_eq!(ok + 2, 300, "successes across both nodes");
}

/// Credits set anew on one node void the blocks other nodes reserved before the change: once
/// the change reaches them (the feed, within a second), they spend only the new balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_set_on_one_node_void_blocks_held_by_another() {
    let Some(server) = server("cluster::credits_set_on_one_node_void_blocks_held_by_another") else {
        return;
    };
    let db = Database::create(&server).await;
    let (one, two) = (Node::start(&db.url), Node::start(&db.url));
    let token = one.login().await;
    let (id, key) = one.create_key(&token, json!({"credits": {"remaining": 1000}})).await;
    // Node two spends one and holds the rest of a block of 64.
    everywhere(&[&two], &key, StatusCode::OK).await;
    let r = one
        .http
        .patch(&format!("/v1/keys/{id}"))
        .as_(&token)
        .json(&json!({"credits": {"remaining": 5}}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let token_two = two.login().await;
    let shown = || async {
        two.http.get(&format!("/v1/keys/{id}")).as_(&token_two).await.json()["credits"]["remaining"].as_u64()
    };
    assert!(
        eventually(|| async { shown().await == Some(5) }).await,
        "node two still shows {:?}, its old block with the new balance; its log:\n{}",
        shown().await,
        two.log()
    );
    let mut ok = 0;
    for _ in 0..20 {
        if two.me(&key).await == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 5, "only the new balance is spent on node two");
    assert_eq!(one.me(&key).await, StatusCode::TOO_MANY_REQUESTS);
}
