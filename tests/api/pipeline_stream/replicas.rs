//! Two servers sharing PostgreSQL: a change made on one reaches watchers of the other
//! within a second, with the same sequence numbers.

use std::time::{Duration, Instant};

use super::{shop, SseReader};

#[tokio::test]
async fn a_change_on_one_replica_reaches_a_watcher_of_the_other_within_a_second() {
    let database = crate::helpers::fresh_database().await;
    if !database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: replicas share PostgreSQL; the embedded file has one process"
        );
        return;
    }
    let second_handle = database.another_handle();
    let first =
        crate::helpers::spawn_app_with(crate::helpers::settings_for(&database.url), database).await;
    let second = crate::helpers::spawn_app_with(
        crate::helpers::settings_for(&second_handle.url),
        second_handle,
    )
    .await;
    shop(&first).await;
    let mut on_first = SseReader::open(&first, "/pipelines/shop/events", None).await;
    let mut on_second = SseReader::open(&second, "/pipelines/shop/events", None).await;
    for version in 1..=5 {
        let writer = if version % 2 == 0 { &first } else { &second };
        let started = Instant::now();
        writer
            .create_release("shop-dev", &format!("registry/shop:{version}"))
            .await;
        let seen_first = on_first.take(1).await;
        let seen_second = on_second.take(1).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(seen_first[0].id, 3 + version);
        assert_eq!(seen_second[0].id, seen_first[0].id);
        assert_eq!(
            seen_first[0].data["image"],
            format!("registry/shop:{version}")
        );
    }
}
