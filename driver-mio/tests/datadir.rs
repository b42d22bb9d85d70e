//! The data directory as an operator meets it: one node at a time, and start-up failures that
//! leave no new key behind.

use std::net::UdpSocket;
use std::path::PathBuf;

use devp2p_mio::{Driver, DriverConfig, KeySource, StartError};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("devp2p-mio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(dir: &std::path::Path, listen: &str) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.listen = listen.parse().unwrap();
    config.data_dir = Some(dir.to_path_buf());
    config
}

#[test]
fn a_second_node_on_a_data_directory_in_use_is_refused_until_the_first_is_gone() {
    let dir = temp_dir("lock");
    let poll = mio::Poll::new().unwrap();
    let first = Driver::new(poll.registry(), 0..64, config(&dir, "127.0.0.1:0")).unwrap();
    let err = Driver::new(poll.registry(), 64..128, config(&dir, "127.0.0.1:0"))
        .err()
        .expect("a second node on the same data directory must be refused");
    assert!(matches!(err, StartError::DataDirInUse { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&dir.display().to_string()) && text.contains("in use by another node"),
        "{text}"
    );
    drop(first);
    // The lock goes with the node: the directory is free again.
    let again = Driver::new(poll.registry(), 64..128, config(&dir, "127.0.0.1:0"));
    assert!(again.is_ok(), "{:?}", again.err().map(|e| e.to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_port_in_use_names_the_socket_and_writes_no_key() {
    let dir = temp_dir("busy");
    // Hold a UDP port, so that TCP binds and UDP does not.
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let poll = mio::Poll::new().unwrap();
    let err = Driver::new(poll.registry(), 0..64, config(&dir, &addr.to_string()))
        .err()
        .expect("the port is in use");
    let text = err.to_string();
    assert!(
        text.contains(&format!("could not bind UDP on {addr}")),
        "{text}"
    );
    assert!(
        !dir.join("nodekey").exists(),
        "no key is created by a start that failed"
    );
    // Same with an explicit key file.
    let key = dir.join("mykey");
    let mut c = config(&dir, &addr.to_string());
    c.key = KeySource::File(key.clone());
    assert!(Driver::new(poll.registry(), 0..64, c).is_err());
    assert!(!key.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_data_directory_that_is_a_file_is_refused_by_name() {
    let dir = temp_dir("file");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let poll = mio::Poll::new().unwrap();
    let err = Driver::new(poll.registry(), 0..64, config(&file, "127.0.0.1:0"))
        .err()
        .expect("a file is no data directory");
    assert!(matches!(err, StartError::NotADirectory { .. }), "{err}");
    assert!(err.to_string().contains("is not a directory"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
