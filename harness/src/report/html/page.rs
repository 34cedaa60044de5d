//! What every page is rendered with: the templates (`templates/*.html`, compiled into the binary,
//! autoescaping on), the style sheet and the script, and `render`, which renders a page's
//! template with what every page has (title, style, script, Content Security Policy, generator).

use anyhow::{anyhow, Result};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::results::provenance::git_revision;

/// The templates, by name (the `.html` ending turns autoescaping on).
const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("run.html", include_str!("../templates/run.html")),
    ("comparison.html", include_str!("../templates/comparison.html")),
    ("history.html", include_str!("../templates/history.html")),
];
const STYLE: &str = include_str!("../templates/report.css");
const SCRIPT: &str = include_str!("../templates/report.js");

/// Standard base64 with padding (for the script's hash in the Content Security Policy).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page's Content Security Policy: nothing fetched, no script but the page's own.
fn csp() -> String {
    let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; img-src data:; \
         base-uri 'none'; form-action 'none'"
    )
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(|e| anyhow!("the HTML template {name} is broken: {e:#}"))?;
    }
    Ok(env)
}

/// Renders the page template `name` with `ctx` and what every page has (title, style, script,
/// policy, generator).
pub(super) fn render<S: Serialize>(name: &str, title: &str, ctx: S) -> Result<String> {
    let env = environment()?;
    let generator = match git_revision() {
        Some(r) => format!("{} at {}", env!("CARGO_PKG_VERSION"), &r[..12.min(r.len())]),
        None => env!("CARGO_PKG_VERSION").to_string(),
    };
    let page = minijinja::context! {
        title => title,
        generator => generator,
        csp => csp(),
        style => Value::from_safe_string(STYLE.to_string()),
        script => Value::from_safe_string(SCRIPT.to_string()),
        ..Value::from(minijinja::value::Serde(&ctx))
    };
    env.get_template(name)
        .and_then(|t| t.render(page))
        .map_err(|e| anyhow!("cannot render the HTML report ({name}): {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // The SHA-256 of "abc", as `openssl dgst -sha256 -binary | base64` prints it.
        assert_eq!(base64(&Sha256::digest(b"abc")), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }
}
