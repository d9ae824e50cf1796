//! The page shell every console page shares (header with the user and
//! the navigation their role may use, the CSRF token for the page's
//! scripts, the content-security policy), and HTML escaping.

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

use crate::store::users::Role;
use crate::web::auth::{Credential, Principal};

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The navigation entries a role sees.
pub fn nav(role: Role) -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    if matches!(role, Role::Admin | Role::Collector) {
        v.push(("/queue", "Escalations"));
        v.push(("/holds", "Holds"));
    }
    if matches!(role, Role::Admin | Role::Qa) {
        v.push(("/qa", "QA review"));
        v.push(("/dashboard", "Dashboard"));
    }
    v
}

/// A whole page: shell, navigation, content, and the page's scripts.
pub fn page(title: &str, who: &Principal, content: &str, scripts: &[&str]) -> Response {
    with_csp(Html(shell(title, who, content, scripts, "")).into_response())
}

/// A page whose content the console script fills from the API: the shell
/// with `<main data-page=".." data-id="..">`.
pub fn view(
    title: &str,
    who: &Principal,
    page_name: &str,
    id: Option<i64>,
    scripts: &[&str],
) -> Response {
    let id = id.map(|n| format!(" data-id=\"{n}\"")).unwrap_or_default();
    let attrs = format!(" data-page=\"{}\"{id}", escape(page_name));
    with_csp(Html(shell(title, who, "", scripts, &attrs)).into_response())
}

fn shell(
    title: &str,
    who: &Principal,
    content: &str,
    scripts: &[&str],
    main_attrs: &str,
) -> String {
    let csrf = match &who.credential {
        Credential::Session { csrf, .. } => csrf.as_str(),
        Credential::Token => "",
    };
    let mut nav_html = String::new();
    for (href, text) in nav(who.role) {
        nav_html.push_str(&format!("<a href=\"{href}\">{}</a>", escape(text)));
    }
    let mut script_tags = String::new();
    for s in scripts {
        script_tags.push_str(&format!(
            "<script src=\"/static/{}\" defer></script>",
            escape(s)
        ));
    }
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"csrf-token\" content=\"{csrf}\">\
<title>{title} · duecall</title><link rel=\"stylesheet\" href=\"/static/console.css\">{script_tags}</head>\
<body><header class=\"top\"><a class=\"brand\" href=\"/\">duecall</a><nav>{nav_html}</nav>\
<div class=\"who\"><span>{user} · {role}</span>\
<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\">Log out</button></form></div></header>\
<main id=\"main\"{main_attrs}>{content}</main></body></html>",
        csrf = escape(csrf),
        title = escape(title),
        user = escape(who.actor.name()),
        role = who.role.as_str(),
    );
    body
}

/// Adds the console's content-security policy: everything from this
/// origin only, no inline scripts.
pub fn with_csp(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; \
             script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("王伟"), "王伟");
    }

    #[test]
    fn collectors_see_no_qa_pages_and_qa_no_queue() {
        assert!(nav(Role::Collector).iter().all(|(h, _)| *h != "/qa"));
        assert!(nav(Role::Qa).iter().all(|(h, _)| *h != "/queue"));
        assert_eq!(nav(Role::Admin).len(), 4);
    }
}
