//! `Content-Range` parsing for resumed downloads (RFC 9110 §14.4).

/// `bytes first-last/complete` of a 206 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub first: u64,
    pub last: u64,
    /// `None` when the server wrote `*` (length unknown).
    pub complete: Option<u64>,
}

pub(crate) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let (range, complete) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.trim().split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = last.trim().parse().ok()?;
    let complete = match complete.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    if last < first || complete.is_some_and(|c| last >= c) {
        return None;
    }
    Some(ContentRange {
        first,
        last,
        complete,
    })
}

/// The complete length in the `bytes */complete` of a 416 answer.
pub(crate) fn parse_unsatisfied_range(value: &str) -> Option<u64> {
    value.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_parsed_and_nonsense_rejected() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some(ContentRange {
                first: 100,
                last: 199,
                complete: Some(200)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*").map(|r| r.complete),
            Some(None)
        );
        for bad in [
            "",
            "bytes */200",
            "items 0-1/2",
            "bytes 9-5/10",
            "bytes 0-10/10",
            "bytes a-b/c",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
        assert_eq!(parse_unsatisfied_range("bytes */4096"), Some(4096));
        assert_eq!(parse_unsatisfied_range("bytes 0-1/2"), None);
    }
}
