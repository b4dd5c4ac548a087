//! Hostile clients over raw TCP: half-sent requests and the checks that the server closed them.
//!
//! Raising the open-files limit is the only `unsafe` of this crate: `getrlimit`/`setrlimit`, which
//! std does not wrap.
#![allow(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The head of a request that never ends: no blank line after the last header.
pub const HALF_SENT: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n";

/// Raises this process' open-files soft limit to its hard limit; the soft limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// How many connections a flood of `wanted` may open when both ends live in this process (two
/// descriptors each) within `open_files` descriptors, 256 kept for everything else; at most
/// `wanted`.
pub fn flood_size(wanted: usize, open_files: u64) -> usize {
    let room = usize::try_from(open_files.saturating_sub(256) / 2).unwrap_or(usize::MAX);
    wanted.min(room)
}

/// A connection to `addr` that sent [`HALF_SENT`] and nothing more, with when it was sent.
pub async fn half_sent(addr: SocketAddr) -> std::io::Result<(TcpStream, Instant)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(HALF_SENT).await?;
    Ok((stream, Instant::now()))
}

/// Reads and discards until the server closes `stream` (end of stream or a reset); `None` if it
/// is still open at `deadline`.
pub async fn closed_by_server(mut stream: TcpStream, deadline: Instant) -> Option<Instant> {
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout_at(deadline.into(), read_to_end)
        .await
        .ok()
}

/// Whether `stream` is still open after `wait` (nothing to read, no end of stream).
pub async fn still_open(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(wait, stream.read(&mut buf))
        .await
        .is_err()
}
