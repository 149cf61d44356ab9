//! `pipelines freeze`, `unfreeze` and the frozen stages in `status` and in a refused
//! `promote`: the real binary against a real server.

use crate::{
    cli::{code, run, stderr, stdout},
    helpers::spawn_app,
    policies::release,
};

use super::shop_with_tokens;

#[tokio::test]
async fn the_cli_stops_and_restarts_the_line() {
    let app = spawn_app().await;
    let tokens = shop_with_tokens(&app).await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;

    for (args, says) in [
        (["--stage", "qa", "--until", "2h"], "--stage"),
        (["--stage", "production", "--until", "soon"], "--until"),
    ] {
        let refused = run(
            &app,
            &[&["freeze", "shop", "--reason", "r"][..], &args[..]].concat(),
            Some(&tokens.alice),
        )
        .await;
        assert_eq!(code(&refused), 20, "{}", stderr(&refused));
        assert!(stderr(&refused).contains(says), "{}", stderr(&refused));
    }

    let froze = run(
        &app,
        &[
            "freeze",
            "shop",
            "--stage",
            "production",
            "--until",
            "2h",
            "--reason",
            "sale weekend",
        ],
        Some(&tokens.alice),
    )
    .await;
    assert_eq!(code(&froze), 0, "{}", stderr(&froze));
    let line = stdout(&froze);
    assert!(
        line.starts_with("froze production of pipeline shop until ")
            && line.contains("sale weekend"),
        "{line}"
    );
    let freeze_id = line
        .trim_end()
        .rsplit("(freeze ")
        .next()
        .and_then(|rest| rest.strip_suffix(')'))
        .expect("the freeze's id")
        .to_owned();

    let status = run(&app, &["status", "shop"], Some(&tokens.reader)).await;
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    assert!(
        stdout(&status).contains("FROZEN  production until ")
            && stdout(&status).contains(&format!("(freeze {freeze_id}): sale weekend")),
        "{}",
        stdout(&status)
    );

    let refused = run(
        &app,
        &["promote", "--pipeline", "shop", "--from", "shop-stg"],
        Some(&tokens.alice),
    )
    .await;
    assert_eq!(code(&refused), 20, "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("frozen: production until")
            && stderr(&refused).contains("sale weekend"),
        "{}",
        stderr(&refused)
    );

    let denied = run(&app, &["unfreeze", "shop", &freeze_id], Some(&tokens.alice)).await;
    assert_eq!(code(&denied), 20, "{}", stderr(&denied));
    assert!(
        stderr(&denied).contains("PermissionDenied"),
        "{}",
        stderr(&denied)
    );
    let lifted = run(&app, &["unfreeze", "shop", &freeze_id], Some(&tokens.ops)).await;
    assert_eq!(code(&lifted), 0, "{}", stderr(&lifted));
    assert!(
        stdout(&lifted).starts_with("lifted the freeze of production of pipeline shop"),
        "{}",
        stdout(&lifted)
    );

    let promoted = run(
        &app,
        &["promote", "--pipeline", "shop", "--from", "shop-stg"],
        Some(&tokens.alice),
    )
    .await;
    assert_eq!(
        code(&promoted),
        0,
        "{}{}",
        stdout(&promoted),
        stderr(&promoted)
    );
}
