//! The metering contract: packages, grants, reservations and charges, and the counters
//! that must hold across nodes (rates, attempts, nonces, alerts).

use renzheng_store::{
    AlertKind, AppCode, AppId, AppPolicy, AttemptWindow, AuditEntry, AuditQuery, GrantChange,
    GrantChanged, NewAlert, Package, QuotaRefusal, Reserved, Settle, Store, StoreError,
};

use super::{new_app, NOW};

const DAY: i64 = 86_400_000;
const HOLD: i64 = 60_000;

async fn app(store: &dyn Store) -> AppId {
    store
        .create_app(&new_app("shop", &AppCode::generate().hash()), NOW)
        .await
        .unwrap()
        .id
}

async fn hold(store: &dyn Store, app: &AppId, now: i64) -> Reserved {
    store.reserve_unit(app, now, HOLD).await.unwrap()
}

fn held(r: Reserved) -> renzheng_store::ReservationId {
    match r {
        Reserved::Held(id) => id,
        Reserved::Refused(why) => panic!("refused: {why:?}"),
    }
}

fn ok_entry(app: &AppId, request: &str, status: u16) -> AuditEntry {
    let mut entry = AuditEntry::new(NOW, request, status, 5);
    entry.app_id = Some(app.clone());
    entry.result = (status == 200).then_some(1);
    entry
}

pub async fn packages_are_seeded_and_editable(store: &dyn Store) {
    let packages = store.list_packages().await.unwrap();
    let calls: Vec<i64> = packages.iter().map(|p| p.calls).collect();
    for expected in [20, 100, 1000, 5000, 10_000, 30_000, 50_000, 100_000] {
        assert!(calls.contains(&expected), "{expected} calls in {calls:?}");
    }
    let c1000 = store.get_package("c1000").await.unwrap().unwrap();
    assert_eq!((c1000.calls, c1000.price_fen), (1000, 16_500));
    let custom = Package {
        name: "bulk".into(),
        title: "团购".into(),
        calls: 7,
        price_fen: 0,
        valid_days: None,
        active: true,
    };
    store.put_package(&custom).await.unwrap();
    assert_eq!(
        store.get_package("bulk").await.unwrap(),
        Some(custom.clone())
    );
    let retired = Package {
        active: false,
        ..custom
    };
    store.put_package(&retired).await.unwrap();
    assert_eq!(store.get_package("bulk").await.unwrap(), Some(retired));
    let bad = Package { calls: 0, ..c1000 };
    let err = store.put_package(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.get_package("nope").await.unwrap(), None);
}

