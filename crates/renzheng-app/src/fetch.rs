//! The `imgUrl` fetcher, built against server-side request forgery.
//!
//! A caller-supplied URL makes *us* open connections, so by default only public addresses
//! may be reached:
//!
//! * every hop's host is checked: an IP literal directly, a name by a resolver that drops
//!   non-public addresses, and reqwest connects to exactly the addresses that resolver
//!   returned (no second lookup, so no DNS-rebinding window);
//! * redirects are followed by hand, at most `max_redirects`, each target re-checked before
//!   any connection is made;
//! * the body is streamed with a hard byte cap and the whole fetch has one deadline;
//! * proxies from the environment are ignored (they would bypass every check);
//! * at most `max_concurrent` fetches run at once, at most `max_per_host` to one host
//!   (a caller cannot turn us into a flood against one site); a fetch waits for a slot
//!   within its deadline;
//! * errors tell the caller "refused" or "unreachable", never the resolved address or
//!   whether a port answered (that would make us a port scanner); the details are logged.
//!
//! Operators may open specific networks with `img_url.allow` (the test suite opens
//! `127.0.0.1/32`).
//!
//! The balance alerts' webhooks go out under the same [`AddressPolicy`] (`img_url.allow`
//! included), through a client built by [`guarded_client`]: the address is checked when
//! the webhook is set ([`check_destination`]) and again at every delivery, at connection
//! time, since DNS can change in between.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, LOCATION};
use url::{Host, Url};

use crate::photo::{check_photo_bytes, PhotoError};
use crate::settings::ImgUrlSettings;

/// Why `imgUrl` gave no photo.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an absolute http(s) URL.
    #[error("not a valid http or https URL ({0})")]
    InvalidUrl(&'static str),
    /// `img_url.enabled` is off.
    #[error("imgUrl is disabled on this server; send the photo as image")]
    Disabled,
    /// The URL (or a redirect) points to an address that may not be fetched.
    #[error("refused: imgUrl must point to a public address")]
    Refused {
        /// The offending address.
        ip: IpAddr,
        /// Its class (loopback, private…).
        reason: &'static str,
    },
    /// Name resolution, connection or transfer failed (the detail is for the log).
    #[error("unreachable: the photo could not be fetched")]
    Unreachable(String),
    /// The server answered with an error status.
    #[error("unreachable: the photo could not be fetched")]
    Status(u16),
    /// More redirects than allowed.
    #[error("unreachable: the photo could not be fetched (more than {0} redirects)")]
    TooManyRedirects(usize),
    /// The whole fetch took longer than allowed.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The bytes are too many or not an image.
    #[error("{0}")]
    Photo(#[from] PhotoError),
}

/// Special-purpose IPv4 ranges (IANA registry) that are never fetched by default.
static V4_BLOCKED: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved for protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved (6to4 relay)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    ]
    .into_iter()
    .map(|(n, r)| (n.parse().expect("static network"), r))
    .collect()
});

/// Special-purpose IPv6 ranges. Embedded-IPv4 forms (mapped, NAT64, 6to4) are unwrapped
/// and judged as IPv4 before this table is consulted.
static V6_BLOCKED: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved (IPv4-compatible)"),
        ("64:ff9b:1::/48", "reserved (local NAT64)"),
        ("100::/64", "reserved (discard)"),
        ("2001::/23", "reserved for protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ]
    .into_iter()
    .map(|(n, r)| (n.parse().expect("static network"), r))
    .collect()
});

/// The IPv4 address an IPv6 address stands for, if it embeds one in a routable way
/// (v4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Why `ip` is not a public address, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => V4_BLOCKED
            .iter()
            .find(|(net, _)| net.contains(&IpAddr::V4(v4)))
            .map(|(_, r)| *r),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return non_public_reason(IpAddr::V4(v4));
            }
            if let Some((_, r)) = V6_BLOCKED.iter().find(|(net, _)| net.contains(&ip)) {
                return Some(r);
            }
            // Only global unicast (2000::/3) is routable on the internet.
            (v6.segments()[0] & 0xe000 != 0x2000).then_some("reserved")
        }
    }
}

