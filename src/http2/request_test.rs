//! The run's shared headers and each line's own: built once, checked as Apple would.

use super::*;

fn headers(topic: Option<&str>, priority: u8, collapse: Option<&str>) -> Result<Headers, HeadersError> {
    Headers::new(topic.map(Into::into), PushType::Alert, priority, 0, collapse.map(Into::into))
}

#[test]
fn shared_headers_are_built_once_in_apples_spelling() {
    let h = Headers::new(Some("com.example.app".into()), PushType::LiveActivity, 5, 1_700_000_000, Some("c1".into()))
        .unwrap();
    let got: Vec<(String, &str)> = h.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap())).collect();
    let want = [
        ("apns-topic", "com.example.app"),
        ("apns-push-type", "liveactivity"),
        ("apns-priority", "5"),
        ("apns-expiration", "1700000000"),
        ("apns-collapse-id", "c1"),
    ];
    assert_eq!(got, want.map(|(n, v)| (n.to_owned(), v)));
    let mut map = HeaderMap::new();
    map.insert(APNS_PRIORITY, HeaderValue::from_static("10"));
    h.apply(&mut map);
    assert_eq!(map.len(), 5);
    assert_eq!(map[APNS_PRIORITY], "5", "replaced, not appended");
}

#[test]
fn optional_headers_are_left_out() {
    let h = headers(None, 10, None).unwrap();
    let names: Vec<String> = h.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names, ["apns-push-type", "apns-priority", "apns-expiration"]);
}

#[test]
fn bad_values_are_refused_before_the_run() {
    assert_eq!(headers(None, 7, None).unwrap_err(), HeadersError::Priority(7));
    for p in [10, 5, 1] {
        assert!(headers(None, p, None).is_ok());
    }
    for topic in ["", "com.example app", "com.example\tapp", "com.exämple", "a\u{7f}"] {
        assert_eq!(headers(Some(topic), 10, None).unwrap_err(), HeadersError::Topic(topic.into()), "{topic:?}");
    }
    let long = "c".repeat(65);
    assert_eq!(headers(None, 10, Some(&long)).unwrap_err(), HeadersError::CollapseIdTooLong(65));
    assert!(headers(None, 10, Some(&long[..64])).is_ok(), "64 bytes is the limit");
    assert!(matches!(headers(None, 10, Some("a\nb")), Err(HeadersError::CollapseId(_))));
    assert!(headers(None, 10, Some("with spaces")).is_ok(), "a collapse id may have spaces");
}

#[test]
fn errors_say_what_apple_takes() {
    assert_eq!(
        HeadersError::Priority(7).to_string(),
        "invalid priority 7: expected 10 (immediate), 5 (power-considerate) or 1 (lowest)"
    );
    assert_eq!(HeadersError::CollapseIdTooLong(65).to_string(), "collapse id is 65 bytes long; Apple takes at most 64");
}

#[test]
fn the_headers_carry_the_push_types_limit_and_refuse_background_at_10() {
    assert_eq!(Headers::new(None, PushType::Voip, 10, 0, None).unwrap().payload_limit(), 5120);
    assert_eq!(Headers::new(None, PushType::Alert, 10, 0, None).unwrap().payload_limit(), 4096);
    let err = Headers::new(None, PushType::Background, 10, 0, None).unwrap_err();
    assert_eq!(err, HeadersError::PriorityForType { push_type: PushType::Background, priority: 10 });
    assert_eq!(
        err.to_string(),
        "priority 10 with push type background: Apple takes background notifications at priority 5 (10 is an error)"
    );
    for p in [5, 1] {
        assert!(Headers::new(None, PushType::Background, p, 0, None).is_ok(), "{p}");
    }
}

#[test]
fn apns_id_is_a_lower_case_uuid() {
    let mut buf = [0u8; 36];
    assert_eq!(
        apns_id_value(0x0123_4567_89ab_cdef_0011_2233_4455_6677, &mut buf),
        "01234567-89ab-cdef-0011-223344556677"
    );
    assert_eq!(apns_id_value(0, &mut buf), "00000000-0000-0000-0000-000000000000");
    assert_eq!(apns_id_value(u128::MAX, &mut buf), "ffffffff-ffff-ffff-ffff-ffffffffffff");
    assert!(HeaderValue::from_str(apns_id_value(u128::MAX, &mut buf)).is_ok());
}

