//! `imgUrl`: a local image server on 127.0.0.1 (allowlisted by the test settings), and the
//! SSRF defences around it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::helpers::*;

/// Serves test photos and misbehaving endpoints; returns its base URL.
async fn spawn_image_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let jpeg = |bytes: Vec<u8>| ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response();
    let router = Router::new()
        .route(
            "/same.jpg",
            get(move || async move { jpeg(photo(HU_SAME)) }),
        )
        .route(
            "/redirect",
            get(|| async { Redirect::temporary("/same.jpg") }),
        )
        .route(
            "/to-private",
            get(|| async { Redirect::temporary("http://10.0.0.1/same.jpg") }),
        )
        .route(
            "/to-other-loopback",
            get(move || async move {
                Redirect::temporary(&format!("http://127.0.0.2:{port}/same.jpg"))
            }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/big.jpg",
            get(move || async move {
                let mut bytes = photo(HU_SAME);
                bytes.resize(2 * 1024 * 1024, 0);
                jpeg(bytes)
            }),
        )
        .route(
            "/big-chunked.jpg",
            get(|| async {
                // No Content-Length: the cap must hold while streaming.
                let mut first = photo(HU_SAME);
                first.truncate(1024);
                let chunks = std::iter::once(Ok::<_, std::io::Error>(first))
                    .chain(std::iter::repeat_with(|| Ok(vec![0u8; 64 * 1024])).take(40));
                Response::builder()
                    .header(header::CONTENT_TYPE, "image/jpeg")
                    .body(Body::from_stream(futures_util::stream::iter(chunks)))
                    .unwrap()
            }),
        )
        .route(
            "/slow.jpg",
            get(move || async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                jpeg(photo(HU_SAME))
            }),
        )
        .route(
            "/page.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>not a photo</body></html>",
                )
            }),
        )
        .route("/missing.jpg", get(|| async { StatusCode::NOT_FOUND }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://127.0.0.1:{port}")
}

async fn check_url(app: &TestApp, url: &str) -> reqwest::Response {
    app.check_json(&json!({"name": HU.name, "idCard": HU.id(), "imgUrl": url}))
        .await
}

#[tokio::test]
async fn img_url_is_fetched_and_redirects_are_followed() {
    let app = spawn_app().await;
    let base = spawn_image_server().await;
    for path in ["/same.jpg", "/redirect"] {
        let (status, body) = status_and_body(check_url(&app, &format!("{base}{path}")).await).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["data"]["result"], 1, "{path}");
    }
}

#[tokio::test]
async fn private_and_non_allowlisted_targets_are_refused() {
    let app = spawn_app().await;
    let base = spawn_image_server().await;
    let port = base.rsplit(':').next().unwrap();
    for url in [
        format!("{base}/to-private"),
        format!("{base}/to-other-loopback"),
        format!("http://127.0.0.2:{port}/same.jpg"),
        "http://10.0.0.1/same.jpg".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]/same.jpg".to_owned(),
        format!("http://localhost:{port}/same.jpg").replace("localhost", "0.0.0.0"),
    ] {
        let (status, code, msg) = error_of(check_url(&app, &url).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "ImgUrlRefused"),
            "{url}: {msg}"
        );
    }
}

#[tokio::test]
async fn oversize_slow_broken_and_non_images_are_400() {
    let app = spawn_app().await;
    let base = spawn_image_server().await;
    let cases = [
        ("/big.jpg", "ImageTooLarge"),
        ("/big-chunked.jpg", "ImageTooLarge"),
        ("/slow.jpg", "ImgUrlTimeout"),
        ("/page.html", "InvalidImage"),
        ("/missing.jpg", "ImgUrlUnreachable"),
        ("/loop", "ImgUrlUnreachable"),
    ];
    for (path, expected) in cases {
        let started = std::time::Instant::now();
        let (status, code, msg) = error_of(check_url(&app, &format!("{base}{path}")).await).await;
        assert_eq!((status, code.as_str()), (400, expected), "{path}: {msg}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    for url in ["ftp://127.0.0.1/x.jpg", "not a url", "file:///etc/passwd"] {
        let (status, code, _) = error_of(check_url(&app, url).await).await;
        assert_eq!((status, code.as_str()), (400, "InvalidImgUrl"), "{url}");
    }
}
