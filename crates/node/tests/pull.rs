//! The download engine against loopback servers: progress, resume, restart, checksum, retries,
//! proxy, disk space, deduplication and cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "pull_support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_node::pull::{
    Downloader, Phase, Progress, ProxySettings, PullError, PullOptions, PullSpec, Pulled, Pulls,
    RetryPolicy, download_client, part_path,
};
use tokio_util::sync::CancellationToken;

use llm_router_testkit::ForwardProxy;
use support::server::{FileServer, Reply, ServerOptions};
use support::{TempDir, bounded, content, sha256_hex};

fn fast_options() -> PullOptions {
    PullOptions {
        progress_interval: Duration::from_millis(100),
        retry: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
        ..PullOptions::default()
    }
}

fn downloader(options: PullOptions) -> Downloader {
    Downloader::new(download_client(&ProxySettings::default()).unwrap(), options)
}

fn spec(server: &FileServer, dir: &Path, sha256: &str) -> PullSpec {
    PullSpec {
        url: server.url(),
        dest: dir.join("tiny.gguf"),
        sha256: Some(sha256.to_owned()),
        size: None,
    }
}

/// Downloads with a recording progress callback.
async fn pull(
    downloader: &Downloader,
    spec: &PullSpec,
) -> (Result<Pulled, PullError>, Vec<Progress>) {
    let mut reports = Vec::new();
    let cancel = CancellationToken::new();
    let outcome = bounded(downloader.download(spec, |p| reports.push(*p), &cancel)).await;
    (outcome, reports)
}

fn ranges(server: &FileServer) -> Vec<Option<String>> {
    server.seen().into_iter().map(|s| s.range).collect()
}

#[tokio::test]
async fn plain_download_reports_progress_and_verifies_sha256() {
    let body = content(80 * 1024);
    let options = ServerOptions {
        chunk: 4096,
        chunk_delay: Duration::from_millis(60),
        ..ServerOptions::default()
    };
    let server = FileServer::start(body.clone(), options, vec![]).await;
    let dir = TempDir::new("plain").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));

    let (outcome, reports) = pull(&downloader(fast_options()), &spec).await;

    let pulled = outcome.unwrap();
    assert_eq!(pulled.sha256, sha256_hex(&body));
    assert_eq!((pulled.bytes, pulled.attempts), (body.len() as u64, 1));
    assert_eq!(std::fs::read(&spec.dest).unwrap(), body);
    assert!(!part_path(&spec.dest).exists());

    let downloading: Vec<&Progress> = reports
        .iter()
        .filter(|p| p.phase == Phase::Downloading)
        .collect();
    assert!(downloading.len() >= 5, "{reports:#?}");
    assert!(
        downloading
            .windows(2)
            .all(|w| w[0].bytes_done <= w[1].bytes_done)
    );
    assert!(
        downloading
            .iter()
            .all(|p| p.bytes_total == Some(body.len() as u64))
    );
    assert!(downloading.iter().all(|p| p.bytes_per_sec > 0));
    let last = reports.last().unwrap();
    assert_eq!(last.phase, Phase::Verifying);
    assert_eq!(last.bytes_done, body.len() as u64);
}

#[tokio::test]
async fn dropped_connection_is_resumed_with_range() {
    let body = content(256 * 1024);
    let server = FileServer::start(
        body.clone(),
        ServerOptions::default(),
        vec![Reply::DropAfter(100_000)],
    )
    .await;
    let dir = TempDir::new("resume").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));

    let (outcome, _) = pull(&downloader(fast_options()), &spec).await;

    let pulled = outcome.unwrap();
    assert_eq!(pulled.attempts, 2);
    assert_eq!(std::fs::read(&spec.dest).unwrap(), body);
    assert_eq!(ranges(&server), [None, Some("bytes=100000-".to_owned())]);
}

#[tokio::test]
async fn server_ignoring_range_restarts_from_zero() {
    let body = content(256 * 1024);
    let options = ServerOptions {
        honour_range: false,
        ..ServerOptions::default()
    };
    let server = FileServer::start(body.clone(), options, vec![Reply::DropAfter(100_000)]).await;
    let dir = TempDir::new("norange").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));

    let (outcome, _) = pull(&downloader(fast_options()), &spec).await;

    assert_eq!(outcome.unwrap().bytes, body.len() as u64);
    assert_eq!(std::fs::read(&spec.dest).unwrap(), body);
    assert_eq!(ranges(&server), [None, Some("bytes=100000-".to_owned())]);
}

#[tokio::test]
async fn partial_file_from_an_earlier_run_is_rehashed_and_resumed() {
    let body = content(200 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let dir = TempDir::new("earlier").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));
    std::fs::write(part_path(&spec.dest), &body[..70_000]).unwrap();

    let (outcome, reports) = pull(&downloader(fast_options()), &spec).await;

    assert_eq!(outcome.unwrap().sha256, sha256_hex(&body));
    assert_eq!(std::fs::read(&spec.dest).unwrap(), body);
    assert_eq!(ranges(&server), [Some("bytes=70000-".to_owned())]);
    assert_eq!(reports.last().unwrap().bytes_done, body.len() as u64);
}

