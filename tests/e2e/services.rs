//! Private Redis and PostgreSQL servers for the tests that restart them: a restart of the
//! shared servers would break every other test running in parallel.
//!
//! Each runs from the OS packages (which `make test` installs when it starts project-local
//! servers) on a free loopback port, with its data in a temporary directory, and is stopped
//! when dropped. PostgreSQL refuses to run as root, so under root it runs as the packages'
//! `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

const START_DEADLINE: Duration = Duration::from_secs(30);

/// A free TCP port on loopback (free when asked; the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + START_DEADLINE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn temp_dir(what: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("eam-test-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A Redis server of the test's own, without persistence: a restart loses the queue, as a
/// crashed cache node in production would.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            port: free_port(),
            dir: temp_dir("redis"),
            child: None,
        };
        redis.spawn().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs (install the redis-server package)");
        self.child = Some(child);
        wait_for_port(self.port, "Redis").await;
    }

    /// Stops the server (its data is gone) and starts a new one on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// Stops the server; [`PrivateRedis::restart`] brings one back.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
    }

    /// Freezes the server (SIGSTOP): connections open and stay open, but nothing answers, as
    /// when the network drops packets. [`PrivateRedis::thaw`] lets it go on.
    pub async fn freeze(&self) {
        self.signal("-STOP").await;
    }

    pub async fn thaw(&self) {
        self.signal("-CONT").await;
    }

    async fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("the server runs");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.start_kill().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A PostgreSQL cluster of the test's own; `postgres` is its superuser, with trust auth.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort();
    versions.pop().expect(
        "PostgreSQL server binaries under /usr/lib/postgresql (install the postgresql package)",
    )
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when we are root.
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PrivatePostgres {
    pub async fn start() -> PrivatePostgres {
        let bin = pg_bin();
        let dir = temp_dir("pg");
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL data directory");
        }
        let status = pg_command(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("initdb runs");
        assert!(status.success(), "initdb of a private cluster");
        let mut pg = PrivatePostgres {
            port: free_port(),
            dir,
            bin,
            child: None,
        };
        pg.spawn().await;
        pg
    }

    /// A URL of the cluster's `postgres` database, as its superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn spawn(&mut self) {
        let child = pg_command(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("postgres runs");
        self.child = Some(child);
        wait_for_port(self.port, "PostgreSQL").await;
        // The port opens before the server accepts sessions ("the database system is starting
        // up"): wait for one that works.
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            use sqlx::Connection as _;
            match sqlx::PgConnection::connect(&self.url()).await {
                Ok(conn) => {
                    conn.close().await.ok();
                    break;
                }
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "PostgreSQL on port {} does not accept sessions: {e}",
                    self.port
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server if it runs (see [`PrivatePostgres::stop`]) and starts it again on the
    /// same port with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// Stops the server the fast way: open sessions are cut, open transactions roll back.
    pub async fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        let status = pg_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl stop");
        if let Some(mut child) = self.child.take() {
            child.wait().await.ok();
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Under root the child is `runuser`: stop the server itself through its data directory.
        let pg_ctl = self.bin.join("pg_ctl");
        let mut stop = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            std::process::Command::new(&pg_ctl)
        };
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok();
        if let Some(child) = self.child.as_mut() {
            child.start_kill().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
