//! The one stylesheet, compiled into the binary. It is the only asset: no script, no
//! font, no image from anywhere.

use axum::http::header;
use axum::response::IntoResponse;

const STYLE: &str = include_str!("style.css");

/// `GET /assets/style.css`.
pub async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
}
