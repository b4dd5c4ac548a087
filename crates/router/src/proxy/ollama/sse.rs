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
}
