//! Who a request comes from: the peer address of the connection, or, when the server is told
//! it runs behind a reverse proxy, the address that proxy appended last to `X-Forwarded-For`
//! (the only entry it vouches for). IPv6 addresses are taken by their /64, the block one
//! subscriber usually holds, so that rotating addresses inside it does not escape limits.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};

/// The client's address, as a request extension (set by [`client_addr`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl ClientAddr {
    /// The address of a request, or `unknown` when no middleware set it (in-process tests).
    pub fn of(extensions: &axum::http::Extensions) -> String {
        extensions
            .get::<ClientAddr>()
            .map_or_else(|| "unknown".to_string(), |a| a.0.clone())
    }
}

/// Extractor for handlers: the client's address (`unknown` when no middleware recorded one).
pub struct Origin(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Origin(ClientAddr::of(&parts.extensions)))
    }
}

/// How client addresses are found.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientConfig {
    /// Trust the last `X-Forwarded-For` entry (the server runs behind a reverse proxy).
    pub trust_proxy: bool,
}

/// Middleware: records the client's address as a [`ClientAddr`] extension.
pub async fn client_addr(
    State(config): State<ClientConfig>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = if config.trust_proxy {
        forwarded_for(req.headers()).or(peer)
    } else {
        peer
    };
    let addr = ip.map_or_else(|| "unknown".to_string(), key_of);
    req.extensions_mut().insert(ClientAddr(addr));
    next.run(req).await
}

/// The last entry of `X-Forwarded-For`, when it is an address.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().last()?;
    let last = value.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse().ok()
}

/// The limiting key of an address: itself for IPv4, its /64 for IPv6.
fn key_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn addresses_and_blocks() {
        assert_eq!(key_of("10.1.2.3".parse().expect("ip")), "10.1.2.3");
        assert_eq!(
            key_of("2001:db8:1:2:aaaa::1".parse().expect("ip")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(key_of("::ffff:10.0.0.1".parse().expect("ip")), "10.0.0.1");
    }

    #[test]
    fn the_proxys_own_entry_is_the_last() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        assert_eq!(forwarded_for(&h), "203.0.113.7".parse().ok());
        h.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(forwarded_for(&h), None);
    }
}