#[test]
fn paths_are_written_after_what_the_buffer_holds() {
    let mut buf = bytes::BytesMut::with_capacity(1024);
    path(&DeviceToken([0xab; 32]), &mut buf);
    let first = buf.split().freeze();
    assert_eq!(&first[..], format!("/3/device/{}", "ab".repeat(32)).as_bytes());
    path(&DeviceToken([0x01; 32]), &mut buf);
    assert_eq!(&buf[..], format!("/3/device/{}", "01".repeat(32)).as_bytes());
    assert!(buf.capacity() >= 1024 - 2 * 74, "the second path took no new buffer");
}

#[test]
fn push_types_parse_from_apples_spelling_only() {
    for t in PushType::ALL {
        assert_eq!(t.as_str().parse::<PushType>(), Ok(t));
    }
    for bad in ["", "Alert", "VOIP", "fax", "alert "] {
        assert_eq!(bad.parse::<PushType>(), Err(HeadersError::PushType(bad.into())), "{bad:?}");
    }
    assert!(HeadersError::PushType("fax".into()).to_string().starts_with("invalid push type \"fax\": expected alert,"));
}

fn line(topic: Option<&str>, push_type: Option<&str>, collapse: Option<&str>) -> Result<LineHeaders, HeadersError> {
    LineHeaders::new(topic.map(Into::into), push_type, collapse.map(Into::into))
}

#[test]
fn a_lines_own_topic_gets_its_own_push_types_suffix() {
    for (topic, push_type, want) in [
        ("com.example.app", "voip", "com.example.app.voip"),
        ("com.example.app.voip", "voip", "com.example.app.voip"),
        ("com.example.app", "liveactivity", "com.example.app.push-type.liveactivity"),
        ("com.example.app", "alert", "com.example.app"),
    ] {
        assert_eq!(line(Some(topic), Some(push_type), None).unwrap().topic(), Some(want), "{topic} {push_type}");
    }
    assert_eq!(line(Some("com.example.app"), None, None).unwrap().topic(), Some("com.example.app"));
}

#[test]
fn a_lines_own_headers_replace_the_runs_for_that_request_only() {
    let run = Headers::new(Some("com.example.app".into()), PushType::Alert, 10, 0, Some("run".into())).unwrap();
    let own = line(Some("com.example.app.voip"), Some("voip"), Some("call-7")).unwrap();
    let mut map = HeaderMap::new();
    run.apply(&mut map);
    own.apply(&mut map, &run);
    assert_eq!(map.len(), 5, "replaced, not appended");
    assert_eq!(map[APNS_TOPIC], "com.example.app.voip");
    assert_eq!(map[APNS_PUSH_TYPE], "voip");
    assert_eq!(map[APNS_COLLAPSE_ID], "call-7");
    assert_eq!(map[APNS_PRIORITY], "10", "what the line does not set stays the run's");

    let mut map = HeaderMap::new();
    run.apply(&mut map);
    line(None, None, Some("only-this")).unwrap().apply(&mut map, &run);
    assert_eq!(map[APNS_TOPIC], "com.example.app");
    assert_eq!(map[APNS_PUSH_TYPE], "alert");
    assert_eq!(map[APNS_COLLAPSE_ID], "only-this");
}

