//! One download: into `<dest>.part`, resumed with `Range`, retried with backoff, hashed while
//! written, verified, then renamed into place.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Response, StatusCode, Url};
use sha2::{Digest, Sha256};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::digest::{finish_hex, parse_sha256};
use super::disk::{available_space, ensure_space, is_disk_full};
use super::progress::Reporter;
use super::range::{parse_content_range, parse_unsatisfied_range};
use super::{Phase, Progress, PullError, PullOptions, PullSpec, Pulled};

/// Read size when hashing an existing `.part`.
const HASH_CHUNK: usize = 1 << 20;

/// Downloads files with one client and one set of options.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: reqwest::Client,
    options: PullOptions,
}

impl Downloader {
    /// `client` from [`super::download_client`] for the proxy settings to apply.
    pub fn new(client: reqwest::Client, options: PullOptions) -> Self {
        Self { client, options }
    }

    /// Downloads `spec` and returns once the file is verified and in place. `on_progress` gets at
    /// most one report per [`PullOptions::progress_interval`] and a final one on success.
    ///
    /// On failure `<dest>.part` is kept for a later resume, except after a checksum mismatch or a
    /// full disk, where it is deleted. `dest` is only ever replaced by a verified file.
    #[tracing::instrument(skip_all, fields(dest = %spec.dest.display()))]
    pub async fn download<F>(
        &self,
        spec: &PullSpec,
        on_progress: F,
        cancel: &CancellationToken,
    ) -> Result<Pulled, PullError>
    where
        F: FnMut(&Progress) + Send,
    {
        let expected = spec.sha256.as_deref().map(parse_sha256).transpose()?;
        let url = Url::parse(&spec.url)
            .map_err(|e| PullError::Invalid(format!("url {:?}: {e}", spec.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PullError::Invalid(format!(
                "url scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let dir = match spec.dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)
            .await
            .map_err(|e| PullError::io(format!("creating {}", dir.display()), e))?;

        let mut transfer = Transfer {
            client: &self.client,
            options: &self.options,
            cancel,
            url,
            part: part_path(&spec.dest),
            dir,
            size_hint: spec.size,
            total: None,
            hasher: Sha256::new(),
            hashed: 0,
            received: 0,
            discard: false,
            reporter: Reporter::new(
                on_progress,
                self.options.progress_interval,
                self.options.terminal_progress,
            ),
        };
        let outcome = transfer.run(expected, &spec.dest).await;
        if outcome.is_err() && transfer.discard {
            remove_part(&transfer.part).await;
        }
        outcome
    }
}

/// `<dest>.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

async fn remove_part(part: &Path) {
    match fs::remove_file(part).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(part = %part.display(), error = %e, "could not remove partial download")
        }
    }
}

/// The state of one download across its attempts.
struct Transfer<'a, F> {
    client: &'a reqwest::Client,
    options: &'a PullOptions,
    cancel: &'a CancellationToken,
    url: Url,
    part: PathBuf,
    dir: PathBuf,
    /// Size from the catalog, until the server tells it.
    size_hint: Option<u64>,
    /// Size from the server.
    total: Option<u64>,
    hasher: Sha256,
    /// Leading bytes of `.part` that `hasher` has seen.
    hashed: u64,
    /// Bytes received in the current attempt.
    received: u64,
    /// `.part` must go on failure: its content is known bad or half-written.
    discard: bool,
    reporter: Reporter<F>,
}

impl<F: FnMut(&Progress)> Transfer<'_, F> {
    async fn run(&mut self, expected: Option<String>, dest: &Path) -> Result<Pulled, PullError> {
        if let Some(expected) = &expected
            && let Some(pulled) = self.present(expected, dest).await?
        {
            return Ok(pulled);
        }
        let attempts = self.fetch().await?;
        let bytes = self.hashed;
        self.reporter
            .advance(Phase::Verifying, 0, bytes, Some(bytes));
        let actual = finish_hex(std::mem::take(&mut self.hasher));
        if let Some(expected) = expected
            && expected != actual
        {
            self.discard = true;
            return Err(PullError::Checksum { expected, actual });
        }
        fs::rename(&self.part, dest).await.map_err(|e| {
            PullError::io(
                format!("moving {} to {}", self.part.display(), dest.display()),
                e,
            )
        })?;
        self.reporter.finish(Phase::Verifying, bytes, Some(bytes));
        tracing::info!(bytes, attempts, sha256 = %actual, "download complete");
        Ok(Pulled {
            path: dest.to_owned(),
            bytes,
            sha256: actual,
            attempts,
        })
    }

    /// `dest` when it is already there with the expected size and checksum (a model copied by
    /// hand, or pulled before under another name): nothing to download. Without a checksum a
    /// file present is not trusted and is downloaded again.
    async fn present(&mut self, expected: &str, dest: &Path) -> Result<Option<Pulled>, PullError> {
        let Ok(meta) = fs::metadata(dest).await else {
            return Ok(None);
        };
        let size = meta.len();
        if !meta.is_file() || self.size_hint.is_some_and(|hint| hint != size) {
            return Ok(None);
        }
        tracing::info!(
            bytes = size,
            "the file is already there; checking its checksum"
        );
        let read_error = |e| PullError::io(format!("reading {}", dest.display()), e);
        let mut file = File::open(dest).await.map_err(read_error)?;
        let mut hasher = Sha256::new();
        let mut hashed = 0u64;
        let mut buf = vec![0; HASH_CHUNK];
        loop {
            if self.cancel.is_cancelled() {
                return Err(PullError::Cancelled);
            }
            let read = file.read(&mut buf).await.map_err(read_error)?;
            if read == 0 {
                break;
            }
            hasher.update(&buf[..read]);
            hashed += read as u64;
            self.reporter
                .advance(Phase::Verifying, read as u64, hashed, Some(size));
        }
        let actual = finish_hex(hasher);
        if actual != expected {
            tracing::warn!(
                expected,
                actual,
                "the file there has another checksum; downloading it again"
            );
            return Ok(None);
        }
        self.reporter.finish(Phase::Verifying, hashed, Some(hashed));
        tracing::info!(bytes = hashed, sha256 = %actual, "already present and verified; nothing to download");
        Ok(Some(Pulled {
            path: dest.to_owned(),
            bytes: hashed,
            sha256: actual,
            attempts: 0,
        }))
    }

    /// Attempts until `.part` holds the whole file; returns the number of attempts.
    async fn fetch(&mut self) -> Result<u32, PullError> {
        let policy = &self.options.retry;
        let mut attempts = 0;
        let mut failures = 0;
        loop {
            attempts += 1;
            let error = match self.attempt().await {
                Ok(()) => return Ok(attempts),
                Err(error) => error,
            };
            failures = if self.received > 0 { 1 } else { failures + 1 };
            if !error.is_retryable() || failures >= policy.max_attempts.max(1) {
                return Err(error);
            }
            let delay = policy.delay(failures);
            tracing::warn!(%error, attempts, ?delay, "download attempt failed; retrying");
            tokio::select! {
                () = self.cancel.cancelled() => return Err(PullError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One HTTP request, resuming from what `.part` holds.
    async fn attempt(&mut self) -> Result<(), PullError> {
        self.received = 0;
        let on_disk = self.sync_prefix().await?;
        if let Some(size) = self.total.or(self.size_hint) {
            ensure_space(
                &self.dir,
                size.saturating_sub(on_disk),
                self.options.available_space_override,
            )?;
        }
        let mut request = self.client.get(self.url.clone());
        if on_disk > 0 {
            request = request.header(RANGE, format!("bytes={on_disk}-"));
        }
        let response = tokio::select! {
            () = self.cancel.cancelled() => return Err(PullError::Cancelled),
            sent = request.send() => sent.map_err(PullError::network)?,
        };
        let Some(offset) = self.body_offset(&response, on_disk).await? else {
            return Ok(());
        };
        if let Some(total) = self.total {
            ensure_space(
                &self.dir,
                total.saturating_sub(offset),
                self.options.available_space_override,
            )?;
        }

        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.part)
            .await
            .map_err(|e| self.write_error(e))?;
        if offset < on_disk {
            file.set_len(0).await.map_err(|e| self.write_error(e))?;
            self.hasher = Sha256::new();
            self.hashed = 0;
        }
        let streamed = self.stream_body(&mut file, response).await;
        // tokio queues writes: wait for them before the file is looked at again, and let a
        // failed write (a full disk) win over whatever ended the stream.
        if let Err(e) = file.flush().await {
            return Err(self.write_error(e));
        }
        streamed?;
        file.sync_all().await.map_err(|e| self.write_error(e))
    }

    /// Where the body of `response` starts in the file; `None` when `.part` is already whole.
    async fn body_offset(
        &mut self,
        response: &Response,
        on_disk: u64,
    ) -> Result<Option<u64>, PullError> {
        let content_range = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|value| value.to_str().ok());
        match response.status() {
            StatusCode::OK => {
                if on_disk > 0 {
                    tracing::info!(on_disk, "server ignored the range request; starting over");
                }
                self.total = response.content_length();
                Ok(Some(0))
            }
            StatusCode::PARTIAL_CONTENT => match content_range.and_then(parse_content_range) {
                Some(range) if range.first == on_disk => {
                    if on_disk > 0 {
                        tracing::info!(on_disk, "resuming download");
                    }
                    self.total = range
                        .complete
                        .or_else(|| response.content_length().map(|n| on_disk + n));
                    Ok(Some(on_disk))
                }
                range => {
                    self.restart().await;
                    Err(PullError::Network(format!(
                        "server resumed at {range:?} instead of byte {on_disk}; starting over"
                    )))
                }
            },
            StatusCode::RANGE_NOT_SATISFIABLE if on_disk > 0 => {
                match content_range.and_then(parse_unsatisfied_range) {
                    Some(complete) if complete == on_disk => {
                        self.total = Some(complete);
                        Ok(None)
                    }
                    complete => {
                        self.restart().await;
                        Err(PullError::Network(format!(
                            "server cannot resume at byte {on_disk} (size {complete:?}); starting over"
                        )))
                    }
                }
            }
            status => Err(PullError::Http {
                status: status.as_u16(),
            }),
        }
    }

    async fn stream_body(&mut self, file: &mut File, response: Response) -> Result<(), PullError> {
        let mut body = response.bytes_stream();
        loop {
            let next = tokio::select! {
                () = self.cancel.cancelled() => return Err(PullError::Cancelled),
                next = body.next() => next,
            };
            let chunk = match next {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Err(PullError::network(e)),
            };
            file.write_all(&chunk)
                .await
                .map_err(|e| self.write_error(e))?;
            let len = chunk.len() as u64;
            self.hasher.update(&chunk);
            self.hashed += len;
            self.received += len;
            let total = self.total.or(self.size_hint);
            self.reporter
                .advance(Phase::Downloading, len, self.hashed, total);
        }
        match self.total {
            Some(total) if self.hashed != total => Err(PullError::Network(format!(
                "body ended at byte {} of {total}",
                self.hashed
            ))),
            Some(_) => Ok(()),
            None => {
                self.total = Some(self.hashed);
                Ok(())
            }
        }
    }

    /// Brings `hasher` up to date with `.part`, hashing it afresh when it holds bytes this
    /// process did not hash (a download left by an earlier run); returns its length.
    async fn sync_prefix(&mut self) -> Result<u64, PullError> {
        let on_disk = match fs::metadata(&self.part).await {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(PullError::io(format!("reading {}", self.part.display()), e)),
        };
        if on_disk == self.hashed {
            return Ok(on_disk);
        }
        self.hasher = Sha256::new();
        self.hashed = 0;
        if on_disk == 0 {
            return Ok(0);
        }
        tracing::info!(
            bytes = on_disk,
            "hashing the partial download before resuming it"
        );
        let read_error = |e| PullError::io(format!("reading {}", self.part.display()), e);
        let mut file = File::open(&self.part).await.map_err(read_error)?;
        let mut buf = vec![0; HASH_CHUNK];
        while self.hashed < on_disk {
            if self.cancel.is_cancelled() {
                return Err(PullError::Cancelled);
            }
            let want = buf
                .len()
                .min(usize::try_from(on_disk - self.hashed).unwrap_or(usize::MAX));
            let read = file
                .read(&mut buf[..want])
                .await
                .map_err(|e| PullError::io(format!("reading {}", self.part.display()), e))?;
            if read == 0 {
                break; // shrank meanwhile: what was read is the prefix
            }
            self.hasher.update(&buf[..read]);
            self.hashed += read as u64;
            self.reporter
                .advance(Phase::Verifying, read as u64, self.hashed, Some(on_disk));
        }
        Ok(self.hashed)
    }

    /// Drops `.part` so the next attempt starts from zero.
    async fn restart(&mut self) {
        remove_part(&self.part).await;
        self.hasher = Sha256::new();
        self.hashed = 0;
    }

    /// A full disk becomes [`PullError::DiskFull`] and condemns `.part`; anything else is `Io`.
    fn write_error(&mut self, error: io::Error) -> PullError {
        if !is_disk_full(&error) {
            return PullError::io(format!("writing {}", self.part.display()), error);
        }
        self.discard = true;
        let needed = self
            .total
            .or(self.size_hint)
            .map_or(1, |total| total.saturating_sub(self.hashed).max(1));
        let available =
            available_space(&self.dir, self.options.available_space_override).unwrap_or(0);
        PullError::DiskFull { needed, available }
    }
}