pub async fn grants_add_to_the_balance_and_the_ledger(store: &dyn Store) {
    let app = app(store).await;
    let empty = store.balance(&app, NOW).await.unwrap();
    assert_eq!((empty.remaining, empty.purchased, empty.charged), (0, 0, 0));
    store
        .grant(&app, Some("c100"), 100, Some(NOW + DAY), NOW)
        .await
        .unwrap();
    store.grant(&app, None, 5, None, NOW).await.unwrap();
    let balance = store.balance(&app, NOW).await.unwrap();
    assert_eq!((balance.remaining, balance.purchased), (105, 105));
    assert_eq!(balance.grants.len(), 2);
    let rec = store.reconcile(&app, 0).await.unwrap();
    assert_eq!(rec.ledger_granted, 105);
    // Expired grants no longer count.
    let later = store.balance(&app, NOW + DAY).await.unwrap();
    assert_eq!((later.remaining, later.purchased), (5, 5));

    let missing = AppId::from("app_missing".to_owned());
    let err = store.grant(&missing, None, 1, None, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("app")), "{err:?}");
    let err = store.grant(&app, None, 0, None, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

pub async fn grants_are_revoked_and_adjusted_in_the_ledger(store: &dyn Store) {
    let app = app(store).await;
    let other = self::app(store).await;
    let grant = store.grant(&app, None, 10, None, NOW).await.unwrap();
    // Two units charged, one held by a check in flight.
    for request in ["r1", "r2"] {
        let id = held(hold(store, &app, NOW).await);
        let charged = store
            .finish_check(&ok_entry(&app, request, 200), Settle::Charge(id))
            .await
            .unwrap();
        assert!(charged);
    }
    let in_flight = held(hold(store, &app, NOW).await);

    // Not below what is charged and held, nor another app's grant, nor an unknown one.
    let fewer = GrantChange::Adjust {
        calls: Some(2),
        expires_at: None,
    };
    let refused = store
        .change_grant(&app, grant.id, fewer, NOW)
        .await
        .unwrap();
    assert_eq!(refused, GrantChanged::BelowCommitted { floor: 3 });
    let elsewhere = store.change_grant(&other, grant.id, fewer, NOW).await;
    assert_eq!(elsewhere.unwrap(), GrantChanged::NotFound);
    let unknown = store.change_grant(&app, grant.id + 1000, fewer, NOW).await;
    assert_eq!(unknown.unwrap(), GrantChanged::NotFound);
    assert_eq!(store.balance(&app, NOW).await.unwrap().remaining, 7);

    // Down to 6 calls with an expiry, then the expiry lifted.
    let adjust = GrantChange::Adjust {
        calls: Some(6),
        expires_at: Some(Some(NOW + DAY)),
    };
    let GrantChanged::Done { before, after } = store
        .change_grant(&app, grant.id, adjust, NOW)
        .await
        .unwrap()
    else {
        panic!("the adjustment was refused");
    };
    assert_eq!((before.calls, before.expires_at), (10, None));
    assert_eq!((after.calls, after.expires_at), (6, Some(NOW + DAY)));
    let balance = store.balance(&app, NOW).await.unwrap();
    assert_eq!((balance.remaining, balance.purchased), (3, 6));
    assert_eq!(store.balance(&app, NOW + DAY).await.unwrap().remaining, 0);
    let lift = GrantChange::Adjust {
        calls: None,
        expires_at: Some(None),
    };
    store.change_grant(&app, grant.id, lift, NOW).await.unwrap();
    assert_eq!(store.balance(&app, NOW + DAY).await.unwrap().remaining, 3);
    assert_eq!(store.reconcile(&app, 0).await.unwrap().ledger_granted, 6);

    // Revoked: its 3 unused calls are taken back, the held one still settles, and it
    // lends nothing more, nor changes again.
    let GrantChanged::Done { after, .. } = store
        .change_grant(&app, grant.id, GrantChange::Revoke, NOW + 5)
        .await
        .unwrap()
    else {
        panic!("the revocation was refused");
    };
    assert_eq!(after.revoked_at, Some(NOW + 5));
    assert!(!after.live_at(NOW + 5));
    let balance = store.balance(&app, NOW + 5).await.unwrap();
    assert_eq!((balance.remaining, balance.purchased), (0, 0));
    assert_eq!(
        hold(store, &app, NOW + 5).await,
        Reserved::Refused(QuotaRefusal::Exhausted)
    );
    let charged = store
        .finish_check(&ok_entry(&app, "r3", 200), Settle::Charge(in_flight))
        .await
        .unwrap();
    assert!(
        charged,
        "a check holding a unit of a revoked grant is charged"
    );
    let again = store
        .change_grant(&app, grant.id, GrantChange::Revoke, NOW)
        .await;
    assert_eq!(again.unwrap(), GrantChanged::Revoked);
    let again = store.change_grant(&app, grant.id, lift, NOW).await;
    assert_eq!(again.unwrap(), GrantChanged::Revoked);
    let rec = store.reconcile(&app, 0).await.unwrap();
    assert_eq!((rec.ledger_granted, rec.ledger_charges), (3, 3));
    assert_eq!(rec.ledger_charges, rec.audit_charged);

    // An unused grant revoked whole: the balance loses all of it.
    let unused = store.grant(&other, None, 4, None, NOW).await.unwrap();
    store
        .change_grant(&other, unused.id, GrantChange::Revoke, NOW)
        .await
        .unwrap();
    assert_eq!(store.reconcile(&other, 0).await.unwrap().ledger_granted, 0);
    assert_eq!(store.balance(&other, NOW).await.unwrap().remaining, 0);
}

pub async fn units_are_taken_oldest_expiry_first(store: &dyn Store) {
    let app = app(store).await;
    let never = store.grant(&app, None, 1, None, NOW).await.unwrap();
    let late = store
        .grant(&app, None, 1, Some(NOW + 2 * DAY), NOW)
        .await
        .unwrap();
    let soon = store
        .grant(&app, None, 1, Some(NOW + DAY), NOW)
        .await
        .unwrap();
    let mut order = Vec::new();
    for n in 0..3 {
        let id = held(hold(store, &app, NOW).await);
        store
            .finish_check(&ok_entry(&app, &format!("r{n}"), 200), Settle::Charge(id))
            .await
            .unwrap();
        let balance = store.balance(&app, NOW).await.unwrap();
        let drained: Vec<i64> = balance
            .grants
            .iter()
            .filter(|g| g.used == 1)
            .map(|g| g.id)
            .collect();
        order.push(drained);
    }
    assert_eq!(
        order,
        vec![
            vec![soon.id],
            vec![soon.id, late.id],
            vec![soon.id, late.id, never.id]
        ]
    );
}

pub async fn reservations_are_refused_when_exhausted_or_expired(store: &dyn Store) {
    let app = app(store).await;
    assert_eq!(
        hold(store, &app, NOW).await,
        Reserved::Refused(QuotaRefusal::Exhausted)
    );
    store
        .grant(&app, None, 2, Some(NOW + DAY), NOW)
        .await
        .unwrap();
    assert_eq!(
        hold(store, &app, NOW + DAY).await,
        Reserved::Refused(QuotaRefusal::Expired)
    );
    held(hold(store, &app, NOW).await);
    held(hold(store, &app, NOW).await);
    // Both units are held: nothing is left even before they are charged.
    assert_eq!(
        hold(store, &app, NOW).await,
        Reserved::Refused(QuotaRefusal::Exhausted)
    );
}

pub async fn charges_and_releases_settle_holds_with_the_audit(store: &dyn Store) {
    let app = app(store).await;
    store.grant(&app, None, 3, None, NOW).await.unwrap();
    let a = held(hold(store, &app, NOW).await);
    let b = held(hold(store, &app, NOW).await);
    assert_eq!(store.balance(&app, NOW).await.unwrap().reserved, 2);
    assert!(store
        .finish_check(&ok_entry(&app, "ok", 200), Settle::Charge(a))
        .await
        .unwrap());
    assert!(!store
        .finish_check(&ok_entry(&app, "bad", 400), Settle::Release(b))
        .await
        .unwrap());
    assert!(!store
        .finish_check(&ok_entry(&app, "quota", 403), Settle::Nothing)
        .await
        .unwrap());
    let balance = store.balance(&app, NOW).await.unwrap();
    assert_eq!(
        (balance.remaining, balance.charged, balance.reserved),
        (2, 1, 0)
    );
    let rows = store
        .audit_page(&AuditQuery {
            app_id: Some(app.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let charged: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| (r.request_id.as_str(), r.charged))
        .collect();
    assert_eq!(
        charged,
        vec![("quota", false), ("bad", false), ("ok", true)]
    );
    let rec = store.reconcile(&app, 0).await.unwrap();
    assert_eq!(
        (rec.ledger_charges, rec.audit_charged, rec.audit_succeeded),
        (1, 1, 1)
    );
    // Settling twice does not charge twice.
    assert!(store
        .finish_check(&ok_entry(&app, "again", 400), Settle::Release(a))
        .await
        .is_ok());
    assert_eq!(store.balance(&app, NOW).await.unwrap().charged, 1);
}

pub async fn concurrent_reservations_never_overdraw(store: &dyn Store) {
    let app = app(store).await;
    store.grant(&app, None, 7, None, NOW).await.unwrap();
    let attempts = (0..40).map(|n| {
        let app = app.clone();
        async move {
            match store.reserve_unit(&app, NOW, HOLD).await.unwrap() {
                Reserved::Held(id) => {
                    let entry = ok_entry(&app, &format!("r{n}"), 200);
                    store
                        .finish_check(&entry, Settle::Charge(id))
                        .await
                        .unwrap()
                }
                Reserved::Refused(_) => {
                    let entry = ok_entry(&app, &format!("r{n}"), 403);
                    store.finish_check(&entry, Settle::Nothing).await.unwrap()
                }
            }
        }
    });
    let charged = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert_eq!(charged, 7);
    let balance = store.balance(&app, NOW).await.unwrap();
    assert_eq!((balance.remaining, balance.charged), (0, 7));
    let rec = store.reconcile(&app, 0).await.unwrap();
    assert_eq!((rec.ledger_charges, rec.audit_charged), (7, 7));
}

pub async fn lapsed_holds_are_given_back(store: &dyn Store) {
    let app = app(store).await;
    store.grant(&app, None, 1, None, NOW).await.unwrap();
    let id = held(hold(store, &app, NOW).await);
    // The node died: nothing settles the hold.
    assert_eq!(store.reclaim_reservations(NOW + HOLD - 1).await.unwrap(), 0);
    assert_eq!(store.reclaim_reservations(NOW + HOLD).await.unwrap(), 1);
    assert_eq!(store.balance(&app, NOW).await.unwrap().remaining, 1);
    // A check that outlived its hold is still charged once, from what is left.
    assert!(store
        .finish_check(&ok_entry(&app, "late", 200), Settle::Charge(id))
        .await
        .unwrap());
    let balance = store.balance(&app, NOW).await.unwrap();
    assert_eq!((balance.remaining, balance.charged), (0, 1));
    // With nothing left it is not charged, and the audit says so.
    let id = {
        store.grant(&app, None, 1, None, NOW).await.unwrap();
        held(hold(store, &app, NOW).await)
    };
    store.purge_expired(NOW + HOLD).await.unwrap();
    let other = held(hold(store, &app, NOW + HOLD).await);
    store
        .finish_check(&ok_entry(&app, "other", 200), Settle::Charge(other))
        .await
        .unwrap();
    assert!(!store
        .finish_check(&ok_entry(&app, "too late", 200), Settle::Charge(id))
        .await
        .unwrap());
    let rec = store.reconcile(&app, 0).await.unwrap();
    assert_eq!((rec.ledger_charges, rec.audit_charged), (2, 2));
}

pub async fn rate_limits_allow_a_burst_then_the_rate(store: &dyn Store) {
    let app = app(store).await;
    // 2 per second (500 ms apart), bursts of 3.
    let take = |now| store.take_rate(&app, now, 500_000, 3);
    for _ in 0..3 {
        assert_eq!(take(NOW).await.unwrap(), None);
    }
    let wait = take(NOW).await.unwrap().expect("the fourth is throttled");
    assert!((1..=500).contains(&wait), "{wait}");
    assert_eq!(take(NOW + wait).await.unwrap(), None);
    assert!(take(NOW + wait).await.unwrap().is_some());
    // After a quiet while the full burst is back.
    for _ in 0..3 {
        assert_eq!(take(NOW + 10_000).await.unwrap(), None);
    }
}

/// An interval or burst far past any sane policy (a rate of 1e-14/s is an interval of
/// 1e20 µs) is clamped, not summed into an overflow: the store keeps answering.
pub async fn extreme_rates_never_overflow(store: &dyn Store) {
    let app = app(store).await;
    for (interval_us, burst) in [(i64::MAX, u32::MAX), (i64::MAX, 1), (1, u32::MAX)] {
        let first = store.take_rate(&app, NOW, interval_us, burst).await;
        assert!(first.is_ok(), "{interval_us} {burst}: {first:?}");
        let second = store.take_rate(&app, NOW, interval_us, burst).await;
        assert!(second.is_ok(), "{interval_us} {burst}: {second:?}");
        store.give_back_rate(&app, interval_us).await.unwrap();
    }
    // The limiter still throttles with a finite wait: a second request within the
    // clamped interval (a year) waits.
    store.take_rate(&app, NOW + DAY, i64::MAX, 1).await.unwrap();
    let wait = store.take_rate(&app, NOW + DAY, i64::MAX, 1).await.unwrap();
    assert!(wait.is_some_and(|w| w > 0), "{wait:?}");
}

pub async fn attempts_per_id_are_limited_per_minute_and_day(store: &dyn Store) {
    let app = app(store).await;
    let count = |now, hash: &'static str| store.count_attempt(&app, hash, now, 2, 3);
    assert_eq!(count(NOW, "h1").await.unwrap(), None);
    assert_eq!(count(NOW, "h1").await.unwrap(), None);
    assert_eq!(count(NOW, "h1").await.unwrap(), Some(AttemptWindow::Minute));
    // Another ID number is counted apart.
    assert_eq!(count(NOW, "h2").await.unwrap(), None);
    // The next minute allows one more, then the day is full.
    assert_eq!(count(NOW + 60_000, "h1").await.unwrap(), None);
    assert_eq!(
        count(NOW + 120_000, "h1").await.unwrap(),
        Some(AttemptWindow::Day)
    );
    // A refused attempt counted nowhere: tomorrow starts afresh.
    assert_eq!(count(NOW + DAY, "h1").await.unwrap(), None);
    // 0 turns a window off.
    for _ in 0..5 {
        assert_eq!(
            store.count_attempt(&app, "h3", NOW, 0, 0).await.unwrap(),
            None
        );
    }
    assert!(store.purge_expired(NOW + 2 * DAY).await.unwrap() > 0);
}

pub async fn nonces_are_single_use_within_their_window(store: &dyn Store) {
    let app = app(store).await;
    let other = self::app(store).await;
    assert!(store
        .use_nonce(&app, "n1", NOW, NOW + 900_000)
        .await
        .unwrap());
    assert!(!store
        .use_nonce(&app, "n1", NOW + 1, NOW + 900_001)
        .await
        .unwrap());
    assert!(store
        .use_nonce(&other, "n1", NOW, NOW + 900_000)
        .await
        .unwrap());
    // Once the window is over the nonce is forgotten (its timestamp is refused anyway).
    assert!(store
        .use_nonce(&app, "n1", NOW + 900_000, NOW + 1_800_000)
        .await
        .unwrap());
    assert_eq!(store.purge_expired(NOW + 1_800_000).await.unwrap(), 2);
}

/// The person of the history's checks.
fn holder() -> renzheng_domain::IdNumber {
    renzheng_domain::IdNumber::parse("11010519491231002X").unwrap()
}

pub async fn history_is_filtered_and_paged(store: &dyn Store) {
    let app = app(store).await;
    let other = self::app(store).await;
    for n in 0..5 {
        let mut entry = ok_entry(&app, &format!("a{n}"), if n == 2 { 400 } else { 200 });
        entry.at = NOW + n * DAY;
        let entry = entry.with_id_number(&holder(), b"key one");
        store.record_audit(&entry).await.unwrap();
    }
    store
        .record_audit(&ok_entry(&other, "b", 200))
        .await
        .unwrap();
    let page = |q: AuditQuery| async move {
        store
            .audit_page(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect::<Vec<_>>()
    };
    let mine = AuditQuery {
        app_id: Some(app.clone()),
        limit: 2,
        ..AuditQuery::default()
    };
    assert_eq!(page(mine.clone()).await, ["a4", "a3"]);
    let first = store.audit_page(&mine).await.unwrap();
    let next = AuditQuery {
        before_id: Some(first[1].id),
        ..mine.clone()
    };
    assert_eq!(page(next).await, ["a2", "a1"]);
    let ranged = AuditQuery {
        from_ms: Some(NOW + DAY),
        to_ms: Some(NOW + 3 * DAY),
        limit: 10,
        ..mine.clone()
    };
    assert_eq!(page(ranged).await, ["a2", "a1"]);
    let failed = AuditQuery {
        http_status: Some(400),
        limit: 10,
        ..mine.clone()
    };
    assert_eq!(page(failed).await, ["a2"]);
    let same = AuditQuery {
        result: Some(1),
        limit: 10,
        ..mine
    };
    assert_eq!(page(same.clone()).await.len(), 4);

    let usage = store
        .usage(Some(&app), NOW, NOW + 5 * DAY, 8 * 3_600_000)
        .await
        .unwrap();
    assert_eq!(usage.len(), 5);
    assert!(usage.windows(2).all(|w| w[0].day + 1 == w[1].day));
    assert_eq!(usage.iter().map(|u| u.calls).sum::<i64>(), 5);
    assert_eq!(usage.iter().map(|u| u.succeeded).sum::<i64>(), 4);
    let all = store.usage(None, NOW, NOW + 5 * DAY, 0).await.unwrap();
    assert_eq!(all.iter().map(|u| u.calls).sum::<i64>(), 6);
    // By taskNo, and by the ID number's keyed hash (either of two keys).
    let by_task = AuditQuery {
        task_no: Some("a3".into()),
        result: None,
        ..same.clone()
    };
    assert_eq!(page(by_task).await, ["a3"]);
    let other = renzheng_domain::IdNumber::parse("440308199001011239").unwrap();
    let other_person = ok_entry(&app, "c", 200).with_id_number(&other, b"key two");
    store.record_audit(&other_person).await.unwrap();
    let hash = holder().keyed_hash(b"key one");
    let by_person = |hashes: Vec<String>| AuditQuery {
        id_hashes: hashes,
        result: None,
        ..same.clone()
    };
    assert_eq!(page(by_person(vec![hash.clone()])).await.len(), 5);
    assert_eq!(
        page(by_person(vec![
            holder().keyed_hash(b"key two"),
            other.keyed_hash(b"key two")
        ]))
        .await,
        ["c"]
    );
    assert_eq!(
        page(by_person(vec![other.keyed_hash(b"key one")]))
            .await
            .len(),
        0
    );
}

pub async fn alerts_are_recorded_once_per_period(store: &dyn Store) {
    let app = app(store).await;
    let alert = NewAlert {
        at: NOW,
        app_id: app.clone(),
        kind: AlertKind::Low,
        period: 20_000,
        remaining: 2,
        purchased: 10,
    };
    let id = store.record_alert(&alert).await.unwrap().expect("first");
    assert_eq!(store.record_alert(&alert).await.unwrap(), None);
    let exhausted = NewAlert {
        kind: AlertKind::Exhausted,
        ..alert.clone()
    };
    assert!(store.record_alert(&exhausted).await.unwrap().is_some());
    store
        .alert_attempted(id, None, Some("connection refused"))
        .await
        .unwrap();
    store
        .alert_attempted(id, Some(NOW + 5), None)
        .await
        .unwrap();
    let recent = store.recent_alerts(Some(&app), 10).await.unwrap();
    assert_eq!(recent.len(), 2);
    let low = recent.iter().find(|a| a.id == id).unwrap();
    assert_eq!(low.alert, alert);
    assert_eq!((low.attempts, low.delivered_at), (2, Some(NOW + 5)));
}

pub async fn app_codes_rotate_with_a_grace_period(store: &dyn Store) {
    let old = AppCode::generate().hash();
    let app = store.create_app(&new_app("shop", &old), NOW).await.unwrap();
    let key = app.app_key.clone().expect("apps get an AppKey");
    assert_eq!(
        store.find_app_by_key(&key).await.unwrap().unwrap().id,
        app.id
    );
    assert_eq!(store.find_app_by_key("nope").await.unwrap(), None);

    assert_eq!(app.code_sealed.as_deref(), Some(&[9u8; 40][..]));
    let new = AppCode::generate().hash();
    store
        .rotate_app_code(&app.id, &new, Some(&[5; 40]), Some(NOW + 1000))
        .await
        .unwrap();
    // The sealed code follows the rotation, and is re-sealed only if unchanged.
    let found = store.get_app(&app.id).await.unwrap().unwrap();
    assert_eq!(found.code_sealed.as_deref(), Some(&[5u8; 40][..]));
    assert!(!store
        .reseal_app_code(&app.id, &[9; 40], &[6; 40])
        .await
        .unwrap());
    assert!(store
        .reseal_app_code(&app.id, &[5; 40], &[6; 40])
        .await
        .unwrap());
    let found = store.get_app(&app.id).await.unwrap().unwrap();
    assert_eq!(found.code_sealed.as_deref(), Some(&[6u8; 40][..]));
    assert!(store
        .find_app_by_code_hash(&new, NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_app_by_code_hash(&old, NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_app_by_code_hash(&old, NOW + 1000)
        .await
        .unwrap()
        .is_none());
    let newest = AppCode::generate().hash();
    store
        .rotate_app_code(&app.id, &newest, None, None)
        .await
        .unwrap();
    let found = store.get_app(&app.id).await.unwrap().unwrap();
    assert_eq!(
        found.code_sealed, None,
        "a code issued without its sealed copy"
    );
    assert!(store
        .find_app_by_code_hash(&new, NOW)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_app_by_code_hash(&old, NOW)
        .await
        .unwrap()
        .is_none());
    let err = store
        .rotate_app_code(&AppId::from("app_missing".to_owned()), &old, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("app")), "{err:?}");

    store
        .set_app_secret(&app.id, "newkey", &[9; 40])
        .await
        .unwrap();
    let found = store.get_app(&app.id).await.unwrap().unwrap();
    assert_eq!(found.app_key.as_deref(), Some("newkey"));
    assert_eq!(found.secret_sealed.as_deref(), Some(&[9u8; 40][..]));
    assert_eq!(found.policy, AppPolicy::default());
    let policy = AppPolicy {
        rate_per_sec: Some(2.5),
        rate_burst: Some(5),
        alert_percent: 30,
        webhook_url: Some("http://127.0.0.1:9/hook".into()),
        alert_emails: vec!["ops@example.cn".into(), "财务@例子.中国".into()],
    };
    store.set_app_policy(&app.id, &policy).await.unwrap();
    assert_eq!(
        store.get_app(&app.id).await.unwrap().unwrap().policy,
        policy
    );
}

fn session(token_hash: &str, idle_until: i64, ends_at: i64) -> renzheng_store::ConsoleSession {
    renzheng_store::ConsoleSession {
        token_hash: token_hash.into(),
        operator: "admin".into(),
        csrf: format!("csrf-{token_hash}"),
        created_at: NOW,
        idle_until,
        ends_at,
    }
}

pub async fn console_sessions_slide_until_idle_or_ended(store: &dyn Store) {
    const IDLE: i64 = 60_000;
    store
        .create_console_session(&session("a", NOW + IDLE, NOW + 3 * IDLE))
        .await
        .unwrap();
    // Used within its idle time: renewed.
    let s = store
        .touch_console_session("a", NOW + IDLE - 1, IDLE)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(s.operator, "admin");
    assert_eq!(s.csrf, "csrf-a");
    assert_eq!(s.idle_until, NOW + 2 * IDLE - 1);
    let s = store
        .touch_console_session("a", NOW + 2 * IDLE + IDLE / 2, IDLE)
        .await
        .unwrap();
    assert!(s.is_none(), "idle past its renewed time");
    // Renewal never goes past the session's end; at its end it is gone, however
    // recently used.
    store
        .create_console_session(&session("z", NOW + IDLE, NOW + IDLE + IDLE / 2))
        .await
        .unwrap();
    let s = store
        .touch_console_session("z", NOW + IDLE - 1, IDLE)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(s.idle_until, NOW + IDLE + IDLE / 2, "capped at its end");
    assert!(store
        .touch_console_session("z", NOW + IDLE + IDLE / 2, IDLE)
        .await
        .unwrap()
        .is_none());
    // Idle too long: gone, and touching does not revive it.
    store
        .create_console_session(&session("b", NOW + IDLE, NOW + 10 * IDLE))
        .await
        .unwrap();
    assert!(store
        .touch_console_session("b", NOW + IDLE, IDLE)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .touch_console_session("b", NOW + IDLE + 1, IDLE)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .touch_console_session("unknown", NOW, IDLE)
        .await
        .unwrap()
        .is_none());
    // Purged once lapsed; sign-out ends a live one.
    store
        .create_console_session(&session("c", NOW + IDLE, NOW + IDLE))
        .await
        .unwrap();
    assert!(store.purge_expired(NOW + 10 * IDLE).await.unwrap() >= 2);
    store
        .create_console_session(&session("d", NOW + IDLE, NOW + IDLE))
        .await
        .unwrap();
    assert!(store.end_console_session("d").await.unwrap());
    assert!(!store.end_console_session("d").await.unwrap());
    assert!(store
        .touch_console_session("d", NOW, IDLE)
        .await
        .unwrap()
        .is_none());
    // A token hash is unique.
    store
        .create_console_session(&session("e", NOW + IDLE, NOW + IDLE))
        .await
        .unwrap();
    assert!(store
        .create_console_session(&session("e", NOW + IDLE, NOW + IDLE))
        .await
        .is_err());
}

pub async fn an_operator_lists_and_ends_their_own_sessions(store: &dyn Store) {
    const IDLE: i64 = 60_000;
    let mut mine = session("m1", NOW + IDLE, NOW + 10 * IDLE);
    mine.created_at = NOW - 2;
    store.create_console_session(&mine).await.unwrap();
    let mut newer = session("m2", NOW + IDLE, NOW + 10 * IDLE);
    newer.created_at = NOW - 1;
    store.create_console_session(&newer).await.unwrap();
    let mut lapsed = session("m3", NOW - 1, NOW + 10 * IDLE);
    lapsed.created_at = NOW - 3;
    store.create_console_session(&lapsed).await.unwrap();
    let mut theirs = session("t1", NOW + IDLE, NOW + 10 * IDLE);
    theirs.operator = "auditor".into();
    store.create_console_session(&theirs).await.unwrap();
    let listed: Vec<String> = store
        .console_sessions_of("admin", NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.token_hash)
        .collect();
    assert_eq!(listed, ["m2", "m1"], "live ones, newest first, mine only");
    // Another operator's session is not mine to end.
    assert!(!store.end_operator_session("admin", "t1").await.unwrap());
    assert!(store.end_operator_session("admin", "m1").await.unwrap());
    assert!(!store.end_operator_session("admin", "m1").await.unwrap());
    assert!(store
        .touch_console_session("m1", NOW, IDLE)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .touch_console_session("t1", NOW, IDLE)
        .await
        .unwrap()
        .is_some());
}

pub async fn operator_accounts_always_keep_an_owner(store: &dyn Store) {
    use renzheng_store::{ConsoleOperator, OperatorChange, OperatorRole};
    let account = |name: &str, role| ConsoleOperator {
        name: name.into(),
        role,
        password_hash: format!("$argon2id$hash-of-{name}"),
        created_at: NOW,
        updated_at: NOW,
        totp: None,
    };
    assert!(store.console_operators().await.unwrap().is_empty());
    // The first owner is seeded only into an empty table, once.
    assert!(store
        .add_console_operator(&account("admin", OperatorRole::Owner), true)
        .await
        .unwrap());
    assert!(!store
        .add_console_operator(&account("other", OperatorRole::Owner), true)
        .await
        .unwrap());
    assert!(!store
        .add_console_operator(&account("admin", OperatorRole::Auditor), false)
        .await
        .unwrap());
    assert!(store
        .add_console_operator(&account("wang", OperatorRole::Auditor), false)
        .await
        .unwrap());
    let names: Vec<(String, OperatorRole)> = store
        .console_operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.name, o.role))
        .collect();
    assert_eq!(
        names,
        [
            ("admin".to_owned(), OperatorRole::Owner),
            ("wang".to_owned(), OperatorRole::Auditor)
        ]
    );
    // The last owner is neither demoted nor removed.
    for change in [
        store
            .set_console_operator_role("admin", OperatorRole::Admin, NOW + 1)
            .await
            .unwrap(),
        store.remove_console_operator("admin").await.unwrap(),
    ] {
        assert_eq!(change, OperatorChange::LastOwner);
    }
    assert_eq!(
        store
            .set_console_operator_role("nobody", OperatorRole::Admin, NOW + 1)
            .await
            .unwrap(),
        OperatorChange::NotFound
    );
    assert_eq!(
        store.remove_console_operator("nobody").await.unwrap(),
        OperatorChange::NotFound
    );
    // With a second owner, the first may step down.
    assert_eq!(
        store
            .set_console_operator_role("wang", OperatorRole::Owner, NOW + 1)
            .await
            .unwrap(),
        OperatorChange::Done
    );
    assert_eq!(
        store
            .set_console_operator_role("admin", OperatorRole::Admin, NOW + 2)
            .await
            .unwrap(),
        OperatorChange::Done
    );
    let admin = store.console_operator("admin").await.unwrap().unwrap();
    assert_eq!(
        (admin.role, admin.updated_at),
        (OperatorRole::Admin, NOW + 2)
    );
    // A new password ends the operator's other sessions, not the one kept, nor anyone else's.
    let mut kept = session("keep", NOW + 60_000, NOW + 600_000);
    kept.operator = "wang".into();
    let mut other = session("other", NOW + 60_000, NOW + 600_000);
    other.operator = "wang".into();
    let admins = session("admins", NOW + 60_000, NOW + 600_000);
    for s in [&kept, &other, &admins] {
        store.create_console_session(s).await.unwrap();
    }
    assert_eq!(
        store
            .set_console_operator_password("wang", "$argon2id$new", NOW + 3, Some("keep"))
            .await
            .unwrap(),
        OperatorChange::Done
    );
    assert_eq!(
        store
            .console_operator("wang")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
    let live = |hash: &'static str| async move {
        store
            .touch_console_session(hash, NOW, 60_000)
            .await
            .unwrap()
            .is_some()
    };
    assert!(live("keep").await && !live("other").await && live("admins").await);
    // Removing an operator ends every session of theirs.
    assert_eq!(
        store.remove_console_operator("admin").await.unwrap(),
        OperatorChange::Done
    );
    assert!(!live("admins").await && live("keep").await);
    assert!(store.console_operator("admin").await.unwrap().is_none());
    assert_eq!(
        store.remove_console_operator("wang").await.unwrap(),
        OperatorChange::LastOwner
    );
}

pub async fn console_flashes_are_read_once_by_their_session(store: &dyn Store) {
    const TTL: i64 = 300_000;
    store
        .put_console_flash("m1", "s1", b"sealed one", NOW + TTL)
        .await
        .unwrap();
    // Another session's: not given, and not spent either.
    assert_eq!(
        store.take_console_flash("m1", "s2", NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_console_flash("m1", "s1", NOW).await.unwrap(),
        Some(b"sealed one".to_vec())
    );
    // Once only.
    assert_eq!(
        store.take_console_flash("m1", "s1", NOW).await.unwrap(),
        None
    );
    // Expired: never given; purged with the other expired rows.
    store
        .put_console_flash("m2", "s1", b"late", NOW + TTL)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_console_flash("m2", "s1", NOW + TTL)
            .await
            .unwrap(),
        None
    );
    store
        .put_console_flash("m3", "s1", b"left", NOW + TTL)
        .await
        .unwrap();
    assert!(store.purge_expired(NOW + TTL).await.unwrap() >= 1);
    assert_eq!(
        store.take_console_flash("m3", "s1", NOW).await.unwrap(),
        None
    );
    // An id is unique.
    store
        .put_console_flash("m4", "s1", b"x", NOW + TTL)
        .await
        .unwrap();
    assert!(store
        .put_console_flash("m4", "s1", b"y", NOW + TTL)
        .await
        .is_err());
}

pub async fn an_operators_second_factor_is_kept_sealed_and_each_step_used_once(store: &dyn Store) {
    use renzheng_store::{ConsoleOperator, ConsoleSession, OperatorRole, OperatorTotp};
    let account = ConsoleOperator {
        name: "ops".into(),
        role: OperatorRole::Admin,
        password_hash: "$argon2id$hash".into(),
        created_at: NOW,
        updated_at: NOW,
        totp: None,
    };
    store.add_console_operator(&account, false).await.unwrap();
    for token in ["here", "there"] {
        let session = ConsoleSession {
            token_hash: token.into(),
            operator: "ops".into(),
            csrf: "c".into(),
            created_at: NOW,
            idle_until: NOW + DAY,
            ends_at: NOW + DAY,
        };
        store.create_console_session(&session).await.unwrap();
    }
    // Waiting for its first code: no step can be taken, no session ends.
    let pending = OperatorTotp {
        sealed: vec![1, 2, 3],
        enabled_at: None,
        last_step: None,
    };
    assert!(store
        .set_console_operator_totp("ops", Some(&pending), None)
        .await
        .unwrap());
    assert!(!store.take_totp_step("ops", 10).await.unwrap());
    assert_eq!(
        store.console_sessions_of("ops", NOW).await.unwrap().len(),
        2
    );
    let stored = store.console_operator("ops").await.unwrap().unwrap();
    assert_eq!(stored.totp.as_ref(), Some(&pending));
    // Turned on with the step of its first code: the other sessions end.
    let on = OperatorTotp {
        enabled_at: Some(NOW),
        last_step: Some(10),
        ..pending
    };
    assert!(store
        .set_console_operator_totp("ops", Some(&on), Some("here"))
        .await
        .unwrap());
    let sessions = store.console_sessions_of("ops", NOW).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].token_hash, "here");
    // Each step once, only forward.
    assert!(!store.take_totp_step("ops", 10).await.unwrap());
    assert!(store.take_totp_step("ops", 11).await.unwrap());
    assert!(!store.take_totp_step("ops", 11).await.unwrap());
    assert!(!store.take_totp_step("ops", 9).await.unwrap());
    assert!(!store.take_totp_step("nobody", 12).await.unwrap());
    // Re-sealed only from what it was.
    assert!(!store.reseal_console_totp("ops", &[9], &[4]).await.unwrap());
    assert!(store
        .reseal_console_totp("ops", &[1, 2, 3], &[4])
        .await
        .unwrap());
    let stored = store.console_operator("ops").await.unwrap().unwrap();
    let totp = stored.totp.unwrap();
    assert_eq!((totp.sealed, totp.last_step), (vec![4], Some(11)));
    // Cleared.
    assert!(store
        .set_console_operator_totp("ops", None, None)
        .await
        .unwrap());
    assert_eq!(
        store.console_operator("ops").await.unwrap().unwrap().totp,
        None
    );
    assert!(!store
        .set_console_operator_totp("nobody", None, None)
        .await
        .unwrap());
}

pub async fn operator_events_are_filtered_and_paged_by_the_store(store: &dyn Store) {
    use renzheng_store::{AdminEvent, EventQuery};
    for i in 0..5 {
        let event = AdminEvent::new(NOW + i * 1000, "cli", "app.created");
        store.record_event(&event).await.unwrap();
    }
    for i in 0..3 {
        let event = AdminEvent::new(NOW - DAY + i, "console:li", "person.enrolled");
        store.record_event(&event).await.unwrap();
    }
    // A kind is the part before the dot, not any prefix.
    let event = AdminEvent::new(NOW, "cli", "application.other");
    store.record_event(&event).await.unwrap();
    let page = |q: EventQuery| async move { store.events_page(&q).await.unwrap() };
    let all = page(EventQuery {
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(all.len(), 9);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let apps = page(EventQuery {
        kind: Some("app".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(apps.len(), 5);
    let yesterday = page(EventQuery {
        from_ms: Some(NOW - DAY),
        to_ms: Some(NOW - DAY + 2),
        actor: Some("console:li".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(yesterday.len(), 2, "from included, to excluded");
    // Pages of 4, keyset: nothing twice, nothing lost.
    let first = page(EventQuery {
        limit: 4,
        ..Default::default()
    })
    .await;
    let second = page(EventQuery {
        limit: 100,
        before_id: first.last().map(|e| e.id),
        ..Default::default()
    })
    .await;
    assert_eq!(first.len() + second.len(), 9);
    assert!(second.iter().all(|e| e.id < first[3].id));
}