/// Which addresses may be fetched.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// Public addresses plus the `allow`ed networks.
    pub fn new(allow: Vec<IpNet>) -> Self {
        AddressPolicy { allow }
    }

    /// `Ok` when the host of `url` may be reached as far as can be told without DNS: an
    /// IP literal is judged here, a name only by the resolver of [`guarded_client`] at
    /// connection time (or by [`check_destination`]).
    pub fn check_url_host(&self, url: &Url) -> Result<(), FetchError> {
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
            None => Err(FetchError::InvalidUrl("no host")),
        }
    }

    /// `Ok` when `ip` may be fetched, else why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), FetchError> {
        let unwrapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self
            .allow
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&unwrapped))
        {
            return Ok(());
        }
        match non_public_reason(ip) {
            None => Ok(()),
            Some(reason) => Err(FetchError::Refused { ip, reason }),
        }
    }
}

/// The resolver reqwest uses: system lookup, then the policy. reqwest connects only to
/// what this returns.
struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

/// The error [`PolicyResolver`] fails with, found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("every address of the host is refused")]
struct AllAddressesRefused(IpAddr, &'static str);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(FetchError::Refused { ip, reason }) => {
                        first_refusal.get_or_insert((ip, reason));
                        false
                    }
                    Err(_) => false,
                })
                .collect();
            if allowed.is_empty() {
                let (ip, reason) = first_refusal
                    .ok_or_else(|| std::io::Error::other("the host has no address"))?;
                return Err(Box::new(AllAddressesRefused(ip, reason))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client that connects only where `policy` allows: names are resolved by the
/// policy's resolver and connected to exactly the addresses it kept (no second lookup);
/// no proxy from the environment; no redirects; `timeout` for a whole request. IP literals
/// never reach a resolver: check them with [`AddressPolicy::check_url_host`] before each
/// request.
pub(crate) fn guarded_client(
    policy: Arc<AddressPolicy>,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(PolicyResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("renzheng/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Checks, without connecting, that `url` leads somewhere `policy` allows: an IP
/// literal by the policy; a name by resolving it now, refused when every address it has is
/// refused. A name that does not resolve now is not refused (DNS may be down, or not yet
/// set up); whatever it resolves to is checked again at each connection.
pub(crate) async fn check_destination(policy: &AddressPolicy, url: &Url) -> Result<(), FetchError> {
    check_scheme(url)?;
    policy.check_url_host(url)?;
    let Some(Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    let Ok(found) = tokio::net::lookup_host((name, 0)).await else {
        return Ok(());
    };
    let mut first_refusal = None;
    for address in found {
        match policy.check(address.ip()) {
            Ok(()) => return Ok(()),
            Err(refused) => {
                first_refusal.get_or_insert(refused);
            }
        }
    }
    first_refusal.map_or(Ok(()), Err)
}

/// Bounds on concurrent fetches: all of them, and per host.
#[derive(Debug)]
struct FetchSlots {
    all: Arc<tokio::sync::Semaphore>,
    per_host: usize,
    /// A host's semaphore lives while someone holds or waits for it.
    hosts: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// Both slots of one fetch; dropping it frees them (and forgets an idle host).
struct FetchPermit<'a> {
    slots: &'a FetchSlots,
    host: String,
    _all: tokio::sync::OwnedSemaphorePermit,
    host_permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for FetchPermit<'_> {
    fn drop(&mut self) {
        drop(self.host_permit.take());
        let mut hosts = self.slots.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts
            .get(&self.host)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            hosts.remove(&self.host);
        }
    }
}

impl FetchSlots {
    fn new(all: usize, per_host: usize) -> Self {
        FetchSlots {
            all: Arc::new(tokio::sync::Semaphore::new(all.max(1))),
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    async fn acquire(&self, host: &str) -> FetchPermit<'_> {
        let host_slots = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            hosts
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_host)))
                .clone()
        };
        // The host's slot first, so waiting for a busy host does not hold a global slot.
        let host_permit = host_slots
            .acquire_owned()
            .await
            .expect("fetch semaphores are never closed");
        let all = self
            .all
            .clone()
            .acquire_owned()
            .await
            .expect("fetch semaphores are never closed");
        FetchPermit {
            slots: self,
            host: host.to_owned(),
            _all: all,
            host_permit: Some(host_permit),
        }
    }
}

/// Fetches photos from caller-supplied URLs, safely.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    slots: Arc<FetchSlots>,
    enabled: bool,
    timeout: Duration,
    max_redirects: usize,
    max_bytes: usize,
}

impl Fetcher {
    /// A fetcher for `settings`, capping photos at `max_bytes`.
    pub fn new(settings: &ImgUrlSettings, max_bytes: usize) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(AddressPolicy::new(settings.allow.clone()));
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .user_agent(concat!("renzheng/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Fetcher {
            client,
            policy,
            slots: Arc::new(FetchSlots::new(
                settings.max_concurrent,
                settings.max_per_host,
            )),
            enabled: settings.enabled,
            timeout: Duration::from_millis(settings.timeout_ms),
            max_redirects: settings.max_redirects,
            max_bytes,
        })
    }

    /// The address policy (`img_url.allow` included), which webhooks share.
    pub(crate) fn policy(&self) -> &Arc<AddressPolicy> {
        &self.policy
    }

    /// Parses and checks the syntax of `imgUrl` (the validation step; nothing is fetched).
    pub fn parse_url(&self, raw: &str) -> Result<Url, FetchError> {
        if !self.enabled {
            return Err(FetchError::Disabled);
        }
        let url = Url::parse(raw.trim()).map_err(|_| FetchError::InvalidUrl("unparsable"))?;
        check_scheme(&url)?;
        Ok(url)
    }

    /// Downloads the photo at `url`, following redirects, under one deadline (waiting for
    /// a fetch slot included).
    pub async fn fetch(&self, url: Url) -> Result<Vec<u8>, FetchError> {
        let millis = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let result = tokio::time::timeout(self.timeout, self.fetch_following(url))
            .await
            .map_err(|_| FetchError::Timeout(millis))
            .and_then(|r| r);
        if let Err(e) = &result {
            // The caller gets "refused"/"unreachable"; the operator gets the details.
            tracing::info!(error = ?e, "imgUrl gave no photo");
        }
        result
    }

    async fn fetch_following(&self, mut url: Url) -> Result<Vec<u8>, FetchError> {
        for _hop in 0..=self.max_redirects {
            self.precheck(&url)?;
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let _slot = self.slots.acquire(&host).await;
            let response = self
                .client
                .get(url.clone())
                .header(ACCEPT, "image/*")
                .send()
                .await
                .map_err(|e| classify(&e))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::InvalidUrl("redirect without a Location"))?;
                url = url
                    .join(location)
                    .map_err(|_| FetchError::InvalidUrl("redirect to an unparsable URL"))?;
                tracing::debug!(host = url.host_str().unwrap_or(""), "imgUrl redirected");
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            return self.read_body(response).await;
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }

    /// Refuses a wrong scheme or a forbidden IP literal before any connection.
    fn precheck(&self, url: &Url) -> Result<(), FetchError> {
        check_scheme(url)?;
        // Names are checked by the resolver, at connection time.
        self.policy.check_url_host(url)
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let too_large = |size| PhotoError::TooLarge {
            size,
            limit: self.max_bytes,
        };
        if let Some(len) = response.content_length() {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > self.max_bytes {
                return Err(too_large(len).into());
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large(body.len() + chunk.len()).into());
            }
            body.extend_from_slice(&chunk);
        }
        check_photo_bytes(&body, self.max_bytes)?;
        Ok(body)
    }
}

