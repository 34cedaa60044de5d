//! The check every plot's SVG passes before it is inlined into a page unescaped.

use anyhow::Result;

/// The elements an inlined SVG may use (what plotters draws with, and a few of their kind).
const SVG_ELEMENTS: [&str; 13] =
    ["svg", "g", "rect", "circle", "ellipse", "line", "polyline", "polygon", "path", "text", "tspan", "title", "desc"];

/// `svg` if it is safe to put into the page as markup: one `<svg>` element (an XML declaration
/// before it is dropped) of drawing elements only ([`SVG_ELEMENTS`]), tags balanced, attributes
/// double-quoted with no `<` in them and none of them an event handler (`on...`), a link
/// (`...href`, `src`) or a style; no comment, CDATA or processing instruction. Else why not.
pub fn checked_svg(svg: &str) -> Result<&str, String> {
    let mut s = svg.trim();
    if s.starts_with("<?xml") {
        s = s[s.find("?>").ok_or("an unterminated XML declaration")? + 2..].trim_start();
    }
    if !s.starts_with("<svg") {
        return Err("it does not start with <svg>".into());
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = s;
    let mut roots = 0;
    while let Some(i) = rest.find('<') {
        if stack.is_empty() && !rest[..i].trim().is_empty() {
            return Err("text outside the <svg> element".into());
        }
        rest = &rest[i + 1..];
        let closing = rest.starts_with('/');
        if closing {
            rest = &rest[1..];
        }
        let n = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        let name = &rest[..n];
        if !SVG_ELEMENTS.contains(&name) {
            let shown: String = rest.chars().take(n.max(1)).collect();
            return Err(format!("an element that is not a drawing element: <{shown}>"));
        }
        rest = &rest[n..];
        if closing {
            rest = rest.trim_start();
            if !rest.starts_with('>') || stack.pop() != Some(name) {
                return Err(format!("an unbalanced </{name}>"));
            }
            rest = &rest[1..];
            continue;
        }
        if stack.is_empty() {
            roots += 1;
            if roots > 1 || name != "svg" {
                return Err("more than one root element".into());
            }
        }
        loop {
            let t = rest.trim_start();
            if t.len() == rest.len() && !t.starts_with('>') && !t.starts_with("/>") {
                return Err(format!("a malformed <{name}> tag"));
            }
            rest = t;
            if let Some(r) = rest.strip_prefix("/>") {
                rest = r;
                break;
            }
            if let Some(r) = rest.strip_prefix('>') {
                rest = r;
                stack.push(name);
                break;
            }
            let a = rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))).unwrap_or(0);
            let attr = rest[..a].to_ascii_lowercase();
            if attr.is_empty() {
                return Err(format!("a malformed <{name}> tag"));
            }
            if attr.starts_with("on") || attr.contains("href") || attr == "src" || attr == "style" {
                return Err(format!("a {attr} attribute"));
            }
            rest = rest[a..].strip_prefix("=\"").ok_or_else(|| format!("an unquoted {attr} attribute"))?;
            let end = rest.find('"').ok_or_else(|| format!("an unterminated {attr} attribute"))?;
            if rest[..end].contains('<') {
                return Err(format!("a < in the {attr} attribute"));
            }
            rest = &rest[end + 1..];
        }
        if stack.is_empty() && roots == 1 && name == "svg" {
            // A self-closed root: nothing may follow.
            break;
        }
    }
    if !stack.is_empty() {
        return Err(format!("an unclosed <{}>", stack[stack.len() - 1]));
    }
    if !rest.trim().is_empty() {
        return Err("text after the </svg>".into());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_check() {
        let ok = "<svg width=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect x=\"0\"/>\n\
                  <text x=\"1\">&lt;script&gt; a &amp; b</text>\n</svg>\n";
        assert_eq!(checked_svg(ok), Ok(ok.trim()));
        assert!(checked_svg(&format!("<?xml version=\"1.0\"?>\n{ok}")).is_ok());
        for bad in [
            "<div></div>",
            "<svg><script>alert(1)</script></svg>",
            "<svg><rect onload=\"alert(1)\"/></svg>",
            "<svg><rect ONclick=\"x\"/></svg>",
            "<svg><a xlink:href=\"javascript:x\"></a></svg>",
            "<svg><image href=\"x\"/></svg>",
            "<svg><rect style=\"x\"/></svg>",
            "<svg><rect x=1/></svg>",
            "<svg><rect x=\"<b>\"/></svg>",
            "<svg><text>a</svg>",
            "<svg></svg><svg></svg>",
            "<svg></svg><img src=x onerror=alert(2)>",
            "<svg><!-- c --></svg>",
            "<svg><text><![CDATA[x]]></text></svg>",
            "<svg><foreignObject><p>x</p></foreignObject></svg>",
            "<svg><rect x=\"1\"y=\"2\"/></svg>",
            "<svg",
        ] {
            assert!(checked_svg(bad).is_err(), "{bad} passed");
        }
    }
}
