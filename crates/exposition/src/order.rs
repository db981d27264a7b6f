//! A stable line order: the series of each family sorted by their label
//! sets (a histogram's `le` aside, so its buckets keep their order), since
//! a family's labels come out of a hash map in whatever order it holds
//! them and a scrape must not reorder what the previous one said.

/// `text` with each family's sample lines sorted by their labels (stable:
/// lines of one series keep their relative order).
pub(crate) fn stable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_by_cached_key(|l| series_key(l));
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut samples, &mut out);
            out.push_str(line);
            out.push('\n');
        } else if !line.is_empty() {
            samples.push(line);
        }
    }
    flush(&mut samples, &mut out);
    out
}

/// The label pairs of a sample line, `le` left out, as written.
fn series_key(line: &str) -> Vec<String> {
    let Some(open) = line.find(['{', ' ']).filter(|&i| line.as_bytes()[i] == b'{') else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in line[open + 1..].chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' | '}' if !quoted => {
                if !current.is_empty() && !current.starts_with("le=") {
                    pairs.push(std::mem::take(&mut current));
                }
                current.clear();
                if c == '}' {
                    break;
                }
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_sorted_by_labels_and_buckets_keep_their_order() {
        let text = "# HELP a A.\n# TYPE a gauge\na{x=\"b\"} 1\na{x=\"a,}\"} 2\n\
                    # HELP h H.\n# TYPE h histogram\n\
                    h_sum{p=\"z\"} 1\nh_bucket{p=\"z\",le=\"0.5\"} 1\nh_bucket{p=\"z\",le=\"+Inf\"} 1\n\
                    h_sum{p=\"a\"} 2\nh_bucket{p=\"a\",le=\"0.5\"} 0\nh_bucket{p=\"a\",le=\"+Inf\"} 2\nplain 3\n";
        let want = "# HELP a A.\n# TYPE a gauge\na{x=\"a,}\"} 2\na{x=\"b\"} 1\n\
                    # HELP h H.\n# TYPE h histogram\n\
                    plain 3\n\
                    h_sum{p=\"a\"} 2\nh_bucket{p=\"a\",le=\"0.5\"} 0\nh_bucket{p=\"a\",le=\"+Inf\"} 2\n\
                    h_sum{p=\"z\"} 1\nh_bucket{p=\"z\",le=\"0.5\"} 1\nh_bucket{p=\"z\",le=\"+Inf\"} 1\n";
        assert_eq!(stable(text), want);
    }
}
