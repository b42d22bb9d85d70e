//! `devp2p key …`: generate a node key, and show it as a node id, an enode URL or a signed
//! record.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use devp2p_core::{Enode, Enr, NodeSecretKey};
use devp2p_mio::common::{keyfile, os_seeded_rng};

use crate::Failure;

/// The key file and the address to advertise.
#[derive(clap::Args)]
pub struct AddressArgs {
    /// The node key file (64 hex characters).
    pub file: PathBuf,
    /// The IP address.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: IpAddr,
    /// The TCP (RLPx) port.
    #[arg(long, default_value_t = 30303)]
    pub tcp: u16,
    /// The UDP (discovery) port; the TCP port when not given.
    #[arg(long)]
    pub udp: Option<u16>,
}

pub fn generate(out: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
    let key = NodeSecretKey::generate(&mut rng);
    match out {
        Some(path) => {
            if path.exists() {
                return Err(format!(
                    "{} exists; not overwriting a node key (remove it first)",
                    path.display()
                )
                .into());
            }
            keyfile::save(path, &key)?;
            outln!("wrote {}", path.display());
            outln!("node id:    {}", key.id());
            outln!("public key: {}", key.public());
        }
        None => outln!("{}", hex::encode(key.to_bytes())),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn to_id(file: &Path) -> Result<ExitCode, Failure> {
    outln!("{}", keyfile::load(file)?.id());
    Ok(ExitCode::SUCCESS)
}

pub fn to_enode(a: &AddressArgs) -> Result<ExitCode, Failure> {
    let key = keyfile::load(&a.file)?;
    outln!(
        "{}",
        Enode::new(*key.public(), a.ip, a.tcp, a.udp.unwrap_or(a.tcp))
    );
    Ok(ExitCode::SUCCESS)
}

pub fn to_enr(a: &AddressArgs, seq: u64) -> Result<ExitCode, Failure> {
    let key = keyfile::load(&a.file)?;
    let udp = a.udp.unwrap_or(a.tcp);
    let builder = Enr::builder().seq(seq).ip(a.ip);
    let builder = match a.ip {
        IpAddr::V4(_) => builder.tcp4(a.tcp).udp4(udp),
        IpAddr::V6(_) => builder.tcp6(a.tcp).udp6(udp),
    };
    let record = builder
        .sign(&key)
        .map_err(|e| format!("signing the record: {e}"))?;
    outln!("{record}");
    Ok(ExitCode::SUCCESS)
}
