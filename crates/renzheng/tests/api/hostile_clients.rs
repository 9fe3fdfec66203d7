//! Clients that try to hold the server's connections: slow headers, idle keep-alive,
//! more connections than the cap.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection in time")
        .ok();
    out
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off() {
    let app = spawn_test_app_with(|s| s.limits.header_read_timeout_ms = 600).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte every 150 ms: the headers never end.
    let dribble = async {
        for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if stream.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), dribble).await;
    let answer = read_to_close(&mut stream, Duration::from_secs(3)).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    // Either a 408 or a plain close; never a 200 to the unfinished request.
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.contains("200 OK"), "{text}");
    // The server still answers others.
    let r = app
        .request(reqwest::Method::GET, "/healthz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_test_app_with(|s| s.limits.header_read_timeout_ms = 500).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // The answer, then nothing more: the server closes the idle connection.
    let answer = read_to_close(&mut stream, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = spawn_test_app_with(|s| {
        s.limits.max_connections = 2;
        s.limits.header_read_timeout_ms = 20_000;
    })
    .await;
    let mut held = vec![connect(&app).await, connect(&app).await];
    // Let the server accept both.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let url = format!("{}/healthz", app.address);
    assert!(
        client.get(&url).send().await.is_err(),
        "a third connection is not served while two are held"
    );
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(held);
}

/// Sends a check's head announcing a large body, and never the body: the answer must
/// come from the head alone.
async fn head_only_answer(app: &TestApp, credentials: &str) -> (String, Duration) {
    let mut stream = connect(app).await;
    let head = format!(
        "POST /faceidcard/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 1900000\r\n{credentials}\r\n"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    (
        String::from_utf8_lossy(&answer[..n]).into_owned(),
        started.elapsed(),
    )
}

/// Strangers cost no body read: a wrong AppCode, and a signature naming an AppKey no app
/// has, are refused from the request's head while the announced body is still unsent.
#[tokio::test]
async fn strangers_are_refused_before_their_body_is_read() {
    let app = spawn_test_app().await;
    let (text, took) = head_only_answer(&app, "Authorization: APPCODE wrong-code\r\n").await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The wall clock here is the client's, for a fresh X-Ca-Timestamp.
    #[allow(clippy::disallowed_methods)]
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let signed = format!(
        "X-Ca-Key: no-such-key\r\nX-Ca-Signature: c2lnbmF0dXJl\r\n\
         X-Ca-Signature-Method: HmacSHA256\r\nX-Ca-Timestamp: {now_ms}\r\n\
         X-Ca-Nonce: 2d8a6f1e-0b7c-4a55-9e2f-5b1f3c9d7e01\r\n\
         X-Ca-Signature-Headers: x-ca-key,x-ca-nonce,x-ca-timestamp\r\n"
    );
    let (text, took) = head_only_answer(&app, &signed).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("InvalidAppKey"), "{text}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// Whether the server has closed `stream` (end of stream or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (e.g. a 408) before the close: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends a `/healthz` on a fresh connection and returns the status line and how long the
/// answer took.
async fn timed_healthz(app: &TestApp) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = connect(app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&answer);
    (
        text.lines().next().unwrap_or("").to_owned(),
        started.elapsed(),
    )
}

/// hyper's own header timer starts only once HTTP/1 has been detected: a connection that
/// never sends a byte is closed by the server's first-request deadline.
#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let app = spawn_test_app_with(|s| s.limits.header_read_timeout_ms = 500).await;
    let mut silent = connect(&app).await;
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
}

/// Half an HTTP/2 preface keeps the protocol undecided; the deadline covers that too.
#[tokio::test]
async fn a_stalled_http2_preface_is_closed_after_the_header_timeout() {
    let app = spawn_test_app_with(|s| s.limits.header_read_timeout_ms = 500).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(3)).await);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
}

/// Every connection taken by clients that send nothing, and more of them waiting: a
/// request still gets in (within about the second it takes an idle connection to become
/// displaceable), taking the place of the longest-idle connection, while the newcomers
/// that send nothing are turned away.
#[tokio::test]
async fn when_full_a_request_takes_the_place_of_the_longest_idle_connection() {
    let app = spawn_test_app_with(|s| {
        s.limits.max_connections = 4;
        s.limits.header_read_timeout_ms = 20_000;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&app).await);
        // Accepted one after the other: the first is the longest idle.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // More than the waiting room (4 here) behind them.
    let mut extra = Vec::new();
    for _ in 0..30 {
        extra.push(connect(&app).await);
    }
    let (status, took) = timed_healthz(&app).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The longest idle made room; the extra ones, which sent nothing, were closed.
    assert!(closed_within(&mut held[0], Duration::from_millis(500)).await);
    for stream in &mut extra {
        assert!(closed_within(stream, Duration::from_secs(3)).await);
    }
}

/// A connection with a request in flight is never closed to make room, however long it
/// has been since its last byte: the newcomer waits.
#[tokio::test]
async fn a_request_in_flight_is_not_displaced() {
    let app = spawn_test_app_with(|s| {
        s.limits.max_connections = 1;
        s.limits.header_read_timeout_ms = 20_000;
    })
    .await;
    let mut busy = connect(&app).await;
    let body = br#"{"name":"x"}"#;
    let head = format!(
        "POST /faceidcard/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nAuthorization: APPCODE {}\r\nConnection: close\r\n\r\n",
        body.len(),
        app.app_code
    );
    // The head now, the body later: the handler is reading it.
    busy.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(1_500))
        .build()
        .unwrap();
    assert!(
        client
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .is_err(),
        "the only slot is busy: the newcomer waits"
    );
    busy.write_all(body).await.unwrap();
    let answer = read_to_close(&mut busy, Duration::from_secs(5)).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 "),
        "the request in flight was answered"
    );
}