#[tokio::test]
async fn a_file_already_there_with_the_checksum_is_not_downloaded_again() {
    let body = content(100 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let dir = TempDir::new("present").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));
    std::fs::write(&spec.dest, &body).unwrap();

    let (outcome, reports) = pull(&downloader(fast_options()), &spec).await;

    let pulled = outcome.unwrap();
    assert_eq!((pulled.bytes, pulled.attempts), (body.len() as u64, 0));
    assert!(server.seen().is_empty(), "{:?}", server.seen());
    let last = reports.last().unwrap();
    assert_eq!(
        (last.phase, last.bytes_done),
        (Phase::Verifying, body.len() as u64)
    );

    // Another file under that name is replaced by the download.
    std::fs::write(&spec.dest, b"something else").unwrap();
    let (outcome, _) = pull(&downloader(fast_options()), &spec).await;
    assert_eq!(outcome.unwrap().attempts, 1);
    assert_eq!(std::fs::read(&spec.dest).unwrap(), body);
}

#[tokio::test]
async fn wrong_sha256_fails_and_leaves_no_file() {
    let body = content(64 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let dir = TempDir::new("badsha").unwrap();
    let wrong = sha256_hex(b"something else");
    let spec = spec(&server, dir.path(), &wrong);

    let (outcome, _) = pull(&downloader(fast_options()), &spec).await;

    match outcome {
        Err(PullError::Checksum { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, sha256_hex(&body));
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(!part_path(&spec.dest).exists());
    assert!(!spec.dest.exists());
}

#[tokio::test]
async fn service_unavailable_twice_then_ok_succeeds_on_the_third_attempt() {
    let body = content(32 * 1024);
    let script = vec![Reply::Status(503), Reply::Status(503)];
    let server = FileServer::start(body.clone(), ServerOptions::default(), script).await;
    let dir = TempDir::new("retry").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));

    let (outcome, _) = pull(&downloader(fast_options()), &spec).await;

    assert_eq!(outcome.unwrap().attempts, 3);
    assert_eq!(server.seen().len(), 3);
    assert_eq!(std::fs::read(&spec.dest).unwrap(), body);
}

#[tokio::test]
async fn not_found_fails_at_once_without_retry() {
    let body = content(1024);
    let server = FileServer::start(
        body.clone(),
        ServerOptions::default(),
        vec![Reply::Status(404)],
    )
    .await;
    let dir = TempDir::new("404").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));

    let (outcome, _) = pull(&downloader(fast_options()), &spec).await;

    assert!(
        matches!(outcome, Err(PullError::Http { status: 404 })),
        "{outcome:?}"
    );
    assert_eq!(server.seen().len(), 1);
    assert!(!part_path(&spec.dest).exists());
}

