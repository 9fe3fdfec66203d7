//! More idle connections than the server has file descriptors: `/healthz` is still answered
//! within 2 s, the server never runs out of descriptors, and the idle connections are closed
//! after the header timeout.
//!
//! The server runs in a child process (this test binary again, started through `sh` with
//! a low `ulimit -n`), so that its open-file limit is its own: lowering the limit of the
//! test process would starve every other test, and the flood's client side would need
//! descriptors under the same limit. The child starts with a soft limit of 128 under a
//! hard limit of 256: the server must raise the soft limit to 256 and lower its connection
//! cap (768 by default) to fit.
//!
//! `IDLE_FLOOD_CONNECTIONS` (600) and `IDLE_FLOOD_FILE_LIMIT` (256) change the figures,
//! e.g. `IDLE_FLOOD_CONNECTIONS=1074 IDLE_FLOOD_FILE_LIMIT=1024` for the flood of issue
//! 21; run with `--nocapture` to see the measurements.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use renzheng_app::settings::LogFormat;
use renzheng_app::telemetry::{get_subscriber, init_subscriber};
use renzheng_app::testing::TestEngine;
use renzheng_app::Settings;
use renzheng_server::Application;
use renzheng_vision::EngineConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Set in the child: it runs the server instead of the flood.
const SERVER_MODE: &str = "RENZHENG_IDLE_FLOOD_SERVER";
const TEST_NAME: &str = "idle_connections_beyond_the_file_limit_do_not_starve_healthz";
/// The child's header timeout: the idle connections must be gone soon after it.
const HEADER_TIMEOUT: Duration = Duration::from_millis(3_000);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn idle_connections_beyond_the_file_limit_do_not_starve_healthz() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::var_os(SERVER_MODE).is_some() {
        runtime.block_on(run_server());
    } else {
        runtime.block_on(flood());
    }
}

/// The child: a server on the colour engine with default limits but the header timeout,
/// until its standard input closes (the parent is done, or gone).
async fn run_server() {
    let subscriber = get_subscriber("warn,renzheng_server=info", LogFormat::Pretty, || {
        std::io::stderr()
    });
    init_subscriber(subscriber).unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.path().join("data"),
        key_dir: Some(data_dir.path().join("keys")),
        ..Settings::default()
    };
    settings.engine = EngineConfig::new("/nonexistent/no-pack-needed");
    settings.limits.header_read_timeout_ms = HEADER_TIMEOUT.as_millis() as u64;
    let app = Application::build_with_engine(settings, Arc::new(TestEngine::new()))
        .await
        .expect("building the application");
    println!("LISTENING {}", app.local_addr());
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await;
    };
    app.run_until(stdin_closed).await.unwrap();
}

/// Ends the child however the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// From `/proc/PID/status`, a size line (`VmRSS`…) in KiB.
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The soft and hard "Max open files" of `pid`.
fn file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// `/healthz` on a fresh connection: the status line and how long the answer took.
async fn timed_healthz(addr: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    (
        text.lines().next().unwrap_or("").to_owned(),
        started.elapsed(),
    )
}

