//! The page's files, compiled into the binary (`cli/web/`): one HTML page, its style sheet, and
//! two JavaScript modules — `view.mjs` (formatting and state, pure, tested with `node --test`)
//! and `page.mjs` (the DOM and the event stream). Nothing is fetched from anywhere else.

use super::http::Response;

const INDEX: &str = include_str!("../../web/index.html");
const STYLE: &str = include_str!("../../web/style.css");
const VIEW: &str = include_str!("../../web/view.mjs");
const PAGE: &str = include_str!("../../web/page.mjs");

/// The file served at `path`, if it is one of the page's.
pub fn get(path: &str) -> Option<Response> {
    let (body, content_type) = match path {
        "/" | "/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/style.css" => (STYLE, "text/css; charset=utf-8"),
        "/view.mjs" => (VIEW, "text/javascript; charset=utf-8"),
        "/page.mjs" => (PAGE, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    Some(Response {
        status: 200,
        content_type,
        body: body.as_bytes().to_vec(),
        page: content_type.starts_with("text/html"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        // Every src/href of the page is one of ours (nothing from the internet).
        for attr in ["src=\"", "href=\""] {
            for part in INDEX.split(attr).skip(1) {
                let target = part.split('"').next().unwrap_or("");
                assert!(get(target).is_some(), "{attr}{target} is not served");
            }
        }
        for text in [INDEX, STYLE, VIEW, PAGE] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("innerHTML"), "names are set as text only");
        }
        assert!(get("/etc/passwd").is_none() && get("/../Cargo.toml").is_none());
    }
}
