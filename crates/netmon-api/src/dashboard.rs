//! The live dashboard ("radar"): static assets compiled into the binary and served at `/`
//! and `/assets/*`, without the token (they hold no data; every data request the page makes
//! carries it). See `docs/radar.md`.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of the dashboard's page and assets: scripts, styles, images
/// and connections from this origin only, no inline script, no plugins, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../assets/index.html"),
    },
    Asset {
        path: "/assets/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
    Asset {
        path: "/assets/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/style.css"),
    },
    Asset {
        path: "/assets/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../assets/icon.svg"),
    },
];

/// The paths of the dashboard's files.
pub(crate) fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

/// Whether `path` is one of the dashboard's files (served without the token).
pub(crate) fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

/// The response for the dashboard file at `path`.
pub(crate) fn serve(path: &str) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.path == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = a.body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_references_only_embedded_assets_and_no_inline_script() {
        let index = ASSETS.first().map(|a| a.body).unwrap_or_default();
        for part in index
            .split("src=\"")
            .skip(1)
            .chain(index.split("href=\"").skip(1))
        {
            let url = part.split('"').next().unwrap_or_default();
            assert!(is_asset(url), "{url} is not embedded");
        }
        assert!(!index.contains("<script>"), "inline script");
        let handler = index.match_indices(" on").any(|(i, _)| {
            let rest = index.get(i + 3..).unwrap_or_default();
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest.as_bytes().get(name_len) == Some(&b'=')
        });
        assert!(!handler, "inline event handler");
        assert!(!index.contains("http://") && !index.contains("https://"));
        let js = ASSETS
            .iter()
            .find(|a| a.path == "/assets/app.js")
            .map(|a| a.body);
        let js = js.unwrap_or_default();
        assert!(
            !js.contains("innerHTML"),
            "app.js must build the DOM with textContent"
        );
        assert!(!js.contains("eval("));
    }
}
