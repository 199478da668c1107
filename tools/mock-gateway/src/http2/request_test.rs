use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

#[test]
fn routes() {
    let path = format!("/3/device/{HEX}");
    assert_eq!(route(&Method::POST, &path).unwrap()[..2], [0x00, 0x11]);
    assert_eq!(route(&Method::GET, &path), Err(Reason::MethodNotAllowed));
    assert_eq!(route(&Method::POST, "/2/device/ab"), Err(Reason::BadPath));
    assert_eq!(route(&Method::POST, "/3/device/"), Err(Reason::MissingDeviceToken));
    assert_eq!(route(&Method::POST, "/3/device/abcd"), Err(Reason::BadDeviceToken));
    assert_eq!(route(&Method::POST, &format!("/3/device/{}zz", &HEX[..62])), Err(Reason::BadDeviceToken));
}

#[test]
fn header_rules() {
    assert_eq!(head(&headers(&[])).unwrap().push_type, PushType::Alert);
    let bg = |p| head(&headers(&[("apns-push-type", "background"), ("apns-priority", p)])).map(|_| ());
    // Apple: background "Always use priority 5. Using priority 10 is an error."
    assert_eq!(bg("10"), Err(Reason::BadPriority));
    assert_eq!(bg("5"), Ok(()));
    let alert10 = head(&headers(&[("apns-push-type", "alert"), ("apns-priority", "10")]));
    assert!(alert10.is_ok());
    assert_eq!(head(&headers(&[("apns-priority", "7")])).unwrap_err(), Reason::BadPriority);
    assert_eq!(head(&headers(&[("apns-push-type", "fax")])).unwrap_err(), Reason::InvalidPushType);
    assert_eq!(head(&headers(&[("apns-expiration", "12a")])).unwrap_err(), Reason::BadExpirationDate);
    assert!(head(&headers(&[("apns-expiration", "0")])).is_ok());
    let long = "x".repeat(65);
    assert_eq!(head(&headers(&[("apns-collapse-id", &long)])).unwrap_err(), Reason::BadCollapseId);
    assert!(head(&headers(&[("apns-collapse-id", &long[..64])])).is_ok());
    let twice = headers(&[("apns-topic", "a"), ("apns-topic", "a")]);
    assert_eq!(duplicates(&twice), Err(Reason::DuplicateHeaders));
}

#[test]
fn ids() {
    let good = "123e4567-E89B-12d3-a456-426655440000";
    assert_eq!(apns_id(&headers(&[("apns-id", good)])).unwrap().unwrap(), good);
    assert_eq!(apns_id(&headers(&[("apns-id", "123e4567e89b12d3a456426655440000")])), Err(Reason::BadMessageId));
    assert_eq!(apns_id(&headers(&[])), Ok(None));
    let made = make_uuid(1, 2);
    assert!(is_uuid(made.as_bytes()), "{made}");
    assert_eq!(made, "00000000-0000-0001-0000-000000000002");
}

#[test]
fn topics() {
    let t = |topic: Option<&str>, push_type, cert| {
        topic_check(&Head { push_type, topic: topic.map(str::to_string) }, "com.example.app", cert)
    };
    use PushType::*;
    assert_eq!(t(Some("com.example.app"), Alert, false), Ok(()));
    assert_eq!(t(Some("com.example.app.voip"), Voip, false), Ok(()));
    assert_eq!(t(Some("com.example.app.push-type.liveactivity"), LiveActivity, false), Ok(()));
    assert_eq!(t(Some("com.example.app.voip"), Alert, false), Err(Reason::BadTopic));
    assert_eq!(t(Some("com.example.app"), Voip, true), Err(Reason::BadTopic));
    assert_eq!(t(Some("org.other"), Alert, false), Err(Reason::DeviceTokenNotForTopic));
    assert_eq!(t(Some("com.example.apple"), Alert, true), Err(Reason::TopicDisallowed));
    assert_eq!(t(None, Alert, false), Err(Reason::MissingTopic));
    assert_eq!(t(None, Alert, true), Ok(()), "a certificate's own topic");
    assert_eq!(t(None, Voip, true), Err(Reason::MissingTopic), "a suffixed topic must be named");
}

/// Apple's table of topics: each push type takes the bundle id with its
/// suffix and nothing else, with token auth; with a certificate, the same
/// but for location and liveactivity, which take token auth only.
#[test]
fn each_push_type_takes_exactly_its_topic() {
    use PushType::*;
    let apple = [
        (Alert, ""),
        (Background, ""),
        (Voip, ".voip"),
        (Complication, ".complication"),
        (FileProvider, ".pushkit.fileprovider"),
        (Mdm, ""),
        (LiveActivity, ".push-type.liveactivity"),
        (Location, ".location-query"),
        (PushToTalk, ".voip-ptt"),
    ];
    let suffixes: Vec<&str> = apple.iter().map(|(_, s)| *s).collect();
    for (push_type, suffix) in apple {
        let name = std::str::from_utf8(push_type_name(push_type)).unwrap();
        let parsed = head(&headers(&[("apns-push-type", name)])).unwrap().push_type;
        assert_eq!(parsed, push_type);
        let check = |topic: String, cert| topic_check(&Head { push_type, topic: Some(topic) }, "com.example.app", cert);
        for other in &suffixes {
            let topic = format!("com.example.app{other}");
            let want = if *other == suffix { Ok(()) } else { Err(Reason::BadTopic) };
            assert_eq!(check(topic.clone(), false), want, "{name} to {topic} with a token");
            let want = if push_type.token_auth_only() { Err(Reason::TopicDisallowed) } else { want };
            assert_eq!(check(topic.clone(), true), want, "{name} to {topic} with a certificate");
        }
    }
}

fn push_type_name(t: PushType) -> &'static [u8] {
    use PushType::*;
    match t {
        Alert => b"alert",
        Background => b"background",
        Voip => b"voip",
        Complication => b"complication",
        FileProvider => b"fileprovider",
        Mdm => b"mdm",
        LiveActivity => b"liveactivity",
        Location => b"location",
        PushToTalk => b"pushtotalk",
    }
}

fn topic_check(head: &Head, base: &str, cert: bool) -> Result<(), Reason> {
    topic(head, base, cert)
}

#[test]
fn payloads() {
    assert_eq!(payload(b"", 4096), Err(Reason::PayloadEmpty));
    assert_eq!(payload(br#" {"aps":{}}"#, 4096), Ok(()));
    assert_eq!(payload(b"[1]", 4096), Err(Reason::BadPayload));
    assert_eq!(payload(b"{", 4096), Err(Reason::BadPayload));
    assert_eq!(payload(&[b' '; 4097], 4096), Err(Reason::PayloadTooLarge));
    assert_eq!(PushType::Voip.payload_limit(), 5120);
}
