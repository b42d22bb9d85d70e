//! go-ethereum's enode URL cases (`enode_urls.json`): valid ones parse to the expected key,
//! address and ports and print back; invalid ones fail with an error that says what is wrong.

mod common;

use common::vector;
use devp2p_core::{Enode, EnodeError, Host};

#[test]
fn every_enode_url_case_holds() {
    let v = vector("enode_urls.json");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 15, "all of enode_urls.json");
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let parsed = input.parse::<Enode>();
        if !case["valid"].as_bool().unwrap() {
            let err = parsed.expect_err(input);
            let text = err.to_string();
            let geth = case["geth_error"].as_str().unwrap();
            // Our messages name the same fault as geth's (wording differs).
            let expected = match geth {
                "invalid port" => matches!(err, EnodeError::InvalidPort(_)),
                "invalid discport in query" => matches!(err, EnodeError::InvalidDiscport(_)),
                g if g.starts_with("invalid public key") => {
                    matches!(err, EnodeError::InvalidPublicKey(_))
                }
                g if g.starts_with("missing 'enr:' prefix") => err == EnodeError::MissingScheme,
                other => panic!("unmapped geth error {other}"),
            };
            assert!(expected, "{input}: got {err:?} ({text}), geth says {geth}");
            continue;
        }
        let e = parsed.unwrap_or_else(|err| panic!("{input}: {err}"));
        assert_eq!(
            e.public_key.to_string(),
            case["pubkey"].as_str().unwrap(),
            "{input}"
        );
        assert_eq!(
            e.id().to_string(),
            case["node_id"].as_str().unwrap(),
            "{input}"
        );
        assert_eq!(
            u64::from(e.tcp_port),
            case["tcp"].as_u64().unwrap(),
            "{input}"
        );
        assert_eq!(
            u64::from(e.udp_port),
            case["udp"].as_u64().unwrap(),
            "{input}"
        );
        match (&e.host, case["ip"].as_str(), case["hostname"].as_str()) {
            (Some(Host::Ip(ip)), Some(want), _) => {
                assert_eq!(*ip, want.parse::<std::net::IpAddr>().unwrap())
            }
            (Some(Host::Dns(name)), None, Some(want)) => assert_eq!(name, want),
            (None, None, None) => {}
            other => panic!("{input}: host mismatch {other:?}"),
        }
        // Printing and parsing again gives the same node.
        let again: Enode = e.to_string().parse().unwrap();
        assert_eq!(again, e, "{input} round trip via {e}");
    }
}

#[test]
fn discport_is_printed_only_when_it_differs() {
    let key = "1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace24351232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439";
    let same: Enode = format!("enode://{key}@10.0.0.1:30303").parse().unwrap();
    assert_eq!(same.to_string(), format!("enode://{key}@10.0.0.1:30303"));
    let differ: Enode = format!("enode://{key}@[::1]:30303?discport=30301")
        .parse()
        .unwrap();
    assert_eq!(
        differ.to_string(),
        format!("enode://{key}@[::1]:30303?discport=30301")
    );
    assert!(format!("enode://{key}@10.0.0.1:70000")
        .parse::<Enode>()
        .is_err());
    assert!(format!("enode://{key}@10.0.0.1:+80")
        .parse::<Enode>()
        .is_err());
    assert!(format!("enode://{key}@:30303").parse::<Enode>().is_err());
}