#[tokio::test]
async fn persistent_failure_gives_up_after_max_attempts() {
    let body = content(1024);
    let script = vec![Reply::Status(503); 10];
    let server = FileServer::start(body.clone(), ServerOptions::default(), script).await;
    let dir = TempDir::new("giveup").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));
    let mut options = fast_options();
    options.retry.max_attempts = 3;

    let (outcome, _) = pull(&downloader(options), &spec).await;

    assert!(
        matches!(outcome, Err(PullError::Http { status: 503 })),
        "{outcome:?}"
    );
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn http_proxy_carries_the_download_and_no_proxy_bypasses_it() {
    let body = content(48 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let proxy = ForwardProxy::start().await.unwrap();
    let dir = TempDir::new("proxy").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));

    let through = ProxySettings {
        http: Some(proxy.url()),
        ..ProxySettings::default()
    };
    let client = download_client(&through).unwrap();
    let (outcome, _) = pull(&Downloader::new(client, fast_options()), &spec).await;
    assert_eq!(outcome.unwrap().bytes, body.len() as u64);
    assert_eq!(proxy.seen(), [format!("GET {} HTTP/1.1", server.url())]);
    assert_eq!(server.seen().len(), 1);

    std::fs::remove_file(&spec.dest).unwrap();
    let bypassed = ProxySettings {
        no_proxy: Some("localhost, 127.0.0.1".to_owned()),
        ..through
    };
    let client = download_client(&bypassed).unwrap();
    let (outcome, _) = pull(&Downloader::new(client, fast_options()), &spec).await;
    assert_eq!(outcome.unwrap().bytes, body.len() as u64);
    assert_eq!(
        proxy.seen().len(),
        1,
        "the second download must not use the proxy"
    );
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn catalog_size_beyond_free_space_fails_before_any_request() {
    let body = content(8 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let dir = TempDir::new("full-catalog").unwrap();
    let spec = PullSpec {
        size: Some(body.len() as u64),
        ..spec(&server, dir.path(), &sha256_hex(&body))
    };
    let mut options = fast_options();
    options.available_space_override = Some(1000);

    let (outcome, _) = pull(&downloader(options), &spec).await;

    assert!(
        matches!(
            outcome,
            Err(PullError::DiskFull {
                needed: 8192,
                available: 1000
            })
        ),
        "{outcome:?}"
    );
    assert!(server.seen().is_empty());
    assert!(!part_path(&spec.dest).exists());
}

#[tokio::test]
async fn content_length_beyond_free_space_fails_before_writing() {
    let body = content(8 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let dir = TempDir::new("full-length").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));
    let mut options = fast_options();
    options.available_space_override = Some(1000);

    let (outcome, _) = pull(&downloader(options), &spec).await;

    assert!(
        matches!(
            outcome,
            Err(PullError::DiskFull {
                needed: 8192,
                available: 1000
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(server.seen().len(), 1);
    assert!(!part_path(&spec.dest).exists());
    assert!(!spec.dest.exists());
}

#[tokio::test]
async fn free_space_check_counts_what_the_part_file_already_holds() {
    let body = content(8 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let dir = TempDir::new("full-part").unwrap();
    let spec = PullSpec {
        size: Some(body.len() as u64),
        ..spec(&server, dir.path(), &sha256_hex(&body))
    };
    std::fs::write(part_path(&spec.dest), &body[..7500]).unwrap();
    let mut options = fast_options();
    options.available_space_override = Some(1000);

    let (outcome, _) = pull(&downloader(options), &spec).await;

    assert_eq!(outcome.unwrap().bytes, body.len() as u64);
    assert_eq!(std::fs::read(&spec.dest).unwrap(), body);
}

/// A real ENOSPC without root: `<dest>.part` is a symlink to `/dev/full`.
#[tokio::test]
async fn write_error_enospc_is_disk_full_and_removes_the_part_file() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let body = content(64 * 1024);
    let server = FileServer::start(body.clone(), ServerOptions::default(), vec![]).await;
    let dir = TempDir::new("enospc").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));
    let part = part_path(&spec.dest);
    std::os::unix::fs::symlink("/dev/full", &part).unwrap();

    let (outcome, _) = pull(&downloader(fast_options()), &spec).await;

    assert!(
        matches!(outcome, Err(PullError::DiskFull { .. })),
        "{outcome:?}"
    );
    assert!(part.symlink_metadata().is_err(), "the .part must be gone");
    assert!(!spec.dest.exists());
    assert_eq!(server.seen().len(), 1, "a full disk is not retried");
}

#[tokio::test]
async fn concurrent_pulls_of_one_model_share_one_download() {
    let body = content(64 * 1024);
    let options = ServerOptions {
        chunk: 8192,
        chunk_delay: Duration::from_millis(50),
        ..ServerOptions::default()
    };
    let server = FileServer::start(body.clone(), options, vec![]).await;
    let dir = TempDir::new("dedup").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));
    let pulls = Pulls::new(downloader(fast_options()), CancellationToken::new());

    let first = pulls.pull("tiny", spec.clone());
    let second = pulls.pull("tiny", spec.clone());
    assert!(!first.joined());
    assert!(second.joined());
    assert_eq!(pulls.running(), ["tiny"]);
    let (a, b) = bounded(async { tokio::join!(first.wait(), second.wait()) }).await;

    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(server.seen().len(), 1);
    assert_eq!(
        second.progress().map(|p| p.bytes_done),
        Some(body.len() as u64)
    );
    assert!(pulls.running().is_empty());

    // Once finished, the model can be pulled again: a pull of its own, which finds the verified
    // file in place and downloads nothing.
    let again = pulls.pull("tiny", spec);
    assert!(!again.joined());
    assert_eq!(bounded(again.wait()).await.unwrap().attempts, 0);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn cancelled_pull_keeps_its_part_file_for_a_later_resume() {
    let body = content(64 * 1024);
    let options = ServerOptions {
        chunk: 4096,
        chunk_delay: Duration::from_millis(50),
        ..ServerOptions::default()
    };
    let server = FileServer::start(body.clone(), options, vec![]).await;
    let dir = TempDir::new("cancel").unwrap();
    let spec = spec(&server, dir.path(), &sha256_hex(&body));
    let downloader = downloader(fast_options());
    let cancel = CancellationToken::new();
    let reports = Arc::new(Mutex::new(0));

    let seen = reports.clone();
    let stopper = cancel.clone();
    let outcome = bounded(downloader.download(
        &spec,
        move |_| {
            *seen.lock().unwrap() += 1;
            stopper.cancel();
        },
        &cancel,
    ))
    .await;

    assert!(matches!(outcome, Err(PullError::Cancelled)), "{outcome:?}");
    assert_eq!(*reports.lock().unwrap(), 1);
    let kept = std::fs::metadata(part_path(&spec.dest)).unwrap().len();
    assert!(kept > 0 && kept < body.len() as u64, "{kept}");

    let (outcome, _) = pull(&downloader, &spec).await;
    assert_eq!(outcome.unwrap().bytes, body.len() as u64);
    assert_eq!(
        ranges(&server).last().unwrap().as_deref(),
        Some(format!("bytes={kept}-").as_str())
    );
}