fn check_scheme(url: &Url) -> Result<(), FetchError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        _ => Err(FetchError::InvalidUrl("only http and https are allowed")),
    }
}

/// Turns a reqwest error into ours, finding the resolver's refusal in the chain. Never
/// quotes the URL (its query may carry anything).
pub(crate) fn classify(e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(AllAddressesRefused(ip, reason)) = err.downcast_ref::<AllAddressesRefused>() {
            return FetchError::Refused { ip: *ip, reason };
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Unreachable("connection timed out".into())
    } else if e.is_connect() {
        FetchError::Unreachable("could not connect".into())
    } else if e.is_body() || e.is_decode() {
        FetchError::Unreachable("the transfer failed".into())
    } else {
        FetchError::Unreachable("the request failed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        non_public_reason(s.parse().unwrap()).is_some()
    }

    #[test]
    fn non_public_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "127.0.0.2",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:db8::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn allowlist_opens_exactly_its_networks() {
        let p = AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(p.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check("127.0.0.2".parse().unwrap()).is_err());
        assert!(p.check("10.0.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn url_validation() {
        let f = Fetcher::new(&ImgUrlSettings::default(), 1024).unwrap();
        assert!(f.parse_url("https://example.com/a.jpg").is_ok());
        assert!(matches!(
            f.parse_url("ftp://example.com/a.jpg"),
            Err(FetchError::InvalidUrl(_))
        ));
        assert!(matches!(
            f.parse_url("not a url"),
            Err(FetchError::InvalidUrl(_))
        ));
    }

    #[tokio::test]
    async fn private_literal_is_refused_before_connecting() {
        let f = Fetcher::new(&ImgUrlSettings::default(), 1024).unwrap();
        let err = f
            .fetch(Url::parse("http://10.0.0.1/x.jpg").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::Refused {
                    reason: "private",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let f = Fetcher::new(&ImgUrlSettings::default(), 1024).unwrap();
        let err = f
            .fetch(Url::parse("http://localhost:9/x.jpg").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
    }

    /// A server that answers every connection after `hold`, counting how many it holds
    /// at once.
    async fn counting_server(hold: Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (open2, peak2) = (open.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (open, peak) = (open2.clone(), peak2.clone());
                tokio::spawn(async move {
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    tokio::time::sleep(hold).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (format!("http://{addr}/x.jpg"), peak)
    }

    #[tokio::test]
    async fn concurrent_fetches_to_one_host_are_capped() {
        let settings = ImgUrlSettings {
            allow: vec!["127.0.0.1/32".parse().unwrap()],
            max_per_host: 2,
            max_concurrent: 16,
            ..ImgUrlSettings::default()
        };
        let fetcher = Fetcher::new(&settings, 1 << 20).unwrap();
        let (url, peak) = counting_server(Duration::from_millis(150)).await;
        let fetches = (0..6).map(|_| {
            let fetcher = fetcher.clone();
            let url = fetcher.parse_url(&url).unwrap();
            async move { fetcher.fetch(url).await }
        });
        let results = futures_util::future::join_all(fetches).await;
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(FetchError::Status(404)))));
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Idle hosts are forgotten.
        assert!(fetcher.slots.hosts.lock().unwrap().is_empty());
    }

    #[test]
    fn errors_do_not_reveal_addresses_or_ports() {
        let refused = FetchError::Refused {
            ip: "10.1.2.3".parse().unwrap(),
            reason: "private",
        };
        assert!(!refused.to_string().contains("10.1.2.3"));
        assert!(!refused.to_string().contains("private"));
        let messages: Vec<String> = [
            FetchError::Unreachable("could not connect".into()),
            FetchError::Unreachable("connection timed out".into()),
            FetchError::Status(502),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert!(messages.iter().all(|m| m == &messages[0]), "{messages:?}");
    }
}
