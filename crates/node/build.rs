//! Sets `LLM_ROUTER_COMMIT` for `--version`: `$LLM_ROUTER_COMMIT` when given (what
//! `scripts/package.sh` does, with the exact commit), else `git rev-parse --short HEAD`, else
//! "unknown" (a source tree without git). Kept cheap: it runs again only when the checked-out
//! branch or commit named by `HEAD` changes, not on every commit of the same branch, so a
//! development build can name an older commit; packages always name theirs.
include!("../common/build_commit.rs");