#[test]
fn a_line_that_sets_only_its_push_type_gets_that_types_topic_and_a_priority_it_takes() {
    let sent = |run: &Headers, own: &LineHeaders| {
        let mut map = HeaderMap::new();
        run.apply(&mut map);
        own.apply(&mut map, run);
        let get = |name| map.get(name).map(|v: &HeaderValue| v.to_str().unwrap().to_owned());
        (get(APNS_TOPIC), get(APNS_PUSH_TYPE).unwrap(), get(APNS_PRIORITY).unwrap())
    };
    let some = |t: &str| Some(t.to_owned());
    // The run's topic carries its own type's suffix; the line's type replaces it.
    let voip_run = Headers::new(some("com.example.app.voip"), PushType::Voip, 10, 0, None).unwrap();
    let alert_run = Headers::new(some("com.example.app"), PushType::Alert, 10, 0, None).unwrap();
    for run in [&voip_run, &alert_run] {
        let got = sent(run, &line(None, Some("liveactivity"), None).unwrap());
        assert_eq!(got, (some("com.example.app.push-type.liveactivity"), "liveactivity".into(), "10".into()));
        let got = sent(run, &line(None, Some("alert"), None).unwrap());
        assert_eq!(got, (some("com.example.app"), "alert".into(), "10".into()));
        let got = sent(run, &line(None, Some("background"), None).unwrap());
        assert_eq!(got, (some("com.example.app"), "background".into(), "5".into()), "10 is an error for background");
    }
    let low = Headers::new(some("com.example.app"), PushType::Alert, 1, 0, None).unwrap();
    assert_eq!(sent(&low, &line(None, Some("background"), None).unwrap()).2, "1", "background takes 1");
    let own_topic = line(some("org.other.voip").as_deref(), Some("voip"), None).unwrap();
    assert_eq!(sent(&alert_run, &own_topic).0, some("org.other.voip"), "a line's own topic wins");
    let no_topic = Headers::new(None, PushType::Alert, 10, 0, None).unwrap();
    assert_eq!(sent(&no_topic, &line(None, Some("voip"), None).unwrap()).0, None, "no topic: still none");
    for (i, t) in PushType::ALL.into_iter().enumerate() {
        assert_eq!(t.index(), i, "{t:?}");
    }
}

#[test]
fn a_lines_own_headers_are_checked_as_the_runs_are() {
    assert_eq!(line(Some("com.example app"), None, None), Err(HeadersError::Topic("com.example app".into())));
    assert_eq!(line(Some(""), None, None), Err(HeadersError::Topic(String::new())));
    assert_eq!(line(None, Some("fax"), None), Err(HeadersError::PushType("fax".into())));
    let long = "c".repeat(65);
    assert_eq!(line(None, None, Some(&long)), Err(HeadersError::CollapseIdTooLong(65)));
    assert!(matches!(line(None, None, Some("a\u{1}b")), Err(HeadersError::CollapseId(_))));
    assert_eq!(line(None, None, Some(&long[..64])).unwrap().collapse_id(), Some(&long[..64]));
    let utf8 = line(None, None, Some("réunion")).unwrap();
    assert_eq!(utf8.collapse_id(), Some("réunion"), "a header carries UTF-8 bytes as they are");
}

#[test]
fn a_line_names_the_first_field_it_sets() {
    let none = line(None, None, None).unwrap();
    assert!(none.is_empty());
    assert_eq!(none.first_field(), None);
    let voip = line(None, Some("voip"), Some("x")).unwrap();
    assert_eq!((voip.first_field(), voip.push_type(), voip.topic()), (Some("push_type"), Some(PushType::Voip), None));
    assert_eq!(line(Some("a.b"), Some("voip"), None).unwrap().first_field(), Some("topic"));
    assert_eq!(line(None, None, Some("x")).unwrap().first_field(), Some("collapse_id"));
}

#[test]
fn an_empty_collapse_id_is_refused_and_errors_name_their_flag() {
    let e = Headers::new(Some("com.example.app".into()), PushType::Alert, 10, 0, Some(String::new())).unwrap_err();
    assert_eq!((e.clone(), e.flag()), (HeadersError::CollapseIdEmpty, "--collapse-id"));
    assert_eq!(line(None, None, Some("")).unwrap_err(), HeadersError::CollapseIdEmpty);
    let e = Headers::new(Some("a b".into()), PushType::Alert, 10, 0, None).unwrap_err();
    assert_eq!(e.flag(), "--topic");
    let e = Headers::new(Some("com.example.app".into()), PushType::Background, 10, 0, None).unwrap_err();
    assert_eq!(e.flag(), "--priority");
}
