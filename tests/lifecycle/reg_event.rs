//! The reg event package (RFC 3680) on its own: the full state first, then a partial NOTIFY per
//! change with the contact events `registered`, `refreshed`, `unregistered` and `expired`;
//! a re-SUBSCRIBE refreshes the subscription and `Expires: 0` ends it with a final NOTIFY.
//! (`rejected` and `deactivated` are checked in the deactivate and sign-out tests.)

use std::time::Duration;

use crate::common::*;
use crate::support::sip_ua::ReceivedMessage;
use crate::support::{Algorithm, TestServer, Transport};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reg_event_reports_every_contact_change_and_ends_on_unsubscribe() {
    let srv = TestServer::start_with(|cfg| crate::support::server::toml_set(cfg, "sip", "min_expires", "1"));
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    let dev = create_device(&admin, &new_mac(), "alice", "1001", Vendor::Yealink).await;

    let mut sub = RegSubscriber::subscribe(&srv, "1001", &dev.sip_user, &dev.sip_pass).await;
    let first = &sub.notifies[0];
    assert!(first.body_str().contains("state=\"full\""), "the first NOTIFY is not the full state:\n{}", first.raw);
    assert_eq!(first.header("Content-Type"), Some("application/reginfo+xml"), "{}", first.raw);
    assert!(first.header("Subscription-State").is_some_and(|s| s.starts_with("active")), "{}", first.raw);

    let mut phone = phone_for(&srv, &dev, Transport::Udp).await;
    assert_eq!(phone.register().await.status(), Some(200));
    let local = phone.ua.local_hostport();
    assert!(sub.wait_contact(&local, "active", "registered", WAIT).await, "no `registered`:\n{}", sub.describe());
    let partial = sub.notifies.last().unwrap();
    assert!(partial.body_str().contains("state=\"partial\""), "a change is not a partial NOTIFY:\n{}", partial.raw);

    assert_eq!(phone.refresh().await.status(), Some(200));
    assert!(sub.wait_contact(&local, "active", "refreshed", WAIT).await, "no `refreshed`:\n{}", sub.describe());

    assert_eq!(phone.unregister().await.status(), Some(200));
    assert!(
        sub.wait_contact(&local, "terminated", "unregistered", WAIT).await,
        "no `unregistered`:\n{}",
        sub.describe()
    );

    // A binding of 2 s expires: `expired`.
    phone.expires = 2;
    assert_eq!(phone.register().await.status(), Some(200));
    assert!(
        sub.wait_contact(&local, "terminated", "expired", Duration::from_secs(8)).await,
        "no `expired`:\n{}",
        sub.describe()
    );

    // Refresh the subscription, then end it.
    let r = subscribe_again(&mut sub, &dev, "300").await;
    assert_eq!(r.status(), Some(200), "re-SUBSCRIBE:\n{}", r.raw);
    assert_eq!(r.header("Expires"), Some("300"), "{}", r.raw);
    assert_eq!(sub.collect(WAIT, 1).await, 1, "no NOTIFY after the re-SUBSCRIBE");
    let r = subscribe_again(&mut sub, &dev, "0").await;
    assert_eq!(r.status(), Some(200), "unSUBSCRIBE:\n{}", r.raw);
    assert_eq!(sub.collect(WAIT, 1).await, 1, "no final NOTIFY after Expires: 0");
    let last = sub.notifies.last().unwrap();
    assert!(
        last.header("Subscription-State").is_some_and(|s| s.starts_with("terminated")),
        "the final NOTIFY does not terminate the subscription:\n{}",
        last.raw
    );

    // Another event package is refused with 489 and Allow-Events.
    let (aor, contact) = (sub.ua.aor("1001"), sub.ua.local_contact("1001"));
    let h = vec![("Event".to_string(), "presence".to_string()), ("Contact".to_string(), contact)];
    let r = sub.ua.request_with_auth("SUBSCRIBE", &aor, &aor, &aor, &h, b"", None, Algorithm::Sha256).await;
    assert_eq!(r.status(), Some(489), "{}", r.raw);
    assert_eq!(r.header("Allow-Events"), Some("reg"), "{}", r.raw);
}

/// The subscriber's SUBSCRIBE to 1001's reg event again, with `Expires: expires` (0 ends it),
/// answering the challenge with the device's credentials.
async fn subscribe_again(sub: &mut RegSubscriber, dev: &Dev, expires: &str) -> ReceivedMessage {
    let aor = sub.ua.aor("1001");
    let headers = [
        ("Event".to_string(), "reg".to_string()),
        ("Contact".to_string(), sub.ua.local_contact("1001")),
        ("Expires".to_string(), expires.to_string()),
    ];
    let credentials = Some((dev.sip_user.as_str(), dev.sip_pass.as_str()));
    sub.ua.request_with_auth("SUBSCRIBE", &aor, &aor, &aor, &headers, b"", credentials, Algorithm::Sha256).await
}