/// Waits until the server closes `stream` or `deadline` passes; whether it closed.
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn flood() {
    let connections = env_number("IDLE_FLOOD_CONNECTIONS", 600) as usize;
    let file_limit = env_number("IDLE_FLOOD_FILE_LIMIT", 256);
    assert!(
        connections as u64 > file_limit,
        "the flood must exceed the descriptors"
    );
    // The hard limit first (lowering both), then a soft limit below it for the server to
    // raise.
    let script = format!(
        "ulimit -n {file_limit} && ulimit -Sn {} && exec \"$0\" \"$@\"",
        file_limit / 2
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(SERVER_MODE, "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let pid = child.0.id();
    let logs = Arc::new(Mutex::new(String::new()));
    std::thread::spawn({
        let logs = logs.clone();
        let stderr = child.0.stderr.take().unwrap();
        move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut logs = logs.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        }
    });
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn({
        let stdout = child.0.stdout.take().unwrap();
        move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // After the harness's unfinished "test … ... " line.
                if let Some((_, addr)) = line.split_once("LISTENING ") {
                    let _ = addr_tx.send(addr.trim().to_owned());
                }
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("the server did not start: {}", logs.lock().unwrap()));

    let (status, _) = timed_healthz(&addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (soft, hard) = file_limits(pid);
    assert_eq!(
        (soft, hard),
        (file_limit, file_limit),
        "the soft limit is raised to the hard one"
    );
    let rss_before = status_kib(pid, "VmRSS:");
    let fds_before = open_descriptors(pid);

    // `/healthz` probed every 100 ms from the flood's start to its end: the worst wait
    // is when every connection is taken by clients less than a second old.
    let stop = Arc::new(AtomicBool::new(false));
    let probes = tokio::spawn({
        let addr = addr.clone();
        let stop = stop.clone();
        async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                answers.push(timed_healthz(&addr).await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        }
    });

    // The flood: connections that never send a byte, opened all at once.
    let flood_started = Instant::now();
    let mut idle: Vec<TcpStream> =
        futures_util::future::join_all((0..connections).map(|_| TcpStream::connect(&addr)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let opened_in = flood_started.elapsed();
    let fds_flooded = open_descriptors(pid);
    let (status, healthz_took) = timed_healthz(&addr).await;
    let rss_flooded = status_kib(pid, "VmRSS:");
    let fds_after_healthz = open_descriptors(pid);

    // Every idle connection is closed: those served at the header timeout, those the
    // waiting room took sooner, those displaced sooner still.
    let deadline = flood_started + HEADER_TIMEOUT * 3 + Duration::from_secs(2);
    let mut still_open = 0;
    for stream in &mut idle {
        if !closed_by(stream, deadline).await {
            still_open += 1;
        }
    }
    let all_closed_in = flood_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let probes = probes.await.unwrap();
    let worst_probe = probes.iter().map(|(_, took)| *took).max().unwrap();
    let failed_probes: Vec<&String> = probes
        .iter()
        .map(|(status, _)| status)
        .filter(|status| *status != "HTTP/1.1 200 OK")
        .collect();
    let (status_after, healthz_after) = timed_healthz(&addr).await;
    let rss_peak = status_kib(pid, "VmHWM:");
    let logs = logs.lock().unwrap().clone();

    println!(
        "idle flood: {connections} idle connections against an open-file limit of {file_limit} \
         (soft raised from {} to {soft}); opened in {opened_in:?}; /healthz answered \
         {status:?} in {healthz_took:?} right after the flood opened, at worst in \
         {worst_probe:?} over {} probes during the flood, {healthz_after:?} after; server \
         descriptors {fds_before} before, {fds_flooded} flooded, {fds_after_healthz} after \
         /healthz; RSS {rss_before} KiB before, {rss_flooded} KiB flooded, peak \
         {rss_peak} KiB; idle connections all closed {all_closed_in:?} after the flood \
         began ({still_open} still open; header timeout {HEADER_TIMEOUT:?})",
        file_limit / 2,
        probes.len()
    );
    assert_eq!(status, "HTTP/1.1 200 OK", "{logs}");
    assert!(
        healthz_took < Duration::from_secs(2),
        "{healthz_took:?}\n{logs}"
    );
    assert!(failed_probes.is_empty(), "{failed_probes:?}");
    assert!(
        worst_probe < Duration::from_secs(2),
        "{worst_probe:?}\n{logs}"
    );
    assert!(
        (fds_flooded as u64) < file_limit && (fds_after_healthz as u64) < file_limit,
        "the server kept descriptors in reserve"
    );
    // Beyond the listen backlog (1,024) the kernel drops handshakes the server never
    // sees: such connections look open to the client until it sends something.
    if connections as u64 <= file_limit + 1024 {
        assert_eq!(still_open, 0, "every idle connection is closed");
    }
    assert_eq!(status_after, "HTTP/1.1 200 OK");
    if file_limit < 1_000 {
        // 768 connections do not fit under this limit: the cap was lowered, and said so.
        assert!(
            logs.contains("max_connections lowered"),
            "the lowered cap is logged: {logs}"
        );
    }
    drop(child.0.stdin.take());
}
