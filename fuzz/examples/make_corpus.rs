//! Writes the seed corpora into `fuzz/corpus/<target>/` from the test vectors in
//! `core/tests/vectors/`. Run from the repository root:
//! `cargo run -p devp2p-fuzz --example make_corpus`.

use std::fs;
use std::path::Path;

use serde_json::Value;

fn hx(v: &Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    hex::decode(s.trim_start_matches("0x")).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

fn vector(name: &str) -> Value {
    let path = format!("core/tests/vectors/{name}");
    serde_json::from_str(
        &fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run from the repo root)")),
    )
    .expect("valid JSON")
}

struct Out {
    count: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = Path::new("fuzz/corpus").join(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        self.count += 1;
    }
}

fn with(mode: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(rest);
    v
}

fn main() {
    let mut out = Out { count: 0 };
    let hs = vector("rlpx_handshake_eip8.json");
    let (src, dec) = (&hs["source"], &hs["derived"]["decoded"]);
    for (n, f) in [
        ("auth2", "auth2_eip8"),
        ("auth3", "auth3_eip8_version56_extra"),
        ("auth1", "auth1_legacy"),
    ] {
        out.put("auth_eip8", &format!("raw-{n}"), &with(0, &hx(&src[f])));
    }
    for n in ["auth2", "auth3"] {
        out.put(
            "auth_eip8",
            &format!("plain-{n}"),
            &with(1, &hx(&dec[n]["plaintext"])),
        );
    }
    out.put("auth_legacy", "auth1", &hx(&dec["auth1"]["plaintext"]));
    out.put("ack", "ack1", &with(0, &hx(&dec["ack1"]["plaintext"])));
    for n in ["ack2", "ack3"] {
        out.put("ack", n, &with(1, &hx(&dec[n]["plaintext"])));
    }

    let frames = vector("rlpx_frames.json");
    out.put(
        "frame_stream",
        "golden-raw",
        &with(
            1,
            &[&[0x0f][..], &hx(&frames["geth_frame_read_write"]["frame"])].concat(),
        ),
    );
    let session = &frames["eip8_session_frames"];
    let mut msgs = vec![0u8, 0x83];
    for dir in ["a_to_b", "b_to_a"] {
        for f in session[dir].as_array().expect("frames") {
            let p = hx(&f["payload"]);
            msgs.push(f["msg_code"].as_u64().expect("code") as u8);
            msgs.extend_from_slice(&(p.len() as u16).to_be_bytes());
            msgs.extend_from_slice(&p);
            out.put("hello", &format!("{dir}-{}", f["msg_code"]), &p);
            out.put(
                "snappy",
                &format!("wire-{dir}-{}", f["msg_code"]),
                &with(0, &hx(&f["wire_payload"])),
            );
            out.put(
                "snappy",
                &format!("plain-{dir}-{}", f["msg_code"]),
                &with(1, &p),
            );
        }
    }
    out.put("frame_stream", "session-msgs", &msgs);
    out.put(
        "hello",
        "eip8",
        &hx(&vector("devp2p_hello_eip8.json")["hello_rlp"]),
    );

    for (n, b) in [
        ("list", &[0xc1u8, 0x04][..]),
        ("bare", &[0x04]),
        ("empty", &[]),
        ("zero", &[0xc1, 0x80]),
        ("extra", &[0xc2, 0x08, 0x01]),
    ] {
        out.put("disconnect", n, b);
    }

    let d4 = vector("discv4_packets_eip8.json");
    for (name, p) in d4["packets"].as_object().expect("packets") {
        let raw = hx(&p["packet"]);
        out.put("discv4_packet", &format!("raw-{name}"), &with(0, &raw));
        if raw.len() > 97 {
            out.put(
                "discv4_packet",
                &format!("body-{name}"),
                &with(1, &raw[97..]),
            );
        }
    }

    let d5 = vector("discv5_wire.json");
    for (name, p) in d5["packets"].as_object().expect("packets") {
        out.put("discv5_packet", name, &hx(&p["upstream"]["packet"]));
    }
    for (name, p) in d5["decode_errors"].as_object().expect("decode errors") {
        if let Some(packet) = p.get("packet") {
            out.put("discv5_packet", name, &hx(packet));
        }
    }
    // Message plaintexts: the vectors' PINGs, the reference examples of DISCV5.md §3.5 and
    // a NODES carrying node A's record.
    let record = hx(&d5["packets"]["ping_handshake_with_enr"]["derived"]["record_rlp"]);
    let mut nodes = rlp::RlpStream::new_list(3);
    nodes
        .append(&&[1u8][..])
        .append(&1u8)
        .begin_list(1)
        .append_raw(&record, 1);
    let mut plaintexts = vec![
        (
            "ping-seq2".to_string(),
            hx(&d5["packets"]["ping_message"]["derived"]["message_plaintext"]),
        ),
        (
            "ping-seq1".to_string(),
            hx(&d5["packets"]["ping_handshake"]["derived"]["message_plaintext"]),
        ),
        (
            "nodes-record".to_string(),
            [&[4u8][..], &nodes.out()].concat(),
        ),
    ];
    for (i, h) in [
        "02ca0101847f000001821388",
        "02d60101900000000000000000000000000000000182765f",
        "03c901c782010081ff81fe",
        "03c301c180",
        "04c30101c0",
        "05d0018d746573742d70726f746f636f6c80",
        "06c20180",
        "06c28080",
    ]
    .iter()
    .enumerate()
    {
        plaintexts.push((format!("example{i}"), hx(&Value::from(*h))));
    }
    let node_a = hx(&d5["keys"]["node_a"]["derived"]["node_id"]);
    for (name, pt) in &plaintexts {
        out.put("discv5_message", &format!("ordinary-{name}"), &with(0, pt));
        out.put(
            "discv5_message",
            &format!("handshake-{name}"),
            &with(1, &with(0, pt)),
        );
        out.put(
            "discv5_message",
            &format!("handshake-record-{name}"),
            &with(1, &with(1, pt)),
        );
        let mut header = vec![0u8, 0, 32];
        header.extend_from_slice(&node_a);
        header.extend_from_slice(pt);
        out.put(
            "discv5_message",
            &format!("fields-{name}"),
            &with(2, &header),
        );
    }
    // A WHOAREYOU's fields, and handshake authdata with the "v4" sizes but no valid proof.
    let mut whoareyou = vec![1u8, 0, 24];
    whoareyou.extend_from_slice(&[7; 24]);
    out.put("discv5_message", "fields-whoareyou", &with(2, &whoareyou));
    let mut handshake = vec![2u8, 0, 131];
    handshake.extend_from_slice(&node_a);
    handshake.extend_from_slice(&[64, 33]);
    handshake.extend_from_slice(&[1; 97]);
    handshake.extend_from_slice(&plaintexts[0].1);
    out.put("discv5_message", "fields-handshake", &with(2, &handshake));

    let enr = vector("enr.json");
    for (name, r) in enr.as_object().expect("records") {
        if let Some(text) = r.get("text").and_then(Value::as_str) {
            out.put("enr", &format!("text-{name}"), &with(1, text.as_bytes()));
            if let Ok(raw) = base64_decode(text.trim_start_matches("enr:")) {
                out.put("enr", &format!("raw-{name}"), &with(0, &raw));
            }
        }
    }
    out.put(
        "enr",
        "pairs",
        &with(2, b"\x01\x02\x05ip\x7f\x00\x00\x01\x03\x02udp\x76\x5f"),
    );

    let urls = vector("enode_urls.json");
    for (i, c) in urls["cases"].as_array().expect("cases").iter().enumerate() {
        out.put(
            "enode",
            &format!("case{i}"),
            c["input"].as_str().expect("input").as_bytes(),
        );
    }

    // The stateful targets read structured operations; seed them with a few fixed patterns.
    for (i, seed) in [[0u8; 64], [0x41; 64], [0xff; 64]].iter().enumerate() {
        for t in [
            "session",
            "node",
            "table",
            "discv5_sessions",
            "discv5_discovery",
        ] {
            out.put(t, &format!("pattern{i}"), seed);
        }
    }
    let mut counter = Vec::new();
    for i in 0..=255u8 {
        counter.extend_from_slice(&[i, i.wrapping_mul(7), 3, i]);
    }
    for t in [
        "session",
        "node",
        "table",
        "discv5_sessions",
        "discv5_discovery",
    ] {
        out.put(t, "counter", &counter);
    }
    // NAT-PMP answers (RFC 6886): an external address, a TCP mapping, a refusal, PCP's
    // version; the mapper's script reads the same bytes.
    for (n, d) in [
        (
            "pmp-external",
            &[0u8, 128, 0, 0, 0, 0, 0, 9, 45, 45, 45, 45][..],
        ),
        (
            "pmp-map-tcp",
            &[
                0, 130, 0, 0, 0, 0, 1, 0, 0x76, 0x5f, 0x76, 0x5f, 0, 0, 2, 0x58,
            ][..],
        ),
        ("pmp-refused", &[0, 130, 0, 2, 0, 0, 0, 0][..]),
        ("pcp-version", &[2, 128, 0, 1][..]),
    ] {
        out.put("nat", n, d);
    }
    out.put("nat", "counter", &counter);
    println!("wrote {} seed files under fuzz/corpus/", out.count);
}

/// Unpadded base64url, as in `enr:` text.
fn base64_decode(s: &str) -> Result<Vec<u8>, ()> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Ok(c - b'A'),
        b'a'..=b'z' => Ok(c - b'a' + 26),
        b'0'..=b'9' => Ok(c - b'0' + 52),
        b'-' => Ok(62),
        b'_' => Ok(63),
        _ => Err(()),
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | u32::from(val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
