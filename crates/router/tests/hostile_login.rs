//! Logins as an attacker tries them: a burst of parallel guesses from one address, guessing one
//! account from several addresses while logging in as another, a login racing a password change,
//! guessing the current password through `PUT /api/auth/password`, and a flood of password checks
//! from many addresses.
//!
//! Loopback is a whole `/8`: a client bound to `127.0.0.<n>` is a different address to the
//! router's limiter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use common::secured::{PASSWORD, admin_json, secured_config};
use common::{ADMIN_PASSWORD, TestRouter, expect_openai_error, spawn_router};

/// Failed logins an address may make within the window (the limiter's `MAX_ADDRESS_FAILURES`).
const ADDRESS_LIMIT: usize = 5;
/// Failed logins an account may suffer within the window (`MAX_ACCOUNT_FAILURES`).
const ACCOUNT_LIMIT: usize = 10;

/// A client whose requests come from `127.0.<a>.<b>`.
fn client_from(a: u8, b: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, a, b)))
        .build()
        .unwrap()
}

async fn try_login(
    client: &reqwest::Client,
    router: &TestRouter,
    username: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(router.url("/api/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("the router answered")
}

async fn session_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn me(client: &reqwest::Client, router: &TestRouter, token: &str) -> StatusCode {
    client
        .get(router.url("/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn change_password(
    client: &reqwest::Client,
    router: &TestRouter,
    token: &str,
    current: &str,
    new: &str,
) -> reqwest::Response {
    client
        .put(router.url("/api/auth/password"))
        .bearer_auth(token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

async fn create_user(router: &TestRouter, username: &str, role: &str) {
    admin_json(
        router,
        "POST",
        "/api/users",
        json!({"username": username, "password": PASSWORD, "role": role}),
    )
    .await;
}

#[tokio::test]
async fn a_burst_of_parallel_bad_logins_from_one_address_gets_exactly_the_limit_checked() {
    let router = spawn_router(secured_config()).await.unwrap();
    let client = client_from(0, 1);
    let attempts = (0..100).map(|i| {
        let client = client.clone();
        let router = &router;
        async move {
            let r = try_login(&client, router, "admin", &format!("guess-{i}")).await;
            let retry_after = r.headers().get(RETRY_AFTER).cloned();
            (r.status(), retry_after)
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let checked = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(checked, ADDRESS_LIMIT, "checked by argon2: {answers:?}");
    assert_eq!(refused.len(), 100 - ADDRESS_LIMIT, "{answers:?}");
    assert!(
        refused.iter().all(|(_, retry)| retry.is_some()),
        "every 429 says when to retry"
    );
    // The right password from this address waits out the window too.
    let r = try_login(&client, &router, "admin", ADMIN_PASSWORD).await;
    expect_openai_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn a_viewers_success_resets_neither_the_address_nor_the_admin_account() {
    let router = spawn_router(secured_config()).await.unwrap();
    create_user(&router, "viewer", "viewer").await;
    // From one address: four guesses at the admin, the viewer logs in, then guessing goes on.
    let one = client_from(0, 1);
    for _ in 0..ADDRESS_LIMIT - 1 {
        let r = try_login(&one, &router, "admin", "wrong-password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    session_of(try_login(&one, &router, "viewer", PASSWORD).await).await;
    let r = try_login(&one, &router, "admin", "wrong-password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the fifth guess");
    let r = try_login(&one, &router, "admin", "wrong-password").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the viewer's success did not give the address more guesses"
    );

    // The admin account counts failures from every address: 5 so far, 5 more from a second
    // address (with the viewer logging in there between them) reach the account's limit.
    let two = client_from(0, 2);
    for i in 0..ACCOUNT_LIMIT - ADDRESS_LIMIT {
        if i == 2 {
            session_of(try_login(&two, &router, "viewer", PASSWORD).await).await;
        }
        let r = try_login(&two, &router, "admin", "wrong-password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let three = client_from(0, 3);
    let r = try_login(&three, &router, "admin", "wrong-password").await;
    assert!(r.headers().contains_key(RETRY_AFTER));
    expect_openai_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // ... while another account is still served from that fresh address.
    session_of(try_login(&three, &router, "viewer", PASSWORD).await).await;
}

#[tokio::test]
async fn unknown_usernames_are_throttled_like_known_ones() {
    let router = spawn_router(secured_config()).await.unwrap();
    let client = client_from(0, 1);
    for i in 0..ADDRESS_LIMIT {
        let r = try_login(&client, &router, &format!("nobody-{i}"), "x").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = try_login(&client, &router, "nobody-else", "x").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // One name guessed from many addresses reaches the account limit, known or not.
    for i in 0..ACCOUNT_LIMIT {
        let r = try_login(&client_from(1, i as u8 + 1), &router, "ghost", "x").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = try_login(&client_from(2, 1), &router, "ghost", "x").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn guessing_the_current_password_through_a_password_change_is_throttled() {
    let router = spawn_router(secured_config()).await.unwrap();
    create_user(&router, "mallory", "viewer").await;
    let client = client_from(0, 1);
    let token = session_of(try_login(&client, &router, "mallory", PASSWORD).await).await;
    for i in 0..ADDRESS_LIMIT {
        let r = change_password(
            &client,
            &router,
            &token,
            &format!("guess-{i}"),
            "new-password-1",
        )
        .await;
        expect_openai_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let r = change_password(&client, &router, &token, "guess-x", "new-password-1").await;
    assert!(r.headers().contains_key(RETRY_AFTER));
    expect_openai_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // Even the right one waits, and the session is still good.
    let r = change_password(&client, &router, &token, PASSWORD, "new-password-1").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(me(&client, &router, &token).await, StatusCode::OK);
    // The account is throttled from other addresses as well once it has had enough failures.
    for i in 0..ACCOUNT_LIMIT - ADDRESS_LIMIT {
        let other = client_from(1, i as u8 + 1);
        let r = change_password(&other, &router, &token, "guess", "new-password-1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = change_password(
        &client_from(2, 1),
        &router,
        &token,
        PASSWORD,
        "x-new-password",
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn no_session_minted_with_the_old_password_survives_a_racing_password_change() {
    const TRIES: usize = 200;
    let router = spawn_router(secured_config()).await.unwrap();
    create_user(&router, "racer", "viewer").await;
    let changer = client_from(0, 1);
    let passwords = ["race-password-a", "race-password-b"];
    admin_change(&router, "racer", passwords[0]).await;
    // How long one password check takes, to sweep the racing login across the change.
    let started = Instant::now();
    session_of(try_login(&changer, &router, "racer", passwords[0]).await).await;
    let check = started.elapsed();
    let (mut minted, mut refused) = (0, 0);
    for i in 0..TRIES {
        let (old, new) = (passwords[i % 2], passwords[(i + 1) % 2]);
        let token = session_of(try_login(&changer, &router, "racer", old).await).await;
        // Each racing login comes from its own address, so its failures never add up to a limit.
        let racer = client_from(10 + (i / 200) as u8, (i % 200) as u8 + 1);
        let delay = check.mul_f64((i % 25) as f64 / 8.0);
        let (login, change) = tokio::join!(
            async {
                tokio::time::sleep(delay).await;
                try_login(&racer, &router, "racer", old).await
            },
            change_password(&changer, &router, &token, old, new),
        );
        assert_eq!(change.status(), StatusCode::NO_CONTENT, "try {i}");
        match login.status() {
            StatusCode::OK => {
                minted += 1;
                let session = session_of(login).await;
                assert_eq!(
                    me(&racer, &router, &session).await,
                    StatusCode::UNAUTHORIZED,
                    "try {i}: a session minted with the old password survived the change"
                );
            }
            StatusCode::UNAUTHORIZED => refused += 1,
            other => panic!("try {i}: login answered {other}"),
        }
    }
    eprintln!("{minted} sessions minted before the change (all ended by it), {refused} refused");
    assert!(minted > 0 && refused > 0, "the sweep crossed the change");
}

/// Sets `username`'s password as the admin.
async fn admin_change(router: &TestRouter, username: &str, password: &str) {
    let users = router
        .get_as_admin("/api/users")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin_json(
        router,
        "PATCH",
        &format!("/api/users/{id}"),
        json!({"password": password}),
    )
    .await;
}

#[tokio::test]
async fn a_flood_of_password_checks_from_many_addresses_is_refused_at_once_beyond_the_bound() {
    let router = spawn_router(secured_config()).await.unwrap();
    let attempts = (0..120u8).map(|i| {
        let router = &router;
        async move {
            let r = try_login(&client_from(3, i + 1), router, &format!("user-{i}"), "x").await;
            let retry_after = r.headers().contains_key(RETRY_AFTER);
            (r.status(), retry_after)
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let busy: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    let checked = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    eprintln!("{checked} checked, {} refused at once", busy.len());
    assert_eq!(checked + busy.len(), answers.len(), "{answers:?}");
    assert!(!busy.is_empty(), "some checks found no free checker");
    assert!(
        busy.iter().all(|(_, retry)| *retry),
        "every 503 says when to retry"
    );
    // Once the flood is over, the admin logs in.
    let r = try_login(&client_from(4, 1), &router, "admin", ADMIN_PASSWORD).await;
    session_of(r).await;
}
