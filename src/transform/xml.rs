//! Sitemaps (`<urlset>`, `<sitemapindex>`) minified losslessly: they are data,
//! so the whitespace-only text between their elements means nothing. Other
//! XML (feeds with XHTML content, `xml:space`, SVG) is left as written.

/// Minify a sitemap, or `None` when the text is not one kiln may touch.
pub fn minify_sitemap(text: &str) -> Option<String> {
    let is_sitemap = text.contains("<urlset") || text.contains("<sitemapindex");
    if !is_sitemap
        || text.contains("xml:space")
        || text.contains("<!DOCTYPE")
        || text.contains("<![CDATA[")
    {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(close) = rest.find('>') {
        out.push_str(&rest[..=close]);
        rest = &rest[close + 1..];
        let next = rest.find('<').unwrap_or(rest.len());
        if rest[..next].chars().all(char::is_whitespace) {
            rest = &rest[next..];
        }
    }
    out.push_str(rest.trim_end());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sitemaps_lose_whitespace_between_elements_only() {
        let text = "<?xml version=\"1.0\"?>\n<urlset xmlns=\"x\">\n  <url>\n    <loc>https://a.example/a b</loc>\n  </url>\n</urlset>\n";
        assert_eq!(
            minify_sitemap(text).unwrap(),
            "<?xml version=\"1.0\"?><urlset xmlns=\"x\"><url><loc>https://a.example/a b</loc></url></urlset>"
        );
    }

    #[test]
    fn other_xml_is_left_alone() {
        assert_eq!(
            minify_sitemap("<feed><content type=\"xhtml\"><p>a <b>b</b></p></content></feed>"),
            None
        );
        assert_eq!(
            minify_sitemap("<urlset xml:space=\"preserve\"> </urlset>"),
            None
        );
    }
}
