//! Reading the last lines of the rotated log files without reading whole files.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::MAX_TAIL_BYTES;

/// Bytes read per step, walking a file backwards.
const CHUNK: u64 = 64 * 1024;

/// The last `lines` lines of the files `<prefix>.*.log` in `dir`, oldest first.
pub(crate) fn read(dir: &Path, prefix: &str, lines: usize) -> io::Result<String> {
    let mut files = match log_files(dir, prefix) {
        Ok(files) => files,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    // Dated names sort by date; newest first.
    files.sort_unstable_by(|a, b| b.cmp(a));
    let mut collected: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for path in files {
        if collected.len() >= lines || bytes >= MAX_TAIL_BYTES {
            break;
        }
        let want = lines - collected.len();
        for line in last_lines(&path, want, MAX_TAIL_BYTES - bytes)? {
            bytes += line.len() + 1;
            collected.push(line);
        }
    }
    collected.reverse();
    let mut out = String::with_capacity(bytes);
    for line in collected {
        out.push_str(&String::from_utf8_lossy(&line));
        out.push('\n');
    }
    Ok(out)
}

fn log_files(dir: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let head = format!("{prefix}.");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&head) && name.ends_with(".log") && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Up to `want` complete lines from the end of `path`, newest first, within about `budget` bytes.
fn last_lines(path: &Path, want: usize, budget: usize) -> io::Result<Vec<Vec<u8>>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        // Pruned between listing and opening.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut lines = Vec::new();
    // Bytes after the last newline seen so far (the start of a line not yet complete).
    let mut partial: Vec<u8> = Vec::new();
    let mut read = 0usize;
    while end > 0 && lines.len() < want {
        let start = end.saturating_sub(CHUNK);
        let mut chunk = vec![0; usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        read += chunk.len();
        chunk.extend_from_slice(&partial);
        let mut pieces = chunk.split(|&b| b == b'\n').rev();
        // The last piece continues into the next file position; the first is incomplete
        // unless the file starts there.
        let mut tail: Vec<&[u8]> = pieces.by_ref().collect();
        partial = if start > 0 {
            tail.pop().unwrap_or_default().to_vec()
        } else {
            Vec::new()
        };
        for line in tail {
            if lines.len() >= want {
                break;
            }
            if !line.is_empty() {
                lines.push(line.to_vec());
            }
        }
        if start == 0 {
            break;
        }
        if read >= budget {
            break;
        }
        end = start;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "llm-router-logs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn absent_directory_is_an_empty_log() {
        let out = read(Path::new("/nonexistent/llm-router-logs"), "x", 10).unwrap();
        assert_eq!(out, "");
    }

    #[test]
    fn returns_the_last_lines_across_rotated_files_oldest_first() {
        let dir = dir_with(&[
            ("node.2026-11-20.log", "a\nb\nc\n"),
            ("node.2026-11-21.log", "d\ne\n"),
            ("other.2026-11-21.log", "zzz\n"),
        ]);
        assert_eq!(read(&dir, "node", 3).unwrap(), "c\nd\ne\n");
        assert_eq!(read(&dir, "node", 100).unwrap(), "a\nb\nc\nd\ne\n");
        assert_eq!(read(&dir, "node", 0).unwrap(), "");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_longer_than_a_chunk_and_a_missing_final_newline() {
        let long = "x".repeat(200_000);
        let text = format!("first\n{long}\nlast");
        let dir = dir_with(&[("r.2026-11-22.log", &text)]);
        assert_eq!(read(&dir, "r", 2).unwrap(), format!("{long}\nlast\n"));
        assert_eq!(
            read(&dir, "r", 3).unwrap(),
            format!("first\n{long}\nlast\n")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
