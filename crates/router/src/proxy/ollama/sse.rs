//! Splitting an OpenAI server-sent-event stream into the `data` of each event, whatever the chunk
//! boundaries (an event, a line or a UTF-8 character may be split across chunks).

/// Bytes of an SSE stream not yet split into events.
#[derive(Debug, Default)]
pub struct SseBuffer {
    buf: Vec<u8>,
    /// `data` lines of the event being read, joined with `\n`.
    data: Option<String>,
}

impl SseBuffer {
    /// Adds `chunk` and returns the `data` of every event it completed, in order. Events without
    /// `data` (comments, keep-alives) are skipped.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        let buf = std::mem::take(&mut self.buf);
        while let Some(offset) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + offset;
            let line = trim_cr(&buf[start..end]);
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    events.push(data);
                }
            } else {
                self.field(line);
            }
            start = end + 1;
        }
        self.buf = buf;
        self.buf.drain(..start);
        events
    }

    /// The `data` of an event the stream ended in without its blank line, if any.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let line = trim_cr(&rest);
        if !line.is_empty() {
            self.field(line);
        }
        self.data.take()
    }

    fn field(&mut self, line: &[u8]) {
        let Some(value) = line.strip_prefix(b"data:") else {
            // `event:`, `id:`, `retry:` and `:comment` lines carry nothing the translation uses.
            return;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let value = String::from_utf8_lossy(value);
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(&value);
            }
            None => self.data = Some(value.into_owned()),
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let stream = "data: {\"a\":\"é\"}\n\n: keep-alive\n\ndata: [DONE]\n\n".as_bytes();
        for split in 0..stream.len() {
            let mut sse = SseBuffer::default();
            let mut events = sse.push(&stream[..split]);
            events.extend(sse.push(&stream[split..]));
            assert_eq!(events, vec!["{\"a\":\"é\"}", "[DONE]"], "split at {split}");
            assert_eq!(sse.finish(), None);
        }
    }

    #[test]
    fn crlf_and_multi_line_data_are_understood() {
        let mut sse = SseBuffer::default();
        let events = sse.push(b"event: x\r\ndata: a\r\ndata: b\r\n\r\n");
        assert_eq!(events, vec!["a\nb"]);
    }

    #[test]
    fn an_unterminated_last_event_is_returned_by_finish() {
        let mut sse = SseBuffer::default();
        assert!(sse.push(b"data: [DONE]").is_empty());
        assert_eq!(sse.finish().as_deref(), Some("[DONE]"));
    }

    mod props {
        use super::*;
        use llm_router_testkit::prop::{config, cut, cuts};
        use proptest::prelude::*;
        use proptest::sample::Index;

        /// The events of `stream` fed in the pieces `cuts` makes, and what `finish` returns.
        fn events(stream: &[u8], cuts: &[Index]) -> (Vec<String>, Option<String>) {
            let mut sse = SseBuffer::default();
            let mut events = Vec::new();
            for piece in cut(stream, cuts) {
                events.extend(sse.push(piece));
            }
            (events, sse.finish())
        }

        /// One line of an SSE stream: data, other fields, comments, blank lines; LF or CRLF.
        fn line() -> impl Strategy<Value = String> {
            let text = "[^\r\n]{0,24}";
            (
                prop_oneof![
                    3 => text.prop_map(|t| format!("data: {t}")),
                    1 => text.prop_map(|t| format!("data:{t}")),
                    1 => text.prop_map(|t| format!("event: {t}")),
                    1 => text.prop_map(|t| format!(": {t}")),
                    1 => Just("id: 7".to_owned()),
                    2 => Just(String::new()),
                    1 => text,
                ],
                prop_oneof![Just("\n"), Just("\r\n")],
            )
                .prop_map(|(line, end)| format!("{line}{end}"))
        }

        /// Event data without line breaks (what one `data:` line can carry).
        fn data() -> impl Strategy<Value = String> {
            any::<String>().prop_map(|s| s.replace(['\r', '\n'], " "))
        }

        proptest! {
            #![proptest_config(config(256))]

            #[test]
            fn events_do_not_depend_on_chunk_boundaries(
                lines in prop::collection::vec(line(), 0..24),
                tail in "[^\r\n]{0,12}",
                c in cuts(16),
            ) {
                let stream = format!("{}{tail}", lines.concat()).into_bytes();
                prop_assert_eq!(events(&stream, &c), events(&stream, &[]));
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_do_not_depend_on_chunk_boundaries(
                bytes in prop::collection::vec(any::<u8>(), 0..512),
                c in cuts(16),
            ) {
                prop_assert_eq!(events(&bytes, &c), events(&bytes, &[]));
            }

            #[test]
            fn every_event_comes_out_once_even_an_unterminated_last_one(
                sent in prop::collection::vec(data(), 0..12),
                terminator in prop::sample::select(&["", "\n", "\r\n", "\n\n", "\r\n\r\n"][..]),
                c in cuts(16),
            ) {
                let mut stream = String::new();
                for (n, data) in sent.iter().enumerate() {
                    stream.push_str("data: ");
                    stream.push_str(data);
                    stream.push_str(if n + 1 == sent.len() { terminator } else { "\n\n" });
                }
                let (mut got, last) = events(stream.as_bytes(), &c);
                got.extend(last);
                prop_assert_eq!(got, sent);
            }
        }
    }
}
